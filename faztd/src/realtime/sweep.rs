//! The hub's housekeeping: a task that drops idle channels and, after a
//! flood has gone, hands the memory it held back to the system.
//!
//! Without it, a channel nobody subscribes to would keep its history
//! forever, and the allocator would keep what a flood freed (RSS stays at
//! its peak, which looks like a leak). The release walks the allocator's
//! free lists, so it follows a large drop, never each message.

use std::sync::Arc;
use std::time::Duration;

use super::hub::ChannelHub;
use crate::memory::{self, PeakWatch};

/// Below this peak, what the hub held is not worth a release.
const RELEASE_WORTH_IT: usize = 8 * 1024 * 1024;

/// How often to sweep: often enough that a channel is dropped within a
/// quarter of its idle time after it expires, rarely enough to cost
/// nothing (the idle time may change at run time, so it is read each round).
fn period(channel_idle: Duration) -> Duration {
    (channel_idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
}

/// Sweeps `hub` until the daemon shuts down.
pub async fn expire_idle_channels(hub: Arc<ChannelHub>) {
    let mut watch = PeakWatch::new(RELEASE_WORTH_IT);
    loop {
        let wait = period(hub.limits().channel_idle);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = hub.shutdown().cancelled() => return,
        }
        let swept = hub.sweep();
        if swept.expired > 0 {
            tracing::debug!(
                expired = swept.expired,
                held_bytes = swept.held_bytes,
                "realtime sweep"
            );
        }
        if watch.fell(swept.held_bytes) {
            let _ = tokio::task::spawn_blocking(memory::release_freed_memory).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::RealtimeLimits;
    use crate::shutdown::Shutdown;

    #[test]
    fn the_period_follows_the_idle_time_within_bounds() {
        assert_eq!(period(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(period(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(period(Duration::from_secs(0)), Duration::from_millis(250));
    }

    #[tokio::test]
    async fn it_expires_idle_channels_and_ends_on_shutdown() {
        let shutdown = Shutdown::new();
        let hub = Arc::new(ChannelHub::new(
            RealtimeLimits {
                channel_idle: Duration::from_secs(1),
                ..Default::default()
            },
            shutdown.clone(),
            Default::default(),
        ));
        hub.publish("s", "c", &serde_json::json!(1)).unwrap();
        shutdown.spawn(expire_idle_channels(hub.clone()));
        assert_eq!(hub.stats().channels, 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while hub.stats().channels > 0 {
            assert!(tokio::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            shutdown.stop(Duration::from_secs(5)).await,
            "the sweep ended"
        );
    }
}
