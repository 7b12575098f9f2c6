"""Transit, Tresor vs OpenBao in one run; rewrites the marked section of docs/benchmarks.md.

Both servers in dev mode (in-memory storage, one at a time, same machine), wrk with a fixed POST body:
encrypt/decrypt of 128 B and 16 KiB with an aes256-gcm96 key, a batch of 100 × 128 B encryptions, and
ed25519 sign/verify of 128 B, at 1 and C connections. Every response must be 2xx.
"""
import base64
import datetime
import json
import os
import tempfile

from bench import api, free_port, side_by_side_args, start, stop, version, write_section, wrk

BEGIN = "<!-- transit:begin -->"
END = "<!-- transit:end -->"


def workloads(port):
    """(label, path, body) per workload, with ciphertexts/signatures made by this server."""
    api(port, "POST", "sys/mounts/transit", {"type": "transit"})
    api(port, "POST", "transit/keys/aes", {})
    api(port, "POST", "transit/keys/ed", {"type": "ed25519"})
    small = base64.b64encode(os.urandom(128)).decode()
    large = base64.b64encode(os.urandom(16 * 1024)).decode()
    ct_small = api(port, "POST", "transit/encrypt/aes", {"plaintext": small})["data"]["ciphertext"]
    ct_large = api(port, "POST", "transit/encrypt/aes", {"plaintext": large})["data"]["ciphertext"]
    sig = api(port, "POST", "transit/sign/ed", {"input": small})["data"]["signature"]
    batch = [{"plaintext": base64.b64encode(os.urandom(128)).decode()} for _ in range(100)]
    return [
        ("encrypt 128 B", "/v1/transit/encrypt/aes", {"plaintext": small}),
        ("decrypt 128 B", "/v1/transit/decrypt/aes", {"ciphertext": ct_small}),
        ("encrypt 16 KiB", "/v1/transit/encrypt/aes", {"plaintext": large}),
        ("decrypt 16 KiB", "/v1/transit/decrypt/aes", {"ciphertext": ct_large}),
        ("encrypt batch of 100 × 128 B", "/v1/transit/encrypt/aes", {"batch_input": batch}),
        ("ed25519 sign 128 B", "/v1/transit/sign/ed", {"input": small}),
        ("ed25519 verify 128 B", "/v1/transit/verify/ed", {"input": small, "signature": sig}),
    ]


