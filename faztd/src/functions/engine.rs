//! One QuickJS runtime on one worker thread, running one invocation at a time.
//!
//! Contexts are reused, requests still share nothing. Each site gets a
//! context of its own on a worker, made once with the `fazt` prelude and its
//! lockdown (frozen built-ins, see `prelude.js`); every request then runs in
//! it with fresh instances of the site's modules (`instances`), loaded from
//! bytecode compiled once per deployed version, and afterwards `reset`
//! removes whatever globals the request added. Making a context costs about
//! 2 ms, nearly all of it the lockdown; a call in a reused one, a few µs
//! (`cargo bench -p faztd --bench function_engine`).
//!
//! A context is replaced once `MAX_INSTANCES` module instances have piled up
//! in it, when `reset` cannot restore it, and when what the runtime keeps
//! passes a quarter of a call's memory limit. The runtime itself is rebuilt
//! after an invocation that hit the time or memory limit or left work behind
//! that could not be finished, so the memory it grabbed is given back.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rquickjs::module::WriteOptions;
use rquickjs::object::Filter;
use rquickjs::{Atom, Context, Ctx, Function, Module, Object, Persistent, Runtime, Value};

use super::host::HostContext;
use super::instances::next_instance;
use super::invocation::{FnError, FnResponse, Invocation, Limits};
use super::loader::{load_instance, Modules, SiteModules};
use super::memory::{CountingAllocator, MemoryUse};
use super::messages::{describe, describe_thrown};
use crate::store::Store;

const PRELUDE: &str = include_str!("prelude.js");

/// A context of this runtime with the `fazt` prelude and the lockdown in it,
/// serving one site (or none yet, while it waits as the spare).
struct SiteContext {
    site: Option<String>,
    /// The host API of the invocation running in this context, reached by
    /// `__fazt_host`; empty between invocations, so a stray callback cannot
    /// act for anyone.
    host: Rc<RefCell<Option<HostContext>>>,
    /// The prelude's exports: the prototype of request objects, normalising
    /// the response, removing what a request added to the global object.
    request_prototype: Persistent<Object<'static>>,
    response: Persistent<Function<'static>>,
    reset: Persistent<Function<'static>>,
    /// The global object as the lockdown left it: how many own keys, and
    /// its prototype (what `globals_untouched` compares against).
    global_keys: usize,
    global_prototype: Persistent<Option<Object<'static>>>,
    /// Module instances loaded into this context so far.
    instances: u32,
    context: Context,
}

/// Module instances a context takes before it is replaced. They stay until
/// then (QuickJS cannot unload a module), and every import a request makes
/// scans them by name: more means slower imports and more memory, fewer means
/// making (and locking down, ~2 ms) contexts more often.
const MAX_INSTANCES: u32 = 2000;
/// Sites a worker keeps a context for.
const WARM_CONTEXTS: usize = 8;
/// Promise jobs an invocation may leave behind (run after its answer).
const MAX_BACKGROUND_JOBS: usize = 10_000;

