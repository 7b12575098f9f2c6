//! `tresor secrets`, `tresor kv` and `tresor plugin`: the mount, KV and catalog commands, shaped like
//! their `vault`/`bao` counterparts.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Map, Value};

use super::client::{api_status, Client};
use super::output::{self, cell, table, Format};
use super::{flags, parse_kv, path_arg, print_list, print_secret};

fn usage(text: &str) -> Result<ExitCode> {
    eprintln!("Usage: {text}");
    Ok(ExitCode::from(2))
}

/// `tresor secrets enable|disable|list|tune` (and, with `auth`, `tresor auth ...` over `sys/auth`).
pub fn secrets(argv: &[String], auth: bool) -> Result<ExitCode> {
    let (noun, what, table_path) = if auth { ("auth", "auth method", "sys/auth") } else { ("secrets", "secrets engine", "sys/mounts") };
    let Some((sub, rest)) = argv.split_first() else {
        return usage(&format!("tresor {noun} <enable|disable|list|tune> [options]"));
    };
    match sub.as_str() {
        "enable" => {
            let mut valued = vec!["path", "version", "description", "default-lease-ttl", "max-lease-ttl", "options", "allowed-outbound-hosts", "plugin-name"];
            valued.extend(CONFIG_FLAGS.iter().map(|(flag, _)| *flag));
            let f = flags(rest, &["local", "seal-wrap", "external-entropy-access"], &valued)?;
            let kind = f.args.first().ok_or_else(|| anyhow!("missing {what} type"))?;
            let path = f.get("path").map(str::to_owned).unwrap_or_else(|| kind.clone());
            // As Vault's CLI: `-plugin-name` names the catalog plugin when the type is `plugin`.
            let kind = match (kind.as_str(), f.get("plugin-name")) {
                ("plugin", Some(name)) => name.to_string(),
                _ => kind.clone(),
            };
            let kind = &kind;
            let mut body = json!({"type": kind, "description": f.get("description").unwrap_or("")});
            for (flag, key) in [("local", "local"), ("seal-wrap", "seal_wrap"), ("external-entropy-access", "external_entropy_access")] {
                if f.is_set(flag) {
                    body[key] = json!(true);
                }
            }
            // `-options=k=v`, repeatable, as Vault's CLI.
            let mut options = Map::new();
            for kv in f.get_all("options") {
                let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("-options must be key=value, got {kv:?}"))?;
                options.insert(k.to_string(), json!(v));
            }
            if let Some(v) = f.get("version") {
                options.insert("version".into(), json!(v));
            }
            if !options.is_empty() {
                body["options"] = Value::Object(options);
            }
            let mut config = Map::new();
            for (flag, key) in [("default-lease-ttl", "default_lease_ttl"), ("max-lease-ttl", "max_lease_ttl")] {
                if let Some(v) = f.get(flag) {
                    config.insert(key.into(), json!(v));
                }
            }
            // Tresor: hosts the mount's plugin may connect to (comma-separated or repeated).
            let hosts: Vec<&str> = f.get_all("allowed-outbound-hosts").into_iter().flat_map(|h| h.split(',')).collect();
            if !hosts.is_empty() {
                config.insert("allowed_outbound_hosts".into(), json!(hosts));
            }
            config_flags(&f, &mut config);
            body["config"] = Value::Object(config);
            let client = Client::from_env(f.get("address"));
            client.call("POST", &format!("{table_path}/{}", path.trim_matches('/')), Some(&body))?;
            println!("Success! Enabled the {kind} {what} at: {}/", path.trim_matches('/'));
        }
        "disable" => {
            let f = flags(rest, &[], &[])?;
            let path = path_arg(&f, &format!("tresor {noun} disable PATH"))?;
            Client::from_env(f.get("address")).call("DELETE", &format!("{table_path}/{}", path.trim_matches('/')), None)?;
            println!("Success! Disabled the {what} (if it existed) at: {}/", path.trim_matches('/'));
        }
        "list" => {
            let f = flags(rest, &[], &[])?;
            let resp = Client::from_env(f.get("address")).call("GET", table_path, None)?.unwrap_or(Value::Null);
            let data = resp["data"].as_object().cloned().unwrap_or_default();
            match Format::parse(f.get("format"))? {
                Format::Json => print!("{}", output::json(&Value::Object(data))),
                Format::Table => {
                    println!("{:<14}{:<12}{:<22}Description", "Path", "Type", "Accessor");
                    for (path, m) in &data {
                        println!("{path:<14}{:<12}{:<22}{}", cell(&m["type"]), cell(&m["accessor"]), cell(&m["description"]));
                    }
                }
            }
        }
        "tune" => {
            let mut valued = vec!["description", "default-lease-ttl", "max-lease-ttl", "allowed-outbound-hosts", "options"];
            valued.extend(CONFIG_FLAGS.iter().map(|(flag, _)| *flag));
            let f = flags(rest, &[], &valued)?;
            let path = path_arg(&f, &format!("tresor {noun} tune [options] PATH"))?;
            let mut body = Map::new();
            for (flag, key) in [("default-lease-ttl", "default_lease_ttl"), ("max-lease-ttl", "max_lease_ttl"), ("description", "description")] {
                if let Some(v) = f.get(flag) {
                    body.insert(key.into(), json!(v));
                }
            }
            let hosts: Vec<&str> = f.get_all("allowed-outbound-hosts").into_iter().flat_map(|h| h.split(',')).collect();
            if !hosts.is_empty() {
                body.insert("allowed_outbound_hosts".into(), json!(hosts));
            }
            let mut options = Map::new();
            for kv in f.get_all("options") {
                let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("-options must be key=value, got {kv:?}"))?;
                options.insert(k.to_string(), json!(v));
            }
            if !options.is_empty() {
                body.insert("options".into(), Value::Object(options));
            }
            config_flags(&f, &mut body);
            Client::from_env(f.get("address")).call("POST", &format!("{table_path}/{}/tune", path.trim_matches('/')), Some(&Value::Object(body)))?;
            println!("Success! Tuned the {what} at: {}/", path.trim_matches('/'));
        }
        other => bail!("unknown {noun} subcommand {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Vault's mount config flags shared by `enable` and `tune`, with their API names. The list flags
/// repeat (`-audit-non-hmac-request-keys=a -audit-non-hmac-request-keys=b`), as in Vault's CLI.
const CONFIG_FLAGS: &[(&str, &str)] = &[
    ("listing-visibility", "listing_visibility"),
    ("token-type", "token_type"),
    ("audit-non-hmac-request-keys", "audit_non_hmac_request_keys"),
    ("audit-non-hmac-response-keys", "audit_non_hmac_response_keys"),
    ("passthrough-request-headers", "passthrough_request_headers"),
    ("allowed-response-headers", "allowed_response_headers"),
];

/// Copy the [`CONFIG_FLAGS`] given on the command line into a `config` (enable) or tune body.
fn config_flags(f: &crate::flags::Flags, out: &mut Map<String, Value>) {
    for (flag, key) in CONFIG_FLAGS {
        let values = f.get_all(flag);
        match (*flag, values.as_slice()) {
            (_, []) => {}
            ("listing-visibility" | "token-type", [.., last]) => {
                out.insert((*key).into(), json!(last));
            }
            _ => {
                out.insert((*key).into(), json!(values));
            }
        }
    }
}

/// The mount serving `path` and its KV version, from `sys/internal/ui/mounts` (as `bao kv` does).
fn kv_mount(client: &Client, path: &str) -> Result<(String, bool)> {
    let resp = client.call("GET", &format!("sys/internal/ui/mounts/{path}"), None)?.unwrap_or(Value::Null);
    let mount = resp["data"]["path"].as_str().ok_or_else(|| anyhow!("no mount found for {path}"))?.to_string();
    let v2 = resp["data"]["options"]["version"].as_str() == Some("2");
    Ok((mount, v2))
}

/// `mount/<infix>/<rest>` for v2, the path itself for v1.
fn kv_path(mount: &str, v2: bool, infix: &str, path: &str) -> String {
    let rest = path.strip_prefix(mount).unwrap_or(path).trim_start_matches('/');
    if v2 { format!("{mount}{infix}/{rest}") } else { path.to_string() }
}

fn versions_flag(raw: Option<&str>) -> Result<Vec<u64>> {
    raw.unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().map_err(|_| anyhow!("invalid version {s:?}")))
        .collect()
}

