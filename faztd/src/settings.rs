//! The instance settings a user may change (`faztctl config set`), with
//! their defaults and validation. Stored in the database's settings table.

use crate::store::{Store, StoreError};

pub struct SettingSpec {
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    validate: fn(&str) -> Result<(), String>,
}

impl SettingSpec {
    pub fn validate(&self, value: &str) -> Result<(), String> {
        (self.validate)(value)
    }
}

const fn spec(
    key: &'static str,
    default: &'static str,
    help: &'static str,
    validate: fn(&str) -> Result<(), String>,
) -> SettingSpec {
    SettingSpec {
        key,
        default,
        help,
        validate,
    }
}

/// Must spell `store::DEFAULT_RETAIN_VERSIONS` (a test checks it).
const DEFAULT_RETAIN: &str = "10";

pub static SETTINGS: &[SettingSpec] = &[
    spec(
        "domain",
        "",
        "the domain sites live under (NAME.DOMAIN); empty = detect",
        validate_domain,
    ),
    spec(
        "listen",
        "0.0.0.0:8080",
        "address and port for HTTP (applies at the next start)",
        validate_listen,
    ),
    spec(
        "retain_versions",
        DEFAULT_RETAIN,
        "deployed versions kept per site for rollback",
        validate_positive,
    ),
    spec(
        "max_file_bytes",
        "536870912",
        "largest single file a deploy may contain (bytes)",
        validate_positive,
    ),
    spec(
        "max_site_bytes",
        "2147483648",
        "largest total size of one deployed version (bytes)",
        validate_positive,
    ),
    spec(
        "max_files",
        "20000",
        "most files one deployed version may contain",
        validate_positive,
    ),
    spec(
        "function_timeout_ms",
        "5000",
        "time limit of one function call (applies at the next start)",
        validate_positive,
    ),
    spec(
        "function_memory_mb",
        "64",
        "memory limit of one function call (applies at the next start)",
        validate_positive,
    ),
    spec(
        "function_body_bytes",
        "1048576",
        "largest request body a function accepts (applies at the next start)",
        validate_positive,
    ),
    spec(
        "function_workers",
        "4",
        "threads running JavaScript (applies at the next start)",
        validate_positive,
    ),
    spec(
        "realtime_history",
        "100",
        "messages each realtime channel keeps for catch-up (0 = none)",
        validate_number,
    ),
    spec(
        "realtime_max_frame_bytes",
        "65536",
        "largest realtime frame a client may send, and largest published message (bytes)",
        validate_positive,
    ),
    spec(
        "realtime_max_connections_per_site",
        "10000",
        "most WebSocket connections one site may have at once",
        validate_positive,
    ),
    spec(
        "realtime_max_subscriptions",
        "100",
        "most channels one WebSocket connection may subscribe to",
        validate_positive,
    ),
    spec(
        "realtime_max_channels_per_site",
        "10000",
        "most realtime channels one site may have at once",
        validate_positive,
    ),
    spec(
        "realtime_queue_messages",
        "512",
        "messages a realtime client may fall behind before it is disconnected (new channels)",
        validate_positive,
    ),
    spec(
        "realtime_heartbeat_secs",
        "30",
        "seconds between WebSocket pings; a client silent for two is dropped",
        validate_positive,
    ),
];

/// A numeric setting, or its default when unset or unreadable.
pub fn number(store: &Store, key: &str) -> Result<u64, StoreError> {
    let value = get(store, key)?;
    Ok(value.parse().unwrap_or_else(|_| {
        spec_for(key)
            .and_then(|s| s.default.parse().ok())
            .unwrap_or(u64::MAX)
    }))
}

pub fn spec_for(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// A setting's value, or its default.
pub fn get(store: &Store, key: &str) -> Result<String, StoreError> {
    let default = spec_for(key).map(|s| s.default).unwrap_or("");
    Ok(store.setting(key)?.unwrap_or_else(|| default.to_string()))
}

/// The deploy limits in force.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_site_bytes: u64,
    pub max_files: u64,
}

impl Limits {
    pub fn load(store: &Store) -> Result<Limits, StoreError> {
        let num = |key: &str| number(store, key);
        Ok(Limits {
            max_file_bytes: num("max_file_bytes")?,
            max_site_bytes: num("max_site_bytes")?,
            max_files: num("max_files")?,
        })
    }
}

fn validate_number(value: &str) -> Result<(), String> {
    value
        .parse::<u64>()
        .map(|_| ())
        .map_err(|_| format!("{value:?} is not a whole number"))
}

fn validate_positive(value: &str) -> Result<(), String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(format!("{value:?} is not a positive whole number")),
    }
}

fn validate_listen(value: &str) -> Result<(), String> {
    value
        .parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| format!("{value:?} is not ADDR:PORT (e.g. 0.0.0.0:8080)"))
}

fn validate_domain(value: &str) -> Result<(), String> {
    let ok = value.is_empty()
        || value.len() <= 253
            && value.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
    if ok {
        Ok(())
    } else {
        Err(format!("{value:?} is not a domain name or IP address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DEFAULT_RETAIN_VERSIONS;

    #[test]
    fn validation() {
        assert!(spec_for("retain_versions").unwrap().validate("3").is_ok());
        assert!(spec_for("retain_versions").unwrap().validate("0").is_err());
        assert!(spec_for("listen").unwrap().validate("127.0.0.1:80").is_ok());
        assert!(spec_for("listen").unwrap().validate("nope").is_err());
        assert!(spec_for("domain").unwrap().validate("example.com").is_ok());
        assert!(spec_for("domain").unwrap().validate("bad domain").is_err());
        assert!(spec_for("nope").is_none());
        assert_eq!(DEFAULT_RETAIN, DEFAULT_RETAIN_VERSIONS.to_string());
        assert!(spec_for("realtime_history").unwrap().validate("0").is_ok());
    }

    #[test]
    fn realtime_defaults_match_the_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d.redb")).unwrap();
        let loaded = crate::realtime::RealtimeLimits::load(&store).unwrap();
        assert_eq!(loaded, crate::realtime::RealtimeLimits::default());
    }
}
