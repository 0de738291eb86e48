//! The instance settings a user may change (`faztctl config set`), typed.
//!
//! Each setting is declared once, in the `settings!` table below: its key
//! (the field's name), type, default, check and help. From that one
//! declaration come the [`Settings`] struct the daemon reads typed fields
//! from, `config get`'s listing and `config set`'s validation by name. A
//! misspelt setting does not compile; a stored value that no longer parses
//! (a hand-edited database) falls back to its default, with a warning.

use std::net::SocketAddr;
use std::time::Duration;

use crate::connections::ConnectionLimits;
use crate::realtime::RealtimeLimits;
use crate::store::{Store, StoreError};
use crate::tls::{AcmeChallenge, HttpsMode};

/// One setting as `config get` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingEntry {
    pub key: &'static str,
    /// The value in force, as text.
    pub value: String,
    /// Whether that is the default (nothing stored).
    pub default: bool,
    pub help: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("there is no setting {key:?}; the settings are: {known}")]
    Unknown { key: String, known: String },
    #[error("cannot set {key}: {why}")]
    Invalid { key: &'static str, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A type a setting can have: how it is read from and written as text.
pub trait SettingValue: Sized {
    fn parse_setting(text: &str) -> Result<Self, String>;
    fn to_setting(&self) -> String;
}

impl SettingValue for u64 {
    fn parse_setting(text: &str) -> Result<u64, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a whole number"))
    }
    fn to_setting(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for String {
    fn parse_setting(text: &str) -> Result<String, String> {
        Ok(text.trim().to_string())
    }
    fn to_setting(&self) -> String {
        self.clone()
    }
}

impl SettingValue for SocketAddr {
    fn parse_setting(text: &str) -> Result<SocketAddr, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("{text:?} is not ADDR:PORT (e.g. 0.0.0.0:8080)"))
    }
    fn to_setting(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for HttpsMode {
    fn parse_setting(text: &str) -> Result<HttpsMode, String> {
        HttpsMode::parse(text)
    }
    fn to_setting(&self) -> String {
        self.as_str().to_string()
    }
}

impl SettingValue for AcmeChallenge {
    fn parse_setting(text: &str) -> Result<AcmeChallenge, String> {
        AcmeChallenge::parse(text)
    }
    fn to_setting(&self) -> String {
        self.as_str().to_string()
    }
}

/// Declares every setting once. For each: `key: Type = default, check, "help"`.
macro_rules! settings {
    ($( $key:ident : $ty:ty = $default:expr, $check:expr, $help:literal; )*) => {
        /// Every setting in force, typed.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Settings {
            $( #[doc = $help] pub $key: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Settings {
                Settings { $( $key: $default, )* }
            }
        }

        /// Key, help, and how to check a new value, per setting.
        const SPECS: &[Spec] = &[
            $( Spec {
                key: stringify!($key),
                help: $help,
                check: |text| {
                    let value = <$ty as SettingValue>::parse_setting(text)?;
                    let check: fn(&$ty) -> Result<(), String> = $check;
                    check(&value)?;
                    Ok(value.to_setting())
                },
                default: || <$ty as SettingValue>::to_setting(&Settings::default().$key),
            }, )*
        ];

        impl Settings {
            /// Reads every setting from the store (defaults where unset).
            pub fn load(store: &Store) -> Result<Settings, StoreError> {
                let mut settings = Settings::default();
                $(
                    if let Some(text) = store.setting(stringify!($key))? {
                        match SPECS.iter().find(|s| s.key == stringify!($key)).map(|s| (s.check)(&text)) {
                            Some(Ok(canonical)) => {
                                settings.$key = <$ty as SettingValue>::parse_setting(&canonical)
                                    .expect("a checked value parses");
                            }
                            _ => tracing::warn!(
                                key = stringify!($key),
                                stored = %text,
                                "the stored setting is not valid; using its default"
                            ),
                        }
                    }
                )*
                Ok(settings)
            }
        }
    };
}

struct Spec {
    key: &'static str,
    help: &'static str,
    /// Parses and checks a value; returns its canonical text.
    check: fn(&str) -> Result<String, String>,
    default: fn() -> String,
}

fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Between `min` and `max`, both included (large values overflow timers
/// or allocate huge buffers).
macro_rules! within {
    ($min:expr, $max:expr) => {
        |n: &u64| {
            let (min, max): (u64, u64) = ($min, $max);
            if (min..=max).contains(n) {
                Ok(())
            } else if *n > max {
                Err(format!("it must be at most {max}"))
            } else {
                Err(format!("it must be at least {min}"))
            }
        }
    };
}

fn domain_name(value: &String) -> Result<(), String> {
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

fn directory_url(value: &String) -> Result<(), String> {
    if value.starts_with("https://") || value.starts_with("http://") {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not an http(s):// URL of an ACME directory"
        ))
    }
}

fn email(value: &String) -> Result<(), String> {
    if value.is_empty() || (value.contains('@') && !value.contains(char::is_whitespace)) {
        Ok(())
    } else {
        Err(format!("{value:?} is not an e-mail address"))
    }
}

/// The HTTPS address of an instance nobody configured.
pub const DEFAULT_LISTEN_HTTPS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 443);

