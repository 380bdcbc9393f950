#!/usr/bin/env bash
# Builds the shipped Wasm plugins (and the test-only ones) for wasm32-wasip2 into
# target/wasm32-wasip2/release/{auth_anonymous,auth_scram,topic_taboo,sqlite_conn_log,misbehave,
# rewrite,sandbox_probe}.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 \
    -p auth-anonymous -p auth-scram -p topic-taboo -p sqlite-conn-log \
    -p misbehave -p rewrite -p sandbox-probe
