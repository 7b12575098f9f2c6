//! Go-style flag parsing, as the Vault CLI does it: `-name=value`, `-name value`, `--name=value`,
//! boolean flags without a value; parsing stops at the first positional argument or at `--`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// Parsed flags and the remaining positional arguments.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, Vec<String>>,
    /// Positional arguments, in order.
    pub args: Vec<String>,
}

impl Flags {
    /// Parse `argv` (without the command words) against the known boolean and valued flags.
    pub fn parse(argv: &[String], bools: &[&str], valued: &[&str]) -> Result<Self> {
        let mut flags = Flags::default();
        let mut i = 0;
        while i < argv.len() {
            let arg = &argv[i];
            if arg == "--" {
                flags.args.extend(argv[i + 1..].iter().cloned());
                break;
            }
            let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')).filter(|s| !s.is_empty()) else {
                flags.args.extend(argv[i..].iter().cloned());
                break;
            };
            let (name, inline) = match stripped.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (stripped, None),
            };
            if bools.contains(&name) {
                let value = inline.unwrap_or_else(|| "true".into());
                if !matches!(value.as_str(), "true" | "false" | "1" | "0" | "t" | "f") {
                    bail!("invalid boolean value {value:?} for -{name}");
                }
                flags.values.insert(name.to_string(), vec![value]);
            } else if valued.contains(&name) {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        match argv.get(i) {
                            Some(v) => v.clone(),
                            None => bail!("flag needs an argument: -{name}"),
                        }
                    }
                };
                flags.values.entry(name.to_string()).or_default().push(value);
            } else {
                bail!("flag provided but not defined: -{name}");
            }
            i += 1;
        }
        Ok(flags)
    }

    /// A valued flag (the last occurrence).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every occurrence of a repeatable flag (`-policy=a -policy=b`).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.values.get(name).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
    }

    /// A boolean flag (absent = false).
    pub fn is_set(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "t"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_go_style_flags() {
        let f = Flags::parse(&argv(&["-dev", "-config=x.hcl", "--format", "json", "a", "-b"]), &["dev"], &["config", "format"])
            .unwrap();
        assert!(f.is_set("dev"));
        assert_eq!(f.get("config"), Some("x.hcl"));
        assert_eq!(f.get("format"), Some("json"));
        assert_eq!(f.args, argv(&["a", "-b"]));
    }

    #[test]
    fn rejects_unknown_and_incomplete_flags() {
        assert!(Flags::parse(&argv(&["-nope"]), &[], &[]).is_err());
        assert!(Flags::parse(&argv(&["-config"]), &[], &["config"]).is_err());
        assert!(Flags::parse(&argv(&["-dev=maybe"]), &["dev"], &[]).is_err());
    }
}
