//! faztd: the Fazt daemon. It owns the database and serves every site.
//!
//! See ARCHITECTURE.md at the repository root for the map of modules.

pub mod connections;
pub mod content;
pub mod control;
pub mod daemon;
pub mod domain;
pub mod functions;
pub mod http;
pub mod instance;
pub mod logging;
pub mod memory;
pub mod realtime;
pub mod refusals;
pub mod seed;
pub mod settings;
pub mod shutdown;
pub mod sites;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod urls;
