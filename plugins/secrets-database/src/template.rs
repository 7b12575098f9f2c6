//! Names and statements.
//!
//! - [`username`]: Vault's `username_template`, a Go text/template, of which the subset Vault's
//!   documentation uses is implemented: `{{.DisplayName}}`, `{{.RoleName}}`, string and number
//!   literals, parentheses, pipes, and the functions `printf` (`%s`, `%d`), `truncate`,
//!   `truncate_sha256`, `lowercase`, `uppercase`, `replace`, `sha256`, `random`, `unix_time`,
//!   `unix_time_millis`, `uuid`. Anything else is a clear error at config time.
//! - [`statements`]: a role's statement lists, each element split on `;` as Vault's PostgreSQL
//!   plugin does, with `{{name}}`/`{{username}}`, `{{password}}` and `{{expiration}}` substituted.

use sha2::Digest as _;
use tresor_sdk::sql::Statement;

/// Vault's default for PostgreSQL (`v-<display>-<role>-<random>-<unix time>`, at most 63 bytes,
/// PostgreSQL's identifier limit).
pub const DEFAULT_USERNAME_TEMPLATE: &str =
    r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;

/// What a username template can refer to.
pub struct NameInput<'a> {
    /// The caller token's display name.
    pub display_name: &'a str,
    /// The role.
    pub role_name: &'a str,
    /// Unix time, seconds.
    pub unix_time: i64,
}

/// Render `template` (Go text/template subset).
pub fn username(template: &str, input: &NameInput<'_>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("unclosed {{ in username_template")?;
        let expr = after[..end].trim().trim_start_matches('-').trim_end_matches('-').trim();
        let tokens = tokenize(expr)?;
        let mut pos = 0;
        let value = pipeline(&tokens, &mut pos, input)?;
        if pos != tokens.len() {
            return Err(format!("unexpected {:?} in username_template", tokens[pos]));
        }
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Str(String),
    Num(i64),
    Ident(String),
    Pipe,
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            '"' => {
                let mut lit = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string in username_template".into()),
                        Some('"') => break,
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some('n') => lit.push('\n'),
                                Some(other) => lit.push(*other),
                                None => return Err("unterminated string in username_template".into()),
                            }
                            i += 2;
                            continue;
                        }
                        Some(ch) => lit.push(*ch),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(lit));
            }
            '.' => {
                let start = i + 1;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Field(chars[start..i].iter().collect()));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let n: String = chars[start..i].iter().collect();
                out.push(Tok::Num(n.parse().map_err(|_| "number too large in username_template")?));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?} in username_template")),
        }
    }
    Ok(out)
}

/// `command ('|' command)*`; a piped value is the last argument of the next command, as in Go.
fn pipeline(tokens: &[Tok], pos: &mut usize, input: &NameInput<'_>) -> Result<String, String> {
    let mut value = command(tokens, pos, input, None)?;
    while tokens.get(*pos) == Some(&Tok::Pipe) {
        *pos += 1;
        value = command(tokens, pos, input, Some(value))?;
    }
    Ok(value)
}

fn operand(tokens: &[Tok], pos: &mut usize, input: &NameInput<'_>) -> Result<String, String> {
    let tok = tokens.get(*pos).ok_or("missing operand in username_template")?.clone();
    *pos += 1;
    match tok {
        Tok::Field(f) => match f.as_str() {
            "DisplayName" => Ok(input.display_name.to_string()),
            "RoleName" => Ok(input.role_name.to_string()),
            other => Err(format!("unknown field .{other} in username_template (use .DisplayName or .RoleName)")),
        },
        Tok::Str(s) => Ok(s),
        Tok::Num(n) => Ok(n.to_string()),
        Tok::Open => {
            let v = pipeline(tokens, pos, input)?;
            if tokens.get(*pos) != Some(&Tok::Close) {
                return Err("missing ) in username_template".into());
            }
            *pos += 1;
            Ok(v)
        }
        Tok::Ident(name) => call(&name, Vec::new(), input),
        Tok::Pipe | Tok::Close => Err("unexpected | or ) in username_template".into()),
    }
}

fn command(tokens: &[Tok], pos: &mut usize, input: &NameInput<'_>, piped: Option<String>) -> Result<String, String> {
    let Some(Tok::Ident(name)) = tokens.get(*pos).cloned() else {
        if piped.is_some() {
            return Err("a pipe must lead to a function in username_template".into());
        }
        return operand(tokens, pos, input);
    };
    *pos += 1;
    let mut args = Vec::new();
    while let Some(t) = tokens.get(*pos) {
        if matches!(t, Tok::Pipe | Tok::Close) {
            break;
        }
        args.push(operand(tokens, pos, input)?);
    }
    args.extend(piped);
    call(&name, args, input)
}

fn int(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("expected a number, got {s:?} in username_template"))
}

