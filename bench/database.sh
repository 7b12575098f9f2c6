#!/usr/bin/env bash
# Database engine (`creds/:role`) side by side with OpenBao's, against the same private PostgreSQL
# (issue: database engine). Run by hand, not in CI:
#   bash bench/database.sh [--duration 10] [--connections 32]
# Rewrites the "Database" section of docs/benchmarks.md. Needs wrk, `bao` (scripts/test-deps.sh) and
# PostgreSQL (scripts/pg.sh starts a private cluster, stopped at exit); builds the release server.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

source bench/prepare.sh
trap 'bash scripts/pg.sh stop' EXIT
set -a
eval "$(bash scripts/pg.sh start)"
set +a
"$root/target/test-venv/bin/python" bench/database.py \
    --tresor "$root/target/release/tresor" --bao "$root/target/test-venv/bin/bao" \
    --out "$root/docs/benchmarks.md" "$@"
