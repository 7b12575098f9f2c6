// Shared by host/server/build.rs, tests/build.rs and tests/tests/third_party.rs through `include!`:
// build a cargo workspace of Tresor plugins for wasm32-wasip2, exactly as a plugin author would.

/// Build the workspace whose manifest is in `dir` (release, wasm32-wasip2) into `target_dir`.
///
/// Runs from `dir`, so that workspace's `.cargo/config.toml` (the guest stack size) applies. The
/// calling cargo's environment is removed (profile flags, target dir, host rustflags) so the nested
/// build is the same as one started by hand; it uses its own target directory, so it never waits on
/// the outer build's lock. The wasm target is added with rustup if it is missing. On failure the
/// error carries cargo's stderr.
fn build_wasm_workspace(dir: &std::path::Path, target_dir: &std::path::Path) -> Result<(), String> {
    use std::process::Command;
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if !sysroot.is_some_and(|s| std::path::Path::new(&s).join("lib/rustlib/wasm32-wasip2").exists()) {
        let added = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
        if !added.is_ok_and(|s| s.success()) {
            return Err("the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed".into());
        }
    }
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" || key == "RUSTC_WRAPPER" {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.output().map_err(|e| format!("running cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
