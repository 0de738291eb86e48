//! Requests share nothing, although a worker reuses one JavaScript context
//! for many requests of a site. Each daemon here runs a single function
//! worker, so consecutive requests land in the same context: anything one
//! request could leave behind, the next one would see.

use fazt_e2e::daemon::Faztd;
use fazt_e2e::http;
use serde_json::{json, Value};

fn call(d: &Faztd, site: &str, path: &str) -> Value {
    let res = http::get(d.addr, &format!("{site}.localhost"), path, &[]);
    assert_eq!(res.status, 200, "{path}: {}", res.text());
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("{path} ({e}): {}", res.text()))
}

/// One worker, so every request of a site runs in the same context.
fn one_worker() -> Faztd {
    Faztd::start_with(&[("function_workers", "1"), ("function_timeout_ms", "2000")])
}

#[test]
fn module_state_and_globals_start_fresh_on_every_request() {
    let d = one_worker();
    d.deploy_files("fresh",
        &[
            (
                "api/_lib/counter.js",
                "let n = 0; export const bump = () => ++n;",
            ),
            (
                "api/_lib/twice.js",
                r#"import { bump } from "./counter.js"; export const again = () => bump();"#,
            ),
            // A cycle: each imports the other.
            (
                "api/_lib/ping.js",
                r#"import { pong } from "./pong.js"; export const ping = () => "ping " + pong();"#,
            ),
            (
                "api/_lib/pong.js",
                r#"import { ping } from "./ping.js"; export const pong = () => typeof ping;"#,
            ),
            (
                "api/state.js",
                r#"import { bump } from "./_lib/counter.js";
                   import { again } from "./_lib/twice.js";
                   import { ping } from "./_lib/ping.js";
                   globalThis.loads = (globalThis.loads ?? 0) + 1;
                   let calls = 0;
                   export default () => {
                     calls += 1;
                     const seen = typeof globalThis.mine;
                     globalThis.mine = "left behind";
                     return { first: bump(), second: again(), loads: globalThis.loads, calls, seen, ping: ping() };
                   };"#,
            ),
        ],
    );
    for _ in 0..5 {
        // The counter module is one instance within a request (both
        // importers bump the same n) and a new one on the next request.
        assert_eq!(
            call(&d, "fresh", "/api/state"),
            json!({ "first": 1, "second": 2, "loads": 1, "calls": 1, "seen": "undefined", "ping": "ping function" })
        );
    }
}

#[test]
fn builtins_are_frozen_and_overriding_inherited_properties_still_works() {
    let d = one_worker();
    d.deploy_files("frozen",
        &[
            (
                "api/poison.js",
                r#"export default (req) => {
                     const attempts = {
                       prototype: () => { Array.prototype.leak = 1; },
                       request: () => { Object.getPrototypeOf(req).json = () => "poisoned"; },
                       method: () => { JSON.parse = () => "poisoned"; },
                       global: () => { globalThis.JSON = null; },
                       remove: () => { delete globalThis.Math; },
                       traces: () => { Error.stackTraceLimit = 0; },
                       eval: () => eval("1 + 1"),
                       indirect: () => (0, eval)("let forever = 1"),
                     };
                     const outcome = {};
                     for (const [name, attempt] of Object.entries(attempts)) {
                       try { attempt(); outcome[name] = "allowed"; } catch (e) { outcome[name] = e.name; }
                     }
                     return outcome;
                   };"#,
            ),
            (
                "api/check.js",
                r#"export default () => ({ leak: [].leak ?? null, json: JSON.parse("[7]")[0], math: typeof Math, registry: typeof FinalizationRegistry });"#,
            ),
            (
                "api/override.js",
                r#"class NotFound extends Error {
                     constructor(what) { super(`${what} not found`); this.name = "NotFound"; }
                   }
                   export default () => {
                     const custom = {};
                     custom.toString = () => "custom";
                     custom.constructor = "mine";
                     function Legacy() {}
                     Legacy.prototype.toString = () => "legacy";
                     const e = new NotFound("page");
                     return { custom: String(custom), ctor: custom.constructor, legacy: String(new Legacy()),
                              name: e.name, message: e.message, isError: e instanceof Error,
                              fn: new Function("a", "return a * 2")(21), plain: String({}) };
                   };"#,
            ),
        ],
    );
    let refused = json!({
        "prototype": "TypeError", "request": "TypeError", "method": "TypeError", "global": "TypeError", "remove": "TypeError",
        "traces": "TypeError", "eval": "EvalError", "indirect": "EvalError"
    });
    assert_eq!(call(&d, "frozen", "/api/poison"), refused);
    assert_eq!(
        call(&d, "frozen", "/api/check"),
        json!({ "leak": null, "json": 7, "math": "object", "registry": "undefined" })
    );
    assert_eq!(
        call(&d, "frozen", "/api/override"),
        json!({ "custom": "custom", "ctor": "mine", "legacy": "legacy", "name": "NotFound",
                "message": "page not found", "isError": true, "fn": 42, "plain": "[object Object]" })
    );
    // The eval error says what to do instead.
    d.deploy_files(
        "frozen",
        &[("api/eval.js", r#"export default () => eval("1");"#)],
    );
    let res = http::get(d.addr, "frozen.localhost", "/api/eval", &[]);
    assert_eq!(res.status, 500);
    let logs = d.ctl(&["logs", "frozen", "-n", "5"]).ok().stdout;
    assert!(
        logs.contains("eval() is not available in Fazt functions"),
        "{logs}"
    );
}

#[test]
fn what_cannot_be_cleaned_up_retires_the_context() {
    let d = one_worker();
    d.deploy_files(
        "sticky",
        &[
            // A global that cannot be deleted.
            (
                "api/pin.js",
                r#"export default () => {
                     const before = typeof globalThis.pinned;
                     Object.defineProperty(globalThis, "pinned", { value: 1 });
                     return { before };
                   };"#,
            ),
            // A global object that cannot take new properties.
            (
                "api/seal.js",
                r#"export default () => {
                     globalThis.probe = 1;
                     delete globalThis.probe;
                     Object.preventExtensions(globalThis);
                     return { sealed: !Object.isExtensible(globalThis) };
                   };"#,
            ),
            // A global object with another prototype.
            (
                "api/proto.js",
                r#"export default () => {
                     const before = "injected" in globalThis;
                     Object.setPrototypeOf(globalThis, { injected: true });
                     return { before };
                   };"#,
            ),
        ],
    );
    for _ in 0..3 {
        assert_eq!(
            call(&d, "sticky", "/api/pin"),
            json!({ "before": "undefined" })
        );
        assert_eq!(call(&d, "sticky", "/api/seal"), json!({ "sealed": true }));
        assert_eq!(call(&d, "sticky", "/api/proto"), json!({ "before": false }));
    }
}

