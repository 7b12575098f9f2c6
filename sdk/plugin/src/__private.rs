//! Glue between the generated WIT bindings and the SDK's types; used only by [`crate::export!`].

use crate::bindings::tresor::plugin::types as wit;
use crate::{Auth, Backend, Error, FieldKind, LeaseOptions, Operation, Request, Response, Secret, TokenType, Value};

pub use crate::bindings::exports::tresor::plugin::backend::Guest;
pub use crate::bindings::exports::tresor::plugin::periodic::Guest as PeriodicGuest;
pub use wit::{Auth as WitAuth, BackendSpec as WitSpec, Error as WitError, LeaseOptions as WitLease};
pub use wit::{Request as WitRequest, Response as WitResponse, Secret as WitSecret};

fn op_to_wit(op: Operation) -> wit::Operation {
    match op {
        Operation::Read => wit::Operation::Read,
        Operation::Create => wit::Operation::Create,
        Operation::Update => wit::Operation::Update,
        Operation::Patch => wit::Operation::Patch,
        Operation::Delete => wit::Operation::Delete,
        Operation::List => wit::Operation::List,
    }
}

fn op_from_wit(op: wit::Operation) -> Operation {
    match op {
        wit::Operation::Read => Operation::Read,
        wit::Operation::Create => Operation::Create,
        wit::Operation::Update => Operation::Update,
        wit::Operation::Patch => Operation::Patch,
        wit::Operation::Delete => Operation::Delete,
        wit::Operation::List => Operation::List,
    }
}

fn kind_to_wit(k: FieldKind) -> wit::FieldKind {
    match k {
        FieldKind::Str => wit::FieldKind::Str,
        FieldKind::Int => wit::FieldKind::Int,
        FieldKind::Bool => wit::FieldKind::Boolean,
        FieldKind::Duration => wit::FieldKind::Duration,
        FieldKind::StrList => wit::FieldKind::StrList,
        FieldKind::StrMap => wit::FieldKind::StrMap,
        FieldKind::Json => wit::FieldKind::Json,
    }
}

fn error_to_wit(e: Error) -> wit::Error {
    match e {
        Error::InvalidRequest(m) => wit::Error::InvalidRequest(m),
        Error::NotFound => wit::Error::NotFound,
        Error::PermissionDenied => wit::Error::PermissionDenied,
        Error::UnsupportedPath => wit::Error::UnsupportedPath,
        Error::UnsupportedOperation => wit::Error::UnsupportedOperation,
        Error::Internal(m) => wit::Error::Internal(m),
    }
}

