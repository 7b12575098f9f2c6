#!/usr/bin/env bash
# Transit side by side with OpenBao (issue: Transit). Run by hand, not in CI:
#   bash bench/transit.sh [--duration 10] [--connections 32]
# Rewrites the "Transit" section of docs/benchmarks.md. Needs wrk and the `bao` binary
# (scripts/test-deps.sh); builds the release server.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

source bench/prepare.sh
exec "$root/target/test-venv/bin/python" bench/transit.py \
    --tresor "$root/target/release/tresor" --bao "$root/target/test-venv/bin/bao" \
    --out "$root/docs/benchmarks.md" "$@"
