//! Facts about the mount and the host clock.
//!
//! ```no_run
//! let (secs, _nanos) = tresor_sdk::system::now();
//! let ttl = tresor_sdk::system::default_lease_ttl();
//! # let _ = (secs, ttl);
//! ```

/// The mount this plugin serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Mount path with trailing slash.
    pub path: String,
    /// Mount type.
    pub kind: String,
    /// Mount `options` (e.g. `{"version":"2"}`).
    pub options: serde_json::Value,
}

/// The mount this plugin serves.
pub fn mount_info() -> MountInfo {
    imp::mount_info()
}

/// The mount's effective default lease TTL, seconds.
pub fn default_lease_ttl() -> u64 {
    imp::default_lease_ttl()
}

/// The mount's effective maximum lease TTL, seconds.
pub fn max_lease_ttl() -> u64 {
    imp::max_lease_ttl()
}

/// Host wall clock: Unix seconds and nanoseconds.
pub fn now() -> (i64, u32) {
    imp::now()
}

/// The display name of the token behind the current request (`root`, `token`, `userpass-alice`),
/// for name templates; empty outside client requests (revocation, periodic work).
pub fn caller_display_name() -> String {
    imp::caller_display_name()
}

/// RFC 3339 with nanoseconds, UTC (`2026-11-23T16:28:17.123456789Z`), as Vault prints times.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

/// Log a message into the host log, tagged with the mount.
pub fn log(level: LogLevel, message: &str) {
    imp::log(level, message)
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
mod imp {
    use super::{LogLevel, MountInfo};
    use crate::bindings::tresor::plugin::{log as wlog, system as wit};

    pub(super) fn mount_info() -> MountInfo {
        let m = wit::describe_mount();
        MountInfo { path: m.path, kind: m.kind, options: serde_json::from_str(&m.options).unwrap_or_default() }
    }
    pub(super) fn default_lease_ttl() -> u64 {
        wit::default_lease_ttl()
    }
    pub(super) fn max_lease_ttl() -> u64 {
        wit::max_lease_ttl()
    }
    pub(super) fn now() -> (i64, u32) {
        wit::now()
    }
    pub(super) fn caller_display_name() -> String {
        wit::caller_display_name()
    }
    pub(super) fn log(level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => wlog::Level::Trace,
            LogLevel::Debug => wlog::Level::Debug,
            LogLevel::Info => wlog::Level::Info,
            LogLevel::Warn => wlog::Level::Warn,
            LogLevel::Error => wlog::Level::Error,
        };
        wlog::emit(level, message)
    }
}

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
mod imp {
    use std::cell::RefCell;

    use super::{LogLevel, MountInfo};

    thread_local! {
        static MOUNT: RefCell<MountInfo> = RefCell::new(MountInfo {
            path: "test/".into(), kind: "test".into(), options: serde_json::json!({}),
        });
        static CLOCK: RefCell<Option<(i64, u32)>> = const { RefCell::new(None) };
        static CALLER: RefCell<String> = RefCell::new("root".into());
    }

    pub(super) fn caller_display_name() -> String {
        CALLER.with(|c| c.borrow().clone())
    }

    /// Set the mock caller's display name.
    pub fn set_caller(name: &str) {
        CALLER.with(|c| *c.borrow_mut() = name.to_string());
    }

    pub(super) fn mount_info() -> MountInfo {
        MOUNT.with(|m| m.borrow().clone())
    }
    pub(super) fn default_lease_ttl() -> u64 {
        768 * 3600
    }
    pub(super) fn max_lease_ttl() -> u64 {
        768 * 3600
    }
    pub(super) fn now() -> (i64, u32) {
        CLOCK.with(|c| *c.borrow()).unwrap_or_else(|| {
            let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (d.as_secs() as i64, d.subsec_nanos())
        })
    }
    pub(super) fn log(_level: LogLevel, _message: &str) {}

    /// Set the mock mount's options.
    pub fn set_mount_options(options: serde_json::Value) {
        MOUNT.with(|m| m.borrow_mut().options = options);
    }
    /// Freeze the mock clock.
    pub fn set_now(secs: i64, nanos: u32) {
        CLOCK.with(|c| *c.borrow_mut() = Some((secs, nanos)));
    }
}

/// Set the mock mount's options (testing feature, native only).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub fn set_mock_mount_options(options: serde_json::Value) {
    imp::set_mount_options(options)
}

/// Set the display name the mock host reports for the caller (testing feature, native only;
/// default `root`).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub fn set_mock_caller(name: &str) {
    imp::set_caller(name)
}

/// Freeze the mock clock (testing feature, native only).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub fn set_mock_now(secs: i64, nanos: u32) {
    imp::set_now(secs, nanos)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(super::rfc3339(1_795_451_298, 5), "2026-11-23T16:28:18.000000005Z");
    }
}
