//! The processes tests start: signals by pid, stopping with a deadline, and
//! output pipes drained as they are written.
//!
//! A pipe holds 64 KiB; a child whose pipe nobody reads blocks on its next
//! write once it is full (a chatty daemon would hang in the middle of a
//! test). So every pipe a test keeps is read by a thread from the start,
//! into a buffer the test can look at or wait on at any time.

use std::borrow::Cow;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::wait;

/// Signal numbers used by tests.
pub mod libc_sig {
    pub const SIGTERM: i32 = 15;
    pub const SIGKILL: i32 = 9;
    pub const SIGINT: i32 = 2;
}

/// Runs `start` again while it fails with "text file busy" (ETXTBSY): a
/// binary a test has just copied cannot be executed while another test
/// thread's freshly forked child still holds the copy's write descriptor
/// (it closes at that child's exec, a moment later).
pub fn retry_busy<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut last = None;
    let started = wait::poll(crate::PATIENCE, || match start() {
        Err(err) if err.kind() == std::io::ErrorKind::ExecutableFileBusy => {
            last = Some(err);
            None
        }
        other => Some(other),
    });
    started.unwrap_or_else(|| Err(last.expect("a busy error was seen")))
}

/// Sends `signal` to `pid` (our own child process).
pub fn signal_pid(pid: u32, signal: i32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Ok(sig) = Signal::try_from(signal) {
        let _ = kill(Pid::from_raw(pid as i32), sig);
    }
}

/// Sends `signal` to `child` and waits up to `grace` for it to exit. Returns
/// its exit status, or `None` when it had to be killed (SIGKILL, by pid)
/// after the grace period. Either way the child is reaped.
pub fn stop_child(child: &mut Child, signal: i32, grace: Duration) -> Option<ExitStatus> {
    // Reaped already: its pid may belong to another process by now.
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal_pid(child.id(), signal);
    let exited = wait::poll(grace, || child.try_wait().ok().flatten());
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    exited
}

/// A child process whose stdout and stderr are drained as they are written,
/// stopped by pid (SIGKILL) and reaped when dropped, so a failing assertion
/// cannot leave it running.
pub struct Process {
    child: Child,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Process {
    /// Spawns `command` with stdin from `/dev/null` and both outputs drained.
    pub fn spawn(command: &mut Command) -> std::io::Result<Process> {
        let mut child = retry_busy(|| {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })?;
        let stdout = Captured::drain(child.stdout.take().expect("piped stdout"));
        let stderr = Captured::drain(child.stderr.take().expect("piped stderr"));
        Ok(Process {
            child,
            stdout,
            stderr,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited, `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait::poll(timeout, || self.exited())
    }

    /// [`stop_child`]: `signal`, up to `grace` to exit, SIGKILL after.
    pub fn stop(&mut self, signal: i32, grace: Duration) -> Option<ExitStatus> {
        stop_child(&mut self.child, signal, grace)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc_sig::SIGKILL, wait::PATIENCE);
    }
}

/// Everything a child wrote to one pipe, read by a thread as it arrives.
///
/// The thread ends at end of file (the child exited and closed the pipe);
/// nothing needs to stop it.
pub struct Captured {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    grew: Condvar,
}

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    closed: bool,
}

impl Captured {
    /// Starts draining `pipe` (a child's `stdout` or `stderr`).
    pub fn drain(mut pipe: impl Read + Send + 'static) -> Captured {
        let shared = Arc::new(Shared::default());
        let writer = shared.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let mut state = writer.state.lock().unwrap_or_else(|p| p.into_inner());
                if n == 0 {
                    state.closed = true;
                } else {
                    state.bytes.extend_from_slice(&buf[..n]);
                }
                writer.grew.notify_all();
                if state.closed {
                    return;
                }
            }
        });
        Captured { shared }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.state().bytes).into_owned()
    }

    /// The complete lines written so far.
    pub fn lines(&self) -> Vec<String> {
        let state = self.state();
        let (lines, _) = complete_lines(&state.bytes);
        lines.into_iter().map(|l| l.into_owned()).collect()
    }

    /// Waits until a complete line matches `wanted` and returns it; `None`
    /// when the pipe closes first or `timeout` passes.
    pub fn wait_for_line(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut scanned = 0;
        let mut state = self.state();
        loop {
            let (lines, used) = complete_lines(&state.bytes[scanned..]);
            if let Some(line) = lines.into_iter().find(|l| wanted(l)) {
                return Some(line.into_owned());
            }
            scanned += used;
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self
                .shared
                .grew
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the child closed the pipe (it exited); whether it did
    /// within `timeout`.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let state = self.state();
        let (state, _) = self
            .shared
            .grew
            .wait_timeout_while(state, timeout, |s| !s.closed)
            .unwrap_or_else(|p| p.into_inner());
        state.closed
    }
}

/// The complete (newline-ended) lines of `bytes`, and how many bytes they span.
fn complete_lines(bytes: &[u8]) -> (Vec<Cow<'_, str>>, usize) {
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last) => (
            bytes[..last]
                .split(|&b| b == b'\n')
                .map(String::from_utf8_lossy)
                .collect(),
            last + 1,
        ),
        None => (Vec::new(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_writes_more_than_a_pipe_holds_never_blocks() {
        // 1 MB on stderr, sixteen times what a pipe holds, before the line
        // the test waits for on stdout.
        let mut chatty = Process::spawn(Command::new("sh").args([
            "-c",
            "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo done; echo partial | tr -d '\\n'",
        ]))
        .unwrap();
        let done = chatty.stdout.wait_for_line(wait::PATIENCE, |l| l == "done");
        assert_eq!(done.as_deref(), Some("done"));
        assert!(chatty.wait(wait::PATIENCE).is_some_and(|s| s.success()));
        assert!(chatty.stderr.wait_closed(wait::PATIENCE));
        assert_eq!(chatty.stderr.text().len(), 1_000_000);
        assert!(chatty.stdout.wait_closed(wait::PATIENCE));
        assert_eq!(chatty.stdout.lines(), ["done"], "complete lines only");
        assert_eq!(chatty.stdout.text(), "done\npartial");
    }

    #[test]
    fn a_line_that_never_comes_is_none_once_the_pipe_closes() {
        let mut quiet = Process::spawn(&mut Command::new("true")).unwrap();
        assert_eq!(quiet.stdout.wait_for_line(wait::PATIENCE, |_| true), None);
        assert!(quiet.wait(wait::PATIENCE).is_some());
    }

    #[test]
    fn stopping_a_child_that_ignores_the_signal_kills_it() {
        let mut stubborn = Process::spawn(Command::new("sh").args([
            "-c",
            // An ignored signal stays ignored across exec: one process.
            "trap '' TERM; echo ready; exec sleep 60",
        ]))
        .unwrap();
        stubborn
            .stdout
            .wait_for_line(wait::PATIENCE, |l| l == "ready");
        let pid = stubborn.id();
        let ended = stubborn.stop(libc_sig::SIGTERM, Duration::from_millis(200));
        assert_eq!(ended, None, "it had to be killed");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
