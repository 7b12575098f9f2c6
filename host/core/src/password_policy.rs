//! `sys/policies/password`: Vault's password policies. A policy is HCL naming a length and
//! charset rules (`rule "charset" { charset = "abc" min-chars = 2 }`); `…/generate` draws a
//! password from the host CSPRNG that satisfies every rule. Policies live in the barrier under
//! [`PREFIX`]; only the text given is stored (it is parsed again on use).

use serde_json::json;
use tresor_logical::{Error, Map, Storage as _};

use crate::core::Core;
use crate::hcl::{self, Item, Value};

/// Where policies are stored (barrier keys `PREFIX<name>`).
const PREFIX: &str = "core/password-policy/";
/// Vault's bounds on a password's length.
const MIN_LENGTH: usize = 4;
const MAX_LENGTH: usize = 100;
/// Draws tried before `generate` gives up (rules checked at write make this practically unreachable).
const MAX_ATTEMPTS: usize = 10_000;

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswordPolicy {
    length: usize,
    rules: Vec<Charset>,
    /// The union of the rules' characters, in first-seen order.
    alphabet: Vec<char>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Charset {
    chars: Vec<char>,
    min: usize,
}

impl Charset {
    fn passes(&self, password: &[char]) -> bool {
        password.iter().filter(|c| self.chars.contains(c)).count() >= self.min
    }
}

fn int(v: &Value, what: &str) -> Result<usize, String> {
    match v {
        Value::Num(n) if *n >= 0.0 && n.fract() == 0.0 => Ok(*n as usize),
        Value::Str(s) => s.trim().parse().map_err(|_| format!("{what} must be a non-negative integer")),
        _ => Err(format!("{what} must be a non-negative integer")),
    }
}

impl PasswordPolicy {
    /// Parse a policy's HCL; the error is the text after Vault's "invalid password policy: ".
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let items = hcl::parse(text).map_err(|e| format!("unable to decode: {e}"))?;
        let mut length = None;
        let mut rules = Vec::new();
        for item in items {
            match item {
                Item::Attr(key, value) if key == "length" => length = Some(int(&value, "length")?),
                Item::Attr(key, _) => return Err(format!("unrecognized field {key:?}")),
                Item::Block(b) if b.ident == "rule" => {
                    let kind = b.labels.first().map(String::as_str).unwrap_or("");
                    if kind != "charset" {
                        return Err(format!("unable to parse rules: unable to parse rule {kind}: unrecognized rule type {kind}"));
                    }
                    let (mut chars, mut min) = (None, 0);
                    for inner in b.body {
                        match inner {
                            Item::Attr(k, Value::Str(s)) if k == "charset" => chars = Some(s),
                            Item::Attr(k, v) if k == "min-chars" || k == "min_chars" => min = int(&v, "min-chars")?,
                            Item::Attr(k, _) => return Err(format!("unrecognized charset field {k:?}")),
                            Item::Block(inner) => return Err(format!("unexpected block {:?} in a charset rule", inner.ident)),
                        }
                    }
                    let mut set: Vec<char> = Vec::new();
                    for c in chars.unwrap_or_default().chars() {
                        if !set.contains(&c) {
                            set.push(c);
                        }
                    }
                    if set.is_empty() {
                        return Err("charset rule: no characters specified".into());
                    }
                    rules.push(Charset { chars: set, min });
                }
                Item::Block(b) => return Err(format!("unrecognized block {:?}", b.ident)),
            }
        }
        let length = length.unwrap_or(0);
        if rules.is_empty() {
            return Err(multierror("no charset specified"));
        }
        let needed: usize = rules.iter().map(|r| r.min).sum();
        if needed > length {
            return Err(multierror(&format!("specified rules require at least {needed} characters but {length} is specified")));
        }
        let mut alphabet: Vec<char> = Vec::new();
        for c in rules.iter().flat_map(|r| r.chars.iter()) {
            if !alphabet.contains(c) {
                alphabet.push(*c);
            }
        }
        Ok(Self { length, rules, alphabet })
    }

    /// Vault's checks at write: the length bounds, and that the rules can be met at all (the
    /// minimums fit in the length).
    fn check(&self) -> Result<(), Error> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&self.length) {
            return Err(coded(&format!("passwords must be between {MIN_LENGTH} and {MAX_LENGTH} characters")));
        }
        Ok(())
    }

    /// A password: `length` characters drawn uniformly from the rules' union until every rule holds.
    pub(crate) fn generate(&self) -> Result<String, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let password: Vec<char> = (0..self.length).map(|_| self.alphabet[uniform(self.alphabet.len())]).collect();
            if self.rules.iter().all(|r| r.passes(&password)) {
                return Ok(password.into_iter().collect());
            }
        }
        Err(Error::Internal("failed to generate password from policy: too many attempts".into()))
    }
}

/// Vault's rendering of one error (its `multierror`), which its coded errors carry.
fn multierror(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

/// A 400 as Vault's `CodedError` answers it.
fn coded(msg: &str) -> Error {
    Error::invalid(multierror(msg))
}

/// A uniform index below `n` (rejection sampling over the host CSPRNG; `n` is at most a few hundred).
fn uniform(n: usize) -> usize {
    let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let mut b = [0u8; 4];
        rand::fill(&mut b);
        let v = u32::from_le_bytes(b);
        if v < zone {
            return (v % n) as usize;
        }
    }
}