/// The HTTP address of an instance nobody configured.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    fazt_proto::DEFAULT_HTTP_PORT,
);

settings! {
    domain: String = String::new(), domain_name,
        "the domain sites live under (NAME.DOMAIN); empty = detect";
    listen: SocketAddr = DEFAULT_LISTEN, any,
        "address and port for HTTP (applies at the next start)";
    retain_versions: u64 = crate::store::DEFAULT_RETAIN_VERSIONS as u64, within!(1, 1_000),
        "deployed versions kept per site for rollback";
    max_file_bytes: u64 = 512 * 1024 * 1024, within!(1, 64 << 30),
        "largest single file a deploy may contain (bytes)";
    max_site_bytes: u64 = 2 * 1024 * 1024 * 1024, within!(1, 1 << 40),
        "largest total size of one deployed version (bytes)";
    max_files: u64 = 20_000, within!(1, 1_000_000),
        "most files one deployed version may contain";
    function_timeout_ms: u64 = 5_000, within!(1, 3_600_000),
        "time limit of one function call (applies at the next start)";
    function_memory_mb: u64 = 64, within!(1, 4_096),
        "memory limit of one function call (applies at the next start)";
    function_body_bytes: u64 = 1024 * 1024, within!(1, 1 << 30),
        "largest request body a function accepts (applies at the next start)";
    function_workers: u64 = 4, within!(1, 64),
        "threads running JavaScript (applies at the next start)";
    function_site_concurrency: u64 = 0, within!(0, 64),
        "function calls one site may run at once, so that one busy site cannot starve the others; 0 = all function_workers but one, at least one (applies at the next start)";
    function_site_queue: u64 = 64, within!(1, crate::functions::pool::QUEUE_DEPTH as u64),
        "function calls of one site that may wait for a worker; more get 503 with Retry-After (applies at the next start)";
    http_header_timeout_secs: u64 = 20, within!(1, 3_600),
        "seconds a client may take to send a request's head; also how long an idle keep-alive connection stays open";
    http_body_timeout_secs: u64 = 20, within!(1, 3_600),
        "seconds a client may pause while sending a request body before it gets 408";
    http_max_connections: u64 = 10_000, within!(1, 1_000_000),
        "most HTTP and WebSocket connections open at once; more are refused with 503";
    http_max_connections_per_address: u64 = 512, within!(0, 1_000_000),
        "most connections open at once from one client address (IPv6: one /64); 0 = no cap, e.g. behind a reverse proxy";
    realtime_history: u64 = 100, within!(0, 100_000),
        "messages each realtime channel keeps for catch-up (0 = none)";
    realtime_history_bytes_per_channel: u64 = 1024 * 1024, within!(1024, 1 << 30),
        "bytes of history each realtime channel keeps (a message counts its frame plus 128); past it the oldest messages go and a late subscriber is told it missed them";
    realtime_history_bytes_per_site: u64 = 16 * 1024 * 1024, within!(1024, 16 << 30),
        "bytes of history all of one site's realtime channels keep together; past it the site's oldest messages go, whichever channel they are on";
    realtime_channel_idle_secs: u64 = 300, within!(1, 86_400),
        "seconds after which a realtime channel with no subscribers and no publish is dropped with its history";
    realtime_max_frame_bytes: u64 = 64 * 1024, within!(1, 16 << 20),
        "largest realtime frame a client may send, and largest published message (bytes)";
    realtime_max_connections_per_site: u64 = 10_000, within!(1, 1_000_000),
        "most WebSocket connections one site may have at once";
    realtime_max_subscriptions: u64 = 100, within!(1, 10_000),
        "most channels one WebSocket connection may subscribe to";
    realtime_max_channels_per_site: u64 = 10_000, within!(1, 1_000_000),
        "most realtime channels one site may have at once";
    realtime_queue_messages: u64 = 512, within!(1, 65_536),
        "messages a realtime client may fall behind on a channel before it is disconnected (new subscriptions)";
    realtime_queue_bytes: u64 = 4 * 1024 * 1024, within!(64 * 1024, 1 << 30),
        "bytes of messages one realtime connection may have waiting, all its channels together, before it is disconnected (new connections)";
    realtime_heartbeat_secs: u64 = 30, within!(1, 3_600),
        "seconds between WebSocket pings; a client silent for two is dropped";
    https: HttpsMode = HttpsMode::Off, any,
        "off, on, or auto (HTTPS with ACME certificates only when the domain is a public DNS name); applies at the next start";
    listen_https: SocketAddr = DEFAULT_LISTEN_HTTPS, any,
        "address and port for HTTPS when it is on (applies at the next start)";
    acme_directory: String = crate::tls::LETS_ENCRYPT.to_string(), directory_url,
        "the ACME directory certificates come from (Let's Encrypt by default; its staging, or any)";
    acme_email: String = String::new(), email,
        "contact address given to the ACME CA (expiry notices); empty = none";
    acme_challenge: AcmeChallenge = AcmeChallenge::TlsAlpn01, any,
        "how the CA checks a name: tls-alpn-01 (on the HTTPS port) or http-01 (on port 80)";
    hsts_max_age_secs: u64 = 31_536_000, within!(0, 63_072_000),
        "max-age of the Strict-Transport-Security header on HTTPS responses (0 = no header)";
}

