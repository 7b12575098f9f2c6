//! SQLite durability and confidentiality: an acknowledged write survives `kill -9`; the database file
//! never holds a plaintext value; a clean SIGTERM exits 0. And the process runs without transparent
//! huge pages (their first-touch zeroing stalled requests for milliseconds).

use serde_json::json;
use tresor_tests::TestServer;

/// Every file of the database (main, WAL, shared memory) concatenated.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", server.db_path().display());
        if let Ok(bytes) = std::fs::read(&path) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_acknowledged_write_survives_kill_9_and_is_never_stored_in_plaintext() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(3, 2);
    server.unseal(&keys[..2]);
    let secret = "correct-horse-battery-staple-7f3a9c";
    let status = server.http(&root).put("cubbyhole/db", json!({ "password": secret })).0;
    assert_eq!(status, 204);
    // No pause, no shutdown: the 204 must mean durable.
    server.kill9();

    let bytes = database_bytes(&server);
    assert!(!bytes.is_empty());
    assert!(!contains(&bytes, secret.as_bytes()), "plaintext value found in the SQLite files");
    assert!(!contains(&bytes, root.as_bytes()), "root token found in the SQLite files");
    assert!(contains(&bytes, b"cubbyhole"), "sanity: the scan sees the stored paths");

    server.start();
    let (status, _) = server.http(&root).get("cubbyhole/db");
    assert_eq!(status, 503, "restarted sealed");
    server.unseal(&keys[1..3]);
    let (status, body) = server.http(&root).get("cubbyhole/db");
    assert_eq!(status, 200);
    assert_eq!(body["data"]["password"], secret);
}

#[test]
fn sigterm_shuts_down_cleanly_and_data_persists() {
    let mut server = TestServer::sqlite();
    let (keys, root) = server.init(1, 1);
    server.unseal(&keys);
    server.http(&root).put("cubbyhole/x", json!({"v": "1"}));
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    server.start();
    server.unseal(&keys);
    assert_eq!(server.http(&root).get("cubbyhole/x").1["data"]["v"], "1");
}

#[test]
fn dev_mode_on_sqlite_keeps_data_and_unseals_itself_after_restart() {
    let mut server = TestServer::dev_db();
    let token = server.root_token.clone();
    assert_eq!(
        std::fs::read_to_string(server.dir.path().join(".vault-token")).unwrap(),
        token,
        "dev mode authenticates the CLI through the token helper file"
    );
    server.root().put("cubbyhole/keep", json!({"v": "kept"}));
    assert!(server.terminate().success());
    server.start();
    assert_eq!(server.root_token, token, "same root token after restart");
    assert_eq!(server.root().get("cubbyhole/keep").1["data"]["v"], "kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in [server.db_path(), server.dir.path().join("tresor.dev-keys")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let server = TestServer::dev();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("THP_enabled:")).expect("the kernel reports THP_enabled (Linux 5.0+)");
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    // Still a working server.
    assert_eq!(server.root().get("sys/health").0, 200);
}
