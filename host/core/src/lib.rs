//! The trusted core of Tresor: it owns the seal, decides who may do what, and routes requests.
//!
//! `Core::handle_request` is the request pipeline (DESIGN.md §2): sealed check → route → token →
//! authorisation → dispatch (token stripped) → response. Unauthenticated status endpoints (`sys/init`,
//! `sys/seal-status`, `sys/unseal`, `sys/health`, `sys/leader`) are methods called directly by the HTTP
//! layer and work while sealed. This crate knows no HTTP and no WebAssembly.

pub mod acl;
mod audit;
mod audited_headers;
mod catalog;
mod core;
mod cors;
mod cubbyhole;
mod expiration;
pub mod hcl;
mod loggers;
mod mount;
mod operator;
mod password_policy;
pub mod policy;
mod policy_store;
mod rotation;
mod router;
mod seal;
mod sys;
mod token;
mod token_api;
mod tools;
mod util;
mod versions;
mod wrapping;

pub use crate::core::{Core, CoreConfig, Health, LeaderStatus};
pub use crate::loggers::LogLevels;
pub use crate::cors::{CorsConfig, ALLOWED_METHODS as CORS_ALLOWED_METHODS};
pub use crate::audit::{AuditDeviceConfig, AUDIT_TABLE_KEY};
pub use crate::expiration::{Clock, ManualClock, SystemClock};
pub use crate::catalog::{CatalogEntry, CATALOG_PREFIX};
pub use crate::mount::{BackendFactory, Created, MountConfig, MountRequest, MountSettings, AUTH_KEY, CORE_TUNES_KEY, MOUNTS_KEY};
pub use crate::router::MountEntry;
pub use crate::operator::{decode_token, refuse_pgp};
pub use crate::seal::{InitParams, InitResult, SealStatus};
pub use crate::token::{TokenEntry, TokenRole};
pub use tresor_logical::Error;

/// The version reported by `sys/seal-status`, `sys/health` and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Build date reported as `commit_date` (fixed: builds are reproducible).
pub const BUILD_DATE: &str = "2026-11-23T00:00:00Z";
