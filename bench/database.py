"""Database engine, Tresor vs OpenBao in one run; rewrites the marked section of docs/benchmarks.md.

Both servers in dev mode (one at a time) against the same PostgreSQL (scripts/pg.sh, TCP loopback,
SCRAM), the same config and role (CREATE ROLE ... VALID UNTIL, then GRANT of a group role that holds
SELECT on the table), `wrk` GETs of database/creds/readonly at 1 and C connections: every request
creates a PostgreSQL role. (Granting SELECT on the table to each user, as Vault's documented example
does, stops working after ~2,400 live users: the table's ACL no longer fits its pg_class row, "row is
too big"; membership rows have no such limit.) Each server gets a fresh database; its roles are
dropped afterwards.
"""
import datetime
import json
import os
import subprocess
import tempfile

from bench import api, free_port, side_by_side_args, start, stop, version, write_section, wrk

BEGIN = "<!-- database:begin -->"
END = "<!-- database:end -->"
PG = {k: os.environ[f"TRESOR_TEST_PG_{k}"] for k in ("HOST", "PORT", "USER", "PASSWORD", "BIN")}
CREATE = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
          "GRANT bench_readers TO \"{{name}}\";"]


def psql(db, sql):
    env = dict(os.environ, PGPASSWORD=PG["PASSWORD"])
    binary = os.path.join(PG["BIN"], "psql")
    out = subprocess.run([binary if os.path.exists(binary) else "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                          "-h", PG["HOST"], "-p", PG["PORT"], "-U", PG["USER"], "-d", db, "-c", sql],
                         check=True, capture_output=True, text=True, env=env)
    return out.stdout.strip()


def prepare(port, kind, db):
    mount = {"type": "database"}
    if kind == "tresor":
        mount["config"] = {"allowed_outbound_hosts": [f"{PG['HOST']}:{PG['PORT']}"]}
    api(port, "POST", "sys/mounts/database", mount)
    api(port, "POST", "database/config/pg", {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@{PG['HOST']}:{PG['PORT']}/{db}?sslmode=disable",
        "username": PG["USER"], "password": PG["PASSWORD"], "allowed_roles": ["readonly"]})
    api(port, "POST", "database/roles/readonly", {"db_name": "pg", "creation_statements": CREATE,
                                                  "default_ttl": "1h", "max_ttl": "24h"})
    api(port, "GET", "database/creds/readonly")


def cleanup(db):
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", "DO $$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%' "
                     "LOOP EXECUTE format('DROP ROLE %I', r.rolname); END LOOP; END $$")
    psql("postgres", "DROP ROLE IF EXISTS bench_readers")


def main():
    ap = side_by_side_args()
    a = ap.parse_args()
    servers = [("Tresor", "tresor", a.tresor), ("OpenBao", "bao", a.bao)]
    results = {}
    for name, kind, binary in servers:
        db = f"bench_{kind}"
        cleanup(db)
        psql("postgres", f"CREATE DATABASE {db}")
        psql(db, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one'); "
                 "CREATE ROLE bench_readers NOLOGIN; GRANT SELECT ON items TO bench_readers")
        with tempfile.TemporaryDirectory() as work:
            port = free_port()
            proc, _ = start(kind, binary, port, work)
            r = {"version": version(kind, binary)}
            prepare(port, kind, db)
            for conns in (1, a.connections):
                res = wrk(port, "/v1/database/creds/readonly", conns, a.duration, min(a.threads, conns), token="root")
                if res["non2xx"] or res["errors"]:
                    raise RuntimeError(f"{name} creds {conns}: {res}")
                r[conns] = res
                print(name, conns, json.dumps(res), flush=True)
            r["roles"] = int(psql("postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"))
            stop(proc)
            results[name] = r
        cleanup(db)

    c = a.connections
    pg_version = psql("postgres", "SHOW server_version")
    lines = [BEGIN, "## Database engine (side by side, `bash bench/database.sh`)", "",
             f"`GET database/creds/readonly` (each request creates a PostgreSQL role in one transaction:",
             f"`CREATE ROLE ... VALID UNTIL` + `GRANT bench_readers TO ...`), dev servers one at a time against the",
             f"same private PostgreSQL {pg_version} (TCP loopback, SCRAM, fsync off), `wrk -t{a.threads}`, {a.duration} s per row,",
             "on the same 2-core machine that also runs PostgreSQL. Both pools default to 4 connections.", "",
             "| conns | " + " | ".join(f"{n} ({results[n]['version']})" for n, _, _ in servers) + " | Tresor / OpenBao |",
             "|---|" + "---|" * len(servers) + "---|"]
    for conns in (1, c):
        t, o = results["Tresor"][conns], results["OpenBao"][conns]
        cells = [f"{x['rps']:.0f} creds/s, p50 {x['p50']:.2f} ms, p99 {x['p99']:.2f} ms" for x in (t, o)]
        lines.append(f"| {conns} | " + " | ".join(cells) + f" | {t['rps'] / max(o['rps'], 1e-9):.2f}x |")
    lines += ["",
              "Per-user `GRANT SELECT ON ALL TABLES` (Vault's documented example) fails after",
              "~2,400 live users with PostgreSQL's \"row is too big\" (the table's ACL outgrows its pg_class row; a",
              "PostgreSQL limit, measured with Tresor), hence a group role here; revocation is not measured.",
              f"Roles created in the run: Tresor {results['Tresor']['roles']}, OpenBao {results['OpenBao']['roles']}.",
              "", f"Run: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
              f"`bash bench/database.sh` (defaults: {a.duration} s per row, {c} connections).", END]
    write_section(a.out, BEGIN, END, lines)


if __name__ == "__main__":
    main()
