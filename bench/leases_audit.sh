#!/usr/bin/env bash
# Leases and audit side by side with OpenBao (issue: leases, audit, wrapping). Run by hand, not in CI:
#   bash bench/leases_audit.sh [--leases 100000] [--duration 10] [--connections 32]
# Rewrites the "Leases and audit" section of docs/benchmarks.md. Needs wrk and the `bao` binary
# (scripts/test-deps.sh), builds the release server and the probe-lease test plugin.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

source bench/prepare.sh
(cd tests/test-plugins && cargo build --release --locked --target wasm32-wasip2 -p probe-lease)
exec "$root/target/test-venv/bin/python" bench/leases_audit.py \
    --tresor "$root/target/release/tresor" --bao "$root/target/test-venv/bin/bao" \
    --plugin "$root/tests/test-plugins/target/wasm32-wasip2/release/probe_lease.wasm" \
    --out "$root/docs/benchmarks.md" "$@"
