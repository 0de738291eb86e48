//! [`CustomDomain`]: a name of the user's own that serves a site, checked
//! once where it enters the daemon (as [`super::SiteName`] is).
//!
//! The name rule itself is `fazt_proto::normalize_domain_name` (faztctl
//! applies it too, to refuse a bad name before asking). This adds what only
//! the daemon knows: the instance's own domain and the names under it
//! already route (`NAME.DOMAIN`), as do `NAME.IP.nip.io` names, so none of
//! them can be a custom domain.

use std::fmt;

use fazt_proto::DomainNameError;

use crate::domain::portable_ip;

/// A valid custom domain, normalised: lower case, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomDomain(String);

/// Why a name cannot be a custom domain, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomDomainError {
    #[error(transparent)]
    Name(#[from] DomainNameError),
    #[error("{0} is this instance's own domain: it serves the root site already")]
    InstanceDomain(String),
    #[error(
        "{name} is under this instance's domain ({domain}): NAME.{domain} already serves site NAME"
    )]
    UnderInstanceDomain { name: String, domain: String },
    #[error("{0} is a nip.io/sslip.io name: it already routes by the IP address it holds")]
    PortableIp(String),
}

impl CustomDomain {
    /// Checks `text` as a new custom domain of the instance whose domain is
    /// `instance_domain`.
    pub fn parse(text: &str, instance_domain: &str) -> Result<CustomDomain, CustomDomainError> {
        let name = CustomDomain::parse_name(text)?.0;
        let instance = instance_domain.trim_end_matches('.').to_ascii_lowercase();
        if name == instance {
            return Err(CustomDomainError::InstanceDomain(name));
        }
        if name
            .strip_suffix(instance.as_str())
            .is_some_and(|rest| rest.ends_with('.'))
        {
            return Err(CustomDomainError::UnderInstanceDomain {
                name,
                domain: instance,
            });
        }
        if portable_ip(&name).is_some() {
            return Err(CustomDomainError::PortableIp(name));
        }
        Ok(CustomDomain(name))
    }

    /// Checks `text` against the name rule only: for a name that is already
    /// stored (read back, or being removed), which stays valid even if the
    /// instance's domain has changed since it was added.
    pub fn parse_name(text: &str) -> Result<CustomDomain, DomainNameError> {
        fazt_proto::normalize_domain_name(text).map(CustomDomain)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for CustomDomain {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<CustomDomain> for String {
    fn from(name: CustomDomain) -> String {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_domain_and_names_under_it_already_route() {
        let parse = |text| CustomDomain::parse(text, "Fazt.Example.com.");
        assert_eq!(parse("Example.org.").unwrap().as_str(), "example.org");
        assert_eq!(parse("example.com").unwrap().as_str(), "example.com");
        assert_eq!(
            parse("notfazt.example.com").unwrap().as_str(),
            "notfazt.example.com"
        );
        assert!(matches!(
            parse("fazt.example.com"),
            Err(CustomDomainError::InstanceDomain(_))
        ));
        assert!(matches!(
            parse("FAZT.example.com."),
            Err(CustomDomainError::InstanceDomain(_))
        ));
        let err = parse("blog.fazt.example.com").unwrap_err();
        assert!(matches!(err, CustomDomainError::UnderInstanceDomain { .. }));
        assert!(err.to_string().contains("NAME.fazt.example.com"), "{err}");
        assert!(matches!(
            parse("a.b.fazt.example.com"),
            Err(CustomDomainError::UnderInstanceDomain { .. })
        ));
        assert!(matches!(
            parse("blog.192.0.2.1.nip.io"),
            Err(CustomDomainError::PortableIp(_))
        ));
        assert!(matches!(
            parse("localhost"),
            Err(CustomDomainError::Name(DomainNameError::Localhost(_)))
        ));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const INSTANCE: &str = "fazt.example.com";

        /// Names as people type them: labels of letters (either case),
        /// digits and dashes, some under the instance's domain, maybe with
        /// a trailing dot.
        fn typed_name() -> impl Strategy<Value = String> {
            let label = "[a-zA-Z0-9-]{1,12}";
            (
                prop::collection::vec(label, 1..5),
                prop_oneof![
                    Just(String::new()),
                    Just(".fazt.example.com".to_string()),
                    Just(".FAZT.example.COM".to_string()),
                    Just(".example.com".to_string()),
                    Just(".localhost".to_string()),
                ],
                any::<bool>(),
            )
                .prop_map(|(labels, parent, dot)| {
                    let mut name = labels.join(".") + &parent;
                    if dot {
                        name.push('.');
                    }
                    name
                })
        }

        /// What a DNS name is, written out independently of the parser.
        fn is_dns_name(name: &str) -> bool {
            name.len() <= 253
                && name.split('.').count() >= 2
                && name.split('.').all(|label| {
                    (1..=63).contains(&label.len())
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
        }

        proptest! {
            /// An accepted name is a DNS name in normal form (what the
            /// `Host` lookup and the store key on), it is what was typed up
            /// to case and a trailing dot, and it is never the instance's
            /// domain or a name under it (those route already).
            #[test]
            fn accepted_names_are_normal_dns_names_outside_the_instance(text in typed_name()) {
                if let Ok(domain) = CustomDomain::parse(&text, INSTANCE) {
                    let name = domain.as_str();
                    prop_assert!(is_dns_name(name), "{:?} from {:?}", name, text);
                    prop_assert_eq!(name, text.trim_end_matches('.').to_ascii_lowercase());
                    prop_assert!(name != INSTANCE && !name.ends_with(".fazt.example.com"));
                    prop_assert!(name != "localhost" && !name.ends_with(".localhost"));
                    // Normal form is a fixed point.
                    prop_assert_eq!(CustomDomain::parse(name, INSTANCE).unwrap(), domain.clone());
                }
            }

            /// Any string is answered, never a panic, and an accepted one
            /// is still a DNS name.
            #[test]
            fn any_text_is_answered(text in any::<String>()) {
                if let Ok(domain) = CustomDomain::parse(&text, INSTANCE) {
                    prop_assert!(is_dns_name(domain.as_str()));
                }
            }
        }
    }
}