/// JSON text of a value: `serde_json::to_string` directly (its `Display` goes through
/// `fmt::Formatter`, measurably slower inside wasm). A `Value` always serialises.
pub(crate) fn json_text(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn lease_to_wit(l: LeaseOptions) -> wit::LeaseOptions {
    wit::LeaseOptions { ttl_seconds: l.ttl, max_ttl_seconds: l.max_ttl, renewable: l.renewable }
}

fn lease_from_wit(l: wit::LeaseOptions) -> LeaseOptions {
    LeaseOptions { ttl: l.ttl_seconds, max_ttl: l.max_ttl_seconds, renewable: l.renewable }
}

fn value_from_wit(v: wit::FieldValue) -> Value {
    match v {
        wit::FieldValue::Str(s) => Value::Str(s),
        wit::FieldValue::Int(i) => Value::Int(i),
        wit::FieldValue::Boolean(b) => Value::Bool(b),
        wit::FieldValue::Duration(d) => Value::Duration(d),
        wit::FieldValue::StrList(l) => Value::StrList(l),
        wit::FieldValue::StrMap(s) => Value::StrMap(serde_json::from_str(&s).unwrap_or_default()),
        wit::FieldValue::Json(s) => Value::Json(crate::Json::from_text(s)),
    }
}

fn request_from_wit(r: wit::Request) -> Request {
    Request {
        operation: op_from_wit(r.operation),
        path: r.path,
        path_index: r.path_index as usize,
        captures: r.captures.into_iter().collect(),
        data: r.data.into_iter().map(|(k, v)| (k, value_from_wit(v))).collect(),
        raw_body: r.raw_body,
        remote_addr: r.remote_addr,
    }
}

fn secret_from_wit(s: wit::Secret) -> Secret {
    Secret { internal: serde_json::from_str(&s.internal_data).unwrap_or_default(), lease: lease_from_wit(s.lease) }
}

fn secret_to_wit(s: Secret) -> wit::Secret {
    wit::Secret { internal_data: json_text(&s.internal), lease: lease_to_wit(s.lease) }
}

fn auth_to_wit(a: Auth) -> wit::Auth {
    wit::Auth {
        policies: a.policies,
        metadata: a.metadata,
        display_name: a.display_name,
        alias_name: a.alias_name,
        internal_data: json_text(&a.internal),
        lease: lease_to_wit(a.lease),
        num_uses: a.num_uses,
        period_seconds: a.period,
        explicit_max_ttl_seconds: a.explicit_max_ttl,
        no_default_policy: a.no_default_policy,
        bound_cidrs: a.bound_cidrs,
        token_type: match a.token_type {
            TokenType::Default => wit::TokenType::Default,
            TokenType::Service => wit::TokenType::Service,
            TokenType::Batch => wit::TokenType::Batch,
        },
    }
}

fn auth_from_wit(a: wit::Auth) -> Auth {
    Auth {
        policies: a.policies,
        metadata: a.metadata,
        display_name: a.display_name,
        alias_name: a.alias_name,
        internal: serde_json::from_str(&a.internal_data).unwrap_or_default(),
        lease: lease_from_wit(a.lease),
        num_uses: a.num_uses,
        period: a.period_seconds,
        explicit_max_ttl: a.explicit_max_ttl_seconds,
        no_default_policy: a.no_default_policy,
        bound_cidrs: a.bound_cidrs,
        token_type: match a.token_type {
            wit::TokenType::Default => TokenType::Default,
            wit::TokenType::Service => TokenType::Service,
            wit::TokenType::Batch => TokenType::Batch,
        },
    }
}

fn response_to_wit(r: Response) -> wit::Response {
    wit::Response {
        data: r.data_text.or_else(|| r.data.as_ref().map(json_text)),
        warnings: r.warnings,
        secret: r.secret.map(secret_to_wit),
        auth: r.auth.map(auth_to_wit),
        status: r.status,
        ttl_hint: r.ttl_hint,
    }
}

pub fn spec<B: Backend>() -> wit::BackendSpec {
    let s = B::spec();
    wit::BackendSpec {
        kind: if s.auth { wit::BackendKind::Auth } else { wit::BackendKind::Secrets },
        help: s.help,
        paths: s
            .paths
            .into_iter()
            .map(|p| wit::PathSpec {
                pattern: p.pattern,
                fields: p
                    .fields
                    .into_iter()
                    .map(|f| wit::FieldSpec {
                        name: f.name,
                        kind: kind_to_wit(f.kind),
                        description: f.description,
                        required: f.required,
                        sensitive: f.sensitive,
                        default_value: f.default,
                    })
                    .collect(),
                operations: p.operations.into_iter().map(op_to_wit).collect(),
                existence_check: p.existence_check,
                unauthenticated: p.unauthenticated,
                allow_unknown_fields: p.allow_unknown_fields,
                help: p.help,
            })
            .collect(),
    }
}

pub fn initialize<B: Backend>() -> Result<(), wit::Error> {
    B::initialize().map_err(error_to_wit)
}

pub fn handle<B: Backend>(req: wit::Request) -> Result<wit::Response, wit::Error> {
    B::handle(request_from_wit(req)).map(response_to_wit).map_err(error_to_wit)
}

pub fn exists<B: Backend>(req: wit::Request) -> Result<bool, wit::Error> {
    B::exists(request_from_wit(req)).map_err(error_to_wit)
}

pub fn renew_secret<B: Backend>(s: wit::Secret) -> Result<wit::LeaseOptions, wit::Error> {
    B::renew_secret(secret_from_wit(s)).map(lease_to_wit).map_err(error_to_wit)
}

pub fn revoke_secret<B: Backend>(s: wit::Secret) -> Result<(), wit::Error> {
    B::revoke_secret(secret_from_wit(s)).map_err(error_to_wit)
}

pub fn renew_auth<B: Backend>(a: wit::Auth) -> Result<wit::LeaseOptions, wit::Error> {
    B::renew_auth(auth_from_wit(a)).map(lease_to_wit).map_err(error_to_wit)
}

pub fn periodic<B: Backend>() -> Result<(), wit::Error> {
    B::periodic().map_err(error_to_wit)
}
