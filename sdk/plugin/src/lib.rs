//! # tresor-sdk: write Tresor plugins
//!
//! A Tresor plugin is a WebAssembly component that serves one mount: a secrets engine (`kv/`,
//! `transit/`) or an auth method (`auth/userpass/`). The host matches paths and validates fields from
//! the [`Spec`] you declare, then calls [`Backend::handle`] with a [`Request`] that is already
//! well-formed. You persist through [`storage`], which only ever sees your mount's own keys.
//!
//! ```no_run
//! use tresor_sdk::{Backend, Error, Field, Operation, Path, Request, Response, Spec};
//!
//! struct Hello;
//!
//! impl Backend for Hello {
//!     fn spec() -> Spec {
//!         Spec::secrets("A greeting engine.")
//!             .path(Path::new("greet/{name}").operations([Operation::Read]).help("Greets NAME."))
//!     }
//!
//!     fn handle(req: Request) -> Result<Response, Error> {
//!         let name = req.captured("name").unwrap_or("world");
//!         Ok(Response::data(serde_json::json!({ "greeting": format!("hello, {name}") })))
//!     }
//! }
//!
//! tresor_sdk::export!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`, register the `.wasm` with
//! `tresor plugin register`, and mount it (see `docs/writing-a-plugin.md`). With the `testing`
//! feature, [`storage`] and [`system`] are backed by an in-memory host, so handlers run under plain
//! `cargo test`.
#![deny(missing_docs)]

#[cfg(target_arch = "wasm32")]
pub mod crypto;
mod error;
mod request;
mod response;
mod spec;
pub mod sql;
pub mod storage;
pub mod system;
pub mod token;

#[doc(hidden)]
pub mod __private;

#[doc(hidden)]
#[allow(missing_docs, clippy::all, unsafe_code, missing_debug_implementations)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/plugin",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_tresor_backend",
        default_bindings_module: "tresor_sdk::bindings",
    });
}

pub use error::Error;
pub use request::{Json, Request, Value};
pub use response::{page_fields, Auth, LeaseOptions, Response, Secret, TokenType};
pub use spec::{Field, FieldKind, Operation, Path, Spec};

/// A plugin: its declared paths and its handlers. Every call runs in a fresh instance, so there is no
/// in-memory state between requests: keep state in [`storage`].
pub trait Backend {
    /// The paths this backend serves. Called once per load; the host caches it.
    fn spec() -> Spec;

    /// Called after mount and after every unseal (migrations, defaults).
    fn initialize() -> Result<(), Error> {
        Ok(())
    }

    /// Serve one request whose path matched a declared [`Path`] and whose fields validated.
    fn handle(req: Request) -> Result<Response, Error>;

    /// For paths with [`Path::existence_check`]: does the item a write targets exist?
    fn exists(req: Request) -> Result<bool, Error> {
        let _ = req;
        Ok(false)
    }

    /// Extend a secret's lease.
    fn renew_secret(secret: Secret) -> Result<LeaseOptions, Error> {
        let _ = secret;
        Err(Error::UnsupportedOperation)
    }

    /// Revoke a secret when its lease ends.
    fn revoke_secret(secret: Secret) -> Result<(), Error> {
        let _ = secret;
        Ok(())
    }

    /// Re-validate a login before its token is renewed.
    fn renew_auth(auth: Auth) -> Result<LeaseOptions, Error> {
        Ok(auth.lease)
    }

    /// A storage key changed outside this plugin.
    fn invalidate(key: &str) {
        let _ = key;
    }

    /// Background work the host runs about once a minute while the mount is unsealed (auto-rotation,
    /// tidying). Storage writes are committed when it returns `Ok`. Default: nothing.
    ///
    /// ```no_run
    /// # use tresor_sdk::{Backend, Error, Request, Response, Spec};
    /// struct Tidy;
    /// impl Backend for Tidy {
    ///     fn spec() -> Spec { Spec::secrets("tidies") }
    ///     fn handle(_: Request) -> Result<Response, Error> { Ok(Response::empty()) }
    ///     fn periodic() -> Result<(), Error> {
    ///         tresor_sdk::storage::delete("expired")?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn periodic() -> Result<(), Error> {
        Ok(())
    }
}

/// Export a [`Backend`] implementation as the component's `tresor:plugin/backend`.
///
/// ```no_run
/// # use tresor_sdk::{Backend, Error, Request, Response, Spec};
/// struct Noop;
/// impl Backend for Noop {
///     fn spec() -> Spec { Spec::secrets("does nothing") }
///     fn handle(_: Request) -> Result<Response, Error> { Ok(Response::empty()) }
/// }
/// tresor_sdk::export!(Noop);
/// ```
#[macro_export]
macro_rules! export {
    ($backend:ty) => {
        #[doc(hidden)]
        pub struct __TresorGuest;

        impl $crate::__private::Guest for __TresorGuest {
            fn spec() -> $crate::__private::WitSpec {
                $crate::__private::spec::<$backend>()
            }
            fn initialize() -> ::core::result::Result<(), $crate::__private::WitError> {
                $crate::__private::initialize::<$backend>()
            }
            fn handle(
                req: $crate::__private::WitRequest,
            ) -> ::core::result::Result<$crate::__private::WitResponse, $crate::__private::WitError> {
                $crate::__private::handle::<$backend>(req)
            }
            fn exists(req: $crate::__private::WitRequest) -> ::core::result::Result<bool, $crate::__private::WitError> {
                $crate::__private::exists::<$backend>(req)
            }
            fn renew_secret(
                secret: $crate::__private::WitSecret,
            ) -> ::core::result::Result<$crate::__private::WitLease, $crate::__private::WitError> {
                $crate::__private::renew_secret::<$backend>(secret)
            }
            fn revoke_secret(secret: $crate::__private::WitSecret) -> ::core::result::Result<(), $crate::__private::WitError> {
                $crate::__private::revoke_secret::<$backend>(secret)
            }
            fn renew_auth(
                auth: $crate::__private::WitAuth,
            ) -> ::core::result::Result<$crate::__private::WitLease, $crate::__private::WitError> {
                $crate::__private::renew_auth::<$backend>(auth)
            }
            fn invalidate(key: ::std::string::String) {
                <$backend as $crate::Backend>::invalidate(&key)
            }
        }

        impl $crate::__private::PeriodicGuest for __TresorGuest {
            fn run() -> ::core::result::Result<(), $crate::__private::WitError> {
                $crate::__private::periodic::<$backend>()
            }
        }

        // Only components get the export symbols: native builds (unit tests with the mock host) would
        // otherwise emit `tresor:plugin/...` linker symbols a native linker rejects.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_tresor_backend!(__TresorGuest with_types_in $crate::bindings);
    };
}
