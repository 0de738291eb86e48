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
}
