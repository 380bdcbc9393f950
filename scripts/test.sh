#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine (Debian packages, pip packages,
# the wasm32-wasip2 Rust target), builds the Wasm plugins and runs every test.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages: the mosquitto command-line clients the end-to-end tests drive, Chromium for
# the dashboard test (driven by playwright-core with this system browser), Node.js and npm for
# MQTT.js, Playwright and Node-RED when the machine has no Node of its own.
missing=()
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v stdbuf >/dev/null 2>&1 || missing+=(coreutils)
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python clients (paho-mqtt 2.x) used by the end-to-end tests and the examples.
echo "==> installing Python packages"
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# paho-mqtt 1.6.1 beside it, in its own folder the paho 1.x test puts on PYTHONPATH.
paho1=tests/python/.deps/paho-mqtt-1.6.1
if [ ! -f "$paho1/paho_mqtt-1.6.1.dist-info/METADATA" ]; then
    echo "==> installing paho-mqtt 1.6.1 into $paho1"
    rm -rf "$paho1"
    python3 -m pip install --quiet --disable-pip-version-check --target "$paho1" paho-mqtt==1.6.1
fi

# JavaScript clients (MQTT.js, playwright-core, Node-RED) from the committed lock file; skipped
# when node_modules already matches it. playwright-core never downloads a browser of its own.
if ! cmp -s tests/js/package-lock.json tests/js/node_modules/.installed-package-lock.json; then
    echo "==> npm ci in tests/js"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
    cp tests/js/package-lock.json tests/js/node_modules/.installed-package-lock.json
fi

# Rust: the plugin target (rustup does not install targets on its own here).
echo "==> rustup target add wasm32-wasip2"
rustup target add wasm32-wasip2

if [ -x scripts/build-plugins.sh ]; then
    echo "==> building the Wasm plugins"
    scripts/build-plugins.sh
fi

# The plugins written in Python and JavaScript (componentize-py and jco from the installs above);
# tests/e2e/polyglot.rs loads them, and rebuilds one whose sources are newer.
for build in examples/plugins/*/build.sh; do
    echo "==> $build"
    bash "$build"
done

# The Rust sample clients: the end-to-end tests run these binaries from the target folder.
echo "==> cargo build -p waspmq-examples --bins"
cargo build -p waspmq-examples --bins

echo "==> cargo test"
cargo test --workspace "$@"
