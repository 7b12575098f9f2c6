//! Hot path of the plugin runtime: what one request to a plugin mount costs on top of the work it does.
//! Run: `cargo bench -p tresor-tests --bench plugin_call` (numbers go to docs/benchmarks.md).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tresor_barrier::physical::InmemBackend;
use tresor_barrier::{Barrier, BarrierView};
use tresor_logical::{LogicalBackend, Operation, Request, Storage};
use tresor_runtime::{MountContext, Runtime, RuntimeConfig, WasmBackend};

fn setup(rt: &tokio::runtime::Runtime, wasm: &[u8], options: serde_json::Value) -> (WasmBackend, Arc<dyn Storage>) {
    rt.block_on(async {
        let barrier = Arc::new(Barrier::new(Arc::new(InmemBackend::new())));
        barrier.initialize(&[7u8; 32]).await.unwrap();
        barrier.unseal(&[7u8; 32]).await.unwrap();
        let barrier: Arc<dyn Storage> = barrier;
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let plugin = runtime.load(wasm, None).unwrap();
        let view: Arc<dyn Storage> = Arc::new(BarrierView::new(barrier.clone(), "logical/bench/"));
        let backend = WasmBackend::new(runtime, plugin, view.clone(), MountContext::new("b/", "bench", options)).await.unwrap();
        (backend, view)
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let hostile = std::fs::read(format!("{}/hostile.wasm", env!("TEST_PLUGINS_DIR"))).unwrap();
    let (backend, view) = setup(&rt, &hostile, json!({}));

    let mut g = c.benchmark_group("plugin");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("empty request: match + fresh instance + call + drop", |b| {
        b.iter(|| rt.block_on(backend.handle(Request::new(Operation::Read, "ok"))).unwrap())
    });
    let put = Request::new(Operation::Update, "storage/put").with_data(json!({"key": "k", "value": "v"}).as_object().cloned().unwrap());
    rt.block_on(backend.handle(put)).unwrap();
    let get = Request::new(Operation::Read, "storage/get").with_data(json!({"key": "k"}).as_object().cloned().unwrap());
    g.bench_function("request with one encrypted storage get", |b| b.iter(|| rt.block_on(backend.handle(get.clone())).unwrap()));
    g.bench_function("native baseline: the same encrypted get without a plugin", |b| {
        b.iter(|| rt.block_on(view.get("k")).unwrap())
    });

    let kv_wasm = tresor_tests::workspace_root().join("plugins/target/wasm32-wasip2/release/secrets_kv.wasm");
    if let Ok(kv) = std::fs::read(&kv_wasm) {
        let (kv, _) = setup(&rt, &kv, json!({"version": "2"}));
        let write = Request::new(Operation::Update, "data/app/db")
            .with_data(json!({"data": {"user": "alice", "password": "s3cret"}}).as_object().cloned().unwrap());
        rt.block_on(kv.handle(write.clone())).unwrap();
        g.bench_function("kv v2 read (built-in plugin)", |b| {
            b.iter(|| rt.block_on(kv.handle(Request::new(Operation::Read, "data/app/db"))).unwrap())
        });
        g.bench_function("kv v2 write (built-in plugin, inmem)", |b| b.iter(|| rt.block_on(kv.handle(write.clone())).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