/// The policy text as sent: base64 of the HCL is accepted too, as Vault does.
fn decode(text: &str) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| text.to_string()),
        Err(_) => text.to_string(),
    }
}

impl Core {
    /// `sys/policies/password[/<name>[/generate]]`; `rest` follows `policies/password`.
    pub(crate) async fn password_policy(&self, rest: &str, op: tresor_logical::Operation, data: &Map) -> Result<Option<Map>, Error> {
        use tresor_logical::Operation;
        let rest = rest.trim_matches('/');
        let (name, generate) = match rest.strip_suffix("/generate") {
            Some(name) => (name, true),
            None => (rest, false),
        };
        if name.is_empty() {
            return match op {
                Operation::List | Operation::Read if !generate => {
                    let keys = self.barrier.list(PREFIX).await?;
                    if keys.is_empty() {
                        return Err(Error::NotFound);
                    }
                    Ok(Some(crate::util::obj([("keys", json!(keys))])))
                }
                _ => Err(coded("missing policy name")),
            };
        }
        if name.contains('/') {
            return Err(Error::UnsupportedPath);
        }
        let key = format!("{PREFIX}{name}");
        let stored = || async {
            let raw = self.barrier.get(&key).await?.ok_or_else(|| Error::Missing("policy does not exist".into()))?;
            String::from_utf8(raw).map_err(|_| Error::Internal("failed to retrieve password policy".into()))
        };
        match (op, generate) {
            (Operation::Read, true) => {
                let policy = PasswordPolicy::parse(&stored().await?)
                    .map_err(|_| Error::Internal("stored password policy configuration failed to parse".into()))?;
                Ok(Some(crate::util::obj([("password", json!(policy.generate()?))])))
            }
            (_, true) => Err(Error::UnsupportedOperation),
            (Operation::Read, false) => Ok(Some(crate::util::obj([("policy", json!(stored().await?))]))),
            (Operation::Update | Operation::Create, false) => {
                let text = crate::util::field::str(data, "policy")?.filter(|t| !t.is_empty()).ok_or_else(|| coded("missing policy"))?;
                let text = decode(text);
                let policy = PasswordPolicy::parse(&text).map_err(|e| coded(&format!("invalid password policy: {e}")))?;
                policy.check()?;
                self.barrier.put(&key, text.as_bytes()).await?;
                Ok(None)
            }
            (Operation::Delete, false) => {
                self.barrier.delete(&key).await?;
                Ok(None)
            }
            _ => Err(Error::UnsupportedOperation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOWER_DIGITS: &str = r#"
length = 20
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 4
}
"#;

    #[test]
    fn generated_passwords_meet_every_rule() {
        let policy = PasswordPolicy::parse(LOWER_DIGITS).unwrap();
        policy.check().unwrap();
        for _ in 0..200 {
            let p = policy.generate().unwrap();
            assert_eq!(p.chars().count(), 20);
            assert!(p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{p}");
            assert!(p.chars().filter(char::is_ascii_digit).count() >= 4, "{p}");
            assert!(p.chars().any(|c| c.is_ascii_lowercase()), "{p}");
        }
        // Each character of the union turns up (uniform draws, not a fixed pattern).
        let seen: std::collections::HashSet<char> = (0..200).flat_map(|_| policy.generate().unwrap().chars().collect::<Vec<_>>()).collect();
        assert_eq!(seen.len(), 36);
    }

    #[test]
    fn vaults_refusals() {
        let check = |text: &str| PasswordPolicy::parse(text).map_err(|e| e.to_string()).and_then(|p| p.check().map_err(|e| e.to_string()));
        let bounds = "1 error occurred:\n\t* passwords must be between 4 and 100 characters\n\n";
        assert_eq!(check("length = 3\nrule \"charset\" { charset = \"ab\" }").unwrap_err(), bounds);
        assert_eq!(check("length = 101\nrule \"charset\" { charset = \"ab\" }").unwrap_err(), bounds);
        assert_eq!(
            check("length = 4\nrule \"charset\" { charset = \"ab\" min-chars = 3 }\nrule \"charset\" { charset = \"12\" min-chars = 2 }").unwrap_err(),
            "1 error occurred:\n\t* specified rules require at least 5 characters but 4 is specified\n\n"
        );
        assert_eq!(check("length = 8").unwrap_err(), "1 error occurred:\n\t* no charset specified\n\n");
        assert_eq!(
            check("length = 8\nrule \"nope\" { charset = \"ab\" }").unwrap_err(),
            "unable to parse rules: unable to parse rule nope: unrecognized rule type nope"
        );
        assert!(check("length = ").unwrap_err().starts_with("unable to decode: "));
        assert!(check(LOWER_DIGITS).is_ok());
    }

    #[test]
    fn base64_policies_are_decoded() {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(LOWER_DIGITS);
        assert_eq!(decode(&encoded), LOWER_DIGITS);
        assert_eq!(decode(LOWER_DIGITS), LOWER_DIGITS);
    }
}
