//! Sandbox boundaries, one negative test each, driven through the runtime with a hostile component
//! (tests/test-plugins/hostile, built by tests/build.rs) over a real encrypted barrier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tresor_barrier::physical::InmemBackend;
use tresor_barrier::{Barrier, BarrierView};
use tresor_logical::{Error, LogicalBackend, Operation, Request, Storage};
use tresor_runtime::{MountContext, Runtime, RuntimeConfig, WasmBackend};

fn hostile_bytes() -> Vec<u8> {
    std::fs::read(format!("{}/hostile.wasm", env!("TEST_PLUGINS_DIR"))).unwrap()
}

struct Fixture {
    runtime: Arc<Runtime>,
    barrier: Arc<dyn Storage>,
}

async fn fixture() -> Fixture {
    let barrier = Arc::new(Barrier::new(Arc::new(InmemBackend::new())));
    barrier.initialize(&[7u8; 32]).await.unwrap();
    barrier.unseal(&[7u8; 32]).await.unwrap();
    Fixture { runtime: Runtime::new(RuntimeConfig::default()).unwrap(), barrier }
}

impl Fixture {
    async fn mount(&self, path: &str, uuid: &str, cpu: Duration) -> WasmBackend {
        self.mount_with_memory(path, uuid, cpu, 64 << 20).await
    }

    async fn mount_with_memory(&self, path: &str, uuid: &str, cpu: Duration, memory: usize) -> WasmBackend {
        let plugin = self.runtime.load(&hostile_bytes(), None).unwrap();
        let storage: Arc<dyn Storage> = Arc::new(BarrierView::new(self.barrier.clone(), format!("logical/{uuid}/")));
        let mut ctx = MountContext::new(path, "hostile", json!({}));
        ctx.cpu_budget = cpu;
        ctx.max_memory = memory;
        WasmBackend::new(self.runtime.clone(), plugin, storage, ctx).await.unwrap()
    }
}

async fn call(b: &WasmBackend, op: Operation, path: &str, data: Value) -> Result<Value, Error> {
    let req = Request::new(op, path).with_data(data.as_object().cloned().unwrap_or_default());
    b.handle(req).await.map(|r| {
        r.and_then(|mut r| {
            r.materialize().unwrap();
            r.data
        })
        .map(Value::Object)
        .unwrap_or(Value::Null)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_its_deadline_and_the_mount_keeps_working() {
    let f = fixture().await;
    let b = f.mount("spin/", "u-spin", Duration::from_millis(200)).await;
    let started = Instant::now();
    let err = call(&b, Operation::Read, "spin", json!({})).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Internal(ref m) if m.contains("CPU deadline exceeded")), "{err:?}");
    assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(3), "stopped after {took:?}");
    assert_eq!(call(&b, Operation::Read, "ok", json!({})).await.unwrap()["ok"], true, "next request succeeds");
}

#[tokio::test]
async fn a_1_gib_allocation_is_refused_under_the_memory_cap() {
    let f = fixture().await;
    let b = f.mount("mem/", "u-mem", Duration::from_secs(5)).await;
    let err = call(&b, Operation::Read, "alloc", json!({"mib": 1024})).await.unwrap_err();
    assert!(matches!(err, Error::Internal(ref m) if m.contains("memory limit exceeded")), "{err:?}");
    // Within the cap the same code works: the limit, not the code, refused it.
    assert_eq!(call(&b, Operation::Read, "alloc", json!({"mib": 8})).await.unwrap()["len"], 8 << 20);
}

#[tokio::test]
async fn a_trap_fails_only_that_request() {
    let f = fixture().await;
    let b = f.mount("trap/", "u-trap", Duration::from_secs(5)).await;
    let err = call(&b, Operation::Read, "trap", json!({})).await.unwrap_err();
    assert!(matches!(err, Error::Internal(ref m) if m.contains("plugin trapped")), "{err:?}");
    assert_eq!(call(&b, Operation::Read, "ok", json!({})).await.unwrap()["ok"], true);
}

#[tokio::test]
async fn an_oversized_response_is_rejected() {
    let f = fixture().await;
    // Enough memory to build the 20 MiB body, so the host's response bound is what stops it.
    let b = f.mount_with_memory("huge/", "u-huge", Duration::from_secs(5), 256 << 20).await;
    let err = call(&b, Operation::Read, "huge", json!({})).await.unwrap_err();
    assert!(matches!(err, Error::Internal(ref m) if m.contains("larger than")), "{err:?}");
}

