//! End-to-end tests: every test starts the real `waspmq` binary on ephemeral ports and drives it
//! with real clients over real sockets (rumqttc, raw bytes, mosquitto clients, paho-mqtt).

mod support;

mod config;
mod enhanced_auth;
mod flow_control;
mod malformed;
mod persistence;
mod plugins;
mod polyglot;
mod qos;
mod retained;
mod sandbox;
mod sessions;
mod smoke;
mod sys;
mod v5_features;
mod wills;

mod external;

mod dashboard;
mod mosquitto_clients;
mod mqttjs;
mod node_red;
mod paho;
mod paho5;
mod rust_examples;
