//! Turning a request's raw path into a path inside a site, safely.
//!
//! The decoded path is split into segments; `.` and `..` segments, NUL and
//! other control characters, and backslashes are refused outright rather
//! than normalised, so no spelling of a path can climb out of its site.

use percent_encoding::percent_decode_str;

/// Longest raw request path accepted.
pub const MAX_PATH_LEN: usize = 2048;

/// A validated path inside a site: no leading slash, no empty segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePath {
    /// `""` for the site's root, else e.g. `docs/intro.html`.
    pub path: String,
    /// Whether the request path ended with `/`.
    pub trailing_slash: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path is too long")]
    TooLong,
    #[error("the request path is not valid")]
    Invalid,
}

pub fn parse(raw: &str) -> Result<SitePath, PathError> {
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(PathError::Invalid);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::Invalid)?;
    if decoded.chars().any(|c| c.is_control() || c == '\\') {
        return Err(PathError::Invalid);
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in decoded.split('/') {
        match segment {
            "" => continue,
            "." | ".." => return Err(PathError::Invalid),
            _ => {
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(segment);
            }
        }
    }
    Ok(SitePath {
        path,
        trailing_slash: decoded.ends_with('/') && decoded.len() > 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_and_ordinary_paths() {
        let ok = |p: &str| parse(p).map(|s| s.path);
        let cases: &[(&str, Result<&str, PathError>)] = &[
            ("/", Ok("")),
            ("/index.html", Ok("index.html")),
            ("/docs/", Ok("docs")),
            ("//a///b", Ok("a/b")),
            ("/caf%C3%A9.html", Ok("café.html")),
            ("/a%2fb", Ok("a/b")),
            ("/.well-known/x", Ok(".well-known/x")),
            ("/../etc/passwd", Err(PathError::Invalid)),
            ("/a/../../b", Err(PathError::Invalid)),
            ("/%2e%2e/secret", Err(PathError::Invalid)),
            ("/%2E%2E%2Fsecret", Err(PathError::Invalid)),
            ("/a/%2e/b", Err(PathError::Invalid)),
            ("/a\\..\\b", Err(PathError::Invalid)),
            ("/a%5c..%5cb", Err(PathError::Invalid)),
            ("/a%00.html", Err(PathError::Invalid)),
            ("/a%0d%0aSet-Cookie:x", Err(PathError::Invalid)),
            ("/%ff%fe", Err(PathError::Invalid)),
            ("relative", Err(PathError::Invalid)),
            ("", Err(PathError::Invalid)),
        ];
        for (raw, want) in cases {
            assert_eq!(ok(raw), want.map(String::from), "path {raw:?}");
        }
        assert_eq!(
            parse(&format!("/{}", "a".repeat(3000))),
            Err(PathError::TooLong)
        );
        assert!(parse("/docs/").unwrap().trailing_slash);
        assert!(!parse("/").unwrap().trailing_slash);
    }

    mod properties {
        use super::super::*;
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        use proptest::prelude::*;

        /// Writes `segments` as a request path, percent-encoding every
        /// character that is not alphanumeric, in the case `upper` says.
        fn encoded(segments: &[String], upper: bool) -> String {
            let mut raw = String::new();
            for segment in segments {
                raw.push('/');
                let e = utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string();
                raw.push_str(&if upper { e } else { e.to_lowercase_escapes() });
            }
            raw
        }

        trait LowerEscapes {
            fn to_lowercase_escapes(&self) -> String;
        }
        impl LowerEscapes for String {
            /// `%2E` → `%2e`: servers must treat both the same.
            fn to_lowercase_escapes(&self) -> String {
                let mut out = String::with_capacity(self.len());
                let mut hex = 0;
                for c in self.chars() {
                    if c == '%' {
                        hex = 2;
                        out.push(c);
                    } else if hex > 0 {
                        hex -= 1;
                        out.push(c.to_ascii_lowercase());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }

        proptest! {
            /// Any string is answered, never a panic.
            #[test]
            fn never_panics(raw in any::<String>()) {
                let _ = parse(&raw);
            }

            /// Whatever is accepted stays inside the site: relative, no
            /// climbing, no empty or dot segments, no backslash or control
            /// character, however the request spelled it.
            #[test]
            fn accepted_paths_stay_inside(raw in "/[a-z./\\%2eEfFcC5\u{0}-\u{1f}é]{0,40}") {
                if let Ok(site_path) = parse(&raw) {
                    let path = site_path.path;
                    prop_assert!(!path.starts_with('/'));
                    prop_assert!(!path.contains('\\'));
                    prop_assert!(!path.chars().any(char::is_control));
                    if !path.is_empty() {
                        for segment in path.split('/') {
                            prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
                        }
                    }
                }
            }

            /// Ordinary names round-trip through percent-encoding in
            /// either case.
            #[test]
            fn encoded_names_round_trip(
                segments in prop::collection::vec("[a-zA-Z0-9 _~!$&'()*+,;=:@é€-]{1,12}", 1..5),
                upper in any::<bool>(),
            ) {
                let parsed = parse(&encoded(&segments, upper)).unwrap();
                prop_assert_eq!(parsed.path, segments.join("/"));
            }

            /// A `..` segment anywhere, spelled plainly or encoded, is refused.
            #[test]
            fn climbing_is_refused_in_any_spelling(
                before in prop::collection::vec("[a-z]{1,8}", 0..3),
                after in prop::collection::vec("[a-z]{1,8}", 0..3),
                upper in any::<bool>(),
            ) {
                let mut segments = before;
                segments.push("..".to_string());
                segments.extend(after);
                let plain = format!("/{}", segments.join("/"));
                prop_assert_eq!(parse(&plain), Err(PathError::Invalid));
                prop_assert_eq!(parse(&encoded(&segments, upper)), Err(PathError::Invalid));
            }
        }
    }
}
