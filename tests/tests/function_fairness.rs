//! One site cannot starve another of the JavaScript workers (issue 13).
//!
//! Every site shares `function_workers` threads. Here site `hog` is flooded
//! by far more clients than there are workers, each of its calls keeping a
//! worker busy for 1.5 s (in the handler, or in work the handler leaves
//! running after its answer), while site `calm` calls a trivial function.
//! With one queue for everyone, `calm` waited behind every queued `hog` call:
//! 40 clients on 4 workers, 1.5 s each, is about 14 s. With a queue per site,
//! `hog` runs at most `function_site_concurrency` calls at once (all the
//! workers but one by default), `calm` gets the free one at once, and `hog`'s calls
//! beyond `function_site_queue` are refused with a 503 and `Retry-After`,
//! counted in `faztctl status`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fazt_e2e::daemon::Faztd;
use fazt_e2e::{http, wait_until, PATIENCE};

/// Clients flooding `hog`, each sending its next call as soon as it has an
/// answer: ten times the workers.
const FLOODERS: usize = 40;
/// How long one of `hog`'s calls keeps a worker busy (under the 5 s limit).
const SPIN_MS: u64 = 1_500;
/// `hog`'s queue: small, so that the flood overflows it and drains quickly.
const SITE_QUEUE: &str = "6";
/// The slowest `calm` may be while `hog` floods. Without fairness it took
/// about 14 s; with it, a few milliseconds (a slow CI machine: well under 1 s).
const CALM_BOUND: Duration = Duration::from_secs(3);
const CALM_CALLS: usize = 8;

/// Each test keeps every core of the machine busy on purpose: run them one
/// after the other, so that neither measures the other's load.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_site_busy_in_its_handlers_cannot_starve_another_site() {
    calm_is_served_while_hog_floods(&format!(
        r#"export default () => {{
             console.log("spinning");
             const end = Date.now() + {SPIN_MS};
             while (Date.now() < end) {{}}
             return "spun";
           }};"#
    ));
}

#[test]
fn a_site_leaving_work_running_after_its_answers_cannot_starve_another_site() {
    // The answer goes out at once; the loop runs afterwards, still on the
    // worker (and still within the time limit), before it takes more work.
    calm_is_served_while_hog_floods(&format!(
        r#"export default () => {{
             console.log("spinning");
             Promise.resolve().then(() => {{
               const end = Date.now() + {SPIN_MS};
               while (Date.now() < end) {{}}
             }});
             return "spun";
           }};"#
    ));
}

fn calm_is_served_while_hog_floods(hog_source: &str) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = Faztd::start_with(&[
        ("function_workers", "4"),
        ("function_site_queue", SITE_QUEUE),
    ]);
    d.deploy_files("hog", &[("api/spin.js", hog_source)]);
    let calm = [("api/hello.js", "export default () => 'hello';")];
    d.deploy_files("calm", &calm);
    assert_eq!(call_calm(&d).0, "hello");

    let flood = Flood::start(d.addr);
    wait_until(PATIENCE, "every flooder to send its first call", || {
        flood.tally.sent.load(Ordering::SeqCst) >= FLOODERS
    });
    wait_until(PATIENCE, "hog's calls to run", || {
        d.ctl(&["logs", "hog"]).ok().stdout.contains("spinning")
    });

    let mut took = Vec::new();
    for _ in 0..CALM_CALLS {
        let (text, elapsed) = call_calm(&d);
        assert_eq!(text, "hello");
        took.push(elapsed);
        assert!(
            elapsed < CALM_BOUND,
            "calm waited {elapsed:?} for a worker while hog flooded (so far: {took:?})"
        );
        // Spread over the flood rather than all in its first moment.
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("calm's calls while hog floods: {took:?}");

    // A deploy's syntax check runs on the workers too: not stuck behind
    // hog. (A deploy is a few requests of faztctl's, hence the larger bound.)
    let started = Instant::now();
    d.deploy_files("calm", &calm);
    let deploy = started.elapsed();
    eprintln!("a deploy while hog floods: {deploy:?}");
    assert!(
        deploy < 2 * CALM_BOUND,
        "a deploy took {deploy:?} while hog flooded"
    );

    // Fair is not shut out: hog's own calls are served meanwhile.
    wait_until(PATIENCE, "one of hog's calls to be served", || {
        flood.tally.served.load(Ordering::SeqCst) > 0
    });
    let tally = flood.stop();
    let unexpected = tally.unexpected.lock().unwrap();
    assert!(unexpected.is_empty(), "hog's flood got: {unexpected:?}");

    // What did not fit in hog's queue was refused in plain words.
    let busy = tally.busy.load(Ordering::SeqCst);
    assert!(busy > 0, "no call of hog's was refused");
    let refusal = tally.refusal.lock().unwrap().clone().expect("a refusal");
    assert_eq!(refusal.header("retry-after"), Some("1"));
    assert_eq!(refusal.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&refusal.body).expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("site is busy")),
        "{body}"
    );
    // Every one of them is counted, as the site's, not the instance's.
    assert_eq!(refused(&d, "function_site_busy"), busy as u64);
    assert_eq!(refused(&d, "function_queue_full"), 0);

    // Once the flood is over, hog is served at once.
    let res = http::get(d.addr, "hog.localhost", "/api/spin", &[]);
    assert_eq!((res.status, res.text()), (200, "spun".to_string()));
}

