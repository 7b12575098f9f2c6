#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests and benchmarks: its own data directory, a free loopback
# port, password (SCRAM) authentication for the superuser `postgres`. Never touches a system cluster.
#
#   scripts/pg.sh start   # idempotent; prints the connection settings as KEY=VALUE lines
#   scripts/pg.sh env     # the same lines for a running cluster (exit 1 when none)
#   scripts/pg.sh stop    # stop it and delete its data
#
# The settings are also kept in target/pg.env (TRESOR_TEST_PG_HOST, _PORT, _USER, _PASSWORD).
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (created by
# the Debian package, which scripts/test-deps.sh installs when PostgreSQL is missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
envfile="$root/target/pg.env"
# World-traversable, unlike the repository may be, so the `postgres` user can reach it.
base="${TMPDIR:-/tmp}/tresor-pg-$(id -u)-$(printf '%s' "$root" | sha256sum | cut -c1-12)"

bindir() {
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return
    fi
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$d" ]; then
        echo "PostgreSQL is not installed: run scripts/test-deps.sh (apt-get install postgresql)" >&2
        exit 1
    fi
    echo "$d"
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$envfile" ] && [ -f "$base/data/postmaster.pid" ] && as_pg "$(bindir)/pg_ctl" -D "$base/data" status >/dev/null 2>&1
}

case "${1:-}" in
start)
    if running; then
        cat "$envfile"
        exit 0
    fi
    bin="$(bindir)"
    rm -rf "$base"
    mkdir -p "$base/sock" "$root/target"
    password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)"
    printf '%s\n' "$password" >"$base/pwfile"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$base"
    fi
    chmod 700 "$base"
    as_pg "$bin/initdb" -D "$base/data" -U postgres --pwfile="$base/pwfile" -A scram-sha-256 -E UTF8 --no-sync >"$base/initdb.log" 2>&1 \
        || { cat "$base/initdb.log" >&2; exit 1; }
    rm -f "$base/pwfile"
    as_pg "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$base/sock -c max_connections=300 -c fsync=off" start >/dev/null \
        || { cat "$base/server.log" >&2; exit 1; }
    cat >"$envfile" <<EOF
TRESOR_TEST_PG_HOST=127.0.0.1
TRESOR_TEST_PG_PORT=$port
TRESOR_TEST_PG_USER=postgres
TRESOR_TEST_PG_PASSWORD=$password
TRESOR_TEST_PG_BIN=$bin
EOF
    cat "$envfile"
    ;;
env)
    running && cat "$envfile"
    ;;
stop)
    if [ -f "$base/data/postmaster.pid" ]; then
        as_pg "$(bindir)/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$base" "$envfile"
    ;;
*)
    echo "usage: $0 start|env|stop" >&2
    exit 2
    ;;
esac
