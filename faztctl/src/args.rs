//! What the command line may say, checked before any daemon is asked.
//!
//! Each function here is a clap value parser: a wrong site name, version,
//! variable name or JSON message is refused by clap itself, naming the
//! argument, with exit code 2 ("the command line was wrong") and without
//! connecting anywhere. The daemon checks again; these checks only make the
//! answer come sooner and with the right exit code. Mistakes that can only be
//! seen later (after reading the folder, say) are a [`UsageError`].

use std::path::PathBuf;

/// A command-line mistake found after parsing: `main` prints it and exits 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A site name (`fazt_proto::is_valid_site_name`), with a suggestion when
/// one can be made from what was typed.
pub fn site_name(text: &str) -> Result<String, String> {
    if fazt_proto::is_valid_site_name(text) {
        return Ok(text.to_string());
    }
    let rule =
        "a site name is 1-63 lower-case letters, digits and -, not starting or ending with -";
    let suggestion = fazt_proto::site_name_from(text);
    if fazt_proto::is_valid_site_name(&suggestion) {
        Err(format!("{rule} (did you mean {suggestion}?)"))
    } else {
        Err(rule.to_string())
    }
}

/// A custom domain's name (`fazt_proto::normalize_domain_name`), in its
/// normal form: lower case, no trailing dot. Whether it is the instance's
/// own domain, or taken, only the daemon can say.
pub fn domain_name(text: &str) -> Result<String, String> {
    fazt_proto::normalize_domain_name(text).map_err(|err| err.to_string())
}

/// A site version as `history` prints it (`v5`), or as the bare number (`5`).
pub fn version(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix('v')
        .or_else(|| text.strip_prefix('V'))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "a version is written as `faztctl history` shows it, e.g. v5 (or just 5)".to_string(),
        );
    }
    digits
        .parse()
        .map_err(|_| "that version number is too large".to_string())
}

/// Environment variable names, as in a shell: a letter or `_`, then letters,
/// digits and `_`; at most 128 bytes (the daemon's rule, in fazt_proto).
pub fn env_name(text: &str) -> Result<String, String> {
    if fazt_proto::is_valid_env_name(text) {
        Ok(text.to_string())
    } else {
        Err(
            "a variable name is a letter or _, then letters, digits and _ (at most 128), e.g. API_TOKEN"
                .to_string(),
        )
    }
}

/// One `NAME=VALUE` of `env set`.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub name: String,
    pub value: String,
}

pub fn assignment(text: &str) -> Result<Assignment, String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err("write it as NAME=VALUE, e.g. API_TOKEN=abc123".to_string());
    };
    Ok(Assignment {
        name: env_name(name)?,
        value: value.to_string(),
    })
}

/// Any JSON value, kept as the text that was given.
pub fn json_text(text: &str) -> Result<String, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(_) => Ok(text.to_string()),
        Err(err) => Err(format!(
            "not JSON ({err}); quote text as JSON, e.g. '\"hello\"' or '{{\"n\":1}}'"
        )),
    }
}

/// A folder that exists.
pub fn folder(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(_) => Err("not a folder: deploy the folder that holds the site's files".to_string()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err("there is no such folder".to_string())
        }
        Err(err) => Err(format!("cannot open it: {err}")),
    }
}

/// A remote's name (see `remotes::check_name`).
pub fn remote_name(text: &str) -> Result<String, String> {
    crate::remotes::check_name(text)
        .map(|()| text.to_string())
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_history_prints_them_or_bare() {
        assert_eq!(version("v5"), Ok(5));
        assert_eq!(version("V12"), Ok(12));
        assert_eq!(version("5"), Ok(5));
        for bad in ["", "v", "vv5", "5v", "-5", "+5", "v 5", "five", "v5.1"] {
            assert!(version(bad).is_err(), "{bad:?}");
        }
        assert!(version("v99999999999999999999999").is_err());
    }

    #[test]
    fn site_names_follow_the_proto_rule_and_suggest_one() {
        assert_eq!(site_name("my-site").as_deref(), Ok("my-site"));
        let err = site_name("Bad_Name").unwrap_err();
        assert!(err.contains("did you mean bad-name?"), "{err}");
        assert!(!site_name("___").unwrap_err().contains("did you mean"));
    }

    #[test]
    fn variable_names_and_assignments() {
        assert!(env_name("API_TOKEN").is_ok());
        assert!(env_name("_x1").is_ok());
        for bad in ["", "1BAD", "BAD-NAME", "BAD NAME", "É"] {
            assert!(env_name(bad).is_err(), "{bad:?}");
        }
        assert!(env_name(&"A".repeat(129)).is_err());
        let a = assignment("K=a=b").unwrap();
        assert_eq!((a.name.as_str(), a.value.as_str()), ("K", "a=b"));
        assert!(assignment("BADNAME").is_err());
        assert!(assignment("1X=y").is_err());
    }

    #[test]
    fn domain_names_are_normalised_or_refused_with_the_rule() {
        assert_eq!(domain_name("Example.ORG.").as_deref(), Ok("example.org"));
        assert!(domain_name("example").unwrap_err().contains("has no dot"));
        assert!(domain_name("https://example.org/")
            .unwrap_err()
            .contains("give the name alone"));
        assert!(domain_name("127.0.0.1").unwrap_err().contains("IP address"));
    }

    #[test]
    fn json_messages() {
        assert!(json_text("\"text\"").is_ok());
        assert!(json_text("{\"n\":1}").is_ok());
        assert!(json_text("not json")
            .unwrap_err()
            .contains("quote text as JSON"));
    }
}
