//! `tresor`: the server and its command-line client in one binary, as `vault`/`bao` are.
//!
//! `tresor server -dev` or `tresor server -config=FILE` runs the server ([`server`]); every other
//! command is an HTTP client of a running server ([`cli`]). Client commands print to stdout by design,
//! hence the crate-level allowance below; the server itself logs through `tracing` only.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod config;
mod flags;
mod logging;
mod plugins;
mod server;

use std::process::ExitCode;

const USAGE: &str = "Usage: tresor <command> [args]

Common commands:
    read        Read data and retrieve secrets
    write       Write data, configuration, and secrets
    delete      Delete secrets and configuration
    list        List data or secrets
    login       Authenticate locally
    server      Start a Tresor server
    status      Print seal and HA status

Other commands:
    audit       Interact with audit devices (enable, disable, list)
    auth        Interact with auth methods (enable, disable, list, tune)
    kv          Interact with Tresor's Key-Value storage
    lease       Interact with leases (lookup, renew, revoke [-prefix])
    operator    Perform operator-specific tasks (init, unseal, seal)
    plugin      Interact with the plugin catalog
    policy      Interact with policies (write, read, list, delete, fmt)
    secrets     Interact with secrets engines
    token       Interact with tokens (create, lookup, renew, revoke)
    unwrap      Unwrap a wrapped secret
    version     Print the version
";

/// Create or truncate a file readable only by its owner (token helper, dev keys).
pub(crate) fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(contents)
}

/// The process allocator. Request handling allocates and frees many small buffers (JSON values,
/// HTTP bodies, component-model lowering) across the runtime's worker threads; glibc malloc spent
/// 12-16% of CPU on that in the Transit profiles, mimalloc's per-thread free lists a fraction of it
/// (docs/benchmarks.md). Key material is still zeroized by its owners before it is freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(127);
    };
    let result = match command.as_str() {
        "server" => server::run(rest),
        "version" | "-version" | "--version" => {
            println!("Tresor v{}", tresor_core::VERSION);
            Ok(ExitCode::SUCCESS)
        }
        "-h" | "-help" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => cli::run(other, rest),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}