#[tokio::test]
async fn a_plugin_cannot_reach_another_mounts_storage() {
    let f = fixture().await;
    let a = f.mount("a/", "uuid-a", Duration::from_secs(5)).await;
    let b = f.mount("b/", "uuid-b", Duration::from_secs(5)).await;
    let w = call(&a, Operation::Update, "storage/put", json!({"key": "secret", "value": "only-for-a"})).await.unwrap();
    assert_eq!(w["written"], true);
    assert_eq!(call(&a, Operation::Read, "storage/get", json!({"key": "secret"})).await.unwrap()["value"], "only-for-a");

    // Every key b can form stays inside b's view.
    assert_eq!(call(&b, Operation::Read, "storage/get", json!({"key": "secret"})).await.unwrap()["value"], Value::Null);
    for key in ["../uuid-a/secret", "/logical/uuid-a/secret", "a/../../uuid-a/secret", "./secret", "..", "x\u{0}y"] {
        let r = call(&b, Operation::Read, "storage/get", json!({ "key": key })).await.unwrap();
        assert!(r["error"].as_str().is_some_and(|e| e.contains("invalid storage key")), "{key:?} → {r}");
        let r = call(&b, Operation::Update, "storage/put", json!({"key": key, "value": "x"})).await.unwrap();
        assert!(r["error"].is_string(), "write to {key:?} refused → {r}");
    }
    // Keys that merely look like other views' paths are b's own keys.
    call(&b, Operation::Update, "storage/put", json!({"key": "logical/uuid-a/secret", "value": "b-own"})).await.unwrap();
    assert_eq!(call(&a, Operation::Read, "storage/get", json!({"key": "secret"})).await.unwrap()["value"], "only-for-a");
    let listed = call(&b, Operation::Read, "storage/list", json!({"prefix": ""})).await.unwrap();
    assert_eq!(listed["keys"], json!(["logical/"]), "b lists only its own keys");
    // And in the barrier, b's data sits under b's prefix.
    assert!(f.barrier.get("logical/uuid-b/logical/uuid-a/secret").await.unwrap().is_some());
}

#[tokio::test]
async fn a_wrong_sha256_is_refused_before_anything_runs() {
    let f = fixture().await;
    let bytes = hostile_bytes();
    let good = tresor_runtime::sha256_hex(&bytes);
    assert!(f.runtime.load(&bytes, Some(&good)).is_ok());
    let wrong = "0".repeat(64);
    let err = f.runtime.load(&bytes, Some(&wrong)).unwrap_err();
    assert!(matches!(err, tresor_runtime::Error::ChecksumMismatch { .. }), "{err}");
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(f.runtime.load(&tampered, Some(&good)), Err(tresor_runtime::Error::ChecksumMismatch { .. })));
}

#[tokio::test]
async fn undeclared_paths_and_bad_fields_never_reach_the_guest() {
    let f = fixture().await;
    let b = f.mount("v/", "uuid-v", Duration::from_secs(5)).await;
    assert!(matches!(call(&b, Operation::Read, "nope", json!({})).await, Err(Error::UnsupportedPath)));
    assert!(matches!(call(&b, Operation::Delete, "ok", json!({})).await, Err(Error::UnsupportedOperation)));
    let err = call(&b, Operation::Read, "alloc", json!({"mib": "lots"})).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(ref m) if m.contains("\"mib\"")), "{err:?}");
}

#[tokio::test]
async fn a_request_that_traps_after_writing_leaves_no_partial_write() {
    let f = fixture().await;
    let b = f.mount("atomic/", "uuid-atomic", Duration::from_secs(5)).await;
    let err = call(&b, Operation::Update, "write-then-trap", json!({"key": "half"})).await.unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    assert_eq!(call(&b, Operation::Read, "storage/get", json!({"key": "half"})).await.unwrap()["value"], Value::Null);
    assert!(f.barrier.get("logical/uuid-atomic/half").await.unwrap().is_none());
    // A successful request's writes land, and a request sees its own staged writes in `list`.
    call(&b, Operation::Update, "storage/put", json!({"key": "dir/x", "value": "1"})).await.unwrap();
    assert_eq!(call(&b, Operation::Read, "storage/list", json!({"prefix": "dir/"})).await.unwrap()["keys"], json!(["x"]));
}

