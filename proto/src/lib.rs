//! What `faztd` and `faztctl` must agree on, and nothing else.
//!
//! This crate knows nothing of redb, warp or QuickJS. It holds the release
//! and protocol versions, the rules that find the data directory and the
//! control socket, site-name and domain-name rules, and the tarpc service
//! with its wire types.
//!
//! Wire format: tarpc over a length-delimited Unix socket, encoded as CBOR
//! ([`wire`]; see ARCHITECTURE.md for why, and `service.rs` for the rules
//! that let the protocol grow).

pub mod domain_name;
pub mod paths;
pub mod service;
pub mod wire;

pub use domain_name::{normalize_domain_name, DomainNameError};
pub use service::*;

/// The version of the Fazt release these crates were built from.
pub const FAZT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binaries were built from (`unknown` outside a checkout).
pub const FAZT_COMMIT: &str = env!("FAZT_COMMIT");

/// `VERSION (COMMIT)`, as `--version` prints it for both binaries.
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FAZT_COMMIT"), ")");

/// Bumped whenever the control protocol changes incompatibly (see the rules
/// in `service.rs`). Both sides compare it in the handshake that opens every
/// connection. 3: CBOR instead of bincode.
pub const PROTOCOL_VERSION: u32 = 3;

/// The default TCP port for HTTP serving when nothing else is configured.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Largest frame on the control socket. Upload batches stay well below it.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Uploads are cut into chunks of this size (the store's chunk size).
pub const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;

/// Site names are DNS labels: 1–63 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn is_valid_site_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Environment variable names (`faztctl env`), as in a shell: a letter or
/// `_`, then letters, digits and `_`; at most 128 bytes.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// Turns a folder name into a site name: lower-case, other characters become `-`.
pub fn site_name_from(folder: &str) -> String {
    let mut name: String = folder
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-');
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names() {
        assert!(is_valid_site_name("demo"));
        assert!(is_valid_site_name("my-site-2"));
        assert!(!is_valid_site_name("My"));
        assert!(!is_valid_site_name("a.b"));
        assert!(!is_valid_site_name(""));
        assert!(!is_valid_site_name(&"a".repeat(64)));
        assert_eq!(site_name_from("My Site_v2"), "my-site-v2");
        assert_eq!(site_name_from("--x--"), "x");
        assert!(is_valid_env_name("API_TOKEN") && is_valid_env_name("_x1"));
        assert!(!is_valid_env_name("1BAD") && !is_valid_env_name("A-B") && !is_valid_env_name(""));
        assert!(!is_valid_env_name(&"A".repeat(129)));
        assert_eq!(site_name_from("..."), "");
    }
}
