//! Realtime channels at `/_ws` on every site host (DESIGN.md §5).
//!
//! - [`hub`]: the [`ChannelHub`], every site's channels with their history
//!   and presence members; the Rust API functions and the control plane use
//!   (`publish`, `count`, `presence`, `stats`).
//! - [`history`]: what channels keep for catch-up, bounded in messages and
//!   in bytes per channel and per site.
//! - [`queue`]: a subscriber's bounded queue, allocated as it fills.
//! - [`sweep`]: the task that drops idle channels and gives freed memory
//!   back after a flood.
//! - [`connection`]: the WebSocket upgrade (done here, not by warp, so the
//!   read buffer of an idle connection stays small) and one task per
//!   connection that reads frames, forwards channel traffic and heartbeats.
//! - [`frames`]: the JSON frames; the only place that knows their shape.
//! - [`config`]: the limits (settings) and a site's `fazt.json` section.
//!
//! Invariants: channels are keyed by site; nothing a client of one site does
//! can reach another site's channels; everything a client can make the hub
//! hold (channels, history, queued frames) is bounded, and what it leaves
//! behind expires.

pub mod config;
pub mod connection;
pub mod frames;
pub mod history;
pub mod hub;
pub mod queue;
pub mod sweep;

pub use config::{RealtimeLimits, SiteRealtime};
pub use connection::WS_PATH;
pub use hub::{ChannelHub, RealtimeError, RealtimeStats};
