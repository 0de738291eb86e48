//! Waiting for an event instead of sleeping and hoping: poll a condition
//! until it holds or a deadline passes, and when it never comes, fail naming
//! what was awaited. A fixed sleep is either too long on a fast machine or
//! too short on a loaded one; a deadline is only ever reached when something
//! is really wrong.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test waits for something that normally takes milliseconds:
/// generous, because a CI machine running two builds at once is slow, and
/// reaching it means a failure anyway.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The pause between two polls: short at first (most events are quick), then
/// growing to 50 ms so a long wait does not spin.
fn next_pause(pause: Duration) -> Duration {
    (pause * 2).min(Duration::from_millis(50))
}

/// Polls `probe` until it gives a value, or gives `None` once `timeout` has
/// passed. For paths that must not panic (`Drop`); tests use [`wait_for`].
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = next_pause(pause);
    }
}

/// Polls `probe` until it gives a value; panics naming `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    poll(timeout, probe).unwrap_or_else(|| panic!("waited {timeout:?} for {what} in vain"))
}

/// Polls `condition` until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(timeout, what, || condition().then_some(()))
}

/// [`wait_for`] for async tests: the probe is awaited, and the pauses
/// between polls yield to the runtime instead of blocking a worker.
pub async fn wait_for_async<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        let now = Instant::now();
        assert!(now < deadline, "waited {timeout:?} for {what} in vain");
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = next_pause(pause);
    }
}

/// [`wait_until`] for async tests.
pub async fn wait_until_async<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let probe = || {
        let done = condition();
        async move { done.await.then_some(()) }
    };
    wait_for_async(timeout, what, probe).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_returns_the_first_value_the_probe_gives() {
        let mut calls = 0;
        let got = poll(PATIENCE, || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
    }

    #[test]
    fn poll_gives_up_at_the_deadline() {
        let started = Instant::now();
        assert_eq!(poll(Duration::from_millis(50), || None::<()>), None);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    #[should_panic(expected = "for the moon to turn blue in vain")]
    fn wait_until_names_what_never_came() {
        wait_until(Duration::from_millis(10), "the moon to turn blue", || false);
    }
}