/// Rejected promises nobody handled, with what they were rejected with.
type Rejections = Rc<RefCell<Vec<(Persistent<Value<'static>>, String)>>>;

pub struct Engine {
    /// Contexts by site, least recently used first.
    warm: Vec<SiteContext>,
    /// A context made ahead of time while the worker was idle.
    spare: Option<SiteContext>,
    /// The context of the invocation `finish` has yet to clean up after,
    /// and the module it ran.
    running: Option<(SiteContext, String)>,
    /// The prelude compiled once per runtime.
    prelude: Vec<u8>,
    deadline: Rc<Cell<Option<Instant>>>,
    current: Rc<RefCell<Option<Modules>>>,
    /// Numbers each invocation's module instances (`instances`).
    instance: u64,
    /// Module instances the running invocation has loaded (the loader counts).
    loaded: Rc<Cell<u32>>,
    /// Promises rejected with no handler (yet) during the running invocation.
    rejections: Rejections,
    memory: MemoryUse,
    limits: Limits,
    store: Arc<Store>,
    /// Last, so that everything holding JavaScript values is dropped first.
    rt: Runtime,
}

impl Engine {
    pub fn new(limits: Limits, store: Arc<Store>) -> Result<Engine, FnError> {
        let memory = MemoryUse::default();
        let rt = Runtime::new_with_alloc(CountingAllocator {
            used: memory.clone(),
        })
        .map_err(|e| FnError::Internal(format!("cannot start QuickJS: {e}")))?;
        // A call may use its whole limit on top of what the runtime keeps
        // between calls (contexts, module instances), which `finish` holds
        // under `retained_ceiling`.
        rt.set_memory_limit(limits.memory_bytes + retained_ceiling(&limits));
        rt.set_max_stack_size(limits.stack_bytes);
        let deadline = Rc::new(Cell::new(None::<Instant>));
        let watch = deadline.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            watch.get().is_some_and(|d| Instant::now() >= d)
        })));
        let current = Rc::new(RefCell::new(None));
        let loaded = Rc::new(Cell::new(0));
        let loader = || SiteModules {
            current: current.clone(),
            loaded: loaded.clone(),
            store: store.clone(),
        };
        rt.set_loader(loader(), loader());
        let rejections: Rejections = Rc::default();
        let tracked = rejections.clone();
        rt.set_host_promise_rejection_tracker(Some(Box::new(
            move |ctx: Ctx<'_>, promise: Value<'_>, reason: Value<'_>, handled: bool| {
                if handled {
                    forget_rejection(&tracked, &ctx, &promise);
                } else {
                    let message = describe_thrown(&ctx, reason);
                    tracked
                        .borrow_mut()
                        .push((Persistent::save(&ctx, promise), message));
                }
            },
        )));
        let prelude = {
            let context = Context::full(&rt).map_err(|e| FnError::Internal(e.to_string()))?;
            context.with(|ctx| {
                Module::declare(ctx.clone(), "fazt:prelude", PRELUDE)
                    .and_then(|m| m.write(WriteOptions::default()))
                    .map_err(|e| {
                        FnError::Internal(format!(
                            "the prelude does not compile: {}",
                            describe(&ctx, e)
                        ))
                    })
            })?
        };
        Ok(Engine {
            warm: Vec::new(),
            spare: None,
            running: None,
            prelude,
            deadline,
            current,
            instance: 0,
            loaded,
            rejections,
            memory,
            limits,
            store,
            rt,
        })
    }

    /// Bytes the runtime holds now.
    pub fn memory_bytes(&self) -> usize {
        self.memory.bytes()
    }

    /// Makes the next site's context ahead of time. Called when the worker
    /// has nothing to do.
    pub fn prepare(&mut self) {
        if self.spare.is_none() {
            self.spare = self.new_context().ok();
        }
    }

    fn new_context(&self) -> Result<SiteContext, FnError> {
        let context = Context::full(&self.rt).map_err(|e| match e {
            rquickjs::Error::Allocation => FnError::OutOfMemory,
            e => FnError::Internal(e.to_string()),
        })?;
        let host = Rc::new(RefCell::new(None::<HostContext>));
        let slot = host.clone();
        context.with(|ctx| {
            let setup = || -> rquickjs::Result<SiteContext> {
                let bridge = Function::new(ctx.clone(), move |op: String, args: String| -> String {
                    let args: Vec<serde_json::Value> = serde_json::from_str(&args).unwrap_or_default();
                    let reply = match slot.borrow().as_ref().map(|host| host.call(&op, &args)) {
                        Some(Ok(value)) => serde_json::json!({ "ok": value }),
                        Some(Err(message)) => serde_json::json!({ "error": message }),
                        None => serde_json::json!({ "error": "fazt is only available while handling a request" }),
                    };
                    reply.to_string()
                })?;
                ctx.globals().set("__fazt_host", bridge)?;
                // SAFETY: compiled from PRELUDE by this runtime in `Engine::new`.
                let prelude = unsafe { Module::load(ctx.clone(), &self.prelude) }?;
                let (prelude, done) = prelude.eval()?;
                done.finish::<()>()?;
                let export = |name: &str| -> rquickjs::Result<Persistent<Function<'static>>> {
                    Ok(Persistent::save(&ctx, prelude.get::<_, Function>(name)?))
                };
                let globals = ctx.globals();
                Ok(SiteContext {
                    site: None,
                    host: host.clone(),
                    request_prototype: Persistent::save(&ctx, prelude.get::<_, Object>("requestPrototype")?),
                    response: export("response")?,
                    reset: export("reset")?,
                    global_keys: global_key_count(&globals),
                    global_prototype: Persistent::save(&ctx, globals.get_prototype()),
                    instances: 0,
                    context: context.clone(),
                })
            };
            setup().map_err(|e| FnError::Internal(format!("cannot set up a context: {}", describe(&ctx, e))))
        })
    }

    /// Whether this runtime should be thrown away after `result`.
    pub fn spent(result: &Result<FnResponse, FnError>) -> bool {
        matches!(result, Err(FnError::Timeout | FnError::OutOfMemory))
    }

    /// Compiles every `(name, source)`; the first error names file and line.
    pub fn check_syntax(&self, sources: &[(String, Vec<u8>)]) -> Result<(), String> {
        let map: HashMap<String, Vec<u8>> = sources.iter().cloned().collect();
        *self.current.borrow_mut() = Some(Modules::Checking(Rc::new(map)));
        let context = Context::full(&self.rt).map_err(|e| e.to_string());
        let result = context.and_then(|context| {
            context.with(|ctx| {
                for (name, source) in sources {
                    Module::declare(ctx.clone(), name.as_str(), source.clone())
                        .map_err(|e| describe(&ctx, e))?;
                }
                Ok(())
            })
        });
        *self.current.borrow_mut() = None;
        result
    }

    /// Runs one invocation and returns its answer. `finish` must be called
    /// next (after the answer is on its way) to clean up after it.
    pub fn invoke(&mut self, job: &Invocation, host: HostContext) -> Result<FnResponse, FnError> {
        let site = self.context_for(&job.set.site)?;
        *site.host.borrow_mut() = Some(host);
        *self.current.borrow_mut() = Some(Modules::Live(job.set.clone()));
        let deadline = Instant::now() + self.limits.timeout;
        self.deadline.set(Some(deadline));
        self.instance = next_instance(self.instance);
        let result = self.run(&site, job);
        self.running = Some((site, job.module.clone()));
        match result {
            Err(FnError::Exception(_)) if Instant::now() >= deadline => Err(FnError::Timeout),
            // When the limit leaves no room even for the error object, QuickJS
            // throws `null`: both spellings mean the memory limit was hit.
            Err(FnError::Exception(m)) if m.contains("out of memory") || m == "uncaught null" => {
                Err(FnError::OutOfMemory)
            }
            other => other,
        }
    }

    /// Cleans up after the last invocation: runs the promise jobs it left
    /// behind (still within its time limit), removes the globals it added,
    /// and keeps its context for the site's next request if that worked.
    /// Returns false when the runtime must be thrown away: work was left
    /// that could not be finished.
    pub fn finish(&mut self) -> bool {
        let Some((mut site, module)) = self.running.take() else {
            return true;
        };
        let drained = self.drain(&site, &module);
        let rejected = std::mem::take(&mut *self.rejections.borrow_mut());
        if let Some(host) = site.host.borrow().as_ref() {
            for (_, message) in rejected {
                host.logs.append(
                    &host.site,
                    "error",
                    &format!("{module}: a promise was rejected and nothing handled it: {message}"),
                );
            }
        }
        let clean = drained
            && site.context.with(|ctx| {
                globals_untouched(&ctx, &site)
                    || site
                        .reset
                        .clone()
                        .restore(&ctx)
                        .and_then(|reset| reset.call::<_, bool>(()))
                        .unwrap_or(false)
            });
        self.deadline.set(None);
        *self.current.borrow_mut() = None;
        *site.host.borrow_mut() = None;
        if !drained {
            return false;
        }
        // A failed request (an exception, a bad return value) leaves nothing
        // `reset` cannot remove, so its context stays; after the time or
        // memory limit the whole runtime goes instead (`spent`).
        site.instances += self.loaded.replace(0);
        if clean && site.instances < MAX_INSTANCES {
            self.warm.push(site);
        }
        if self.warm.len() > WARM_CONTEXTS {
            self.warm.remove(0);
        }
        // Reference counting frees a request's objects as soon as they are
        // unreachable; what it cannot free (a dropped context, whose objects
        // refer to each other; cyclic garbage) waits for the cycle collector,
        // which walks every object in the runtime. So it runs only when the
        // runtime holds a quarter of a call's memory limit (QuickJS alone
        // would run it whenever the heap grew by half). If what is live is still
        // above that, contexts go, least recently used first, so that what
        // piles up never crowds a request's own limit.
        let ceiling = retained_ceiling(&self.limits);
        if self.memory.bytes() > ceiling {
            self.rt.run_gc();
            while self.memory.bytes() > ceiling && !self.warm.is_empty() {
                self.warm.remove(0);
                self.rt.run_gc();
            }
        }
        self.rt
            .set_gc_threshold((self.memory.bytes() + self.memory.bytes() / 2).max(ceiling));
        true
    }

    /// Runs pending promise jobs until none are left; false if some remain.
    /// A job that throws (or is stopped at the time limit) has no one to
    /// report to but the site's log.
    fn drain(&self, site: &SiteContext, module: &str) -> bool {
        for _ in 0..MAX_BACKGROUND_JOBS {
            match self.rt.execute_pending_job() {
                Ok(false) => return true,
                Ok(true) => {}
                Err(job) => {
                    let message = job.0.with(|ctx| describe(&ctx, rquickjs::Error::Exception));
                    if let Some(host) = site.host.borrow().as_ref() {
                        host.logs.append(
                            &host.site,
                            "error",
                            &format!(
                                "{module}: work left running after the answer failed: {message}"
                            ),
                        );
                    }
                }
            }
        }
        !self.rt.is_job_pending()
    }

    /// The site's context on this worker, else the spare, else a new one.
    fn context_for(&mut self, site: &str) -> Result<SiteContext, FnError> {
        if let Some(i) = self
            .warm
            .iter()
            .position(|c| c.site.as_deref() == Some(site))
        {
            return Ok(self.warm.remove(i));
        }
        let mut fresh = match self.spare.take() {
            Some(spare) => spare,
            None => self.new_context()?,
        };
        fresh.site = Some(site.to_string());
        Ok(fresh)
    }

    fn run(&self, site: &SiteContext, job: &Invocation) -> Result<FnResponse, FnError> {
        let instance = self.instance;
        site.context.with(|ctx| {
            let fail = |e: rquickjs::Error| match e {
                rquickjs::Error::Allocation => FnError::OutOfMemory,
                e => FnError::Exception(describe(&ctx, e)),
            };

            self.loaded.set(self.loaded.get() + 1);
            let module = load_instance(&ctx, &job.set, &self.store, &job.module, instance)
                .map_err(FnError::BadModule)?;
            let (module, evaluated) = module.eval().map_err(fail)?;
            let outcome = evaluated.finish::<()>();
            // The module's own failure is reported as the call's error, not
            // as a rejection nobody handled.
            forget_rejection(&self.rejections, &ctx, evaluated.as_value());
            outcome.map_err(fail)?;
            let handler: Function = module.get("default").map_err(|_| {
                FnError::BadModule(format!("{} has no default export: write `export default async function (req) {{ ... }}`", job.module))
            })?;

            let prototype = site.request_prototype.clone().restore(&ctx).map_err(fail)?;
            let request = job.request.to_js(&ctx, &prototype).map_err(fail)?;
            let mut returned: Value = handler.call((request,)).map_err(fail)?;
            if let Some(promise) = returned.as_promise().cloned() {
                // So is the handler's.
                let settled = promise.finish::<Value>();
                forget_rejection(&self.rejections, &ctx, promise.as_value());
                returned = match settled {
                    Ok(value) => value,
                    Err(rquickjs::Error::WouldBlock) => {
                        return Err(FnError::Exception("the handler's promise never settled".to_string()))
                    }
                    Err(e) => return Err(fail(e)),
                };
            }
            if let Some(text) = returned.as_string() {
                return Ok(FnResponse {
                    status: 200,
                    headers: Default::default(),
                    body: text.to_string().map_err(fail)?,
                    json: false,
                });
            }
            let normalise = site.response.clone().restore(&ctx).map_err(fail)?;
            let answer: Object = normalise.call((returned,)).map_err(fail)?;
            let mut headers = std::collections::BTreeMap::new();
            let given: Object = answer.get("headers").map_err(fail)?;
            for entry in given.props::<String, String>() {
                let (name, value) = entry.map_err(fail)?;
                headers.insert(name, value);
            }
            Ok(FnResponse {
                status: answer.get("status").map_err(fail)?,
                headers,
                body: answer.get("body").map_err(fail)?,
                json: answer.get("json").map_err(fail)?,
            })
        })
    }
}

