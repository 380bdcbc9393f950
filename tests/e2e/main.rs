//! End-to-end tests: every test starts the real `waspmq` binary on ephemeral ports and drives it
//! with real clients over real sockets (rumqttc, raw bytes, mosquitto clients, paho-mqtt).

mod support;

mod config;
