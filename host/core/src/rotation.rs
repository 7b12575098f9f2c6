//! `sys/rotate/config` (and OpenBao's alias `sys/rotate/keyring/config`): when the barrier rotates
//! its active key on its own, after a number of encryptions or an age. Persisted inside the
//! barrier and applied at every unseal.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tresor_barrier::{RotationConfig, DEFAULT_ROTATION_THRESHOLD, MIN_ROTATION_INTERVAL, MIN_ROTATION_THRESHOLD};
use tresor_logical::{Error, Map};

use crate::core::Core;
use crate::util::field;

/// Where the setting is stored (inside the barrier).
pub const ROTATION_CONFIG_KEY: &str = "core/rotation-config";

/// The stored form.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Stored {
    enabled: bool,
    max_operations: u64,
    interval: u64,
}

impl From<Stored> for RotationConfig {
    fn from(s: Stored) -> Self {
        Self { enabled: s.enabled, max_operations: s.max_operations, interval: s.interval }
    }
}

/// Go's `time.Duration` text for whole seconds (`25h0m0s`, `1m30s`, `45s`).
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

impl Core {
    /// Apply the stored rotation setting (the server's default when none is stored). Called at unseal.
    pub(crate) async fn load_rotation_config(&self) -> Result<(), Error> {
        let config = match self.barrier.get_value(ROTATION_CONFIG_KEY).await.map_err(|e| Error::Internal(e.to_string()))? {
            // Nothing stored: the server's own threshold (Vault's default unless configured).
            None => RotationConfig { max_operations: self.config.rotation_threshold.max(1), ..RotationConfig::default() },
            Some(raw) => serde_json::from_slice::<Stored>(&raw)
                .map_err(|e| Error::Internal(format!("corrupt rotation configuration: {e}")))?
                .into(),
        };
        self.barrier.set_rotation(config);
        Ok(())
    }

    /// `GET sys/rotate/config`: Vault shows a zero interval as `0`, any other as Go's duration text.
    pub(crate) fn rotation_config_json(&self) -> Map {
        let config = self.barrier.rotation();
        let interval = if config.interval == 0 { json!(0) } else { json!(go_duration(config.interval)) };
        crate::util::obj([
            ("enabled", json!(config.enabled)),
            ("interval", interval),
            ("max_operations", json!(config.max_operations)),
        ])
    }

    /// `POST sys/rotate/config`: change the fields given, check Vault's bounds, persist, apply.
    pub(crate) async fn update_rotation_config(&self, data: &Map) -> Result<(), Error> {
        let mut config = self.barrier.rotation();
        match data.get("max_operations") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
                let n = n.ok_or_else(|| Error::invalid("Field validation failed: error converting input for field \"max_operations\""))?;
                config.max_operations = u64::try_from(n).unwrap_or(0);
            }
        }
        if let Some(interval) = field::duration(data, "interval")
            .map_err(|e| Error::invalid(format!("Field validation failed: error converting input for field \"interval\": {e}")))?
        {
            config.interval = interval;
        }
        if let Some(enabled) = field::bool(data, "enabled").map_err(|_| {
            Error::invalid("Field validation failed: error converting input for field \"enabled\": cannot parse value as 'bool'")
        })? {
            config.enabled = enabled;
        }
        if config.interval != 0 && config.interval < MIN_ROTATION_INTERVAL {
            return Err(Error::invalid(format!("interval must be greater or equal to {}", go_duration(MIN_ROTATION_INTERVAL))));
        }
        if !(MIN_ROTATION_THRESHOLD..=DEFAULT_ROTATION_THRESHOLD).contains(&config.max_operations) {
            return Err(Error::invalid(format!(
                "max_operations must be in the range [{MIN_ROTATION_THRESHOLD},{DEFAULT_ROTATION_THRESHOLD}]"
            )));
        }
        let stored = Stored { enabled: config.enabled, max_operations: config.max_operations, interval: config.interval };
        let raw = serde_json::to_vec(&stored).map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.put_value(ROTATION_CONFIG_KEY, &raw).await.map_err(|e| Error::Internal(e.to_string()))?;
        self.barrier.set_rotation(config);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_duration(25 * 3600), "25h0m0s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(45), "45s");
        assert_eq!(go_duration(24 * 3600 + 61), "24h1m1s");
    }
}
