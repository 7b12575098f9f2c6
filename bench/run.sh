#!/usr/bin/env bash
# Side-by-side load benchmark: Tresor vs OpenBao (dev servers, same machine, same run).
# Run by hand, not in CI:  bash bench/run.sh [--duration 10] [--connections 32]
# Writes docs/benchmarks.md. Needs wrk (installed from Debian packages if missing) and the `bao`
# binary (installed by scripts/test-deps.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi
bash scripts/test-deps.sh >/dev/null
cargo build --release --locked -p tresor
exec "$root/target/test-venv/bin/python" bench/bench.py \
    --tresor "$root/target/release/tresor" --bao "$root/target/test-venv/bin/bao" \
    --out "$root/docs/benchmarks.md" "$@"
