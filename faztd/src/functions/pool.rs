//! The function workers: a few OS threads, each with its own QuickJS
//! runtime, fed by the [`Scheduler`]: a bounded queue per site, served in
//! turn, so that one busy site cannot starve the others. JavaScript never
//! runs on the tokio reactor, so a slow or looping function cannot stall
//! static serving.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::engine::Engine;
use super::host::{HostContext, RealtimeBridge};
use super::invocation::{FnError, FnResponse, Invocation, Limits};
use super::logs::SiteLogs;
use super::scheduler::{Claim, Refused, Scheduler, Shares};
use crate::refusals::Refusal;
use crate::store::Store;

/// Calls waiting for a worker, all sites together, before new ones are
/// turned away (503).
pub const QUEUE_DEPTH: usize = 256;
/// Each worker's native stack; QuickJS's own limit sits well below it.
const WORKER_STACK: usize = 16 * 1024 * 1024;
/// The queue deploys' syntax checks wait in, beside the sites' (a name no
/// site can have: it has a space).
const DEPLOY_CHECKS: &str = "deploy checks";

enum Job {
    Invoke(Invocation, oneshot::Sender<Result<FnResponse, FnError>>),
    CheckSyntax(Vec<(String, Vec<u8>)>, oneshot::Sender<Result<(), String>>),
}

/// How many workers, and how much of them one site may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    pub workers: usize,
    pub shares: Shares,
}

pub struct FunctionPool {
    /// The calls waiting, per site. `stop` closes it: the workers run what
    /// is queued, and end.
    jobs: Arc<Scheduler<Job>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    pub limits: Limits,
    pub logs: Arc<SiteLogs>,
    /// Where refused calls are counted for status.
    refusals: Arc<crate::refusals::Refusals>,
}

/// What the workers need to build each invocation's host context.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<Store>,
    pub logs: Arc<SiteLogs>,
    pub realtime: Option<Arc<dyn RealtimeBridge>>,
    /// Where refused calls are counted for status.
    pub refusals: Arc<crate::refusals::Refusals>,
}

impl FunctionPool {
    pub fn start(size: PoolSize, limits: Limits, shared: Shared) -> std::io::Result<FunctionPool> {
        let jobs = Arc::new(Scheduler::new(size.shares));
        let mut handles = Vec::new();
        for n in 0..size.workers.max(1) {
            let jobs = jobs.clone();
            let shared = shared.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("fazt-js-{n}"))
                    .stack_size(WORKER_STACK)
                    .spawn(move || worker(&jobs, limits, shared))?,
            );
        }
        Ok(FunctionPool {
            jobs,
            workers: Mutex::new(handles),
            limits,
            logs: shared.logs,
            refusals: shared.refusals,
        })
    }

    /// Runs a function; `SiteBusy` when its site's queue is full, `Busy`
    /// when the queue of all sites is.
    pub async fn invoke(&self, invocation: Invocation) -> Result<FnResponse, FnError> {
        let (tx, rx) = oneshot::channel();
        let set = invocation.set.clone();
        let site = set.site.as_str();
        match self.jobs.push(site, Job::Invoke(invocation, tx)) {
            Ok(()) => {}
            Err(Refused::SiteFull) => {
                self.refusals
                    .record(Refusal::FunctionSiteBusy, format_args!("site {site}"));
                return Err(FnError::SiteBusy);
            }
            Err(Refused::QueueFull) => {
                self.refusals
                    .record(Refusal::FunctionQueueFull, format_args!("site {site}"));
                return Err(FnError::Busy);
            }
            Err(Refused::Closed) => return Err(stopping()),
        }
        rx.await
            .map_err(|_| FnError::Internal("the function worker stopped".to_string()))?
    }

    /// Ends the workers once they have run what is queued, and waits for
    /// them (blocking): afterwards nothing of theirs holds the database.
    pub fn stop(&self) {
        self.jobs.close();
        let workers = std::mem::take(&mut *self.workers.lock().expect("workers"));
        for worker in workers {
            let _ = worker.join();
        }
    }

    /// Compiles sources without running them (deploy-time check). A deploy
    /// is never refused for room: it has a queue of its own, bounded by the
    /// deploys under way, and takes its turn beside the sites'.
    pub async fn check_syntax(&self, sources: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .push_unbounded(DEPLOY_CHECKS, Job::CheckSyntax(sources, tx))
            .map_err(|_| stopping().to_string())?;
        rx.await
            .map_err(|_| "the function worker stopped".to_string())?
    }
}

fn stopping() -> FnError {
    FnError::Internal("the function workers are stopping".to_string())
}

fn worker(jobs: &Scheduler<Job>, limits: Limits, shared: Shared) {
    let mut engine: Option<Engine> = None;
    // The place of the call this worker ran last: its site's share is held
    // until the clean-up after it (work it left running) is over too.
    let mut done: Option<Claim<'_, Job>> = None;
    loop {
        let (claim, job) = match jobs.try_next(done.take()) {
            Some(next) => next,
            None => {
                // With nothing to run, get the next context ready, then wait.
                if engine.is_none() {
                    engine = Engine::new(limits, shared.store.clone()).ok();
                }
                if let Some(engine) = engine.as_mut() {
                    engine.prepare();
                }
                // Queued calls are run before `stop`'s close ends the loop.
                match jobs.next() {
                    Some(next) => next,
                    None => break,
                }
            }
        };
        done = Some(claim);
        let current = match engine.take() {
            Some(e) => Ok(e),
            None => Engine::new(limits, shared.store.clone()),
        };
        let mut current = match current {
            Ok(e) => e,
            Err(err) => {
                tracing::error!(error = %err, "cannot start a JavaScript runtime");
                match job {
                    Job::Invoke(_, reply) => drop(reply.send(Err(err))),
                    Job::CheckSyntax(_, reply) => drop(reply.send(Err(err.to_string()))),
                }
                continue;
            }
        };
        match job {
            Job::Invoke(invocation, reply) => {
                let host = HostContext {
                    store: shared.store.clone(),
                    logs: shared.logs.clone(),
                    realtime: shared.realtime.clone(),
                    site: invocation.set.site.clone(),
                    version: invocation.set.version,
                };
                let result = current.invoke(&invocation, host);
                let spent = Engine::spent(&result);
                // The answer goes out first; the clean-up does not delay it.
                let _ = reply.send(result);
                if !spent && current.finish() {
                    engine = Some(current);
                } else {
                    // The runtime goes, often after a call that grabbed its
                    // whole memory limit: give that memory back to the system.
                    drop(current);
                    crate::memory::release_freed_memory();
                }
            }
            Job::CheckSyntax(sources, reply) => {
                let _ = reply.send(current.check_syntax(&sources));
                engine = Some(current);
            }
        }
    }
}
