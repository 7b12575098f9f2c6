#!/usr/bin/env bash
# Side-by-side load benchmark: Tresor vs OpenBao (dev servers, same machine, same run), plus KV v1
# reads against RustyVault.
# Run by hand, not in CI:  bash bench/run.sh [--duration 10] [--connections 32]
# Writes docs/benchmarks.md. Needs wrk (installed from Debian packages if missing), the `bao`
# binary (installed by scripts/test-deps.sh) and RustyVault's `rvault` (built once with
# `cargo install rusty_vault` into target/rustyvault; set TRESOR_BENCH_NO_RUSTYVAULT=1 to skip it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

source bench/prepare.sh
rusty=()
if [ -z "${TRESOR_BENCH_NO_RUSTYVAULT:-}" ]; then
    if [ ! -x target/rustyvault/bin/rvault ]; then
        cargo install rusty_vault --version 0.2.1 --root "$root/target/rustyvault"
    fi
    rusty=(--rustyvault "$root/target/rustyvault/bin/rvault")
fi
exec "$root/target/test-venv/bin/python" bench/bench.py \
    --tresor "$root/target/release/tresor" --bao "$root/target/test-venv/bin/bao" \
    --out "$root/docs/benchmarks.md" "${rusty[@]}" "$@"
