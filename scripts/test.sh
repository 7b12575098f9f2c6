#!/usr/bin/env bash
# The one command that runs every test (README.md; .ci/run calls exactly this).
# Installs what the tests need (idempotent), builds the binary once, then runs the whole workspace's
# tests in one profile. Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p tresor-tests`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/test-deps.sh
# The system tests start the real binary: build it first, in the same (test) profile.
cargo build --locked -p tresor
# A private PostgreSQL cluster for the database engine's tests, stopped (and deleted) at exit.
trap 'bash scripts/pg.sh stop' EXIT
set -a
eval "$(bash scripts/pg.sh start)"
set +a
cargo test --locked --workspace "$@"
# The built-in plugins' own unit tests (known-answer vectors, handlers on the SDK's mock host) run
# natively in their workspace; skipped when arguments select something else.
if [ "$#" -eq 0 ]; then
    cargo test --locked --manifest-path plugins/Cargo.toml --target-dir plugins/target
fi
