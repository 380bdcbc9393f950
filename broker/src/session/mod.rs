//! The MQTT session engine, sans-IO: one client's protocol state (QoS 1/2 handshakes, inflight
//! window, receive maximum, topic aliases, keep-alive, expiry) as plain structs whose methods
//! take packets and the time and return packets to send. No sockets, no clock.
