//! Outbound network grants of a mount (`allowed_outbound_hosts`): which hosts and Unix sockets its
//! plugin may reach through the host's capabilities (the `sql` interface). Nothing is granted by
//! default. Parsed once when a mount is enabled or tuned, so a bad entry is a 400 that changes nothing.

/// Which outbound destinations a mount may reach (`allowed_outbound_hosts`). Entries:
/// `host`, `host:port`, `*.suffix[:port]`, `*` (anything), optionally with a scheme
/// (`postgres://db:5432`; then only that scheme), `[v6addr]:port`, and absolute Unix socket
/// directories (`/run/postgresql`, or `unix:/run/postgresql`).
#[derive(Debug, Clone, Default)]
pub struct Grants(Vec<Grant>);

#[derive(Debug, Clone, PartialEq)]
enum Grant {
    Net { scheme: Option<String>, host: String, port: Option<u16> },
    Socket(String),
}

/// Why an `allowed_outbound_hosts` entry was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid allowed_outbound_hosts entry {0:?}: {1}")]
pub struct GrantError(String, &'static str);

impl Grants {
    /// Parse the mount's entries (trimmed; empty entries are ignored).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, GrantError> {
        let mut out = Vec::new();
        for raw in entries {
            let entry = raw.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let bad = |why| GrantError(entry.to_string(), why);
            if let Some(path) = entry.strip_prefix("unix:").map(|p| p.trim_start_matches("//")).or(entry.starts_with('/').then_some(entry)) {
                if !path.starts_with('/') || path.split('/').any(|s| s == "..") {
                    return Err(bad("a Unix socket directory must be an absolute path"));
                }
                out.push(Grant::Socket(path.trim_end_matches('/').to_string()));
                continue;
            }
            let (scheme, rest) = match entry.split_once("://") {
                Some((s, r)) => (Some(normal_scheme(&s.to_ascii_lowercase())), r),
                None => (None, entry),
            };
            let rest = rest.trim_end_matches('/');
            let (host, port) = split_host_port(rest).ok_or_else(|| bad("expected host, host:port or *"))?;
            let port = match port {
                None | Some("*") => None,
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad("port must be a number or *"))?),
            };
            let host = host.to_ascii_lowercase();
            let wildcard_ok = host == "*" || host.strip_prefix("*.").is_some_and(|suffix| !suffix.is_empty() && !suffix.contains('*'));
            if host.is_empty() || host.contains('/') || (host.contains('*') && !wildcard_ok) {
                return Err(bad("host must be a name, an address, *.suffix or *"));
            }
            out.push(Grant::Net { scheme, host, port });
        }
        Ok(Self(out))
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// May the mount connect to `host:port` over `scheme`?
    pub fn allows_net(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme = normal_scheme(scheme);
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.0.iter().any(|g| match g {
            Grant::Net { scheme: s, host: h, port: p } => {
                s.as_ref().is_none_or(|s| *s == scheme)
                    && p.is_none_or(|p| p == port)
                    && (h == "*" || *h == host || h.strip_prefix("*.").is_some_and(|suffix| host.ends_with(&format!(".{suffix}"))))
            }
            Grant::Socket(_) => false,
        })
    }

    /// May the mount connect through a Unix socket in directory `dir`?
    pub fn allows_socket(&self, dir: &str) -> bool {
        let dir = dir.trim_end_matches('/');
        self.0.iter().any(|g| matches!(g, Grant::Socket(d) if d == dir))
    }
}

fn normal_scheme(s: &str) -> String {
    if s == "postgresql" { "postgres".into() } else { s.to_string() }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        return match after {
            "" => Some((addr, None)),
            p => Some((addr, Some(p.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => Some((s, None)), // a bare IPv6 address
        Some((h, p)) => Some((h, Some(p))),
        None => Some((s, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_match_host_port_wildcards_and_sockets() {
        let g = Grants::parse(&["127.0.0.1:5432", "db.internal", "*.corp.example:6432", "postgres://pg.example", "/run/pgsock/", "[::1]:5432"]).expect("valid");
        assert!(g.allows_net("postgres", "127.0.0.1", 5432));
        assert!(!g.allows_net("postgres", "127.0.0.1", 5433));
        assert!(g.allows_net("postgres", "DB.internal", 1));
        assert!(g.allows_net("postgres", "a.corp.example", 6432));
        assert!(!g.allows_net("postgres", "corp.example", 6432));
        assert!(!g.allows_net("postgres", "evilcorp.example", 6432));
        assert!(g.allows_net("postgresql", "pg.example", 5432));
        assert!(!g.allows_net("http", "pg.example", 5432));
        assert!(g.allows_net("postgres", "::1", 5432));
        assert!(g.allows_socket("/run/pgsock"));
        assert!(!g.allows_socket("/run"));
        assert!(!g.allows_net("postgres", "10.0.0.1", 5432));
        assert!(Grants::parse(&["*"]).expect("valid").allows_net("postgres", "anything", 1));
        assert!(Grants::default().is_empty() && !Grants::default().allows_net("postgres", "127.0.0.1", 5432));
        for bad in ["host:port", "a*b.example", "unix:relative", "/a/../b", "*.*.x"] {
            assert!(Grants::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
