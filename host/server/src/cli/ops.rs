//! `tresor lease`, `tresor audit` and `tresor unwrap`, shaped like their `vault`/`bao` counterparts.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, cell, table, Format};
use super::{flags, parse_kv, path_arg, print_secret};

fn usage(text: &str) -> Result<ExitCode> {
    eprintln!("Usage: {text}");
    Ok(ExitCode::from(2))
}

/// `tresor lease lookup|renew|revoke`.
pub fn lease(argv: &[String]) -> Result<ExitCode> {
    let Some((sub, rest)) = argv.split_first() else {
        return usage("tresor lease <lookup|renew|revoke> [options] ID");
    };
    match sub.as_str() {
        "lookup" => {
            let f = flags(rest, &[], &[])?;
            let id = path_arg(&f, "tresor lease lookup ID")?;
            let resp = Client::from_env(f.get("address"))
                .call("PUT", "sys/leases/lookup", Some(&json!({"lease_id": id})))
                .map_err(|e| e.context(format!("error looking up lease id {id}")))?
                .unwrap_or(Value::Null);
            print_secret(&resp, Format::parse(f.get("format"))?, f.get("field"))
        }
        "renew" => {
            let f = flags(rest, &[], &["increment"])?;
            let id = path_arg(&f, "tresor lease renew [-increment=DURATION] ID")?;
            let mut body = json!({"lease_id": id});
            if let Some(i) = f.get("increment") {
                body["increment"] = json!(i);
            }
            let resp = Client::from_env(f.get("address")).call("PUT", "sys/leases/renew", Some(&body))?.unwrap_or(Value::Null);
            print_secret(&resp, Format::parse(f.get("format"))?, f.get("field"))
        }
        "revoke" => {
            let f = flags(rest, &["prefix", "force", "f", "sync"], &[])?;
            let id = path_arg(&f, "tresor lease revoke [-prefix] [-force] ID")?;
            let client = Client::from_env(f.get("address"));
            let force = f.is_set("force") || f.is_set("f");
            if force && !f.is_set("prefix") {
                return Err(anyhow!("Specifying -force requires also specifying -prefix"));
            }
            if force {
                client.call("PUT", &format!("sys/leases/revoke-force/{id}"), Some(&json!({})))?;
                println!("Success! Force revoked any leases with prefix: {id}");
            } else if f.is_set("prefix") {
                client.call("PUT", &format!("sys/leases/revoke-prefix/{id}"), Some(&json!({"sync": true})))?;
                println!("Success! Revoked any leases with prefix: {id}");
            } else {
                client.call("PUT", "sys/leases/revoke", Some(&json!({"lease_id": id, "sync": true})))?;
                println!("Success! Revoked lease: {id}");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!("unknown lease subcommand {other:?}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `tresor audit enable|disable|list`.
pub fn audit(argv: &[String]) -> Result<ExitCode> {
    let Some((sub, rest)) = argv.split_first() else {
        return usage("tresor audit <enable|disable|list> [options]");
    };
    match sub.as_str() {
        "enable" => {
            let f = flags(rest, &["local"], &["path", "description"])?;
            let kind = f.args.first().ok_or_else(|| anyhow!("Not enough arguments (expected 1, got 0)\n\nUsage: tresor audit enable [options] TYPE [CONFIG K=V...]"))?;
            let path = f.get("path").map_or_else(|| kind.clone(), str::to_owned);
            let options = parse_kv(&f.args[1..])?;
            let body = json!({"type": kind, "description": f.get("description").unwrap_or(""), "options": options, "local": f.is_set("local")});
            Client::from_env(f.get("address")).call("PUT", &format!("sys/audit/{}", path.trim_matches('/')), Some(&body))?;
            println!("Success! Enabled the {kind} audit device at: {}/", path.trim_matches('/'));
            Ok(ExitCode::SUCCESS)
        }
        "disable" => {
            let f = flags(rest, &[], &[])?;
            let path = path_arg(&f, "tresor audit disable PATH")?;
            Client::from_env(f.get("address")).call("DELETE", &format!("sys/audit/{}", path.trim_matches('/')), None)?;
            println!("Success! Disabled audit device (if it was enabled) at: {}/", path.trim_matches('/'));
            Ok(ExitCode::SUCCESS)
        }
        "list" => {
            let f = flags(rest, &["detailed"], &[])?;
            let resp = Client::from_env(f.get("address")).call("GET", "sys/audit", None)?.unwrap_or(Value::Null);
            let data = resp["data"].as_object().cloned().unwrap_or_default();
            match Format::parse(f.get("format"))? {
                Format::Json => print!("{}", output::json(&Value::Object(data))),
                Format::Table if data.is_empty() => println!("No audit devices are enabled."),
                Format::Table => {
                    let detailed = f.is_set("detailed");
                    println!("{:<16}{:<10}{:<16}{}", "Path", "Type", "Description", if detailed { "Options" } else { "" });
                    for (path, d) in &data {
                        let description = d["description"].as_str().filter(|s| !s.is_empty()).unwrap_or("n/a");
                        let options = d["options"].as_object().map(|o| o.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(" ")).unwrap_or_default();
                        println!("{path:<16}{:<10}{description:<16}{}", cell(&d["type"]), if detailed { options } else { String::new() });
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!("unknown audit subcommand {other:?}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `tresor unwrap [TOKEN]`: with no argument, the client's own token is the wrapping token.
pub fn unwrap(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &[], &[])?;
    let body = match f.args.first() {
        Some(t) => json!({"token": t}),
        None => json!({}),
    };
    let resp = Client::from_env(f.get("address")).call("PUT", "sys/wrapping/unwrap", Some(&body))?.unwrap_or(Value::Null);
    print_secret(&resp, Format::parse(f.get("format"))?, f.get("field"))
}

/// Table rows for a wrapped response.
pub(super) fn wrap_rows(info: &serde_json::Map<String, Value>) -> String {
    let mut rows = vec![
        ("wrapping_token:".to_string(), cell(&info["token"])),
        ("wrapping_accessor:".into(), cell(&info["accessor"])),
        ("wrapping_token_ttl:".into(), format!("{}s", cell(&info["ttl"]))),
        ("wrapping_token_creation_time:".into(), cell(&info["creation_time"])),
        ("wrapping_token_creation_path:".into(), cell(&info["creation_path"])),
    ];
    if let Some(a) = info.get("wrapped_accessor").and_then(Value::as_str) {
        rows.push(("wrapped_accessor:".into(), a.to_string()));
    }
    table(&rows)
}
