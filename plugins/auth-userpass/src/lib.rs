//! The userpass auth method (API.md §13): users with passwords stored as bcrypt hashes (cost 10, as
//! Vault's `bcrypt.DefaultCost`), logging in at `login/:username` for a token the host mints.
//!
//! Storage layout inside the mount's view: `user/<lower-case name>` → [`User`] (JSON).
//!
//! A login for an unknown user runs the same bcrypt computation as a wrong password and returns the same
//! message, so neither timing nor text tells whether a user exists.

use serde::{Deserialize, Serialize};
use tresor_sdk::token::{cidrs_allow, TokenParams};
use tresor_sdk::{storage, Backend, Error, Field, FieldKind, Operation, Path, Request, Response, Spec};

/// bcrypt work factor (Vault: `bcrypt.DefaultCost`).
pub const COST: u32 = 10;
const USER_PREFIX: &str = "user/";
const BAD_LOGIN: &str = "invalid username or password";
/// bcrypt only reads the first 72 bytes; longer passwords are refused rather than silently truncated.
const MAX_PASSWORD: usize = 72;

/// A stored user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// Token settings.
    #[serde(default)]
    pub token: TokenParams,
}

/// The userpass backend.
pub struct Userpass;

fn username(req: &Request) -> Result<String, Error> {
    let name = req.captured("username").unwrap_or("").trim().to_lowercase();
    if name.is_empty() {
        return Err(Error::InvalidRequest("missing username".into()));
    }
    Ok(name)
}

fn load(name: &str) -> Result<Option<User>, Error> {
    storage::get_json(&format!("{USER_PREFIX}{name}"))
}

fn save(name: &str, user: &User) -> Result<(), Error> {
    storage::put_json(&format!("{USER_PREFIX}{name}"), user)
}

fn hash_password(password: &str) -> Result<String, Error> {
    if password.is_empty() {
        return Err(Error::InvalidRequest("missing password".into()));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Error::InvalidRequest(format!("password must be at most {MAX_PASSWORD} bytes")));
    }
    bcrypt::hash(password, COST).map_err(|e| Error::Internal(format!("hashing failed: {e}")))
}

/// The stored hash for a write that gives `password` or a ready bcrypt `password_hash` (Vault's
/// texts; `None`: neither was given).
fn new_hash(req: &Request) -> Result<Option<String>, Error> {
    let password = req.str("password").unwrap_or("");
    let given = req.str("password_hash").unwrap_or("");
    match (password.is_empty(), given.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Err(Error::InvalidRequest("only one of password or password_hash may be provided".into())),
        (false, true) => hash_password(password).map(Some),
        (true, false) => {
            if !valid_bcrypt(given) {
                return Err(Error::InvalidRequest("password_hash is not a valid bcrypt hash".into()));
            }
            Ok(Some(given.to_string()))
        }
    }
}

/// Whether `h` is a bcrypt hash as Go's `bcrypt.Cost` reads one: `$2$`, `$2a$`, `$2b$`, …, a
/// two-digit cost from 4 to 31, then 53 characters of salt and hash.
fn valid_bcrypt(h: &str) -> bool {
    let Some(rest) = h.strip_prefix("$2") else { return false };
    let rest = match rest.strip_prefix('$') {
        Some(r) => r,
        None => match rest.as_bytes() {
            [minor, b'$', ..] if minor.is_ascii_lowercase() => &rest[2..],
            _ => return false,
        },
    };
    let Some((cost, tail)) = rest.split_once('$') else { return false };
    cost.len() == 2 && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c)) && tail.len() == 53
}

/// Check `password` against `hash` (or, for an unknown user, spend the same work and fail).
fn verify(password: &str, hash: Option<&str>) -> bool {
    match hash {
        Some(h) => bcrypt::verify(password, h).unwrap_or(false),
        None => {
            // Same cost, fixed salt: the result is discarded.
            let _ = bcrypt::hash_with_salt(password, COST, [7u8; 16]);
            false
        }
    }
}

