//! [`SiteName`]: a site's name, checked once where it enters the daemon.
//!
//! The rules themselves live in `fazt_proto` (faztctl applies them too, to
//! turn a folder name into a site name); this type is the proof that they
//! were applied, so nothing past the edge checks a name again.

use std::fmt;

/// Names that can never be deployed to (the dashboard will live there).
const RESERVED: &[&str] = &["admin"];

/// A valid site name: a DNS label of 1–63 `a-z 0-9 -`, not starting or
/// ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteName(String);

/// Why a name was refused, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteNameError {
    #[error("{0:?} is not a valid site name: use 1-63 lower-case letters, digits and dashes")]
    Invalid(String),
    #[error("{0:?} is reserved for the dashboard: pick another name")]
    Reserved(String),
}

impl SiteName {
    /// Checks `name` against the site-name rules.
    pub fn parse(name: &str) -> Result<SiteName, SiteNameError> {
        if fazt_proto::is_valid_site_name(name) {
            Ok(SiteName(name.to_string()))
        } else {
            // Quote at most a readable prefix of whatever was sent.
            let shown: String = name.chars().take(80).collect();
            Err(SiteNameError::Invalid(shown))
        }
    }

    /// Like [`SiteName::parse`], and also refuses names that may exist in
    /// no deploy (reserved for the instance itself).
    pub fn parse_deployable(name: &str) -> Result<SiteName, SiteNameError> {
        let parsed = SiteName::parse(name)?;
        if RESERVED.contains(&parsed.as_str()) {
            return Err(SiteNameError::Reserved(parsed.0));
        }
        Ok(parsed)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for SiteName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SiteName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<SiteName> for String {
    fn from(name: SiteName) -> String {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(SiteName::parse("my-site").unwrap().as_str(), "my-site");
        assert!(matches!(
            SiteName::parse("My Site"),
            Err(SiteNameError::Invalid(_))
        ));
        assert!(SiteName::parse("admin").is_ok());
        assert!(matches!(
            SiteName::parse_deployable("admin"),
            Err(SiteNameError::Reserved(_))
        ));
        let long = "é".repeat(500);
        let err = SiteName::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 400, "{err}");
    }
}
