//! The CLI client commands. Each talks HTTP to a running server, exactly as the `vault`/`bao` CLI
//! does, so anything the CLI can do a script can do with curl.
//!
//! Exit codes follow Vault: 0 success, 1 error, 2 usage error or (for `status`) sealed.

mod access;
mod client;
mod engines;
mod ops;
mod output;

use std::io::{BufRead as _, Read as _};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::flags::Flags;
use client::{api_status, Client};
use output::{cell, table, Format};

const COMMON_VALUED: &[&str] = &["address", "format", "field"];

/// Dispatch a client command.
pub fn run(command: &str, argv: &[String]) -> Result<ExitCode> {
    match command {
        "status" => status(argv),
        "operator" => operator(argv),
        "read" => read(argv),
        "write" => write(argv),
        "delete" => delete(argv),
        "list" => list(argv),
        "login" => access::login(argv),
        "token" => access::token(argv),
        "policy" => access::policy(argv),
        "auth" => engines::secrets(argv, true),
        "secrets" => engines::secrets(argv, false),
        "kv" => engines::kv(argv),
        "plugin" => engines::plugin(argv),
        "lease" => ops::lease(argv),
        "audit" => ops::audit(argv),
        "unwrap" => ops::unwrap(argv),
        other => {
            eprintln!("Unknown command: {other}\n\nRun `tresor -help` for the list of commands.");
            Ok(ExitCode::from(127))
        }
    }
}

fn operator(argv: &[String]) -> Result<ExitCode> {
    let Some((sub, rest)) = argv.split_first() else {
        eprintln!("Usage: tresor operator <init|unseal|seal> [options]");
        return Ok(ExitCode::from(2));
    };
    match sub.as_str() {
        "init" => operator_init(rest),
        "unseal" => operator_unseal(rest),
        "seal" => operator_seal(rest),
        other => {
            eprintln!("Unknown operator subcommand: {other}");
            Ok(ExitCode::from(127))
        }
    }
}

pub(super) fn flags(argv: &[String], bools: &[&str], valued: &[&str]) -> Result<Flags> {
    let valued: Vec<&str> = COMMON_VALUED.iter().chain(valued).copied().collect();
    Flags::parse(argv, bools, &valued)
}

