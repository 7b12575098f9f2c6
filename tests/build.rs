//! Build the hostile test plugins (tests/test-plugins) to wasm32-wasip2 once per test build and tell
//! the tests where they are (`TEST_PLUGINS_DIR`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let plugins = dir.join("test-plugins");
    for p in ["test-plugins/hostile/src", "test-plugins/Cargo.toml", "test-plugins/.cargo/config.toml", "../sdk/plugin/src", "../wit/plugin"] {
        println!("cargo:rerun-if-changed={}", dir.join(p).display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Run from the plugins' directory so their .cargo/config.toml (guest stack size) applies.
    cmd.current_dir(&plugins);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(plugins.join("target"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" || key == "RUSTC_WRAPPER" {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("building test plugins: {e}"));
    assert!(status.success(), "building the test plugins failed (is the wasm32-wasip2 target installed? scripts/test-deps.sh adds it)");
    println!("cargo:rustc-env=TEST_PLUGINS_DIR={}", plugins.join("target/wasm32-wasip2/release").display());
}