def main():
    ap = side_by_side_args()
    a = ap.parse_args()
    servers = [("Tresor", "tresor", a.tresor), ("OpenBao", "bao", a.bao)]
    results, labels = {}, []
    for name, kind, binary in servers:
        with tempfile.TemporaryDirectory() as work:
            port = free_port()
            proc, _ = start(kind, binary, port, work)
            r = {"version": version(kind, binary)}
            labels = []
            for label, path, body in workloads(port):
                labels.append(label)
                script = os.path.join(work, "post.lua")
                with open(script, "w") as f:
                    f.write("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
                            f"wrk.body = {json.dumps(json.dumps(body))}\n")
                for conns in (1, a.connections):
                    res = wrk(port, path, conns, a.duration, min(a.threads, conns), token="root", script=script)
                    if res["non2xx"] or res["errors"]:
                        raise RuntimeError(f"{name} {label} {conns}: {res}")
                    r[(label, conns)] = res
                    print(name, label, conns, json.dumps(res), flush=True)
            stop(proc)
            results[name] = r

    c = a.connections
    lines = [BEGIN, "## Transit (side by side, `bash bench/transit.sh`)", "",
             f"Dev mode on both (in-memory storage), `wrk -t{a.threads}` on the same 2-core machine, {a.duration} s per row;",
             "aes256-gcm96 and ed25519 keys; bodies are base64 as the API requires. Tresor runs every request in a",
             "fresh sandboxed wasm instance that reads the key from the encrypted barrier.", "",
             "| workload | conns | " + " | ".join(f"{n} ({results[n]['version']})" for n, _, _ in servers) + " | Tresor / OpenBao |",
             "|---|---|" + "---|" * len(servers) + "---|"]
    for label in labels:
        for conns in (1, c):
            t, o = results["Tresor"][(label, conns)], results["OpenBao"][(label, conns)]
            cells = [f"{x['rps']:.0f} req/s, p99 {x['p99']:.2f} ms" for x in (t, o)]
            lines.append(f"| {label} | {conns} | " + " | ".join(cells) + f" | {t['rps'] / max(o['rps'], 1e-9):.1f}x |")
    lines += ["",
              "AES-GCM, ChaCha20-Poly1305 and Ed25519 run natively in the host (`tresor:plugin/crypto`, hardware",
              "AES; Ed25519 public keys derived once and kept); the plugin keeps the keys, formats and policy. With",
              "the same crates compiled into the wasm plugin instead (software AES, 32-bit field arithmetic) this",
              "table read 0.6x for 16 KiB and 0.9-1.2x for ed25519. A batch's items are read from the request's",
              "JSON text straight into typed items that borrow their strings, and the results written without a",
              "`serde_json::Value` per item (`plugins/secrets-transit/src/batch.rs`); base64 inside wasm is SIMD",
              "(`base64-simd`, wasm simd128). Before that (2026-11-24 07:12 run) the batch rows read 1.1x / 1.5x",
              "and the 16 KiB rows 1.8-2.9x: the items were parsed and serialised three times inside wasm and",
              "serde_json, base64 and allocation took ~45% of the server's CPU. The plugin's response data then",
              "reaches the client as the text it wrote, checked as JSON but parsed only for audit or wrapping",
              "(+10% on the batch row, +4% on encrypt 128 B); the host still parses the request body.",
              "At 1 connection every row is bounded by the request round",
              "trip: a bare hyper server answering a fixed body (`bench/floor`: `cargo run --release",
              "--manifest-path bench/floor/Cargo.toml`, then `wrk -t1 -c1 -d5s http://127.0.0.1:18999/`) does",
              "16.4-17.9k req/s at one connection on this machine, and Tresor's `sys/health` 15.7-17.6k in the",
              "same minutes (2026-11-24 05:05 UTC, three alternating 5 s runs each). Twice OpenBao's 1-connection",
              "encrypt rate (~8k) is ~16k req/s, 62 us a request, 5-10 us above the round trip itself: 2x at one",
              "connection leaves a server 5-10 us for token, policy, key lookup and crypto (the 16 KiB rows, where",
              "the work dominates, do reach it).",
              "The floor server now reads the request body as an API server must: a POST of a 200-byte JSON body",
              "gets 18.5-22.3k req/s, a GET 18.2-18.6k (2026-11-24 11:27 UTC, alternating 5 s runs; Tresor's",
              "encrypt 128 B 11.0-12.6k in the same minutes). Per request at one connection (11:56 UTC, 4 s each):",
              "`GET sys/health` 54-61 us, KV v2 read 73 us, Transit `random` 75-80 us, `hash` 77 us, encrypt 84-106",
              "us: a plugin request costs a mostly fixed 15-20 us over the floor (token, ACL, a fresh instance,",
              "JSON), and perf puts 60% of the server's samples at one connection in the kernel (scheduling,",
              "loopback TCP), where the 32-connection profile has ~28%. Much of that is waking an idle vCPU: this",
              "guest's halt polling is off (kernel command line `haltpoll.guest_halt_poll_ns=0`), so a vCPU with",
              "nothing to run halts (a VM exit) and is woken by an IPI. With two `nice -n 19` busy loops keeping",
              "both vCPUs from halting (12:37 UTC, 4 s runs, two each), Tresor's 1-connection `sys/health` went",
              "from 17.7-18.7k to 27.6-41.8k req/s and encrypt 128 B from 11.2-11.3k to 14.7-15.3k, while",
              "OpenBao's encrypt stayed at 6.6-7.2k (7.1-7.7k without): 2.1-2.3x in that setting. A server could",
              "spin before sleeping to get this; it would burn CPU the platform chose not to spend, so Tresor does not.",
              "Ed25519 verify at 32 connections is bound by the curve arithmetic (perf: ~35% of the server's CPU in",
              "curve25519-dalek's AVX2 code, ~28% kernel networking); it follows Go's `crypto/ed25519` as OpenBao",
              "does (no decompression of R, no small-order checks), which also took ~8% off its cost.",
              "OpenBao's own rates move 10-30% between runs on this machine (verify 11.5k-14.7k, batch 2.8k-4.0k",
              "req/s at 32 connections on 2026-11-24), so rows near 2x land on either side of it.",
              "Where a 1-connection request's time goes (2026-11-24 20:00 UTC, `perf stat -e task-clock,context-switches,raw_syscalls:sys_enter`",
              "on the server during `wrk -t1 -c1 -d3s`, release build): server CPU per request 20 us for `sys/health`, 44-49 us for a",
              "KV v2 or Transit key read, 66-84 us for encrypt 128 B. A POST costs 1.45 extra context switches per request (hyper",
              "wakes the connection task from inside its own poll when the body arrives and tokio then wakes a sibling worker),",
              "but a 1-worker multi-thread runtime and a current-thread runtime gave the same 1-connection encrypt rate as the",
              "default (10.1-11.7k req/s in three alternating runs each), so that wake is not the bound. Ed25519 on this CPU",
              "(ed25519-dalek 2.2, a loop of 20,000): sign 12.0 us, verify 24.5 us. OpenBao's 1-connection verify (6.3k req/s)",
              "is 159 us a request, so 2x is 79 us, and the POST round trip of a bare hyper server alone is 45-54 us here:",
              "with 24.5 us of verification that leaves nothing for token, ACL, key read, JSON and the sandbox. The",
              "1-connection ed25519 rows cannot reach 2x on this machine; sign (2x = 73 us) neither.",
              "", f"Run: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
              f"`bash bench/transit.sh` (defaults: {a.duration} s per row, {c} connections).", END]
    write_section(a.out, BEGIN, END, lines)


if __name__ == "__main__":
    main()
