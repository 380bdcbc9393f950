#!/usr/bin/env bash
# Builds python_auth.wasm from app.py with componentize-py (pinned in tests/requirements.txt:
# `python3 -m pip install -r tests/requirements.txt`), for the `authenticator` world.
set -euo pipefail
cd "$(dirname "$0")"
componentize-py --wit-path ../../../wit --world authenticator componentize app --output python_auth.wasm
