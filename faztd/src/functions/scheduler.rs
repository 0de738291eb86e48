//! Fair shares of the function workers: a queue per site, served in turn.
//!
//! All sites share a few worker threads. With one queue for everyone, a site
//! whose calls are slow (a busy loop up to the time limit, work left running
//! after the answer) fills the queue and every other site waits behind it.
//! So each site gets its own queue, and two limits:
//!
//! - a site runs at most `site_concurrency` calls at once: with that below
//!   the number of workers, a worker is free for the other sites even while
//!   one site keeps all of its calls busy;
//! - a site has at most `site_queue` calls waiting; one more is refused
//!   ([`Refused::SiteFull`]), and the instance as a whole at most
//!   `total_queue` ([`Refused::QueueFull`]).
//!
//! A worker looking for work takes the next call of the site at the front of
//! `ready` — the sites that have a call waiting and are under their cap — and
//! puts the site back at the end if it has more: round-robin. A site with a
//! thousand calls waiting therefore delays another site's single call by one
//! call at most, however long its own queue.
//!
//! Cost: one lock to queue a call, one to take the next. A worker hands back
//! the share of the call it finished in the same lock as it takes the next
//! ([`Scheduler::try_next`]), and it is only woken when there is work for it.
//! [`Scheduler::close`] refuses new calls; the workers run what is queued,
//! and then [`Scheduler::next`] answers `None`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How much of the workers one site may have, and how much may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    /// Calls of one site running at once (at least 1).
    pub site_concurrency: usize,
    /// Calls of one site waiting for a worker.
    pub site_queue: usize,
    /// Calls of all sites waiting for a worker, together.
    pub total_queue: usize,
}

/// Why a call was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its site has `site_queue` calls waiting already.
    SiteFull,
    /// All sites together have `total_queue` calls waiting.
    QueueFull,
    /// The workers are stopping.
    Closed,
}

/// The queues of every site with calls waiting or running, and the workers
/// waiting for them. `J` is a job: what a worker runs.
pub struct Scheduler<J> {
    state: Mutex<State<J>>,
    /// Wakes an idle worker: a site became ready, or the scheduler closed.
    wake: Condvar,
    shares: Shares,
}

struct State<J> {
    /// Sites with calls waiting or running; a site leaves when it has neither,
    /// so this never holds more than the sites active right now.
    sites: HashMap<Arc<str>, Site<J>>,
    /// The sites a worker may take a call from, in turn. A site is here
    /// exactly when it has a call waiting and runs fewer than its cap.
    ready: VecDeque<Arc<str>>,
    /// Calls waiting, all sites together.
    queued: usize,
    /// Workers waiting on `wake`: nobody is woken when nobody waits.
    idle: usize,
    closed: bool,
}

struct Site<J> {
    waiting: VecDeque<J>,
    running: usize,
}

/// A running call's hold on one of its site's places. The worker hands it
/// back with [`Scheduler::try_next`] when the call is done (cleaning up
/// after it included); if the worker panics instead, dropping it gives the
/// place back, so a site never loses its share to a dead call.
pub struct Claim<'a, J> {
    scheduler: &'a Scheduler<J>,
    site: Option<Arc<str>>,
}

