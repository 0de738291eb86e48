//! Functions (DESIGN.md §4): JavaScript under a site's `api/`, run by
//! QuickJS (rquickjs) on dedicated worker threads.
//!
//! - `routes` maps request paths to modules (file routing, `[param]`s, `main.js`).
//! - `pool` owns the worker threads and the bounded job queue.
//! - `engine` is one worker's runtime: fresh context per request, bytecode
//!   cached per deployed version, time/memory/stack limits.
//! - `host` implements the `fazt` API (kv, docs, env, realtime, logs) that
//!   `prelude.js` exposes to JavaScript; `docs_query` is the query language.
//! - `logs` keeps each site's function log for `faztctl logs`.
//! - `serve` is the HTTP glue.

pub mod docs_query;
pub mod engine;
pub mod host;
pub mod logs;
pub mod pool;
pub mod routes;
pub mod serve;

pub use engine::{FnError, Limits};
pub use pool::FunctionPool;
pub use routes::FunctionSet;
