//! Declaring paths and fields. The host enforces them; your handler only sees valid requests.

/// A logical operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET`
    Read,
    /// `POST`/`PUT` on a new item (with an existence check).
    Create,
    /// `POST`/`PUT`
    Update,
    /// `PATCH` (JSON merge patch)
    Patch,
    /// `DELETE`
    Delete,
    /// `LIST`
    List,
}

/// How the host validates and coerces a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// String.
    Str,
    /// Signed integer.
    Int,
    /// Boolean.
    Bool,
    /// Seconds (integers or `"1h"`-style durations).
    Duration,
    /// List of strings (or a comma-separated string).
    StrList,
    /// Object of strings.
    StrMap,
    /// Any JSON value.
    Json,
}

/// A declared field.
///
/// ```
/// use tresor_sdk::{Field, FieldKind};
/// let f = Field::new("ttl", FieldKind::Duration).description("Lease TTL").default_json("3600");
/// assert_eq!(f.name, "ttl");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: FieldKind,
    /// Help text.
    pub description: String,
    /// Required on writes.
    pub required: bool,
    /// Never echoed or audited in the clear.
    pub sensitive: bool,
    /// Default, as JSON text.
    pub default: Option<String>,
}

impl Field {
    /// A field of `kind`.
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Self { name: name.into(), kind, description: String::new(), required: false, sensitive: false, default: None }
    }
    /// Builder: help text.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    /// Builder: required on writes.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Builder: sensitive (passwords, keys).
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// Builder: default value as JSON text (`"10"`, `"\"abc\""`, `"true"`).
    pub fn default_json(mut self, json: impl Into<String>) -> Self {
        self.default = Some(json.into());
        self
    }
}

/// A declared path: pattern, fields, operations.
///
/// Patterns are literal segments, `{name}` for one segment and a final `{name*}` for the rest.
///
/// ```
/// use tresor_sdk::{Field, FieldKind, Operation, Path};
/// let p = Path::new("roles/{name}")
///     .field(Field::new("ttl", FieldKind::Duration))
///     .operations([Operation::Read, Operation::Update, Operation::Delete]);
/// assert_eq!(p.pattern, "roles/{name}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Pattern.
    pub pattern: String,
    /// Fields.
    pub fields: Vec<Field>,
    /// Supported operations.
    pub operations: Vec<Operation>,
    /// Ask `exists` to tell create from update.
    pub existence_check: bool,
    /// No token needed (login paths).
    pub unauthenticated: bool,
    /// Undeclared fields pass through as JSON.
    pub allow_unknown_fields: bool,
    /// Help text.
    pub help: String,
}

impl Path {
    /// A path with no fields or operations yet.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            fields: Vec::new(),
            operations: Vec::new(),
            existence_check: false,
            unauthenticated: false,
            allow_unknown_fields: false,
            help: String::new(),
        }
    }
    /// Builder: add a field.
    pub fn field(mut self, f: Field) -> Self {
        self.fields.push(f);
        self
    }
    /// Builder: set the operations.
    pub fn operations(mut self, ops: impl IntoIterator<Item = Operation>) -> Self {
        self.operations = ops.into_iter().collect();
        self
    }
    /// Builder: enable the existence check.
    pub fn existence_check(mut self) -> Self {
        self.existence_check = true;
        self
    }
    /// Builder: reachable without a token.
    pub fn unauthenticated(mut self) -> Self {
        self.unauthenticated = true;
        self
    }
    /// Builder: accept undeclared fields.
    pub fn allow_unknown_fields(mut self) -> Self {
        self.allow_unknown_fields = true;
        self
    }
    /// Builder: help text.
    pub fn help(mut self, h: impl Into<String>) -> Self {
        self.help = h.into();
        self
    }
}

/// The whole declaration of a backend.
///
/// ```
/// use tresor_sdk::{Path, Spec};
/// let s = Spec::secrets("Example engine").path(Path::new("config"));
/// assert!(!s.auth);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// An auth method (else a secrets engine).
    pub auth: bool,
    /// Paths in match order.
    pub paths: Vec<Path>,
    /// Help text.
    pub help: String,
}

impl Spec {
    /// A secrets engine.
    pub fn secrets(help: impl Into<String>) -> Self {
        Self { auth: false, paths: Vec::new(), help: help.into() }
    }
    /// An auth method.
    pub fn auth(help: impl Into<String>) -> Self {
        Self { auth: true, paths: Vec::new(), help: help.into() }
    }
    /// Builder: add a path (first match wins).
    pub fn path(mut self, p: Path) -> Self {
        self.paths.push(p);
        self
    }
}