/// The CPU deadline and memory cap are per mount: set at enable (as `config` or, through the real
/// `bao` CLI, as mount options), changed by tune, shown in the mount's config, bounded, and applied
/// by the real server to the hostile plugin registered in its catalog.
#[test]
fn limits_are_configurable_per_mount_through_the_api() {
    use tresor_tests::{TestServer, bao};
    let work = tempfile::tempdir().unwrap();
    let plugin_dir = work.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let bytes = hostile_bytes();
    std::fs::write(plugin_dir.join("hostile.wasm"), &bytes).unwrap();
    let mut server = TestServer::sqlite_with_plugins(&plugin_dir);
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    let c = server.http(&root);
    let sha = tresor_runtime::sha256_hex(&bytes);
    assert_eq!(
        c.put(
            "sys/plugins/catalog/secret/hostile",
            json!({"sha256": sha, "command": "hostile.wasm"})
        )
        .0,
        204
    );

    // Memory: 100 MiB is over the 64 MiB default and within a 256 MiB cap.
    assert_eq!(c.put("sys/mounts/small", json!({"type": "hostile"})).0, 204);
    let out = bao(
        &server,
        &root,
        &[
            "secrets",
            "enable",
            "-path=big",
            "-options=plugin_memory_limit=256MiB",
            "hostile",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, b) = c.get("small/alloc?mib=100");
    assert_eq!(s, 500, "{b}");
    let (s, b) = c.get("big/alloc?mib=100");
    assert_eq!((s, &b["data"]["len"]), (200, &json!(100 << 20)), "{b}");
    let (_, mounts) = c.get("sys/mounts");
    assert_eq!(
        mounts["data"]["big/"]["config"]["plugin_memory_limit"],
        256 << 20,
        "{mounts}"
    );
    assert!(
        mounts["data"]["big/"]["options"]
            .get("plugin_memory_limit")
            .is_none(),
        "the option is lifted out: {mounts}"
    );
    assert!(
        mounts["data"]["small/"]["config"]
            .get("plugin_memory_limit")
            .is_none()
    );
    // Tuned down, the same request is refused; the tune read shows it.
    assert_eq!(
        c.put(
            "sys/mounts/big/tune",
            json!({"plugin_memory_limit": "32MiB"})
        )
        .0,
        204
    );
    assert_eq!(
        c.get("sys/mounts/big/tune").1["data"]["plugin_memory_limit"],
        32 << 20
    );
    assert_eq!(c.get("big/alloc?mib=100").0, 500);

    // CPU: a 1 s deadline stops the loop in about a second; tuned to 3 s it runs about three.
    assert_eq!(
        c.put(
            "sys/mounts/spin",
            json!({"type": "hostile", "config": {"plugin_cpu_deadline": "1s"}})
        )
        .0,
        204
    );
    let timed = |path: &str| {
        let start = Instant::now();
        let (s, b) = c.get(path);
        assert_eq!(s, 500, "{b}");
        assert!(!b.to_string().contains("panicked"), "{b}");
        start.elapsed()
    };
    let t = timed("spin/spin");
    assert!(
        t >= Duration::from_millis(900) && t < Duration::from_millis(2500),
        "{t:?}"
    );
    assert_eq!(
        c.put("sys/mounts/spin/tune", json!({"plugin_cpu_deadline": 3}))
            .0,
        204
    );
    let t = timed("spin/spin");
    assert!(
        t >= Duration::from_millis(2900) && t < Duration::from_millis(4900),
        "{t:?}"
    );
    assert_eq!(c.get("spin/ok").0, 200, "the mount keeps working");

    // Out of bounds or malformed: 400, nothing changes.
    for bad in [
        json!({"plugin_cpu_deadline": "2h"}),
        json!({"plugin_memory_limit": "4GiB"}),
        json!({"plugin_memory_limit": "lots"}),
        json!({"plugin_memory_limit": 1024}),
    ] {
        let (s, b) = c.put("sys/mounts/spin/tune", bad.clone());
        assert_eq!(s, 400, "{bad}: {b}");
        assert!(b["errors"][0].as_str().unwrap().contains("plugin_"), "{b}");
    }
    assert_eq!(
        c.get("sys/mounts/spin/tune").1["data"]["plugin_cpu_deadline"],
        3
    );
    let (s, _) = c.put(
        "sys/mounts/nope",
        json!({"type": "hostile", "config": {"plugin_memory_limit": "1GiB"}}),
    );
    assert_eq!(s, 400);
    assert!(c.get("sys/mounts").1["data"].get("nope/").is_none());

    // Kept across a restart (the mount table is persisted).
    server.terminate();
    server.start();
    server.unseal(&keys);
    let c = server.http(&root);
    assert_eq!(
        c.get("sys/mounts/spin/tune").1["data"]["plugin_cpu_deadline"],
        3
    );
    assert_eq!(c.get("small/alloc?mib=100").0, 500);
    assert_eq!(
        c.put(
            "sys/mounts/small/tune",
            json!({"plugin_memory_limit": 128 << 20})
        )
        .0,
        204
    );
    assert_eq!(c.get("small/alloc?mib=100").1["data"]["len"], 100 << 20);
}
