//! The notify socket (sd_notify(3)): READY once both sockets are bound,
//! STATUS lines a person sees in `systemctl status`, and watchdog pings while
//! the daemon can still serve. Everything here is a no-op outside systemd
//! (no `NOTIFY_SOCKET`), so the daemon calls it unconditionally.

use std::time::Duration;

use crate::shutdown::Shutdown;

use sd_notify::NotifyState;

/// Whether a service manager listens on the notify socket.
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState<'_>]) {
    if !enabled() {
        return;
    }
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(error = %err, "cannot write to systemd's notify socket");
    }
}

/// The daemon is serving: systemd's start job finishes now.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A line for `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Shutting down: systemd shows `deactivating` and waits for the exit.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

/// The start failed; the reason stays in the unit's StatusText, which
/// `faztd install` reads to explain the failure.
pub fn failed(reason: &str) {
    let line = reason.lines().next().unwrap_or(reason);
    send(&[NotifyState::Status(&format!("failed: {line}"))]);
}

/// How often to ping, when the unit has `WatchdogSec=`: half the deadline.
pub fn watchdog_interval() -> Option<Duration> {
    if !enabled() {
        return None;
    }
    sd_notify::watchdog_enabled().map(|deadline| deadline / 2)
}

/// Pings the watchdog until shutdown. `alive` is asked each time; a daemon
/// whose check fails stops pinging, and systemd restarts it.
pub fn spawn_watchdog<F>(alive: F, shutdown: &Shutdown)
where
    F: Fn() -> bool + Send + 'static,
{
    let Some(interval) = watchdog_interval() else {
        return;
    };
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog enabled"
    );
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => return,
            }
            if alive() {
                send(&[NotifyState::Watchdog]);
            } else {
                tracing::error!("health check failed: no longer pinging systemd's watchdog");
            }
        }
    });
}
