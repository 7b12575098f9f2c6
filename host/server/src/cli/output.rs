//! Output formats of the CLI: Vault's two-column table and JSON.

use serde_json::Value;

/// `-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

impl Format {
    /// Parse `-format` (also `VAULT_FORMAT`).
    pub fn parse(flag: Option<&str>) -> anyhow::Result<Self> {
        let raw = flag.map(str::to_owned).or_else(|| std::env::var("VAULT_FORMAT").ok());
        match raw.as_deref().unwrap_or("table") {
            "table" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            other => anyhow::bail!("invalid output format: {other}"),
        }
    }
}

/// A value as the table shows it: strings bare, everything else as compact JSON (Vault prints maps
/// as `map[...]`; JSON is unambiguous and still one line).
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "n/a".into(),
        other => other.to_string(),
    }
}

/// A two-column `Key / Value` table.
pub fn table(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(3);
    let mut out = format!("{:<width$}    Value\n{:<width$}    -----\n", "Key", "---");
    for (k, v) in rows {
        out.push_str(&format!("{k:<width$}    {v}\n"));
    }
    out
}

/// Pretty JSON with a trailing newline.
pub fn json(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&[("a".into(), "1".into()), ("longer".into(), "2".into())]);
        assert_eq!(t, "Key       Value\n---       -----\na         1\nlonger    2\n");
    }
}
