//! The daemon's one shutdown mechanism: a [`CancellationToken`] fanned out
//! to every long-running task, and a [`TaskTracker`] the daemon waits on.
//!
//! As in mini-redis, stopping is a signal, not a poll: the HTTP accept loop,
//! the control socket, every WebSocket connection and the watchdog select on
//! [`Shutdown::cancelled`] and end on their own; the daemon then waits for
//! what was spawned with [`Shutdown::spawn`] (bounded by its grace period).
//! Threads (the JavaScript workers, the log writer) are told to stop and
//! joined by their owners.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Runs `task` as part of the daemon: shutdown waits for it to end.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Resolves once shutdown has begun.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Tells every task to stop, without waiting.
    pub fn begin(&self) {
        self.token.cancel();
    }

    /// Tells every task to stop, then waits up to `grace` for them to end.
    /// Returns false if some were still running then.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.begin();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_signals_and_waits_for_tracked_tasks() {
        let shutdown = Shutdown::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s = shutdown.clone();
        shutdown.spawn(async move {
            s.cancelled().await;
            let _ = tx.send("ended after the signal");
        });
        assert!(shutdown.stop(Duration::from_secs(5)).await);
        assert_eq!(rx.await.unwrap(), "ended after the signal");

        // A task that ignores the signal is reported, not waited for forever.
        let stubborn = Shutdown::new();
        stubborn.spawn(std::future::pending::<()>());
        assert!(!stubborn.stop(Duration::from_millis(50)).await);
    }
}
