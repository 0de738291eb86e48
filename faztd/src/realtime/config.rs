//! What configures realtime: the instance-wide limits (settings) and each
//! site's own `realtime` section of `fazt.json`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The limits in force, from the settings (`Settings::realtime_limits`) at
/// start and whenever a `realtime_*` setting changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimeLimits {
    /// Messages kept per channel for catch-up (`since`); 0 keeps none.
    pub history: usize,
    /// Bytes of history kept per channel, and per site (all its channels
    /// together); past either, the oldest messages go. See `history.rs`
    /// for what a message counts as.
    pub history_bytes_per_channel: usize,
    pub history_bytes_per_site: usize,
    /// A channel nobody subscribes to and nobody published on for this
    /// long is dropped with its history.
    pub channel_idle: Duration,
    /// Largest client frame, and largest published message, in bytes.
    pub max_frame_bytes: usize,
    pub max_connections_per_site: usize,
    pub max_subscriptions: usize,
    pub max_channels_per_site: usize,
    /// How many messages a subscriber may fall behind before it is cut off.
    /// Applies to subscriptions made after a change.
    pub queue_messages: usize,
    /// How many bytes of frames may wait for one connection, all its
    /// subscriptions together, before it is cut off the same way: frames
    /// are shared, but a client that never reads must not keep thousands
    /// of large ones alive. Applies to connections made after a change.
    pub queue_bytes: usize,
    /// Server pings this often; a client silent for two periods is dropped,
    /// and a write stalled this long ends the connection.
    pub heartbeat: Duration,
    /// How long an accepted upgrade may take to become a WebSocket (the
    /// `101` written and the connection handed over); from the setting
    /// `http_header_timeout_secs`.
    pub handshake_timeout: Duration,
}

impl Default for RealtimeLimits {
    fn default() -> Self {
        RealtimeLimits {
            history: 100,
            history_bytes_per_channel: 1024 * 1024,
            history_bytes_per_site: 16 * 1024 * 1024,
            channel_idle: Duration::from_secs(300),
            max_frame_bytes: 64 * 1024,
            max_connections_per_site: 10_000,
            max_subscriptions: 100,
            max_channels_per_site: 10_000,
            queue_messages: 512,
            queue_bytes: 4 * 1024 * 1024,
            heartbeat: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(20),
        }
    }
}

/// A site's `"realtime"` section of `fazt.json`, e.g.
/// `{"clientPublish": ["chat-*", "presence-room"], "allowedOrigins": ["https://*.example.com"]}`.
///
/// Read as part of `sites::SiteConfig`, which refuses unknown keys at deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteRealtime {
    /// Channel patterns on which browsers may publish (`*` matches any run
    /// of characters). Elsewhere only functions and operators publish.
    #[serde(default)]
    pub client_publish: Vec<String>,
    /// Web pages at other origins whose scripts may connect (`*` as in
    /// `clientPublish`; `"*"` alone allows any). Pages served by the site
    /// itself always may, as may clients that send no `Origin` (not browsers).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl SiteRealtime {
    /// Checks what a deploy is about to make live, so a typo fails the deploy
    /// instead of silently denying every publish.
    pub fn validate(&self) -> Result<(), String> {
        let lists = [
            ("clientPublish", &self.client_publish),
            ("allowedOrigins", &self.allowed_origins),
        ];
        for (list, patterns) in lists {
            for pattern in patterns {
                if pattern.is_empty() || pattern.len() > 200 {
                    return Err(format!(
                        "realtime.{list} pattern {pattern:?} must be 1 to 200 characters"
                    ));
                }
                if !pattern.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!(
                        "realtime.{list} pattern {pattern:?} may only contain visible ASCII"
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn allows_client_publish(&self, channel: &str) -> bool {
        self.client_publish.iter().any(|p| glob_match(p, channel))
    }

    /// Whether a browser page at `origin` (the `Origin` header) may connect
    /// to this site's `/_ws`, reached at `host` (the `Host` header). As
    /// Phoenix and Rails do by default: the site's own pages may, pages
    /// elsewhere only when listed, so another site cannot have its visitors'
    /// browsers join (or publish on) this site's channels. The site's own
    /// pages are those at `host` and at its `custom_domains` (on a default
    /// port, or on the port `host` names: faztd serves every name on it).
    pub fn allows_origin(&self, origin: &str, host: &str, custom_domains: &[String]) -> bool {
        let origin = origin.trim();
        let Some((_, authority)) = origin.split_once("://") else {
            return self.listed(origin);
        };
        let port = split_authority(host).1;
        let own_page = same_authority(authority, host)
            || custom_domains.iter().any(|domain| {
                same_authority(authority, domain)
                    || port
                        .as_ref()
                        .is_some_and(|p| same_authority(authority, &format!("{domain}:{p}")))
            });
        own_page || self.listed(origin)
    }

    /// Whether `origin` matches `allowedOrigins`.
    fn listed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|p| p == "*" || glob_match(&p.to_ascii_lowercase(), &origin.to_ascii_lowercase()))
    }
}

/// An authority (`name[:port]`) as its lower-cased name and its port, if any.
fn split_authority(authority: &str) -> (String, Option<String>) {
    let a = authority.to_ascii_lowercase();
    match a.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !a.ends_with(']') =>
        {
            (name.to_string(), Some(port.to_string()))
        }
        _ => (a, None),
    }
}