/// `tresor kv get|put|patch|delete|undelete|destroy|list|metadata`.
pub fn kv(argv: &[String]) -> Result<ExitCode> {
    let Some((sub, rest)) = argv.split_first() else {
        return usage("tresor kv <get|put|patch|delete|undelete|destroy|list|metadata> [options] PATH");
    };
    const KV_FLAGS: &[&str] = &["version", "versions", "cas", "max-versions", "cas-required", "custom-metadata"];
    if sub == "metadata" {
        let Some((op, rest)) = rest.split_first() else {
            return usage("tresor kv metadata <get|put|delete> [options] PATH");
        };
        return kv_metadata(op, &flags(rest, &[], KV_FLAGS)?);
    }
    let f = flags(rest, &[], KV_FLAGS)?;
    let path = path_arg(&f, &format!("tresor kv {sub} [options] PATH"))?;
    let client = Client::from_env(f.get("address"));
    let format = Format::parse(f.get("format"))?;
    let (mount, v2) = kv_mount(&client, &path)?;
    match sub.as_str() {
        "get" => {
            let mut p = kv_path(&mount, v2, "data", &path);
            if let (true, Some(v)) = (v2, f.get("version")) {
                p = format!("{p}?version={v}");
            }
            match client.call("GET", &p, None) {
                Ok(Some(mut resp)) => {
                    if v2 {
                        let field = f.get("field").is_some();
                        if format == Format::Table && !field {
                            print!("{}", table(&obj_rows(&resp["data"]["metadata"])));
                            println!();
                        }
                        if format == Format::Table || field {
                            resp["data"] = resp["data"]["data"].clone();
                        }
                    }
                    print_secret(&resp, format, f.get("field"))
                }
                Ok(None) => Ok(ExitCode::SUCCESS),
                Err(e) if api_status(&e) == Some(404) => {
                    eprintln!("No value found at {p}");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e),
            }
        }
        "put" | "patch" => {
            let data = parse_kv(&f.args[1..])?;
            if data.is_empty() {
                bail!("Must supply data");
            }
            let p = kv_path(&mount, v2, "data", &path);
            let body = if v2 {
                let mut b = json!({ "data": data });
                if let Some(cas) = f.get("cas") {
                    b["options"] = json!({ "cas": cas.parse::<i64>().map_err(|_| anyhow!("invalid -cas"))? });
                }
                b
            } else {
                Value::Object(data)
            };
            let resp = if sub == "patch" {
                if !v2 {
                    bail!("patch is only supported on KV version 2");
                }
                client.call_as("PATCH", &p, Some(&body), "application/merge-patch+json")?
            } else {
                client.call("PUT", &p, Some(&body))?
            };
            match resp {
                Some(r) => print_secret(&r, format, f.get("field")),
                None => {
                    println!("Success! Data written to: {path}");
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        "delete" | "undelete" | "destroy" => {
            let versions = versions_flag(f.get("versions"))?;
            match (sub.as_str(), v2, versions.is_empty()) {
                ("delete", _, true) => client.call("DELETE", &kv_path(&mount, v2, "data", &path), None)?,
                (_, true, false) => client.call("POST", &kv_path(&mount, v2, sub, &path), Some(&json!({ "versions": versions })))?,
                ("delete", false, false) => bail!("-versions is only supported on KV version 2"),
                _ => bail!("-versions is required"),
            };
            println!("Success! Data {}d at: {path}", if sub == "destroy" { "destroye" } else { sub });
            Ok(ExitCode::SUCCESS)
        }
        "list" => print_list(&client, &kv_path(&mount, v2, "metadata", &path), format),
        other => bail!("unknown kv subcommand {other:?}"),
    }
}

fn obj_rows(v: &Value) -> Vec<(String, String)> {
    v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), cell(v))).collect()).unwrap_or_default()
}

