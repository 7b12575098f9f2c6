//! ACL evaluation against a token carrying 100 policies (target: < 5 µs per check), and the one-off
//! cost of compiling those policies (cached per policy set by the server).
//!
//! `cargo bench -p tresor-tests --bench acl`

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tresor_core::acl::Acl;
use tresor_core::policy::Policy;
use tresor_logical::{Map, Operation};

fn policies() -> Vec<Policy> {
    (0..100)
        .map(|i| {
            let text = format!(
                r#"
                path "secret/data/team{i}/*"        {{ capabilities = ["create", "read", "update"] }}
                path "secret/data/team{i}/+/config" {{ capabilities = ["read"] }}
                path "secret/metadata/team{i}/*"    {{ capabilities = ["list"] }}
                path "kv/app{i}/params" {{ capabilities = ["update"] allowed_parameters = {{ "env" = ["dev-*", "qa"], "ttl" = [] }} }}
                path "transit/encrypt/key{i}"       {{ capabilities = ["update"] }}
                path "db/creds/role{i}"             {{ capabilities = ["read"] }}
                "#
            );
            Policy::parse(&format!("p{i}"), &text).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let policies = policies();
    let acl = Acl::new(policies.iter());
    let empty = Map::new();
    let body: Map = json!({"env": "dev-eu", "ttl": "1h"}).as_object().unwrap().clone();
    assert!(acl.check("secret/data/team57/app/x", Operation::Read, &empty, None).allowed);
    assert!(acl.check("kv/app42/params", Operation::Update, &body, None).allowed);
    assert!(!acl.check("secret/data/other/x", Operation::Read, &empty, None).allowed);

    let mut g = c.benchmark_group("acl_100_policies");
    g.bench_function("glob_match", |b| b.iter(|| acl.check(std::hint::black_box("secret/data/team57/app/x"), Operation::Read, &empty, None)));
    g.bench_function("segment_wildcard_match", |b| b.iter(|| acl.check(std::hint::black_box("secret/data/team57/app/config"), Operation::Read, &empty, None)));
    g.bench_function("exact_with_parameters", |b| b.iter(|| acl.check(std::hint::black_box("kv/app42/params"), Operation::Update, &body, None)));
    g.bench_function("no_match_deny", |b| b.iter(|| acl.check(std::hint::black_box("secret/data/other/x"), Operation::Read, &empty, None)));
    g.bench_function("compile", |b| b.iter(|| Acl::new(policies.iter())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
