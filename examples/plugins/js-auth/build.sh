#!/usr/bin/env bash
# Builds js_auth.wasm from app.js with jco + componentize-js (pinned in tests/js/package.json:
# `npm ci --prefix tests/js`), for the `authenticator` world. The plugin needs no HTTP, so the
# component does not import wasi:http.
set -euo pipefail
cd "$(dirname "$0")"
wit="$(cd ../../../wit && pwd)"
jco=../../../tests/js/node_modules/.bin/jco
if [ ! -x "$jco" ]; then
    echo "jco missing: run npm ci --prefix tests/js" >&2
    exit 1
fi
"$jco" componentize app.js --wit "$wit" --world-name authenticator \
    --disable http fetch-event --out js_auth.wasm
