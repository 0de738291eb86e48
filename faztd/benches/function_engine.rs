//! What one function call costs inside the engine: no HTTP, no threads.
//!
//! `cargo bench -p faztd --bench function_engine` runs a hello-world handler
//! (and one that imports a helper) in a worker's reused context, the normal
//! case, and for sites the worker has no context for yet, which is what each
//! call cost when every request got a context of its own. The end-to-end
//! numbers (HTTP, the hand-off to a worker thread) are in
//! `scripts/bench-functions.sh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faztd::functions::engine::Engine;
use faztd::functions::host::HostContext;
use faztd::functions::invocation::{FnRequest, Invocation, Limits};
use faztd::functions::logs::SiteLogs;
use faztd::functions::FunctionSet;
use faztd::store::Store;

const SITE: &str = "bench";

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join("fazt.redb"))?);
    let logs = Arc::new(SiteLogs::default());
    let sources = [
        ("api/hello.js", "export default () => 'hello world\\n';"),
        (
            "api/greet.js",
            "import { greet } from './_lib/greet.js'; export default (req) => greet(req.query.name ?? 'world');",
        ),
        ("api/_lib/greet.js", "export const greet = (name) => `hello ${name}`;"),
    ];
    let mut files = Vec::new();
    for (path, source) in sources {
        files.push((path, store.put_blob(source.as_bytes(), "text/javascript")?));
    }
    // A site's functions; the bench site, or one of many others.
    let site_set = |site: &str| {
        Arc::new(FunctionSet::build(site, 1, files.iter().copied()).expect("functions"))
    };
    let set = site_set(SITE);
    let limits = Limits {
        timeout: Duration::from_secs(5),
        memory_bytes: 64 << 20,
        stack_bytes: 1 << 20,
    };
    let mut engine = Engine::new(limits, store.clone())?;
    let host = |site: &str| HostContext {
        store: store.clone(),
        logs: logs.clone(),
        realtime: None,
        site: site.to_string(),
        version: 1,
    };
    let job = |set: &Arc<FunctionSet>, module: &str| Invocation {
        set: set.clone(),
        module: module.to_string(),
        request: FnRequest {
            method: "GET".into(),
            path: "/api/hello".into(),
            query: vec![("name".into(), "ada".into())],
            params: vec![],
            headers: vec![
                ("host".into(), "bench.localhost".into()),
                ("user-agent".into(), "bench".into()),
                ("accept".into(), "*/*".into()),
            ],
            body: String::new(),
            ip: Some("127.0.0.1".into()),
        },
    };

    println!("{:<44} {:>12}", "one call, in the engine", "µs per call");
    for module in ["api/hello.js", "api/greet.js"] {
        // Calls to one site reuse its context.
        let warm = job(&set, module);
        let calls = 20_000;
        for _ in 0..calls / 10 {
            engine.invoke(&warm, host(SITE))?;
            engine.finish();
        }
        let start = Instant::now();
        for _ in 0..calls {
            engine.invoke(&warm, host(SITE))?;
            engine.finish();
        }
        report(&format!("{module}, reused context"), start.elapsed(), calls);

        // Calls to ever new sites each need a context made for them: what
        // every call cost when each request got a fresh context (plus the
        // lockdown, which a fresh context did not need).
        let cold: Vec<(String, Invocation)> = (0..200)
            .map(|i| {
                let site = format!("cold-{i}");
                let invocation = job(&site_set(&site), module);
                (site, invocation)
            })
            .collect();
        let start = Instant::now();
        for (site, invocation) in &cold {
            engine.invoke(invocation, host(site))?;
            engine.finish();
        }
        report(
            &format!("{module}, new context"),
            start.elapsed(),
            cold.len() as u32,
        );
    }
    println!(
        "runtime memory at the end: {} KiB",
        engine.memory_bytes() / 1024
    );
    Ok(())
}

fn report(label: &str, took: Duration, calls: u32) {
    println!(
        "{label:<44} {:>12.1}",
        took.as_secs_f64() * 1e6 / f64::from(calls)
    );
}
