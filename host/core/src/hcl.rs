//! A small HCL parser (configuration files and ACL policies), lenient the way Vault's HCL1 parser is: attributes may
//! share a line (`{ address = "127.0.0.1:8200"  tls_disable = 1 }`), commas between items are optional,
//! `#`, `//` and `/* */` comments are skipped. Values: strings (with `\"`, `\\`, `\n`, `\t` escapes),
//! numbers, booleans, lists and objects. Heredocs and interpolation are not supported (rejected).

use std::fmt;

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `"text"`
    Str(String),
    /// `42`, `-1`, `1.5`
    Num(f64),
    /// `true` / `false`
    Bool(bool),
    /// `[a, b]`
    List(Vec<Value>),
    /// `{ k = v }`
    Object(Vec<Item>),
}

/// A block: `ident "label"... { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// `storage`, `listener`.
    pub ident: String,
    /// `"sqlite"`, `"tcp"`.
    pub labels: Vec<String>,
    /// Contents.
    pub body: Vec<Item>,
}

/// A body item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `key = value`
    Attr(String, Value),
    /// A nested block.
    Block(Block),
}

/// A parse error with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Eq,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let err = |line, m: &str| ParseError { line, message: m.to_string() };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    return Err(err(line, "unterminated comment"));
                }
                i += 2;
            }
            '=' => {
                out.push((Tok::Eq, line));
                i += 1;
            }
            '{' => {
                out.push((Tok::LBrace, line));
                i += 1;
            }
            '}' => {
                out.push((Tok::RBrace, line));
                i += 1;
            }
            '[' => {
                out.push((Tok::LBracket, line));
                i += 1;
            }
            ']' => {
                out.push((Tok::RBracket, line));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, line));
                i += 1;
            }
            '"' => {
                let start_line = line;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else { return Err(err(start_line, "unterminated string")) };
                    match c {
                        '"' => break,
                        '\n' => return Err(err(start_line, "newline in string")),
                        '\\' => {
                            let esc = chars.get(i + 1).copied().ok_or_else(|| err(line, "bad escape"))?;
                            s.push(match esc {
                                'n' => '\n',
                                't' => '\t',
                                '\\' => '\\',
                                '"' => '"',
                                _ => return Err(err(line, "unsupported escape")),
                            });
                            i += 1;
                        }
                        '$' if chars.get(i + 1) == Some(&'{') => return Err(err(line, "interpolation is not supported")),
                        c => s.push(c),
                    }
                    i += 1;
                }
                i += 1;
                out.push((Tok::Str(s), start_line));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == 'e' || chars[i] == 'E') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text.parse::<f64>().map_err(|_| err(line, &format!("invalid number {text:?}")))?;
                out.push((Tok::Num(n), line));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.')) {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().collect()), line));
            }
            '<' if chars.get(i + 1) == Some(&'<') => return Err(err(line, "heredocs are not supported")),
            other => return Err(err(line, &format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks.get(self.pos).or(self.toks.last()).map_or(1, |(_, l)| *l)
    }

    fn err(&self, m: impl Into<String>) -> ParseError {
        ParseError { line: self.line(), message: m.into() }
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    /// Items until `}` (when nested) or the end.
    fn body(&mut self, nested: bool) -> Result<Vec<Item>, ParseError> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None if nested => return Err(self.err("missing '}'")),
                None => return Ok(items),
                Some(Tok::RBrace) if nested => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::Ident(_) | Tok::Str(_)) => items.push(self.item()?),
                Some(other) => return Err(self.err(format!("expected a key, found {other:?}"))),
            }
        }
    }

    fn item(&mut self) -> Result<Item, ParseError> {
        let key = match self.next() {
            Some(Tok::Ident(k) | Tok::Str(k)) => k,
            _ => return Err(self.err("expected a key")),
        };
        match self.peek() {
            Some(Tok::Eq) => {
                self.pos += 1;
                Ok(Item::Attr(key, self.value()?))
            }
            _ => {
                let mut labels = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Str(l) | Tok::Ident(l)) => labels.push(l),
                        Some(Tok::LBrace) => break,
                        _ => return Err(self.err(format!("expected '=' or a block after {key:?}"))),
                    }
                }
                Ok(Item::Block(Block { ident: key, labels, body: self.body(true)? }))
            }
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::Str(s)),
            Some(Tok::Num(n)) => Ok(Value::Num(n)),
            Some(Tok::Ident(i)) if i == "true" => Ok(Value::Bool(true)),
            Some(Tok::Ident(i)) if i == "false" => Ok(Value::Bool(false)),
            Some(Tok::LBrace) => Ok(Value::Object(self.body(true)?)),
            Some(Tok::LBracket) => {
                let mut list = Vec::new();
                loop {
                    match self.peek() {
                        Some(Tok::RBracket) => {
                            self.pos += 1;
                            return Ok(Value::List(list));
                        }
                        Some(Tok::Comma) => self.pos += 1,
                        None => return Err(self.err("missing ']'")),
                        _ => list.push(self.value()?),
                    }
                }
            }
            other => Err(self.err(format!("expected a value, found {other:?}"))),
        }
    }
}

/// Parse a configuration file's text.
pub fn parse(src: &str) -> Result<Vec<Item>, ParseError> {
    let toks = lex(src)?;
    Parser { toks, pos: 0 }.body(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_style_one_line_blocks_parse() {
        let items = parse(r#"listener "tcp" { address = "127.0.0.1:8200"  tls_disable = 1 }"#).unwrap();
        let Item::Block(b) = &items[0] else { panic!() };
        assert_eq!((b.ident.as_str(), b.labels.clone()), ("listener", vec!["tcp".to_string()]));
        assert_eq!(b.body, vec![Item::Attr("address".into(), Value::Str("127.0.0.1:8200".into())), Item::Attr("tls_disable".into(), Value::Num(1.0))]);
    }

    #[test]
    fn comments_lists_objects_and_nesting() {
        let src = r#"
            # comment
            ui = true // trailing
            /* block
               comment */
            seal "shamir" {}
            audit "file" "a" { options { file_path = "/x" } }
            list = ["a", "b",]
            obj = { k = "v", n = -2 }
        "#;
        let items = parse(src).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0], Item::Attr("ui".into(), Value::Bool(true)));
        assert_eq!(items[3], Item::Attr("list".into(), Value::List(vec![Value::Str("a".into()), Value::Str("b".into())])));
    }

    #[test]
    fn errors_carry_lines() {
        let e = parse("a = 1\nb = \"open").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("x {").is_err());
        assert!(parse("x = ${var}").is_err());
        assert!(parse(r#"x = "${var}""#).is_err());
    }
}
