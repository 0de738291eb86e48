//! Paths in a deploy manifest: checked, never normalised.

const MAX_PATH_BYTES: usize = 1024;
const MAX_SEGMENT_BYTES: usize = 255;
/// How much of a refused path the message quotes.
const SHOWN_CHARS: usize = 40;

/// Checks a path from a manifest: relative, `/`-separated, no `.`/`..` or
/// empty segments, no backslashes or control characters, bounded length.
/// The error names the path (escaped, and cut to a readable length).
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("an empty path".to_string());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "path \"{}...\" is longer than {MAX_PATH_BYTES} bytes",
            shown(path)
        ));
    }
    let shown = shown(path);
    if path.starts_with('/') {
        return Err(format!("path \"{shown}\" is absolute"));
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!(
            "path \"{shown}\" contains a control character or a backslash"
        ));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(format!("path \"{shown}\" has an empty segment")),
            "." | ".." => return Err(format!("path \"{shown}\" climbs with \"{segment}\"")),
            s if s.len() > MAX_SEGMENT_BYTES => {
                return Err(format!(
                    "path \"{shown}\" has a name longer than {MAX_SEGMENT_BYTES} bytes"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The path escaped for a message, cut by characters (never inside one).
fn shown(path: &str) -> String {
    let escaped: String = path.escape_debug().collect();
    match escaped.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}...", &escaped[..cut]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::validate_path;
    use proptest::prelude::*;

    #[test]
    fn manifest_paths() {
        let long = "a".repeat(2000);
        let long_segment = format!("x/{}", "b".repeat(300));
        for ok in [
            "index.html",
            "a/b/c.txt",
            ".well-known/x",
            "café.html",
            "a..b",
        ] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "a\nb",
            &long,
            &long_segment,
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }

    /// A long path with a multi-byte character where the message cuts it
    /// used to panic the handler (it cut by bytes).
    #[test]
    fn long_path_with_multibyte_characters() {
        let path = format!("{}é{}", "a".repeat(39), "b".repeat(1100));
        let err = validate_path(&path).unwrap_err();
        assert!(err.contains("longer than 1024 bytes"), "{err}");
        let path = "€".repeat(400);
        assert!(validate_path(&path).is_err());
    }

    proptest! {
        /// Any string is answered (accepted or refused with a message), never a panic.
        #[test]
        fn never_panics(path in any::<String>()) {
            let _ = validate_path(&path);
        }

        /// Whatever is accepted stays inside the site: relative, no climbing,
        /// no empty or dot segments, nothing a filesystem or URL would reinterpret.
        #[test]
        fn accepted_paths_stay_inside(path in "[a-z./\\\\é\u{0}-\u{1f}]{0,40}") {
            if validate_path(&path).is_ok() {
                prop_assert!(!path.starts_with('/'));
                prop_assert!(!path.contains('\\'));
                prop_assert!(!path.chars().any(|c| c.is_control()));
                for segment in path.split('/') {
                    prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
                }
            }
        }

        /// Long paths are refused, with a message that stays short.
        #[test]
        fn long_paths_refused(path in "\\PC{1025,1400}") {
            if path.len() > 1024 {
                let err = validate_path(&path).unwrap_err();
                prop_assert!(err.len() < 400);
            }
        }
    }
}