fn user_path() -> Path {
    let mut p = Path::new("users/{username}")
        .field(Field::new("username", FieldKind::Str).description("Username"))
        .field(Field::new("password", FieldKind::Str).sensitive().description("Password for this user"))
        .field(Field::new("password_hash", FieldKind::Str).sensitive().description("A bcrypt hash of the password, instead of the password"))
        .operations([Operation::Read, Operation::Create, Operation::Update, Operation::Delete])
        .existence_check()
        .help("Manage users allowed to authenticate.");
    for f in TokenParams::fields() {
        p = p.field(f);
    }
    p
}

impl Backend for Userpass {
    fn spec() -> Spec {
        let mut policies = Path::new("users/{username}/policies")
            .field(Field::new("username", FieldKind::Str))
            .operations([Operation::Update])
            .help("Update the policies associated with the user.");
        for f in TokenParams::fields().into_iter().filter(|f| f.name == "token_policies" || f.name == "policies") {
            policies = policies.field(f);
        }
        Spec::auth("Users are authenticated with a username and password.")
            .path(Path::new("users").operations([Operation::List]).help("List users."))
            .path(Path::new("users/").operations([Operation::List]).help("List users."))
            .path(
                Path::new("users/{username}/password")
                    .field(Field::new("username", FieldKind::Str))
                    .field(Field::new("password", FieldKind::Str).sensitive().description("New password"))
                    .field(Field::new("password_hash", FieldKind::Str).sensitive().description("A bcrypt hash of the new password"))
                    .operations([Operation::Update])
                    .help("Reset the user's password."),
            )
            .path(policies)
            .path(user_path())
            .path(
                Path::new("login/{username}")
                    .field(Field::new("username", FieldKind::Str))
                    .field(Field::new("password", FieldKind::Str).sensitive().description("Password"))
                    .operations([Operation::Update])
                    .unauthenticated()
                    .help("Log in with a username and password."),
            )
    }

    fn handle(req: Request) -> Result<Response, Error> {
        match req.path_index {
            0 | 1 => {
                let keys: Vec<String> = storage::list(USER_PREFIX)?.into_iter().filter(|k| !k.ends_with('/')).collect();
                Response::list(keys)
            }
            2 => {
                let name = username(&req)?;
                let mut user = load(&name)?.ok_or_else(|| Error::InvalidRequest("username does not exist".into()))?;
                user.password_hash = new_hash(&req)?.ok_or_else(|| Error::InvalidRequest("must provide either password or password_hash".into()))?;
                save(&name, &user)?;
                Ok(Response::empty())
            }
            3 => {
                let name = username(&req)?;
                let mut user = load(&name)?.ok_or_else(|| Error::InvalidRequest("username does not exist".into()))?;
                user.token.update(&req)?;
                save(&name, &user)?;
                Ok(Response::empty())
            }
            4 => users(req),
            5 => login(req),
            _ => Err(Error::UnsupportedPath),
        }
    }

    fn exists(req: Request) -> Result<bool, Error> {
        Ok(load(&username(&req)?)?.is_some())
    }
}

fn users(req: Request) -> Result<Response, Error> {
    let name = username(&req)?;
    match req.operation {
        Operation::Read => {
            let user = load(&name)?.ok_or(Error::NotFound)?;
            let mut data = serde_json::Map::new();
            user.token.write_json(&mut data);
            Ok(Response::data(serde_json::Value::Object(data)))
        }
        Operation::Delete => {
            storage::delete(&format!("{USER_PREFIX}{name}"))?;
            Ok(Response::empty())
        }
        Operation::Create | Operation::Update => {
            let existing = load(&name)?;
            let mut user = existing.clone().unwrap_or_default();
            match new_hash(&req)? {
                Some(h) => user.password_hash = h,
                None if existing.is_none() => return Err(Error::InvalidRequest("must provide either password or password_hash".into())),
                None => {}
            }
            user.token.update(&req)?;
            save(&name, &user)?;
            Ok(Response::empty())
        }
        _ => Err(Error::UnsupportedOperation),
    }
}

