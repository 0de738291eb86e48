//! HTTP-01 challenge answers (RFC 8555 §8.3): while an order validates, the
//! CA fetches `http://NAME/.well-known/acme-challenge/TOKEN` on port 80 and
//! expects the key authorization. The manager puts tokens here; the plain
//! HTTP listener answers from here.

use std::collections::HashMap;
use std::sync::RwLock;

/// The path prefix the CA fetches.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

#[derive(Debug, Default)]
pub struct Http01Tokens {
    /// Token → key authorization. Not secret (the CA fetches it over plain
    /// HTTP), but only meaningful while an order is pending.
    tokens: RwLock<HashMap<String, String>>,
}

impl Http01Tokens {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.tokens
            .write()
            .expect("http-01 lock")
            .insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove(&self, token: &str) {
        self.tokens.write().expect("http-01 lock").remove(token);
    }

    /// The answer for a request path, if it is a pending challenge's.
    pub fn answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        self.tokens
            .read()
            .expect("http-01 lock")
            .get(token)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_pending_tokens_only() {
        let tokens = Http01Tokens::default();
        tokens.insert("abc", "abc.thumb");
        assert_eq!(
            tokens.answer("/.well-known/acme-challenge/abc").as_deref(),
            Some("abc.thumb")
        );
        assert_eq!(tokens.answer("/.well-known/acme-challenge/abd"), None);
        assert_eq!(tokens.answer("/abc"), None);
        tokens.remove("abc");
        assert_eq!(tokens.answer("/.well-known/acme-challenge/abc"), None);
    }
}
