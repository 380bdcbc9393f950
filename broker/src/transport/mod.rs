//! Transports: TCP, TLS, WebSocket and secure WebSocket listeners, each turning its connections
//! into one byte stream the broker reads MQTT from.
