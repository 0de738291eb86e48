//! The rule for a custom domain's name (`faztctl domain add SITE NAME`),
//! shared so that faztctl refuses a bad name before asking (exit 2) with
//! the same words the daemon would use.
//!
//! A name is normalised, then checked: lower-cased, one trailing dot (the
//! DNS root) dropped. What is left must be a DNS name of at least two
//! labels, each a DNS label as site names are ([`crate::is_valid_site_name`]),
//! at most 253 bytes, and neither an IP address nor a `localhost` name
//! (both already reach this machine without a custom domain). Whether the
//! name is the instance's own domain, or taken by another site, only the
//! daemon knows; it checks that after this.

/// The longest DNS name, in bytes, without its trailing dot (RFC 1035 §2.3.4).
pub const MAX_DOMAIN_NAME_BYTES: usize = 253;

/// Why a name cannot be a custom domain, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("give a domain name, e.g. example.org")]
    Empty,
    #[error("{0:?} is an address, not a name: give the name alone, e.g. example.org")]
    Url(String),
    #[error("{0:?} has a port: give the name alone (requests on any of faztd's ports are routed)")]
    Port(String),
    #[error("{0:?} is longer than the {MAX_DOMAIN_NAME_BYTES} bytes a DNS name may have")]
    TooLong(String),
    #[error("{0:?} has no dot: a custom domain is a full DNS name, such as example.org")]
    NoDot(String),
    #[error(
        "{0:?} is not a DNS name: each part between dots is 1-63 letters, digits and dashes, \
         not starting or ending with a dash (write an international name in its xn-- form)"
    )]
    Invalid(String),
    #[error(
        "{0:?} is an IP address: point a DNS name at this machine (an A or AAAA record) and add that"
    )]
    IpAddress(String),
    #[error("{0:?} is a localhost name: those only reach this machine, and already route by name")]
    Localhost(String),
}

/// Checks `text` as a custom domain's name and returns its normal form
/// (lower case, no trailing dot), the form that is stored and matched
/// against `Host` headers.
pub fn normalize_domain_name(text: &str) -> Result<String, DomainNameError> {
    // Quote at most a readable prefix of whatever was sent.
    let shown = || text.chars().take(80).collect::<String>();
    if text.is_empty() {
        return Err(DomainNameError::Empty);
    }
    if text.contains("://") || text.contains('/') {
        return Err(DomainNameError::Url(shown()));
    }
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.contains(':') && !name.starts_with('[') && name.matches(':').count() == 1 {
        return Err(DomainNameError::Port(shown()));
    }
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return Err(DomainNameError::IpAddress(shown()));
    }
    if name.len() > MAX_DOMAIN_NAME_BYTES {
        return Err(DomainNameError::TooLong(shown()));
    }
    if !name.split('.').all(crate::is_valid_site_name) {
        return Err(DomainNameError::Invalid(shown()));
    }
    if !name.contains('.') {
        // `localhost` itself lands here too: it has no dot.
        return Err(if name == "localhost" {
            DomainNameError::Localhost(shown())
        } else {
            DomainNameError::NoDot(shown())
        });
    }
    if name.ends_with(".localhost") {
        return Err(DomainNameError::Localhost(shown()));
    }
    // A name ending in a number is no host name (RFC 1123 §2.1 keeps
    // top-level domains alphabetic) and would read as an IPv4 address.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DomainNameError::IpAddress(shown()));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_domain_name("example.org").unwrap(), "example.org");
        assert_eq!(
            normalize_domain_name("Example.ORG.").unwrap(),
            "example.org"
        );
        assert_eq!(
            normalize_domain_name("www.my-shop.co.uk").unwrap(),
            "www.my-shop.co.uk"
        );
        assert_eq!(
            normalize_domain_name("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        use DomainNameError::*;
        // Each case with the kind of refusal it gets (the quoted text aside).
        let x = String::new;
        let cases = [
            ("", Empty),
            ("http://example.org/", Url(x())),
            ("example.org/blog", Url(x())),
            ("example.org:8080", Port(x())),
            ("example", NoDot(x())),
            ("localhost", Localhost(x())),
            ("blog.localhost", Localhost(x())),
            ("BLOG.LOCALHOST.", Localhost(x())),
            ("192.0.2.1", IpAddress(x())),
            ("::1", IpAddress(x())),
            ("[::1]", IpAddress(x())),
            ("example.123", IpAddress(x())),
            ("-bad.example.org", Invalid(x())),
            ("bad-.example.org", Invalid(x())),
            ("a..b", Invalid(x())),
            ("example.org..", Invalid(x())),
            (".example.org", Invalid(x())),
            ("ex ample.org", Invalid(x())),
            ("under_score.org", Invalid(x())),
            ("bücher.example", Invalid(x())),
        ];
        for (text, expected) in cases {
            let err = normalize_domain_name(text).unwrap_err();
            let same_kind = std::mem::discriminant(&err) == std::mem::discriminant(&expected);
            assert!(same_kind, "{text:?} gave {err:?}, not {expected:?}");
        }
        let long_label = format!("{}.org", "a".repeat(64));
        assert!(matches!(
            normalize_domain_name(&long_label),
            Err(DomainNameError::Invalid(_))
        ));
        // 253 bytes is still a name; 254 is not.
        let (a, b) = ("a".repeat(63), "b".repeat(61));
        let longest = format!("{a}.{a}.{a}.{b}");
        assert_eq!(longest.len(), MAX_DOMAIN_NAME_BYTES);
        assert_eq!(normalize_domain_name(&longest).unwrap(), longest);
        assert!(matches!(
            normalize_domain_name(&format!("b{longest}")),
            Err(DomainNameError::TooLong(_))
        ));
        // Whatever is sent, the message quotes a readable prefix only.
        let err = normalize_domain_name(&"é".repeat(500))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 400, "{err}");
    }
}
