#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine (Debian packages, pip packages,
# the wasm32-wasip2 Rust target), builds the Wasm plugins and runs every test.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages: the mosquitto command-line clients the end-to-end tests drive.
missing=()
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python clients (paho-mqtt 2.x) used by the end-to-end tests and the examples.
echo "==> installing Python packages"
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

# Rust: the plugin target (rustup does not install targets on its own here).
echo "==> rustup target add wasm32-wasip2"
rustup target add wasm32-wasip2

if [ -x scripts/build-plugins.sh ]; then
    echo "==> building the Wasm plugins"
    scripts/build-plugins.sh
fi

echo "==> cargo test"
cargo test --workspace "$@"
