//! What `faztd` and `faztctl` must agree on, and nothing else.
//!
//! This crate knows nothing of redb, warp or QuickJS. It holds the protocol
//! version, the rules that find the data directory and the control socket,
//! and (as the control plane grows) the wire types of the tarpc service.

pub mod paths;

/// The version of the Fazt release these crates were built from.
pub const FAZT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Bumped whenever the control protocol changes incompatibly. Both sides
/// compare it in the handshake that opens every connection.
pub const PROTOCOL_VERSION: u32 = 1;

/// The default TCP port for HTTP serving when nothing else is configured.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