fn call(name: &str, args: Vec<String>, input: &NameInput<'_>) -> Result<String, String> {
    let want = |n: usize| if args.len() == n { Ok(()) } else { Err(format!("{name} takes {n} argument(s) in username_template")) };
    match name {
        "printf" => {
            let (fmt, rest) = args.split_first().ok_or("printf needs a format")?;
            printf(fmt, rest)
        }
        "truncate" => {
            want(2)?;
            let n = int(&args[0])?;
            Ok(args[1].chars().take(n).collect())
        }
        "truncate_sha256" => {
            want(2)?;
            let n = int(&args[0])?;
            let s = &args[1];
            if s.chars().count() <= n {
                return Ok(s.clone());
            }
            let keep: String = s.chars().take(n.saturating_sub(8)).collect();
            let hash = hex(&sha2::Sha256::digest(s.as_bytes()));
            Ok(format!("{keep}{}", &hash[..8.min(n)]))
        }
        "lowercase" => {
            want(1)?;
            Ok(args[0].to_lowercase())
        }
        "uppercase" => {
            want(1)?;
            Ok(args[0].to_uppercase())
        }
        "replace" => {
            want(3)?;
            Ok(args[2].replace(&args[0], &args[1]))
        }
        "sha256" => {
            want(1)?;
            Ok(hex(&sha2::Sha256::digest(args[0].as_bytes())))
        }
        "random" => {
            want(1)?;
            crate::password::random_alphanumeric(int(&args[0])?.min(256)).map_err(|e| e.to_string())
        }
        "unix_time" => {
            want(0)?;
            Ok(input.unix_time.to_string())
        }
        "unix_time_millis" => {
            want(0)?;
            Ok((input.unix_time * 1000).to_string())
        }
        "uuid" => {
            want(0)?;
            let b = crate::password::random_bytes(16).map_err(|e| e.to_string())?;
            let h = hex(&b);
            Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
        }
        other => Err(format!("function {other:?} is not supported in username_template")),
    }
}

fn printf(fmt: &str, args: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'd' | 'v') => out.push_str(args.next().ok_or("printf: too few arguments")?),
            other => return Err(format!("printf verb %{} is not supported in username_template", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Values substituted into statements.
pub struct StatementInput<'a> {
    /// `{{name}}` and `{{username}}`.
    pub name: &'a str,
    /// `{{password}}`.
    pub password: &'a str,
    /// `{{expiration}}` (`2006-01-02 15:04:05-0700`).
    pub expiration: &'a str,
}

/// Split each element of `list` on `;` (Vault's PostgreSQL plugin does the same) and substitute
/// the template variables: literal statements, ready for the host. Empty statements are dropped.
pub fn statements(list: &[String], input: &StatementInput<'_>) -> Vec<Statement> {
    list.iter()
        .flat_map(|s| s.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Statement::raw(
                s.replace("{{name}}", input.name)
                    .replace("{{username}}", input.name)
                    .replace("{{password}}", input.password)
                    .replace("{{expiration}}", input.expiration),
            )
        })
        .collect()
}

/// `secs` (Unix time) as `2006-01-02 15:04:05+0000`, the format of Vault's `{{expiration}}`.
pub fn expiration(secs: i64) -> String {
    let rfc = tresor_sdk::system::rfc3339(secs, 0);
    format!("{} {}+0000", &rfc[..10], &rfc[11..19])
}

/// A PostgreSQL identifier in double quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> NameInput<'static> {
        NameInput { display_name: "userpass-alice-long", role_name: "readonly", unix_time: 1_795_426_901 }
    }

    #[test]
    fn the_default_template_matches_vaults_shape() {
        let name = username(DEFAULT_USERNAME_TEMPLATE, &NameInput { display_name: "root", role_name: "ro", unix_time: 1_795_426_901 }).expect("renders");
        let parts: Vec<&str> = name.split('-').collect();
        assert_eq!(parts[0], "v");
        assert_eq!(parts[1], "root");
        assert_eq!(parts[2], "ro");
        assert_eq!(parts[3].len(), 20);
        assert!(parts[3].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(parts[4], "1795426901");
        let long = username(DEFAULT_USERNAME_TEMPLATE, &input()).expect("renders");
        assert!(long.starts_with("v-userpass-readonly-"), "{long}");
        assert!(long.len() <= 63);
        assert_ne!(username(DEFAULT_USERNAME_TEMPLATE, &input()), username(DEFAULT_USERNAME_TEMPLATE, &input()));
    }

    #[test]
    fn functions_and_pipes() {
        let r = |t: &str| username(t, &input());
        assert_eq!(r("{{.RoleName | uppercase}}").as_deref(), Ok("READONLY"));
        assert_eq!(r("app_{{.RoleName | truncate 4 | lowercase}}").as_deref(), Ok("app_read"));
        assert_eq!(r(r#"{{ replace "-" "_" .DisplayName }}"#).as_deref(), Ok("userpass_alice_long"));
        assert_eq!(r(r#"{{printf "%s.%s" .RoleName "x"}}"#).as_deref(), Ok("readonly.x"));
        assert_eq!(r("{{unix_time}}").as_deref(), Ok("1795426901"));
        assert_eq!(r("{{.DisplayName | truncate_sha256 10}}").map(|s| s.len()), Ok(10));
        assert!(r("{{.Nope}}").is_err());
        assert!(r("{{exec \"rm\"}}").is_err());
        assert!(r("{{.RoleName").is_err());
    }

    #[test]
    fn statements_are_split_and_filled() {
        let list = vec![
            r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"#.to_string(),
            r#"GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}"; ;"#.to_string(),
        ];
        let out: Vec<String> =
            statements(&list, &StatementInput { name: "v-x", password: "pw", expiration: "2026-11-23 10:41:46+0000" }).into_iter().map(|s| s.sql).collect();
        assert_eq!(
            out,
            vec![
                r#"CREATE ROLE "v-x" WITH LOGIN PASSWORD 'pw' VALID UNTIL '2026-11-23 10:41:46+0000'"#.to_string(),
                r#"GRANT SELECT ON ALL TABLES IN SCHEMA public TO "v-x""#.to_string(),
            ]
        );
        assert_eq!(expiration(1_795_430_506), "2026-11-23 10:41:46+0000");
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }
}
