//! Build the hostile test plugins (tests/test-plugins) to wasm32-wasip2 once per test build and tell
//! the tests where they are (`TEST_PLUGINS_DIR`).

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let plugins = dir.join("test-plugins");
    for p in ["../build-support/wasm_build.rs", "test-plugins/hostile/src", "test-plugins/probe-auth/src", "test-plugins/probe-lease/src", "test-plugins/Cargo.toml", "test-plugins/.cargo/config.toml", "../sdk/plugin/src", "../wit/plugin"] {
        println!("cargo:rerun-if-changed={}", dir.join(p).display());
    }
    if let Err(e) = build_wasm_workspace(&plugins, &plugins.join("target")) {
        panic!("building the test plugins failed:\n{e}");
    }
    println!("cargo:rustc-env=TEST_PLUGINS_DIR={}", plugins.join("target/wasm32-wasip2/release").display());
}

include!("../build-support/wasm_build.rs");