impl<J> Scheduler<J> {
    pub fn new(shares: Shares) -> Scheduler<J> {
        Scheduler {
            state: Mutex::new(State {
                sites: HashMap::new(),
                ready: VecDeque::new(),
                queued: 0,
                idle: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            shares: Shares {
                site_concurrency: shares.site_concurrency.max(1),
                ..shares
            },
        }
    }

    /// Queues `job` for `site`, unless the site's queue or the whole queue
    /// is full (or the scheduler closed).
    pub fn push(&self, site: &str, job: J) -> Result<(), Refused> {
        self.enqueue(site, job, true)
    }

    /// Queues `job` for `lane` whatever the queues hold: for the owner's own
    /// work (a deploy's syntax check), which must not be refused because
    /// a site is flooded, and which still waits its turn like any site.
    pub fn push_unbounded(&self, lane: &str, job: J) -> Result<(), Refused> {
        self.enqueue(lane, job, false)
    }

    fn enqueue(&self, name: &str, job: J, bounded: bool) -> Result<(), Refused> {
        let mut state = self.lock();
        let state = &mut *state;
        if state.closed {
            return Err(Refused::Closed);
        }
        if bounded && state.queued >= self.shares.total_queue {
            return Err(Refused::QueueFull);
        }
        // Looked up by `&str`: a name is allocated only when its site
        // becomes active, not per call.
        let site = match state.sites.get_mut(name) {
            Some(site) => site,
            None => state.sites.entry(Arc::from(name)).or_insert(Site {
                waiting: VecDeque::new(),
                running: 0,
            }),
        };
        if bounded && site.waiting.len() >= self.shares.site_queue {
            if site.waiting.is_empty() && site.running == 0 {
                // `site_queue` is 0 and the site was not active.
                state.sites.remove(name);
            }
            return Err(Refused::SiteFull);
        }
        site.waiting.push_back(job);
        state.queued += 1;
        // It just got its first waiting call and has room: its turn comes.
        let became_ready = site.waiting.len() == 1 && site.running < self.shares.site_concurrency;
        if became_ready {
            let (name, _) = state.sites.get_key_value(name).expect("the site is active");
            state.ready.push_back(name.clone());
            if state.idle > 0 {
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Hands back `done`'s place, then takes the next call if there is one
    /// a worker may run now, without waiting: one lock for both.
    pub fn try_next(&self, done: Option<Claim<'_, J>>) -> Option<(Claim<'_, J>, J)> {
        let mut state = self.lock();
        if let Some(site) = done.and_then(|mut claim| claim.site.take()) {
            // The place this frees goes to the next call, taken right here, so
            // no idle worker needs waking for it.
            self.release(&mut state, site);
        }
        self.take(&mut state)
    }

    /// Waits for the next call a worker may run. `None` once the scheduler
    /// is closed and nothing is left to run.
    pub fn next(&self) -> Option<(Claim<'_, J>, J)> {
        let mut state = self.lock();
        loop {
            if let Some(next) = self.take(&mut state) {
                return Some(next);
            }
            // Calls may still wait behind a site's cap; the workers running
            // that site's calls take them when they finish.
            if state.closed {
                return None;
            }
            state.idle += 1;
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle -= 1;
        }
    }

    /// Refuses new calls and wakes every idle worker: they run what is
    /// queued, and [`Scheduler::next`] then answers `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// The next site's next call, with a place of the site's for it.
    fn take(&self, state: &mut State<J>) -> Option<(Claim<'_, J>, J)> {
        let name = state.ready.pop_front()?;
        let site = state.sites.get_mut(&name).expect("a ready site is active");
        let job = site.waiting.pop_front().expect("a ready site has a call");
        site.running += 1;
        state.queued -= 1;
        if !site.waiting.is_empty() && site.running < self.shares.site_concurrency {
            state.ready.push_back(name.clone());
        }
        let claim = Claim {
            scheduler: self,
            site: Some(name),
        };
        Some((claim, job))
    }

    /// Gives a place back to `name`; true if that made the site ready again.
    fn release(&self, state: &mut State<J>, name: Arc<str>) -> bool {
        let Some(site) = state.sites.get_mut(&name) else {
            return false;
        };
        let was_full = site.running == self.shares.site_concurrency;
        site.running -= 1;
        if site.waiting.is_empty() {
            if site.running == 0 {
                state.sites.remove(&name);
            }
            false
        } else if was_full {
            state.ready.push_back(name);
            true
        } else {
            false
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // No code panics while holding it; if some did, the state is whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<J> Drop for Claim<'_, J> {
    fn drop(&mut self) {
        if let Some(site) = self.site.take() {
            let mut state = self.scheduler.lock();
            if self.scheduler.release(&mut state, site) && state.idle > 0 {
                self.scheduler.wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scheduler(site_concurrency: usize, site_queue: usize, total_queue: usize) -> Scheduler<u32> {
        Scheduler::new(Shares {
            site_concurrency,
            site_queue,
            total_queue,
        })
    }

    /// Takes calls until none is ready, keeping their places (nothing finishes).
    fn take_all<'a>(s: &'a Scheduler<u32>, held: &mut Vec<Claim<'a, u32>>) -> Vec<u32> {
        let mut taken = Vec::new();
        while let Some((claim, job)) = s.try_next(None) {
            held.push(claim);
            taken.push(job);
        }
        taken
    }

    #[test]
    fn sites_take_turns_whatever_their_queues_hold() {
        let s = scheduler(100, 100, 1000);
        // Site a queues a lot before b and c queue one call each.
        for job in 0..50 {
            s.push("a", job).unwrap();
        }
        s.push("b", 100).unwrap();
        s.push("c", 200).unwrap();
        s.push("b", 101).unwrap();
        let mut held = Vec::new();
        let order = take_all(&s, &mut held);
        assert_eq!(&order[..7], &[0, 100, 200, 1, 101, 2, 3]);
        assert_eq!(order.len(), 53);
    }

    #[test]
    fn a_site_runs_no_more_than_its_cap() {
        let s = scheduler(2, 100, 1000);
        for job in 0..5 {
            s.push("a", job).unwrap();
        }
        let mut a = Vec::new();
        assert_eq!(take_all(&s, &mut a), [0, 1], "two places for a");
        // Another site still gets a worker at once.
        s.push("b", 100).unwrap();
        let mut b = Vec::new();
        assert_eq!(take_all(&s, &mut b), [100]);
        // A finished call of a's lets its next one run, in the same step.
        let (claim, job) = s.try_next(a.pop()).unwrap();
        assert_eq!(job, 2);
        a.push(claim);
        assert!(s.try_next(None).is_none(), "a is at its cap again");
        // b's place given back does not make room for a.
        assert!(s.try_next(b.pop()).is_none());
    }

    #[test]
    fn a_site_at_its_cap_goes_to_the_back_when_it_has_room_again() {
        let s = scheduler(1, 100, 1000);
        s.push("a", 0).unwrap();
        s.push("a", 1).unwrap();
        let (a0, _) = s.try_next(None).unwrap();
        s.push("b", 100).unwrap();
        s.push("b", 101).unwrap();
        let (b0, job) = s.try_next(None).unwrap();
        assert_eq!(job, 100);
        s.push("c", 200).unwrap();
        // a's place comes back: a queues behind c, which was ready first.
        drop(b0);
        let mut held = vec![a0];
        assert_eq!(take_all(&s, &mut held), [200, 101]);
        let a0 = held.remove(0);
        assert_eq!(s.try_next(Some(a0)).map(|(_, job)| job), Some(1));
    }

    #[test]
    fn full_queues_are_refused_per_site_and_in_total() {
        let s = scheduler(1, 2, 5);
        s.push("a", 0).unwrap();
        s.push("a", 1).unwrap();
        assert_eq!(s.push("a", 2), Err(Refused::SiteFull));
        // The running call no longer counts as waiting.
        let (running, _) = s.try_next(None).unwrap();
        s.push("a", 2).unwrap();
        assert_eq!(s.push("a", 3), Err(Refused::SiteFull));
        // Other sites have queues of their own, up to the total.
        s.push("b", 10).unwrap();
        s.push("b", 11).unwrap();
        s.push("c", 20).unwrap();
        assert_eq!(s.push("d", 30), Err(Refused::QueueFull));
        // The owner's own work is never refused for room.
        s.push_unbounded("deploy", 40).unwrap();
        drop(running);
    }

    #[test]
    fn inactive_sites_are_forgotten() {
        let s = scheduler(2, 0, 10);
        assert_eq!(s.push("a", 0), Err(Refused::SiteFull));
        let s = scheduler(2, 10, 10);
        s.push("a", 0).unwrap();
        let (claim, _) = s.try_next(None).unwrap();
        assert_eq!(s.lock().sites.len(), 1);
        assert!(s.try_next(Some(claim)).is_none());
        let state = s.lock();
        assert!(state.sites.is_empty() && state.ready.is_empty() && state.queued == 0);
    }

    #[test]
    fn a_dropped_claim_gives_its_place_back_and_wakes_a_worker() {
        let s = Arc::new(scheduler(1, 10, 10));
        s.push("a", 0).unwrap();
        s.push("a", 1).unwrap();
        let (claim, _) = s.try_next(None).unwrap();
        let waiting = {
            let s = s.clone();
            std::thread::spawn(move || s.next().map(|(_, job)| job))
        };
        // The other worker is waiting for work before the place comes back.
        while s.lock().idle == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(claim);
        assert_eq!(waiting.join().unwrap(), Some(1));
    }

    #[test]
    fn a_waiting_worker_is_woken_by_a_call_and_by_close() {
        let s = Arc::new(scheduler(1, 10, 10));
        let worker = {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut jobs = Vec::new();
                let mut done = None;
                loop {
                    let next = match s.try_next(done.take()) {
                        Some(next) => next,
                        None => match s.next() {
                            Some(next) => next,
                            None => return jobs,
                        },
                    };
                    jobs.push(next.1);
                    done = Some(next.0);
                }
            })
        };
        s.push("a", 0).unwrap();
        s.push("a", 1).unwrap();
        let settled = || {
            let state = s.lock();
            state.queued == 0 && state.idle == 1
        };
        while !settled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        s.push("b", 2).unwrap();
        // Queued before the close: still run. After it: refused.
        s.push("b", 3).unwrap();
        s.close();
        assert_eq!(s.push("b", 4), Err(Refused::Closed));
        let mut jobs = worker.join().unwrap();
        jobs.sort_unstable();
        assert_eq!(jobs, [0, 1, 2, 3]);
    }
}
