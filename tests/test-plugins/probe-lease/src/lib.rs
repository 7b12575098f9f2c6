//! A secrets engine for the lease tests: `creds/{name}` issues a lease whose internal data names it;
//! `revoke-secret` and `renew-secret` record, in the plugin's own storage, how many times and when
//! each lease was revoked or renewed, so the tests can prove "each at its time, none lost, none twice".

use serde_json::json;
use tresor_sdk::{storage, system, Backend, Error, Field, FieldKind, LeaseOptions, Operation, Path, Request, Response, Secret, Spec};

struct Probe;

fn now_ms() -> i64 {
    let (s, n) = system::now();
    s * 1000 + i64::from(n / 1_000_000)
}

fn fail_switch() -> bool {
    storage::get_json::<serde_json::Value>("config").ok().flatten().and_then(|c| c["fail_revoke"].as_bool()).unwrap_or(false)
}

impl Backend for Probe {
    fn spec() -> Spec {
        Spec::secrets("lease probe")
            .path(
                Path::new("creds/{name}")
                    .operations([Operation::Read, Operation::Update])
                    .field(Field::new("ttl", FieldKind::Duration))
                    .field(Field::new("max_ttl", FieldKind::Duration))
                    .field(Field::new("renewable", FieldKind::Bool).default_json("true"))
                    .field(Field::new("password", FieldKind::Str).sensitive()),
            )
            .path(Path::new("revoked/{name}").operations([Operation::Read]))
            .path(Path::new("renewed/{name}").operations([Operation::Read]))
            .path(Path::new("config").operations([Operation::Update]).field(Field::new("fail_revoke", FieldKind::Bool)))
            .path(Path::new("stats").operations([Operation::Read]))
    }

    fn handle(req: Request) -> Result<Response, Error> {
        let name = req.captured("name").unwrap_or_default().to_string();
        match req.path_index {
            0 => {
                let ttl = req.duration("ttl").unwrap_or(0);
                let due = if ttl > 0 { now_ms() + i64::try_from(ttl).unwrap_or(0) * 1000 } else { 0 };
                let password = req.str("password").map_or_else(|| format!("pw-{name}"), str::to_string);
                Ok(Response {
                    data: Some(json!({"username": name, "password": password})),
                    secret: Some(Secret {
                        internal: json!({"id": name, "due_ms": due}),
                        lease: LeaseOptions {
                            ttl,
                            max_ttl: req.duration("max_ttl").unwrap_or(0),
                            renewable: req.bool("renewable").unwrap_or(true),
                        },
                    }),
                    ..Response::default()
                })
            }
            1 | 2 => {
                let prefix = if req.path_index == 1 { "revoked" } else { "renewed" };
                let v: serde_json::Value = storage::get_json(&format!("{prefix}/{name}"))?.ok_or(Error::NotFound)?;
                Ok(Response::data(v))
            }
            3 => {
                storage::put_json("config", &json!({"fail_revoke": req.bool("fail_revoke").unwrap_or(false)}))?;
                Ok(Response::empty())
            }
            4 => {
                // Aggregates over every recorded revocation.
                let (mut total, mut twice, mut early, mut max_late_ms) = (0u64, 0u64, 0u64, 0i64);
                for id in storage::list("revoked/")? {
                    let Some(v) = storage::get_json::<serde_json::Value>(&format!("revoked/{id}"))? else { continue };
                    total += 1;
                    if v["count"].as_u64().unwrap_or(0) > 1 {
                        twice += 1;
                    }
                    let (at, due) = (v["at_ms"].as_i64().unwrap_or(0), v["due_ms"].as_i64().unwrap_or(0));
                    if due > 0 {
                        if at < due {
                            early += 1;
                        }
                        max_late_ms = max_late_ms.max(at - due);
                    }
                }
                Ok(Response::data(json!({"revoked": total, "revoked_twice": twice, "revoked_early": early, "max_late_ms": max_late_ms})))
            }
            _ => Err(Error::UnsupportedPath),
        }
    }

    fn revoke_secret(secret: Secret) -> Result<(), Error> {
        if fail_switch() {
            return Err(Error::Internal("probe: revocation refused by the test switch".into()));
        }
        let id = secret.internal["id"].as_str().unwrap_or_default().to_string();
        let key = format!("revoked/{id}");
        let previous: Option<serde_json::Value> = storage::get_json(&key)?;
        let count = previous.as_ref().and_then(|v| v["count"].as_u64()).unwrap_or(0) + 1;
        let due = secret.internal["due_ms"].as_i64().unwrap_or(0);
        let at = now_ms();
        // The host's clock and ours are the same wall clock, and `due_ms` was taken before the host
        // registered the lease: a revocation on expiry is never earlier than `due_ms`.
        storage::put_json(&key, &json!({"count": count, "at_ms": at, "due_ms": due}))?;
        Ok(())
    }

    fn renew_secret(secret: Secret) -> Result<LeaseOptions, Error> {
        let id = secret.internal["id"].as_str().unwrap_or_default().to_string();
        let key = format!("renewed/{id}");
        let previous: Option<serde_json::Value> = storage::get_json(&key)?;
        let count = previous.as_ref().and_then(|v| v["count"].as_u64()).unwrap_or(0) + 1;
        storage::put_json(&key, &json!({"count": count, "increment": secret.lease.ttl}))?;
        Ok(LeaseOptions { ttl: secret.lease.ttl, max_ttl: 0, renewable: true })
    }
}

tresor_sdk::export!(Probe);
