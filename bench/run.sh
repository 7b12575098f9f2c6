#!/usr/bin/env bash
# Side-by-side load benchmark: Tresor vs OpenBao (dev servers, same machine, same run).
# Run by hand, not in CI:  bash bench/run.sh [--duration 10] [--connections 32]
# Writes docs/benchmarks.md. Needs wrk (installed from Debian packages if missing) and the `bao`
# binary (installed by scripts/test-deps.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

source bench/prepare.sh
exec "$root/target/test-venv/bin/python" bench/bench.py \
    --tresor "$root/target/release/tresor" --bao "$root/target/test-venv/bin/bao" \
    --out "$root/docs/benchmarks.md" "$@"