fn kv_metadata(op: &str, f: &crate::flags::Flags) -> Result<ExitCode> {
    let path = path_arg(f, "tresor kv metadata <get|put|delete> [options] PATH")?;
    let client = Client::from_env(f.get("address"));
    let (mount, v2) = kv_mount(&client, &path)?;
    if !v2 {
        bail!("metadata is only supported on KV version 2");
    }
    let p = kv_path(&mount, true, "metadata", &path);
    match op {
        "get" => {
            let resp = client.call("GET", &p, None)?.unwrap_or(Value::Null);
            match Format::parse(f.get("format"))? {
                Format::Json => print!("{}", output::json(&resp)),
                Format::Table => print!("{}", table(&obj_rows(&resp["data"]))),
            }
        }
        "put" => {
            let mut body = Map::new();
            if let Some(n) = f.get("max-versions") {
                body.insert("max_versions".into(), json!(n.parse::<u64>().map_err(|_| anyhow!("invalid -max-versions"))?));
            }
            if let Some(b) = f.get("cas-required") {
                body.insert("cas_required".into(), json!(b == "true"));
            }
            if let Some(cm) = f.get("custom-metadata") {
                let (k, v) = cm.split_once('=').ok_or_else(|| anyhow!("-custom-metadata must be key=value"))?;
                body.insert("custom_metadata".into(), json!({ k: v }));
            }
            client.call("POST", &p, Some(&Value::Object(body)))?;
            println!("Success! Data written to: {p}");
        }
        "delete" => {
            client.call("DELETE", &p, None)?;
            println!("Success! Data deleted (if it existed) at: {p}");
        }
        other => bail!("unknown kv metadata subcommand {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `tresor plugin register|list|info|reload|deregister`.
pub fn plugin(argv: &[String]) -> Result<ExitCode> {
    let Some((sub, rest)) = argv.split_first() else {
        return usage("tresor plugin <register|list|info|reload|deregister> [options]");
    };
    let f = flags(rest, &[], &["sha256", "command", "version", "plugin", "mounts"])?;
    let client = Client::from_env(f.get("address"));
    let format = Format::parse(f.get("format"))?;
    match sub.as_str() {
        "register" | "deregister" | "info" => {
            let (kind, name) = match f.args.as_slice() {
                [kind, name] => (kind.as_str(), name.as_str()),
                [name] => ("secret", name.as_str()),
                _ => bail!("Usage: tresor plugin {sub} [options] [TYPE] NAME"),
            };
            let p = format!("sys/plugins/catalog/{kind}/{name}");
            match sub.as_str() {
                "register" => {
                    let sha = f.get("sha256").ok_or_else(|| anyhow!("-sha256 is required"))?;
                    let body = json!({"sha256": sha, "command": f.get("command").unwrap_or(name), "version": f.get("version").unwrap_or("")});
                    client.call("PUT", &p, Some(&body))?;
                    println!("Success! Registered plugin: {name}");
                }
                "deregister" => {
                    client.call("DELETE", &p, None)?;
                    println!("Success! Deregistered plugin (if it was registered): {name}");
                }
                _ => {
                    let resp = client.call("GET", &p, None)?.unwrap_or(Value::Null);
                    match format {
                        Format::Json => print!("{}", output::json(&resp)),
                        Format::Table => print!("{}", table(&obj_rows(&resp["data"]))),
                    }
                }
            }
        }
        "list" => {
            let resp = client.call("GET", "sys/plugins/catalog", None)?.unwrap_or(Value::Null);
            let detailed = resp["data"]["detailed"].as_array().cloned().unwrap_or_default();
            match format {
                Format::Json => print!("{}", output::json(&Value::Array(detailed))),
                Format::Table => {
                    println!("{:<24}{:<10}Version", "Name", "Type");
                    for p in detailed {
                        println!("{:<24}{:<10}{}", cell(&p["name"]), cell(&p["type"]), cell(&p["version"]));
                    }
                }
            }
        }
        "reload" => {
            let mut body = json!({});
            if let Some(p) = f.get("plugin") {
                body["plugin"] = json!(p);
            }
            if let Some(m) = f.get("mounts") {
                body["mounts"] = json!(m.split(',').collect::<Vec<_>>());
            }
            client.call("PUT", "sys/plugins/reload/backend", Some(&body))?;
            println!("Success! Reloaded plugin: {}", f.get("plugin").or(f.get("mounts")).unwrap_or(""));
        }
        other => bail!("unknown plugin subcommand {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}
