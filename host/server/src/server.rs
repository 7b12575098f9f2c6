//! `tresor server`: build the storage, the core and the listeners, print the banner, serve until
//! SIGTERM/SIGINT, then drain connections and seal.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tresor_barrier::physical::{Backend, CachedBackend, InmemBackend, SqliteBackend, DEFAULT_CACHE_ENTRIES};
use tresor_core::{Core, CoreConfig, InitParams};
use tresor_http::{Api, ApiConfig};

use crate::config::{Config, Listener, Storage};
use crate::flags::Flags;

const DEV_ADDRESS: &str = "127.0.0.1:8200";

/// Entry point of `tresor server`.
pub fn run(argv: &[String]) -> Result<ExitCode> {
    let flags = Flags::parse(
        argv,
        &["dev", "dev-no-store-token"],
        &["config", "dev-root-token-id", "dev-listen-address", "dev-db", "dev-plugin-dir", "log-level"],
    )?;
    if !flags.args.is_empty() {
        bail!("unexpected arguments: {:?}", flags.args);
    }
    let dev = flags.is_set("dev");
    let config = match (dev, flags.get("config")) {
        (true, _) => Config {
            storage: match flags.get("dev-db") {
                Some(path) => Storage::Sqlite { path: path.into() },
                None => Storage::Inmem,
            },
            listeners: vec![Listener {
                address: flags.get("dev-listen-address").unwrap_or(DEV_ADDRESS).to_string(),
                tls_disable: true,
                tls_cert_file: None,
                tls_key_file: None,
                max_request_size: tresor_http::DEFAULT_MAX_REQUEST_SIZE,
            }],
            api_addr: None,
            ui: false,
            log_level: None,
            plugin_directory: flags.get("dev-plugin-dir").map(Into::into),
            default_lease_ttl: None,
            max_lease_ttl: None,
            audit: Vec::new(),
            plugin_periodic_interval: None,
        },
        (false, Some(path)) => Config::load(Path::new(path))?,
        (false, None) => bail!("a configuration file must be specified with -config, or use -dev"),
    };
    let level = flags.get("log-level").map(str::to_owned).or_else(|| config.log_level.clone());
    let logging = crate::logging::Logging::init(level.as_deref()).map(std::sync::Arc::new);
    disable_transparent_huge_pages();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tresor")
        .build()
        .context("starting the async runtime")?;
    let dev = dev.then(|| DevOptions {
        root_token_id: flags.get("dev-root-token-id").map(str::to_owned),
        store_token: !flags.is_set("dev-no-store-token"),
    });
    runtime.block_on(serve(config, dev, logging))?;
    Ok(ExitCode::SUCCESS)
}


/// Turn transparent huge pages off for this process, as Redis advises for latency. The
/// allocator (mimalloc) asks for huge pages on its arenas, so memory growth came in 2 MiB steps, each
/// zeroed at its first touch while the faulting request (and whatever waited on its locks) stalled:
/// measured on a VM, token creation (which grows the in-memory store) stalled every ~125 ms for
/// ~5 ms (p99 4.5-6.9 ms at 2 and 32 connections; without huge pages 0.08-1.1 ms), and an idle
/// server's RSS fell from ~80 to ~47 MiB. Throughput was unchanged within noise (docs/benchmarks.md).
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "transparent huge pages left as the system sets them");
    }
}

/// Dev-mode switches.
struct DevOptions {
    root_token_id: Option<String>,
    /// Write the root token to `~/.vault-token`, as Vault's dev mode does.
    store_token: bool,
}