fn status(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &[], &[])?;
    let client = Client::from_env(f.get("address"));
    let format = Format::parse(f.get("format"))?;
    let status = client.call("GET", "sys/seal-status", None)?.unwrap_or(Value::Null);
    let sealed = status["sealed"].as_bool().unwrap_or(true);
    match format {
        Format::Json => print!("{}", output::json(&status)),
        Format::Table => print!("{}", seal_status_table(&status)),
    }
    Ok(if sealed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn seal_status_table(s: &Value) -> String {
    let mut rows = vec![
        ("Seal Type".to_string(), cell(&s["type"])),
        ("Initialized".into(), cell(&s["initialized"])),
        ("Sealed".into(), cell(&s["sealed"])),
        ("Total Shares".into(), cell(&s["n"])),
        ("Threshold".into(), cell(&s["t"])),
    ];
    if s["sealed"].as_bool().unwrap_or(true) {
        rows.push(("Unseal Progress".into(), format!("{}/{}", cell(&s["progress"]), cell(&s["t"]))));
        let nonce = s["nonce"].as_str().filter(|n| !n.is_empty()).unwrap_or("n/a");
        rows.push(("Unseal Nonce".into(), nonce.to_string()));
    }
    rows.push(("Version".into(), cell(&s["version"])));
    rows.push(("Storage Type".into(), cell(&s["storage_type"])));
    if let Some(name) = s["cluster_name"].as_str() {
        rows.push(("Cluster Name".into(), name.to_string()));
        rows.push(("Cluster ID".into(), cell(&s["cluster_id"])));
    }
    rows.push(("HA Enabled".into(), "false".into()));
    table(&rows)
}

fn operator_init(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &[], &["key-shares", "key-threshold"])?;
    let client = Client::from_env(f.get("address"));
    let format = Format::parse(f.get("format"))?;
    let shares: u8 = f.get("key-shares").unwrap_or("5").parse().context("-key-shares must be a number")?;
    let threshold: u8 = f.get("key-threshold").unwrap_or("3").parse().context("-key-threshold must be a number")?;
    let resp = client
        .call("PUT", "sys/init", Some(&json!({"secret_shares": shares, "secret_threshold": threshold})))?
        .ok_or_else(|| anyhow!("empty response from sys/init"))?;
    match format {
        Format::Json => {
            let out = json!({
                "unseal_keys_b64": resp["keys_base64"],
                "unseal_keys_hex": resp["keys"],
                "unseal_shares": shares,
                "unseal_threshold": threshold,
                "recovery_keys_b64": [],
                "recovery_keys_hex": [],
                "recovery_keys_shares": 0,
                "recovery_keys_threshold": 0,
                "root_token": resp["root_token"],
            });
            print!("{}", output::json(&out));
        }
        Format::Table => {
            let keys = resp["keys_base64"].as_array().cloned().unwrap_or_default();
            for (i, k) in keys.iter().enumerate() {
                println!("Unseal Key {}: {}", i + 1, cell(k));
            }
            println!("\nInitial Root Token: {}\n", cell(&resp["root_token"]));
            println!(
                "Tresor initialized with {shares} key shares and a key threshold of {threshold}. Please securely
distribute the key shares printed above. When Tresor is re-sealed, restarted, or stopped, you must supply
at least {threshold} of these keys to unseal it before it can start servicing requests."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn operator_unseal(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &["reset"], &[])?;
    let client = Client::from_env(f.get("address"));
    let format = Format::parse(f.get("format"))?;
    let body = if f.is_set("reset") {
        json!({"reset": true})
    } else {
        let key = match f.args.first() {
            Some(k) if k != "-" => k.clone(),
            _ => {
                eprint!("Unseal Key (will be hidden): ");
                read_line()?
            }
        };
        json!({"key": key.trim()})
    };
    let status = client.call("PUT", "sys/unseal", Some(&body))?.unwrap_or(Value::Null);
    match format {
        Format::Json => print!("{}", output::json(&status)),
        Format::Table => print!("{}", seal_status_table(&status)),
    }
    Ok(ExitCode::SUCCESS)
}

fn operator_seal(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &[], &[])?;
    let client = Client::from_env(f.get("address"));
    client.call("PUT", "sys/seal", None)?;
    println!("Success! Tresor is sealed.");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn path_arg(f: &Flags, usage: &str) -> Result<String> {
    match f.args.first() {
        Some(p) => Ok(p.trim_start_matches('/').to_string()),
        None => bail!("Not enough arguments (expected 1, got 0)\n\nUsage: {usage}"),
    }
}

/// `-field=NAME`: print the value alone, or say it is missing (exit 1), as the Vault CLI.
fn print_field(field: &str, value: Option<&Value>) -> ExitCode {
    match value {
        Some(v) => {
            println!("{}", cell(v));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("Field \"{field}\" not present in secret");
            ExitCode::from(1)
        }
    }
}

pub(super) fn print_secret(resp: &Value, format: Format, field: Option<&str>) -> Result<ExitCode> {
    if let Some(info) = resp["wrap_info"].as_object() {
        if let Some(field) = field {
            let key = field.trim_start_matches("wrapping_");
            let key = if key == "token_ttl" { "ttl" } else { key };
            return Ok(print_field(field, info.get(key)));
        }
        match format {
            Format::Json => print!("{}", output::json(resp)),
            Format::Table => print!("{}", ops::wrap_rows(info)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(field) = field {
        return Ok(print_field(field, resp["data"].get(field).or_else(|| resp.get(field))));
    }
    match format {
        Format::Json => print!("{}", output::json(resp)),
        Format::Table => {
            let mut rows = Vec::new();
            if resp["lease_duration"].as_u64().unwrap_or(0) > 0 {
                rows.push(("lease_id".to_string(), cell(&resp["lease_id"])));
                rows.push(("lease_duration".into(), format!("{}s", resp["lease_duration"])));
                rows.push(("lease_renewable".into(), cell(&resp["renewable"])));
            }
            if let Some(auth) = resp["auth"].as_object() {
                for (k, v) in auth {
                    rows.push((format!("token_{k}").replace("token_client_token", "token"), cell(v)));
                }
            }
            if let Some(data) = resp["data"].as_object() {
                rows.extend(data.iter().map(|(k, v)| (k.clone(), cell(v))));
            }
            print!("{}", table(&rows));
            if let Some(w) = resp["warnings"].as_array() {
                for w in w {
                    eprintln!("WARNING! {}", cell(w));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &[], &["wrap-ttl"])?;
    let path = path_arg(&f, "tresor read [options] PATH")?;
    let mut client = Client::from_env(f.get("address"));
    client.set_wrap_ttl(f.get("wrap-ttl"));
    let format = Format::parse(f.get("format"))?;
    match client.call("GET", &path, None) {
        Ok(Some(resp)) => print_secret(&resp, format, f.get("field")),
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(e) if api_status(&e) == Some(404) => {
            eprintln!("No value found at {path}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.context(format!("Error reading {path}"))),
    }
}

/// `k=v` pairs; `k=@file` reads a file, `k=-` reads stdin; a lone `-` reads a JSON object from stdin.
pub(super) fn parse_kv(args: &[String]) -> Result<Map<String, Value>> {
    let mut data = Map::new();
    for arg in args {
        if arg == "-" {
            let mut buf = String::new();
            std::io::stdin().read_to_string(&mut buf)?;
            let obj: Map<String, Value> = serde_json::from_str(&buf).context("parsing JSON from stdin")?;
            data.extend(obj);
            continue;
        }
        let (k, v) = arg.split_once('=').ok_or_else(|| anyhow!("invalid key/value pair {arg:?}: format must be key=value"))?;
        let value = if let Some(file) = v.strip_prefix('@') {
            std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
        } else if v == "-" {
            let mut buf = String::new();
            std::io::stdin().read_to_string(&mut buf)?;
            buf
        } else {
            v.to_string()
        };
        data.insert(k.to_string(), Value::String(value));
    }
    Ok(data)
}

fn write(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &["force", "f"], &["wrap-ttl"])?;
    let path = path_arg(&f, "tresor write [options] PATH [DATA K=V...]")?;
    let data = parse_kv(&f.args[1..])?;
    let mut client = Client::from_env(f.get("address"));
    client.set_wrap_ttl(f.get("wrap-ttl"));
    let format = Format::parse(f.get("format"))?;
    match client.call("PUT", &path, Some(&Value::Object(data))).map_err(|e| e.context(format!("Error writing data to {path}")))? {
        None => {
            println!("Success! Data written to: {path}");
            Ok(ExitCode::SUCCESS)
        }
        Some(resp) => print_secret(&resp, format, f.get("field")),
    }
}

fn delete(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &[], &[])?;
    let path = path_arg(&f, "tresor delete [options] PATH")?;
    let client = Client::from_env(f.get("address"));
    client.call("DELETE", &path, None).map_err(|e| e.context(format!("Error deleting {path}")))?;
    println!("Success! Data deleted (if it existed) at: {path}");
    Ok(ExitCode::SUCCESS)
}

fn list(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &[], &[])?;
    let path = path_arg(&f, "tresor list [options] PATH")?;
    let client = Client::from_env(f.get("address"));
    print_list(&client, &path, Format::parse(f.get("format"))?)
}

/// `LIST path` and print its keys; a 404 is "No value found" with exit code 2, as the Vault CLI.
pub(super) fn print_list(client: &Client, path: &str, format: Format) -> Result<ExitCode> {
    match client.call("LIST", path, None) {
        Ok(Some(resp)) => {
            let keys = resp["data"]["keys"].as_array().cloned().unwrap_or_default();
            match format {
                Format::Json => print!("{}", output::json(&Value::Array(keys))),
                Format::Table => {
                    println!("Keys\n----");
                    for k in keys {
                        println!("{}", cell(&k));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(e) if api_status(&e) == Some(404) => {
            eprintln!("No value found at {path}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.context(format!("Error listing {path}"))),
    }
}

pub(super) fn read_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}
