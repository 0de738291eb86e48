//! The function workers: a few OS threads, each with its own QuickJS
//! runtime, fed from one bounded queue. JavaScript never runs on the tokio
//! reactor, so a slow or looping function cannot stall static serving.

use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::engine::Engine;
use super::host::{HostContext, RealtimeBridge};
use super::invocation::{FnError, FnResponse, Invocation, Limits};
use super::logs::SiteLogs;
use crate::store::Store;

/// Requests waiting for a worker before new ones are turned away (503).
const QUEUE_DEPTH: usize = 256;
/// Each worker's native stack; QuickJS's own limit sits well below it.
const WORKER_STACK: usize = 16 * 1024 * 1024;

enum Job {
    Invoke(Invocation, oneshot::Sender<Result<FnResponse, FnError>>),
    CheckSyntax(Vec<(String, Vec<u8>)>, oneshot::Sender<Result<(), String>>),
}

pub struct FunctionPool {
    /// Jobs for the workers. `stop` takes it away: once it is dropped (with
    /// any clone a syntax check holds) the workers run what is queued, see
    /// the channel disconnected, and end.
    jobs: RwLock<Option<crossbeam_channel::Sender<Job>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    pub limits: Limits,
    pub logs: Arc<SiteLogs>,
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
    pub fn start(workers: usize, limits: Limits, shared: Shared) -> std::io::Result<FunctionPool> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(QUEUE_DEPTH);
        let mut handles = Vec::new();
        for n in 0..workers.max(1) {
            let rx = rx.clone();
            let shared = shared.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("fazt-js-{n}"))
                    .stack_size(WORKER_STACK)
                    .spawn(move || worker(rx, limits, shared))?,
            );
        }
        Ok(FunctionPool {
            jobs: RwLock::new(Some(tx)),
            workers: Mutex::new(handles),
            limits,
            logs: shared.logs,
        })
    }

    /// Runs a function; `Busy` when the queue is full.
    pub async fn invoke(&self, invocation: Invocation) -> Result<FnResponse, FnError> {
        let (tx, rx) = oneshot::channel();
        {
            let jobs = self.jobs.read().expect("jobs");
            let Some(jobs) = jobs.as_ref() else {
                return Err(FnError::Internal(
                    "the function workers are stopping".to_string(),
                ));
            };
            jobs.try_send(Job::Invoke(invocation, tx))
                .map_err(|_| FnError::Busy)?;
        }
        rx.await
            .map_err(|_| FnError::Internal("the function worker stopped".to_string()))?
    }

    /// Ends the workers once they have run what is queued, and waits for
    /// them (blocking): afterwards nothing of theirs holds the database.
    pub fn stop(&self) {
        drop(self.jobs.write().expect("jobs").take());
        let workers = std::mem::take(&mut *self.workers.lock().expect("workers"));
        for worker in workers {
            let _ = worker.join();
        }
    }

    /// Compiles sources without running them (deploy-time check).
    pub async fn check_syntax(&self, sources: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        // A deploy waits for room in the queue rather than being refused as
        // busy; the wait happens on a blocking thread, not the reactor.
        let jobs = self
            .jobs
            .read()
            .expect("jobs")
            .clone()
            .ok_or("the function workers are stopping")?;
        tokio::task::spawn_blocking(move || jobs.send(Job::CheckSyntax(sources, tx)).is_ok())
            .await
            .map_err(|e| format!("the syntax check could not be queued: {e}"))?
            .then_some(())
            .ok_or("the function workers are gone")?;
        rx.await
            .map_err(|_| "the function worker stopped".to_string())?
    }
}

fn worker(jobs: crossbeam_channel::Receiver<Job>, limits: Limits, shared: Shared) {
    let mut engine: Option<Engine> = None;
    loop {
        // With nothing queued, get the next context ready before waiting.
        if jobs.is_empty() {
            if engine.is_none() {
                engine = Engine::new(limits, shared.store.clone()).ok();
            }
            if let Some(engine) = engine.as_mut() {
                engine.prepare();
            }
        }
        // Queued jobs are received before the disconnect that `stop` causes.
        let Ok(job) = jobs.recv() else {
            break;
        };
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
