//! [`SiteConfig`]: a site's `fazt.json`, the one type that reads it.
//!
//! A deploy parses it strictly ([`SiteConfig::parse`]: unknown keys and bad
//! patterns refuse the deploy with a clear message) and stores the result
//! with the version, so what serves a version (the catalog, realtime) reads
//! exactly what the deploy checked, and a rollback brings the old version's
//! configuration back with its files. The stored form is read tolerantly
//! (unknown keys ignored), so a database written by a newer faztd, whose
//! configurations know more keys, still serves after a downgrade.

use serde::{Deserialize, Serialize};

use crate::realtime::SiteRealtime;
use crate::store::{Store, StoreError, VersionRecord};

/// The site configuration file. It is kept with the version but not served.
pub const SITE_CONFIG_FILE: &str = "fazt.json";

/// What a site's `fazt.json` may say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteConfig {
    /// Serve `index.html` for unknown paths without an extension (single-page apps).
    #[serde(default)]
    pub spa: bool,
    /// Who may publish on which channels, and which pages may connect.
    #[serde(default)]
    pub realtime: SiteRealtime,
}

impl SiteConfig {
    /// Reads and checks a `fazt.json` a deploy is about to make live.
    pub fn parse(bytes: &[u8]) -> Result<SiteConfig, String> {
        let mut unknown = Vec::new();
        let mut json = serde_json::Deserializer::from_slice(bytes);
        let config: SiteConfig =
            serde_ignored::deserialize(&mut json, |path| unknown.push(path.to_string()))
                .and_then(|config| json.end().map(|()| config))
                .map_err(|e| format!("{SITE_CONFIG_FILE} is not valid: {e}"))?;
        if let Some(key) = unknown.first() {
            return Err(format!(
                "{SITE_CONFIG_FILE} is not valid: unknown key {key:?} (known: spa, realtime.clientPublish, realtime.allowedOrigins)"
            ));
        }
        config
            .realtime
            .validate()
            .map_err(|why| format!("{SITE_CONFIG_FILE}: {why}"))?;
        Ok(config)
    }

    /// The configuration stored with a version (see [`SiteConfig::to_stored`]).
    /// Versions deployed before configurations were stored have none: their
    /// `fazt.json` is read with [`SiteConfig::legacy`] instead.
    pub fn from_stored(value: &serde_json::Value) -> Result<SiteConfig, String> {
        SiteConfig::deserialize(value).map_err(|e| format!("stored site configuration: {e}"))
    }

    pub fn to_stored(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a site configuration serialises")
    }

    /// A version stored before configurations were: `spa` came from its
    /// record, and the realtime section was read leniently from `fazt.json`
    /// (a file that does not parse grants nothing), as faztd did then.
    pub fn legacy(spa: bool, fazt_json: Option<&[u8]>) -> SiteConfig {
        #[derive(Deserialize)]
        struct Whole {
            #[serde(default)]
            realtime: Option<SiteRealtime>,
        }
        let realtime = fazt_json
            .and_then(|bytes| serde_json::from_slice::<Whole>(bytes).ok())
            .and_then(|w| w.realtime)
            .unwrap_or_default();
        SiteConfig { spa, realtime }
    }
}

/// The configuration a stored version was deployed with.
pub fn of_version(
    store: &Store,
    site: &str,
    version: &VersionRecord,
) -> Result<SiteConfig, StoreError> {
    if let Some(stored) = &version.config {
        return SiteConfig::from_stored(stored).map_err(StoreError::Inconsistent);
    }
    let fazt_json = match store.version_file(site, version.id, SITE_CONFIG_FILE)? {
        Some(file) => store.read_blob(&file.hash)?,
        None => None,
    };
    Ok(SiteConfig::legacy(version.spa, fazt_json.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly() {
        let c = SiteConfig::parse(br#"{"spa": true, "realtime": {"clientPublish": ["chat-*"]}}"#)
            .unwrap();
        assert!(c.spa);
        assert!(c.realtime.allows_client_publish("chat-1"));
        assert_eq!(SiteConfig::parse(b"{}").unwrap(), SiteConfig::default());
        let typo = SiteConfig::parse(br#"{"sap": true}"#).unwrap_err();
        assert!(typo.contains("unknown key \"sap\""), "{typo}");
        let typo = SiteConfig::parse(br#"{"realtime": {"clientPublsh": []}}"#).unwrap_err();
        assert!(typo.contains("realtime.clientPublsh"), "{typo}");
        assert!(SiteConfig::parse(br#"{} {}"#).is_err());
        let bad = SiteConfig::parse(br#"{"realtime": {"clientPublish": [""]}}"#).unwrap_err();
        assert!(bad.contains("clientPublish"), "{bad}");
        assert!(SiteConfig::parse(b"not json").is_err());
    }

    #[test]
    fn stored_round_trip() {
        let c =
            SiteConfig::parse(br#"{"spa": true, "realtime": {"allowedOrigins": ["*"]}}"#).unwrap();
        assert_eq!(SiteConfig::from_stored(&c.to_stored()).unwrap(), c);
        // Written by a newer faztd that knows more keys: still read.
        let newer = serde_json::json!({"spa": true, "redirects": [], "realtime": {"x": 1}});
        assert!(SiteConfig::from_stored(&newer).unwrap().spa);
    }

    #[test]
    fn legacy_versions() {
        let c = SiteConfig::legacy(true, Some(br#"{"realtime": {"clientPublish": ["a"]}}"#));
        assert!(c.spa && c.realtime.allows_client_publish("a"));
        assert_eq!(
            SiteConfig::legacy(false, Some(b"garbage")),
            SiteConfig::default()
        );
        assert_eq!(SiteConfig::legacy(false, None), SiteConfig::default());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any bytes in `fazt.json` give a config or a message, never
            /// a panic, and the message is short enough to show.
            #[test]
            fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                if let Err(message) = SiteConfig::parse(&bytes) {
                    prop_assert!(!message.is_empty() && message.len() < 1000);
                }
            }

            /// JSON-shaped input with the real keys in odd places.
            #[test]
            fn json_shaped_input_never_panics(
                text in r#"\{("(spa|realtime|clientPublish|allowedOrigins|x)": ?(true|1|"chat-\*"|\[("a"|1|null),?\]|\{\}|null),? ?){0,4}\}"#
            ) {
                let _ = SiteConfig::parse(text.as_bytes());
            }
        }
    }
}
