#!/usr/bin/env bash
# Builds the Wasm plugins and the broker, then runs the broker with the shipped config
# (broker.toml: TCP 0.0.0.0:1883, WebSocket 0.0.0.0:8080, anonymous allowed, plugins
# auth-anonymous and topic-taboo). Extra arguments go to waspmq.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo build --release -p waspmq
exec target/release/waspmq --config broker.toml "$@"