async fn serve(config: Config, dev: Option<DevOptions>, logging: Option<std::sync::Arc<crate::logging::Logging>>) -> Result<()> {
    let (physical, sqlite): (Arc<dyn Backend>, Option<Arc<SqliteBackend>>) = match &config.storage {
        Storage::Inmem => (Arc::new(InmemBackend::new()), None),
        Storage::Sqlite { path } => {
            let backend = Arc::new(
                SqliteBackend::open(path).await.with_context(|| format!("opening SQLite storage at {}", path.display()))?,
            );
            // Reads of ciphertext are served from memory after the first; writes go to disk first.
            let cached: Arc<dyn Backend> = Arc::new(CachedBackend::new(backend.clone(), DEFAULT_CACHE_ENTRIES));
            (cached, Some(backend))
        }
    };

    // Bind first: with port 0 the real address is only known now, and it is what api_addr defaults to.
    let mut bound = Vec::new();
    for listener in &config.listeners {
        let tcp = TcpListener::bind(&listener.address).await.with_context(|| format!("binding {}", listener.address))?;
        let local = tcp.local_addr()?;
        let tls = match listener.tls_disable {
            true => None,
            false => Some(tls_acceptor(listener)?),
        };
        bound.push((listener.clone(), tcp, local, tls));
    }
    let first = bound.first().ok_or_else(|| anyhow!("no listener"))?;
    let scheme = if first.3.is_some() { "https" } else { "http" };
    let api_addr = config.api_addr.clone().unwrap_or_else(|| format!("{scheme}://{}", first.2));

    let mut defaults = CoreConfig::default();
    if let Some(t) = config.default_lease_ttl.filter(|t| *t > 0) {
        defaults.default_lease_ttl = t;
    }
    if let Some(t) = config.max_lease_ttl.filter(|t| *t > 0) {
        defaults.max_lease_ttl = t;
    }
    if let Some(secs) = config.plugin_periodic_interval.filter(|s| *s > 0) {
        defaults.periodic_interval = std::time::Duration::from_secs(secs);
    }
    if defaults.default_lease_ttl > defaults.max_lease_ttl {
        bail!("default_lease_ttl cannot be greater than max_lease_ttl");
    }
    let factory = crate::plugins::PluginFactory::new(
        crate::plugins::default_cache_dir(),
        config.plugin_directory.clone(),
        defaults.default_lease_ttl,
        defaults.max_lease_ttl,
    )?;
    let core = Core::new(physical, CoreConfig {
            api_addr: api_addr.clone(),
            backend_factory: Some(factory),
            audit_devices: config.audit.clone(),
            log_levels: logging.map(|l| l as std::sync::Arc<dyn tresor_core::LogLevels>),
            ..defaults
        })
        .await
        .map_err(|e| anyhow!("starting the core: {e}"))?;

    let mut banner = String::new();
    if let Some(dev) = dev {
        let (key, token) = dev_start(&core, &config, dev.root_token_id).await?;
        if dev.store_token {
            store_dev_token(&token);
        }
        banner.push_str(&dev_banner(&api_addr, &key, &token));
    }
    print_banner(&config, &bound.iter().map(|b| (b.2, b.3.is_some())).collect::<Vec<_>>(), &api_addr, &banner);

    let lanes = match tresor_http::Lanes::start() {
        Ok(lanes) => {
            tracing::debug!(lanes = lanes.len(), "connection lanes started");
            Some(lanes)
        }
        Err(e) => {
            tracing::info!(error = %e, "serving connections on the shared runtime");
            None
        }
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for (listener, tcp, _, tls) in bound {
        let lanes = lanes.clone();
        let api = Api::new(core.clone(), ApiConfig { max_request_size: listener.max_request_size });
        let mut rx = rx.clone();
        tasks.spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            tresor_http::serve(tcp, tls, api, lanes, stop).await
        });
    }
    spawn_sighup_handler(core.clone());
    shutdown_signal().await;
    tracing::info!("shutdown requested; draining connections");
    let _ = tx.send(true);
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Err(e)) => tracing::error!(error = %e, "listener failed"),
            Err(e) => tracing::error!(error = %e, "listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    // Connections are drained: end the lanes (and the tasks requests left on them) before sealing.
    drop(lanes);
    core.seal().await;
    if let Some(sqlite) = sqlite {
        sqlite.close().await;
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// Initialise (or, for a persistent `-dev-db`, re-open) the dev server; returns (unseal key, root token).
///
/// With `-dev-db` the single unseal key and the root token are kept beside the database in
/// `<db>.dev-keys` (mode 0600) so a restarted dev server unseals itself. That file is the whole
/// security of the database: dev mode only, announced by the banner.
async fn dev_start(core: &Core, config: &Config, root_token_id: Option<String>) -> Result<(String, String)> {
    let keys_file = match &config.storage {
        Storage::Sqlite { path } => Some(path.with_extension("dev-keys")),
        Storage::Inmem => None,
    };
    if core.is_initialized() {
        let file = keys_file.ok_or_else(|| anyhow!("dev storage is already initialised"))?;
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(&file).with_context(|| format!("reading dev keys from {}", file.display()))?,
        );
        let saved: serde_json::Value = serde_json::from_str(&text).context("parsing the dev keys file")?;
        let key = saved["unseal_key"].as_str().ok_or_else(|| anyhow!("dev keys file has no unseal_key"))?.to_string();
        let token = saved["root_token"].as_str().ok_or_else(|| anyhow!("dev keys file has no root_token"))?.to_string();
        core.unseal(Some(&key), false).await.map_err(|e| anyhow!("unsealing the dev server: {e}"))?;
        return Ok((key, token));
    }
    let init = core
        .init(InitParams { secret_shares: 1, secret_threshold: 1, root_token_id, stay_unsealed: true })
        .await
        .map_err(|e| anyhow!("initialising the dev server: {e}"))?;
    // As Vault's dev mode: a KV version 2 engine at secret/.
    core.enable_mount(false, "secret", tresor_core::MountRequest::new("kv-v2", "key/value secret storage"))
        .await
        .map_err(|e| anyhow!("mounting secret/: {e}"))?;
    let key = init.keys.first().map(|k| base64::engine::general_purpose::STANDARD.encode(k.as_slice())).unwrap_or_default();
    let token = init.root_token.to_string();
    if let Some(file) = keys_file {
        let saved = zeroize::Zeroizing::new(serde_json::json!({"unseal_key": key, "root_token": token}).to_string());
        crate::write_private(&file, saved.as_bytes()).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok((key, token))
}

fn store_dev_token(token: &str) {
    let Some(home) = std::env::var_os("HOME") else { return };
    let path = std::path::PathBuf::from(home).join(".vault-token");
    if let Err(e) = crate::write_private(&path, token.as_bytes()) {
        tracing::warn!(error = %e, "could not write the dev root token to the token helper file");
    }
}

/// SIGHUP reopens the audit files (log rotation), as Vault does.
fn spawn_sighup_handler(core: std::sync::Arc<Core>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP: reopening audit devices");
                        core.reopen_audit_devices();
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP; audit files will not be reopened"),
        }
    }
    #[cfg(not(unix))]
    let _ = core;
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn tls_acceptor(listener: &Listener) -> Result<TlsAcceptor> {
    let cert_path = listener.tls_cert_file.as_ref().ok_or_else(|| anyhow!("tls_cert_file is required"))?;
    let key_path = listener.tls_key_file.as_ref().ok_or_else(|| anyhow!("tls_key_file is required"))?;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert_path).with_context(|| format!("opening {}", cert_path.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading certificates from {}", cert_path.display()))?;
    if certs.is_empty() {
        bail!("no certificate found in {}", cert_path.display());
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key_path).with_context(|| format!("opening {}", key_path.display()))?,
    ))
    .with_context(|| format!("reading the private key from {}", key_path.display()))?
    .ok_or_else(|| anyhow!("no private key found in {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("building the TLS configuration")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn dev_banner(api_addr: &str, unseal_key: &str, root_token: &str) -> String {
    format!(
        "WARNING! dev mode is enabled! In this mode, Tresor starts unsealed with a
single unseal key (with -dev-db, kept in a file beside the database). The root token is already
authenticated to the CLI, so you can immediately begin using Tresor.

You may need to set the following environment variables:

    $ export VAULT_ADDR='{api_addr}'

The unseal key and root token are displayed below in case you want to
seal/unseal the Vault or re-authenticate.

Unseal Key: {unseal_key}
Root Token: {root_token}

Development mode should NOT be used in production installations!

"
    )
}

fn print_banner(config: &Config, listeners: &[(SocketAddr, bool)], api_addr: &str, extra: &str) {
    let storage = match &config.storage {
        Storage::Inmem => "inmem",
        Storage::Sqlite { .. } => "sqlite",
    };
    let mut out = String::from("==> Tresor server configuration:\n\n");
    out.push_str(&format!("{:>24}: {api_addr}\n", "Api Address"));
    for (i, (addr, tls)) in listeners.iter().enumerate() {
        let tls = if *tls { "enabled" } else { "disabled" };
        out.push_str(&format!("{:>24}: tcp (addr: \"{addr}\", tls: \"{tls}\")\n", format!("Listener {}", i + 1)));
    }
    out.push_str(&format!("{:>24}: {storage}\n", "Storage"));
    out.push_str(&format!("{:>24}: Tresor v{}\n\n", "Version", tresor_core::VERSION));
    out.push_str("==> Tresor server started! Log data will stream in below:\n\n");
    out.push_str(extra);
    // One write so a reader of the pipe sees the whole banner at once.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