impl Settings {
    /// Every setting, with the value in force, for `config get`.
    pub fn entries(store: &Store) -> Result<Vec<SettingEntry>, StoreError> {
        SPECS
            .iter()
            .map(|spec| {
                let stored = store
                    .setting(spec.key)?
                    .and_then(|text| (spec.check)(&text).ok());
                Ok(SettingEntry {
                    key: spec.key,
                    default: stored.is_none(),
                    value: stored.unwrap_or_else(spec.default),
                    help: spec.help,
                })
            })
            .collect()
    }

    /// Checks and stores one setting by name (`config set`), and returns
    /// its entry as it now stands.
    pub fn set(store: &Store, key: &str, value: &str) -> Result<SettingEntry, SettingsError> {
        let spec = SPECS
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| SettingsError::Unknown {
                key: key.to_string(),
                known: SPECS.iter().map(|s| s.key).collect::<Vec<_>>().join(", "),
            })?;
        let canonical =
            (spec.check)(value).map_err(|why| SettingsError::Invalid { key: spec.key, why })?;
        store.set_setting(spec.key, &canonical)?;
        Ok(SettingEntry {
            key: spec.key,
            value: canonical,
            default: false,
            help: spec.help,
        })
    }

    /// The stored domain, if one is set.
    pub fn stored_domain(&self) -> Option<&str> {
        (!self.domain.is_empty()).then_some(self.domain.as_str())
    }

    pub fn deploy_limits(&self) -> Limits {
        Limits {
            max_file_bytes: self.max_file_bytes,
            max_site_bytes: self.max_site_bytes,
            max_files: self.max_files,
        }
    }

    pub fn function_limits(&self) -> crate::functions::Limits {
        crate::functions::Limits {
            timeout: Duration::from_millis(self.function_timeout_ms),
            memory_bytes: (self.function_memory_mb as usize).saturating_mul(1024 * 1024),
            stack_bytes: 1024 * 1024,
        }
    }

    /// The function workers, and each site's share of them: by default half
    /// of them (rounded up), so that the other half is free for other sites
    /// however many calls one site queues; never more than all of them.
    pub fn function_pool_size(&self) -> crate::functions::PoolSize {
        let workers = self.function_workers.clamp(1, 64) as usize;
        let site_concurrency = match self.function_site_concurrency as usize {
            // One worker stays free for the other sites; a lone busy site
            // still gets the rest.
            0 => workers.saturating_sub(1).max(1),
            n => n.min(workers),
        };
        crate::functions::PoolSize {
            workers,
            shares: crate::functions::Shares {
                site_concurrency,
                site_queue: self.function_site_queue as usize,
                total_queue: crate::functions::pool::QUEUE_DEPTH,
            },
        }
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        ConnectionLimits {
            total: n(self.http_max_connections),
            per_address: n(self.http_max_connections_per_address),
        }
    }

    pub fn realtime_limits(&self) -> RealtimeLimits {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        RealtimeLimits {
            history: n(self.realtime_history),
            history_bytes_per_channel: n(self.realtime_history_bytes_per_channel),
            history_bytes_per_site: n(self.realtime_history_bytes_per_site),
            channel_idle: Duration::from_secs(self.realtime_channel_idle_secs),
            max_frame_bytes: n(self.realtime_max_frame_bytes),
            max_connections_per_site: n(self.realtime_max_connections_per_site),
            max_subscriptions: n(self.realtime_max_subscriptions),
            max_channels_per_site: n(self.realtime_max_channels_per_site),
            queue_messages: n(self.realtime_queue_messages),
            queue_bytes: n(self.realtime_queue_bytes),
            heartbeat: Duration::from_secs(self.realtime_heartbeat_secs),
            handshake_timeout: Duration::from_secs(self.http_header_timeout_secs),
        }
    }
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
        Ok(Settings::load(store)?.deploy_limits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn every_default_passes_its_own_check() {
        for spec in SPECS {
            let default = (spec.default)();
            assert_eq!(
                (spec.check)(&default).as_deref(),
                Ok(default.as_str()),
                "{}",
                spec.key
            );
        }
        let (_dir, store) = temp_store();
        assert_eq!(Settings::load(&store).unwrap(), Settings::default());
        assert!(Settings::entries(&store).unwrap().iter().all(|e| e.default));
    }

    #[test]
    fn set_and_load_by_name() {
        let (_dir, store) = temp_store();
        let entry = Settings::set(&store, "retain_versions", " 3 ").unwrap();
        assert_eq!((entry.value.as_str(), entry.default), ("3", false));
        Settings::set(&store, "listen", "127.0.0.1:80").unwrap();
        Settings::set(&store, "domain", "example.com").unwrap();
        let s = Settings::load(&store).unwrap();
        assert_eq!(s.retain_versions, 3);
        assert_eq!(s.listen, "127.0.0.1:80".parse().unwrap());
        assert_eq!(s.stored_domain(), Some("example.com"));
        let listed = Settings::entries(&store).unwrap();
        let retain = listed.iter().find(|e| e.key == "retain_versions").unwrap();
        assert_eq!((retain.value.as_str(), retain.default), ("3", false));
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused_clearly() {
        let (_dir, store) = temp_store();
        let err = Settings::set(&store, "retain_versions", "0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot set retain_versions: it must be at least 1"
        );
        let err = Settings::set(&store, "listen", "nope").unwrap_err();
        assert!(err.to_string().contains("not ADDR:PORT"), "{err}");
        let err = Settings::set(&store, "domain", "bad domain").unwrap_err();
        assert!(err.to_string().contains("not a domain name"), "{err}");
        let err = Settings::set(&store, "retian_versions", "3").unwrap_err();
        assert!(
            err.to_string().contains("the settings are: domain, listen"),
            "{err}"
        );
        assert!(Settings::set(&store, "realtime_history", "0").is_ok());
        assert!(Settings::set(&store, "function_workers", "65").is_err());
        let err = Settings::set(&store, "realtime_heartbeat_secs", "99999999999").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot set realtime_heartbeat_secs: it must be at most 3600"
        );
        // A queue of 10^11 used to abort the daemon at the first subscribe.
        assert!(Settings::set(&store, "realtime_queue_messages", "100000000000").is_err());
        // Stored by hand anyway: reported and replaced by the default, never fatal.
        store
            .set_setting("realtime_queue_messages", "100000000000")
            .unwrap();
        assert_eq!(
            Settings::load(&store).unwrap().realtime_queue_messages,
            Settings::default().realtime_queue_messages
        );
    }

    #[test]
    fn an_unreadable_stored_value_falls_back_to_the_default() {
        let (_dir, store) = temp_store();
        store.set_setting("max_files", "lots").unwrap();
        store.set_setting("listen", "nowhere").unwrap();
        let s = Settings::load(&store).unwrap();
        assert_eq!(s.max_files, Settings::default().max_files);
        assert_eq!(s.listen, DEFAULT_LISTEN);
        let listed = Settings::entries(&store).unwrap();
        assert!(
            listed
                .iter()
                .find(|e| e.key == "max_files")
                .unwrap()
                .default
        );
    }

    #[test]
    fn a_site_gets_half_the_function_workers_unless_told() {
        let size = |workers: u64, per_site: u64| {
            let settings = Settings {
                function_workers: workers,
                function_site_concurrency: per_site,
                ..Settings::default()
            };
            let size = settings.function_pool_size();
            (size.workers, size.shares.site_concurrency)
        };
        assert_eq!(size(4, 0), (4, 3), "the default");
        assert_eq!(size(5, 0), (5, 4));
        assert_eq!(size(2, 0), (2, 1));
        assert_eq!(size(1, 0), (1, 1));
        assert_eq!(size(4, 3), (4, 3));
        assert_eq!(size(4, 9), (4, 4), "never more than every worker");
        let shares = Settings::default().function_pool_size().shares;
        assert_eq!((shares.site_queue, shares.total_queue), (64, 256));
    }

    #[test]
    fn realtime_defaults_match_the_code() {
        assert_eq!(
            Settings::default().realtime_limits(),
            RealtimeLimits::default()
        );
    }
}