/// `calm`'s function, which must answer 200; its body and how long it took.
fn call_calm(d: &Faztd) -> (String, Duration) {
    let started = Instant::now();
    let res = http::get(d.addr, "calm.localhost", "/api/hello", &[]);
    let elapsed = started.elapsed();
    assert_eq!(res.status, 200, "calm: {}", res.text());
    (res.text(), elapsed)
}

/// How many refusals of `kind` the daemon's status counts.
fn refused(d: &Faztd, kind: &str) -> u64 {
    let status = d.ctl(&["status", "--json"]).ok().json();
    status["daemon"]["refusals"][kind]
        .as_u64()
        .unwrap_or_else(|| panic!("no refusal counter {kind} in {status}"))
}

/// What the flood's clients got.
#[derive(Default)]
struct Tally {
    /// Calls on the wire (counted once sent, before their answer).
    sent: AtomicUsize,
    /// Answered 200 "spun".
    served: AtomicUsize,
    /// Answered 503 because hog is busy, and the first such answer.
    busy: AtomicUsize,
    refusal: Mutex<Option<http::Response>>,
    /// Anything else: a failure of the test.
    unexpected: Mutex<Vec<String>>,
}

/// `FLOODERS` threads calling hog until stopped. Dropped without `stop`
/// (a failed assertion), it still tells them to stop.
struct Flood {
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tally: Arc<Tally>,
}

impl Flood {
    fn start(addr: std::net::SocketAddr) -> Flood {
        let stopping = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let threads = (0..FLOODERS)
            .map(|_| {
                let (stopping, tally) = (stopping.clone(), tally.clone());
                std::thread::spawn(move || flood(addr, &stopping, &tally))
            })
            .collect();
        Flood {
            stopping,
            threads,
            tally,
        }
    }

    /// Stops the clients once their calls in flight are answered.
    fn stop(mut self) -> Arc<Tally> {
        self.stopping.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            thread.join().expect("a flooder panicked");
        }
        self.tally.clone()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// One flooding client: a call, its answer, the next call. A refusal is
/// retried after 50 ms, well before its `Retry-After`: a flood does not wait.
fn flood(addr: std::net::SocketAddr, stopping: &AtomicBool, tally: &Tally) {
    let request = b"GET /api/spin HTTP/1.1\r\nHost: hog.localhost\r\nConnection: close\r\n\r\n";
    while !stopping.load(Ordering::SeqCst) {
        let answer = http::send(addr, request).and_then(|stream| {
            tally.sent.fetch_add(1, Ordering::SeqCst);
            http::read_response(stream)
        });
        match answer {
            Ok(res) if res.status == 200 && res.text() == "spun" => {
                tally.served.fetch_add(1, Ordering::SeqCst);
            }
            Ok(res) if res.status == 503 && res.text().contains("site is busy") => {
                tally.busy.fetch_add(1, Ordering::SeqCst);
                tally.refusal.lock().unwrap().get_or_insert(res);
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(res) => {
                let what = format!("{} {}", res.status, res.text());
                tally.unexpected.lock().unwrap().push(what);
            }
            Err(err) => {
                tally.unexpected.lock().unwrap().push(err.to_string());
                return;
            }
        }
    }
}