/// How much the runtime may keep between calls: a quarter of a call's limit.
fn retained_ceiling(limits: &Limits) -> usize {
    limits.memory_bytes / 4
}

/// How many own keys (strings and symbols) the global object has. Counted
/// from atoms, without making a string for each.
fn global_key_count(globals: &Object<'_>) -> usize {
    globals
        .own_keys::<Atom>(Filter::new().string().symbol())
        .len()
}

/// Whether a request left the global object as the lockdown made it: no keys
/// added (the lockdown's own cannot be removed), the same prototype, still
/// extensible. Checked natively, a fraction of what the JavaScript `reset`
/// costs, which then only runs when something did change.
fn globals_untouched(ctx: &Ctx<'_>, site: &SiteContext) -> bool {
    let globals = ctx.globals();
    if global_key_count(&globals) != site.global_keys {
        return false;
    }
    let Ok(prototype) = site.global_prototype.clone().restore(ctx) else {
        return false;
    };
    if globals.get_prototype() != prototype {
        return false;
    }
    // SAFETY: both pointers come from live rquickjs handles of this context;
    // JS_IsExtensible only reads the object's flags (it is not a proxy).
    let extensible =
        unsafe { rquickjs::qjs::JS_IsExtensible(ctx.as_raw().as_ptr(), globals.as_raw()) };
    extensible == 1
}

/// Drops `promise` from the unhandled rejections: it was handled after all,
/// or its failure is reported another way.
fn forget_rejection<'js>(rejections: &Rejections, ctx: &Ctx<'js>, promise: &Value<'js>) {
    let mut list = rejections.borrow_mut();
    if !list.is_empty() {
        list.retain(|(rejected, _)| {
            rejected
                .clone()
                .restore(ctx)
                .map_or(true, |rejected| &rejected != promise)
        });
    }
}