#[test]
fn work_left_behind_finishes_for_its_own_site_only() {
    let d = one_worker();
    d.deploy_files("busy",
        &[(
            "api/later.js",
            r#"export default () => {
                 Promise.resolve().then(() => Promise.resolve()).then(() => fazt.kv.set("late", "done"));
                 return { answered: true };
               };"#,
        )],
    );
    d.deploy_files("other",
        &[(
            "api/read.js",
            r#"export default async () => { await null; await null; await null; return { late: fazt.kv.get("late") }; };"#,
        )],
    );
    assert_eq!(call(&d, "busy", "/api/later"), json!({ "answered": true }));
    // The other site runs next on the same worker. Had the jobs left behind
    // been pending still, they would run among its awaits, with its storage.
    assert_eq!(call(&d, "other", "/api/read"), json!({ "late": null }));
    d.deploy_files(
        "busy",
        &[(
            "api/read.js",
            r#"export default () => ({ late: fazt.kv.get("late") });"#,
        )],
    );
    assert_eq!(call(&d, "busy", "/api/read"), json!({ "late": "done" }));
}

#[test]
fn big_module_state_does_not_pile_up_to_the_memory_limit() {
    // Each request's module instance keeps its top-level data (here an
    // array of 2^19 numbers, 8 MiB) until the context is replaced: without
    // retiring contexts in time, the 64 MiB limit would be hit by about the
    // seventh request.
    let d = one_worker();
    d.deploy_files(
        "big",
        &[(
            "api/table.js",
            r#"const table = new Array(1 << 19).fill(0).map((_, i) => i);
               export default () => ({ size: table.length });"#,
        )],
    );
    for _ in 0..20 {
        assert_eq!(call(&d, "big", "/api/table"), json!({ "size": 524288 }));
    }
}

#[test]
fn work_left_running_after_the_answer_is_stopped_and_logged() {
    // A loop left in a promise job runs into the time limit after the answer
    // went out; a rejection nobody handles is logged (as Node and Deno do).
    let d = one_worker();
    d.deploy_files("late",
        &[
            (
                "api/spin.js",
                r#"export default () => { Promise.resolve().then(() => { while (true) {} }); return { answered: true }; };"#,
            ),
            (
                "api/fail.js",
                r#"export default () => { Promise.resolve().then(() => { throw new Error("too late"); }); return { answered: true }; };"#,
            ),
            ("api/ok.js", r#"export default () => ({ ok: true });"#),
            (
                "api/boom.js",
                r#"export default async () => { await null; throw new Error("boom"); };"#,
            ),
        ],
    );
    // A failing handler is reported once, as its call's error.
    let res = http::get(d.addr, "late.localhost", "/api/boom", &[]);
    assert_eq!(res.status, 500);
    // The answer goes out; the loop it left behind runs into the time limit.
    assert_eq!(call(&d, "late", "/api/spin"), json!({ "answered": true }));
    assert_eq!(call(&d, "late", "/api/ok"), json!({ "ok": true }));
    assert_eq!(call(&d, "late", "/api/fail"), json!({ "answered": true }));
    assert_eq!(call(&d, "late", "/api/ok"), json!({ "ok": true }));
    let logs = d.ctl(&["logs", "late", "-n", "10"]).ok().stdout;
    assert!(
        logs.contains("api/spin.js: work left running after the answer failed")
            && logs.contains("interrupted"),
        "{logs}"
    );
    assert!(
        logs.contains("api/fail.js: a promise was rejected and nothing handled it")
            && logs.contains("Error: too late"),
        "{logs}"
    );
    assert_eq!(logs.matches("Error: boom").count(), 1, "{logs}");
}
