//! `tresor login`, `tresor token` and `tresor policy`: shaped like their `vault`/`bao` counterparts.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use super::client::{self, api_status, Client};
use super::output::{self, cell, table, Format};
use super::{flags, parse_kv, path_arg, print_list, read_line};

fn usage(text: &str) -> Result<ExitCode> {
    eprintln!("Usage: {text}");
    Ok(ExitCode::from(2))
}

/// Print an `auth` response (table: `token`, `token_accessor`, ...; json: the whole response).
fn print_auth(resp: &Value, format: Format, field: Option<&str>) -> Result<ExitCode> {
    let auth = &resp["auth"];
    if let Some(field) = field {
        let key = if field == "token" { "client_token" } else { field.trim_start_matches("token_") };
        match auth.get(key) {
            Some(v) => println!("{}", cell(v)),
            None => bail!("Field \"{field}\" not present in the response"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    match format {
        Format::Json => print!("{}", output::json(resp)),
        Format::Table => {
            let duration = match auth["lease_duration"].as_u64() {
                Some(0) | None => "∞".to_string(),
                Some(s) => format!("{s}s"),
            };
            let mut rows = vec![
                ("token".to_string(), cell(&auth["client_token"])),
                ("token_accessor".into(), cell(&auth["accessor"])),
                ("token_duration".into(), duration),
                ("token_renewable".into(), cell(&auth["renewable"])),
                ("token_policies".into(), cell(&auth["token_policies"])),
                ("identity_policies".into(), "[]".into()),
                ("policies".into(), cell(&auth["policies"])),
            ];
            if let Some(meta) = auth["metadata"].as_object() {
                rows.extend(meta.iter().map(|(k, v)| (format!("token_meta_{k}"), cell(v))));
            }
            print!("{}", table(&rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tresor login [-method=token|userpass|approle] [-path=P] [-no-store] [TOKEN | K=V...]`.
pub fn login(argv: &[String]) -> Result<ExitCode> {
    let f = flags(argv, &["no-store", "no-print"], &["method", "path"])?;
    let method = f.get("method").unwrap_or("token");
    let format = Format::parse(f.get("format"))?;
    let mut client = Client::from_env(f.get("address"));
    let mount = f.get("path").unwrap_or(method).trim_matches('/').to_string();
    let resp = match method {
        "token" => {
            let token = match f.args.first() {
                Some(t) if t != "-" && !t.contains('=') => t.clone(),
                Some(t) if t.starts_with("token=") => t["token=".len()..].to_string(),
                _ => {
                    eprint!("Token (will be hidden): ");
                    read_line()?
                }
            };
            let token = zeroize::Zeroizing::new(token.trim().to_string());
            client.set_token(&token);
            let lookup = client.call("GET", "auth/token/lookup-self", None).map_err(|e| e.context("Error authenticating"))?.unwrap_or(Value::Null);
            let d = &lookup["data"];
            json!({"auth": {"client_token": token.as_str(), "accessor": d["accessor"], "policies": d["policies"], "token_policies": d["policies"],
                "metadata": d["meta"], "lease_duration": d["ttl"], "renewable": d["renewable"]}})
        }
        "userpass" => {
            let data = parse_kv(&f.args)?;
            let username = data.get("username").and_then(Value::as_str).ok_or_else(|| anyhow!("username=... is required"))?.to_string();
            let password = match data.get("password").and_then(Value::as_str) {
                Some(p) => p.to_string(),
                None => {
                    eprint!("Password (will be hidden): ");
                    read_line()?
                }
            };
            let password = zeroize::Zeroizing::new(password);
            client
                .call("POST", &format!("auth/{mount}/login/{username}"), Some(&json!({ "password": password.as_str() })))
                .map_err(|e| e.context("Error authenticating"))?
                .unwrap_or(Value::Null)
        }
        other => {
            // Any other method posts its K=V pairs to auth/<path>/login (approle: role_id, secret_id).
            let data = parse_kv(&f.args)?;
            if other == "approle" && !data.contains_key("role_id") {
                bail!("role_id=... is required for -method=approle");
            }
            client
                .call("POST", &format!("auth/{mount}/login"), Some(&Value::Object(data)))
                .map_err(|e| e.context("Error authenticating"))?
                .unwrap_or(Value::Null)
        }
    };
    let token = resp["auth"]["client_token"].as_str().ok_or_else(|| anyhow!("the server returned no token"))?;
    if !f.is_set("no-store") {
        let path = client::token_helper_path().ok_or_else(|| anyhow!("HOME is not set; cannot store the token"))?;
        crate::write_private(&path, token.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    if f.is_set("no-print") {
        return Ok(ExitCode::SUCCESS);
    }
    if format == Format::Table {
        let stored = if f.is_set("no-store") { "" } else { " The token information displayed below is already stored in the token helper." };
        println!("Success! You are now authenticated.{stored}\n");
    }
    print_auth(&resp, format, f.get("field"))
}

/// `tresor token create|lookup|renew|revoke`.
pub fn token(argv: &[String]) -> Result<ExitCode> {
    let Some((sub, rest)) = argv.split_first() else {
        return usage("tresor token <create|lookup|renew|revoke> [options]");
    };
    match sub.as_str() {
        "create" => {
            let f = flags(
                rest,
                &["orphan", "no-default-policy"],
                &["policy", "ttl", "explicit-max-ttl", "period", "display-name", "use-limit", "role", "metadata", "renewable", "id", "type"],
            )?;
            let mut body = Map::new();
            let policies: Vec<&str> = f.get_all("policy").into_iter().flat_map(|p| p.split(',')).map(str::trim).filter(|p| !p.is_empty()).collect();
            if !policies.is_empty() {
                body.insert("policies".into(), json!(policies));
            }
            for (flag, key) in [("ttl", "ttl"), ("explicit-max-ttl", "explicit_max_ttl"), ("period", "period"), ("display-name", "display_name"), ("id", "id"), ("type", "type")] {
                if let Some(v) = f.get(flag) {
                    body.insert(key.into(), json!(v));
                }
            }
            if let Some(v) = f.get("use-limit") {
                body.insert("num_uses".into(), json!(v.parse::<u64>().map_err(|_| anyhow!("-use-limit must be a number"))?));
            }
            if let Some(v) = f.get("renewable") {
                body.insert("renewable".into(), json!(matches!(v, "true" | "1" | "t")));
            }
            if f.is_set("no-default-policy") {
                body.insert("no_default_policy".into(), json!(true));
            }
            let meta: Map<String, Value> = f
                .get_all("metadata")
                .into_iter()
                .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), json!(v))).ok_or_else(|| anyhow!("-metadata must be key=value")))
                .collect::<Result<_>>()?;
            if !meta.is_empty() {
                body.insert("meta".into(), Value::Object(meta));
            }
            let path = match (f.get("role"), f.is_set("orphan")) {
                (Some(role), _) => format!("auth/token/create/{role}"),
                (None, true) => "auth/token/create-orphan".into(),
                (None, false) => "auth/token/create".into(),
            };
            let client = Client::from_env(f.get("address"));
            let resp = client.call("POST", &path, Some(&Value::Object(body))).map_err(|e| e.context("Error creating token"))?.unwrap_or(Value::Null);
            print_auth(&resp, Format::parse(f.get("format"))?, f.get("field"))
        }
        "lookup" => {
            let f = flags(rest, &["accessor"], &[])?;
            let client = Client::from_env(f.get("address"));
            let resp = match (f.args.first(), f.is_set("accessor")) {
                (None, _) => client.call("GET", "auth/token/lookup-self", None),
                (Some(a), true) => client.call("POST", "auth/token/lookup-accessor", Some(&json!({ "accessor": a }))),
                (Some(t), false) => client.call("POST", "auth/token/lookup", Some(&json!({ "token": t }))),
            }
            .map_err(|e| e.context("Error looking up token"))?
            .unwrap_or(Value::Null);
            super::print_secret(&resp, Format::parse(f.get("format"))?, f.get("field"))
        }
        "renew" => {
            let f = flags(rest, &["accessor"], &["increment", "i"])?;
            let client = Client::from_env(f.get("address"));
            let mut body = Map::new();
            if let Some(i) = f.get("increment").or(f.get("i")) {
                body.insert("increment".into(), json!(i));
            }
            let path = match (f.args.first(), f.is_set("accessor")) {
                (None, _) => "auth/token/renew-self",
                (Some(a), true) => {
                    body.insert("accessor".into(), json!(a));
                    "auth/token/renew-accessor"
                }
                (Some(t), false) => {
                    body.insert("token".into(), json!(t));
                    "auth/token/renew"
                }
            };
            let resp = client.call("POST", path, Some(&Value::Object(body))).map_err(|e| e.context("Error renewing token"))?.unwrap_or(Value::Null);
            print_auth(&resp, Format::parse(f.get("format"))?, f.get("field"))
        }
        "revoke" => {
            let f = flags(rest, &["self", "accessor"], &["mode"])?;
            let client = Client::from_env(f.get("address"));
            let orphan = f.get("mode") == Some("orphan");
            let (path, body) = match (f.args.first(), f.is_set("self"), f.is_set("accessor")) {
                (None, true, _) => ("auth/token/revoke-self", json!({})),
                (Some(a), false, true) => ("auth/token/revoke-accessor", json!({ "accessor": a })),
                (Some(t), false, false) if orphan => ("auth/token/revoke-orphan", json!({ "token": t })),
                (Some(t), false, false) => ("auth/token/revoke", json!({ "token": t })),
                _ => return usage("tresor token revoke [-self | -accessor ACCESSOR | [-mode=orphan] TOKEN]"),
            };
            client.call("POST", path, Some(&body)).map_err(|e| e.context("Error revoking token"))?;
            println!("Success! Revoked token (if it existed)");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown token subcommand {other:?}"),
    }
}

/// `tresor policy write|read|list|delete|fmt`.
pub fn policy(argv: &[String]) -> Result<ExitCode> {
    let Some((sub, rest)) = argv.split_first() else {
        return usage("tresor policy <write|read|list|delete|fmt> [options]");
    };
    match sub.as_str() {
        "write" => {
            let f = flags(rest, &[], &[])?;
            let [name, file] = f.args.as_slice() else { return usage("tresor policy write NAME PATH|-") };
            let text = if file == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
            };
            Client::from_env(f.get("address"))
                .call("PUT", &format!("sys/policies/acl/{name}"), Some(&json!({ "policy": text })))
                .map_err(|e| e.context("Error uploading policy"))?;
            println!("Success! Uploaded policy: {name}");
            Ok(ExitCode::SUCCESS)
        }
        "read" => {
            let f = flags(rest, &[], &[])?;
            let name = path_arg(&f, "tresor policy read NAME")?;
            let client = Client::from_env(f.get("address"));
            match client.call("GET", &format!("sys/policies/acl/{name}"), None) {
                Ok(resp) => {
                    let resp = resp.unwrap_or(Value::Null);
                    match Format::parse(f.get("format"))? {
                        Format::Json => print!("{}", output::json(&resp)),
                        Format::Table => println!("{}", resp["data"]["policy"].as_str().unwrap_or("")),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if api_status(&e) == Some(404) => {
                    eprintln!("No policy named: {name}");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.context("Error reading policy")),
            }
        }
        "list" => {
            let f = flags(rest, &[], &[])?;
            let client = Client::from_env(f.get("address"));
            print_list(&client, "sys/policies/acl", Format::parse(f.get("format"))?)
        }
        "delete" => {
            let f = flags(rest, &[], &[])?;
            let name = path_arg(&f, "tresor policy delete NAME")?;
            Client::from_env(f.get("address")).call("DELETE", &format!("sys/policies/acl/{name}"), None).map_err(|e| e.context("Error deleting policy"))?;
            println!("Success! Deleted policy: {name}");
            Ok(ExitCode::SUCCESS)
        }
        "fmt" => {
            let f = flags(rest, &[], &[])?;
            let file = path_arg(&f, "tresor policy fmt PATH")?;
            let file = f.args.first().cloned().unwrap_or(file);
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
            let parsed = tresor_core::policy::Policy::parse("fmt", &text).map_err(|e| anyhow!("{e}"))?;
            std::fs::write(&file, parsed.to_hcl()).with_context(|| format!("writing {file}"))?;
            println!("Success! Formatted policy: {file}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown policy subcommand {other:?}"),
    }
}