/// `example.com:443` and `example.com` are the same place when the other
/// side leaves the port out (browsers omit default ports in `Origin`).
fn same_authority(origin: &str, host: &str) -> bool {
    let ((o_name, o_port), (h_name, h_port)) = (split_authority(origin), split_authority(host));
    o_name == h_name
        && match (o_port, h_port) {
            (Some(a), Some(b)) => a == b,
            (Some(p), None) | (None, Some(p)) => p == "80" || p == "443",
            (None, None) => true,
        }
}

/// `*` matches any (possibly empty) run of characters; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("chat-*", "chat-room"));
        assert!(glob_match("chat-*", "chat-"));
        assert!(!glob_match("chat-*", "chat"));
        assert!(!glob_match("chat-*", "xchat-1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exact2"));
        assert!(glob_match("*-log", "site-log"));
    }

    #[test]
    fn origins() {
        let own = SiteRealtime::default();
        assert!(own.allows_origin("http://chat.localhost:8080", "chat.localhost:8080", &[]));
        assert!(own.allows_origin("https://Chat.Example.com", "chat.example.com", &[]));
        assert!(own.allows_origin("https://chat.example.com", "chat.example.com:443", &[]));
        assert!(!own.allows_origin("http://chat.example.com", "chat.example.com:8080", &[]));
        assert!(!own.allows_origin("https://evil.example", "chat.example.com", &[]));
        assert!(!own.allows_origin("null", "chat.example.com", &[]));
        assert!(!own.allows_origin("https://chat.example.com.evil", "chat.example.com", &[]));
        let listed = SiteRealtime {
            allowed_origins: vec![
                "https://*.example.org".into(),
                "http://localhost:3000".into(),
            ],
            ..Default::default()
        };
        assert!(listed.allows_origin("https://app.example.org", "chat.example.com", &[]));
        assert!(listed.allows_origin("http://localhost:3000", "chat.example.com", &[]));
        assert!(!listed.allows_origin("http://localhost:3001", "chat.example.com", &[]));
        let any = SiteRealtime {
            allowed_origins: vec!["*".into()],
            ..Default::default()
        };
        assert!(any.allows_origin("null", "chat.example.com", &[]));
    }

    #[test]
    fn a_sites_custom_domains_are_its_own_origins() {
        let own = SiteRealtime::default();
        let domains = ["example.org".to_string(), "www.example.org".to_string()];
        let allows = |origin, host| own.allows_origin(origin, host, &domains);
        // Reached at its NAME.DOMAIN, from a page at its custom domain.
        assert!(allows("https://example.org", "chat.fazt.example.com"));
        assert!(allows("http://WWW.example.org", "chat.fazt.example.com"));
        assert!(allows("https://example.org:443", "chat.fazt.example.com"));
        // On faztd's own port, where it serves the custom domain as well.
        assert!(allows("http://example.org:8080", "chat.localhost:8080"));
        assert!(!allows("http://example.org:9999", "chat.localhost:8080"));
        assert!(!allows("https://example.org.evil", "chat.fazt.example.com"));
        assert!(!allows("https://evil.example.org", "chat.fazt.example.com"));
        assert!(!allows("null", "chat.fazt.example.com"));
    }

    #[test]
    fn validation() {
        let bad = SiteRealtime {
            client_publish: vec![String::new()],
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = SiteRealtime {
            allowed_origins: vec!["https://exa mple.com".into()],
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("allowedOrigins"));
    }
}
