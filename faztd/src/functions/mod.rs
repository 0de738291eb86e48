//! Functions (DESIGN.md §4): JavaScript under a site's `api/`, run by
//! QuickJS (rquickjs) on dedicated worker threads.
//!
//! - `routes` maps request paths to modules (file routing, `[param]`s, `main.js`).
//! - `pool` owns the worker threads; `scheduler` is what feeds them: a
//!   bounded queue per site, served in turn, each site with a cap on the
//!   workers it may hold, so one busy site cannot starve the others.
//! - `invocation` is what a call is made of: request, answer, error, limits.
//! - `engine` is one worker's runtime: a reused context per site, fresh module
//!   instances per request, time/memory/stack limits; `prelude.js` is the
//!   JavaScript side of it (the `fazt` API, the lockdown, the reset).
//! - `loader` resolves and loads `import`s inside a site's `api/`; `instances`
//!   loads a module as a new instance per request from bytecode compiled once
//!   per deployed version; `memory` counts the runtime's bytes; `messages`
//!   turns JavaScript failures into readable text.
//! - `host` implements the `fazt` API (kv, docs, env, realtime, logs) that
//!   `prelude.js` exposes to JavaScript; `docs_query` is the query language.
//! - `logs` keeps each site's function log for `faztctl logs`.
//!
//! The HTTP glue (request object, response, JSON errors) is `http::functions`.

pub mod docs_query;
pub mod engine;
pub mod host;
mod instances;
pub mod invocation;
mod loader;
pub mod logs;
mod memory;
mod messages;
pub mod pool;
pub mod routes;
pub mod scheduler;

pub use invocation::{FnError, Limits};
pub use pool::{FunctionPool, PoolSize};
pub use routes::FunctionSet;
pub use scheduler::Shares;