fn login(req: Request) -> Result<Response, Error> {
    let name = username(&req)?;
    let password = req.str("password").unwrap_or("");
    if password.is_empty() {
        return Err(Error::InvalidRequest("missing password".into()));
    }
    let user = load(&name)?;
    let ok = verify(password, user.as_ref().map(|u| u.password_hash.as_str()));
    let Some(user) = user.filter(|_| ok) else { return Err(Error::InvalidRequest(BAD_LOGIN.into())) };
    if !cidrs_allow(&user.token.bound_cidrs, req.remote_addr.as_deref()) {
        return Ok(Response::error(403, "permission denied"));
    }
    let auth = user.token.auth(&name, &name, vec![("username".into(), name.clone())]);
    Ok(Response { auth: Some(auth), ..Response::default() })
}

tresor_sdk::export!(Userpass);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tresor_sdk::Value;

    fn req(op: Operation, index: usize, path: &str, user: &str) -> Request {
        let mut r = Request::new(op, path).capture("username", user);
        r.path_index = index;
        r
    }

    #[test]
    fn a_user_can_be_written_with_a_bcrypt_hash_and_logs_in_with_its_password() {
        storage::reset_mock();
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        assert!(valid_bcrypt(&hash) && valid_bcrypt(&hash.replacen("$2b$", "$2a$", 1)) && valid_bcrypt(&hash.replacen("$2b$", "$2$", 1)));
        for bad in ["abc", "$2b$03$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &hash[..hash.len() - 1], "$3a$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            assert!(!valid_bcrypt(bad), "{bad}");
        }
        let both = req(Operation::Create, 4, "users/eve", "eve").with("password", Value::Str("x".into())).with("password_hash", Value::Str(hash.clone()));
        assert_eq!(Userpass::handle(both).unwrap_err(), Error::InvalidRequest("only one of password or password_hash may be provided".into()));
        Userpass::handle(req(Operation::Create, 4, "users/eve", "eve").with("password_hash", Value::Str(hash))).unwrap();
        let login = |pw: &str| Userpass::handle(req(Operation::Update, 5, "login/eve", "eve").with("password", Value::Str(pw.into())));
        assert!(login("s3cret").unwrap().auth.is_some());
        assert!(login("wrong").is_err());
    }

    #[test]
    fn create_read_login_and_wrong_password() {
        storage::reset_mock();
        let w = req(Operation::Create, 4, "users/Alice", "Alice")
            .with("password", Value::Str("s3cret".into()))
            .with("token_policies", Value::StrList(vec!["app".into()]))
            .with("token_ttl", Value::Duration(3600));
        Userpass::handle(w).unwrap();
        let r = Userpass::handle(req(Operation::Read, 4, "users/alice", "alice")).unwrap();
        let data = r.data.unwrap();
        assert_eq!(data["token_policies"], json!(["app"]));
        assert_eq!(data["token_ttl"], 3600);
        assert!(data.get("password").is_none() && data.get("password_hash").is_none());

        let ok = Userpass::handle(req(Operation::Update, 5, "login/alice", "alice").with("password", Value::Str("s3cret".into()))).unwrap();
        let auth = ok.auth.unwrap();
        assert_eq!(auth.policies, vec!["app".to_string()]);
        assert_eq!(auth.metadata, vec![("username".to_string(), "alice".to_string())]);
        assert_eq!(auth.lease.ttl, 3600);

        for (user, pw) in [("alice", "wrong"), ("nobody", "s3cret")] {
            let e = Userpass::handle(req(Operation::Update, 5, "login/x", user).with("password", Value::Str(pw.into()))).unwrap_err();
            assert_eq!(e, Error::InvalidRequest(BAD_LOGIN.into()));
        }
    }

    #[test]
    fn password_is_stored_as_bcrypt_cost_10() {
        storage::reset_mock();
        Userpass::handle(req(Operation::Create, 4, "users/bob", "bob").with("password", Value::Str("pw".into()))).unwrap();
        let u = load("bob").unwrap().unwrap();
        assert!(u.password_hash.starts_with("$2b$10$"), "{}", u.password_hash);
        assert!(!u.password_hash.contains("pw\""));
    }
}
