//! One QuickJS runtime on one worker thread, running one invocation at a time.
//!
//! Each invocation gets a fresh context (so no global state leaks between
//! requests), the `fazt` prelude, and the site's module loaded from
//! bytecode compiled once per deployed version. The runtime itself is
//! reused; it is rebuilt after an invocation that hit the time or memory
//! limit, so the memory it grabbed is given back.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::loader::{Loader, Resolver};
use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Context, Ctx, Function, Module, Runtime, Value};

use super::host::HostContext;
use super::routes::FunctionSet;
use crate::store::Store;

const PRELUDE: &str = include_str!("prelude.js");

/// Per-invocation limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub stack_bytes: usize,
}

/// One request for a function.
pub struct Invocation {
    pub set: Arc<FunctionSet>,
    pub module: String,
    /// `{ method, path, query, params, headers, body, ip }`.
    pub request: serde_json::Value,
}

/// What a function answered, normalised by the prelude.
#[derive(Debug, serde::Deserialize)]
pub struct FnResponse {
    pub status: u16,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FnError {
    #[error("the function ran longer than its time limit and was stopped")]
    Timeout,
    #[error("the function used more memory than its limit and was stopped")]
    OutOfMemory,
    #[error("{0}")]
    Exception(String),
    #[error("{0}")]
    BadModule(String),
    #[error("all function workers are busy")]
    Busy,
    #[error("{0}")]
    Internal(String),
}

/// The modules an engine is working with right now.
#[derive(Clone)]
enum Modules {
    /// A deployed version's functions.
    Live(Arc<FunctionSet>),
    /// Sources being checked before a deploy goes live.
    Checking(Rc<HashMap<String, Vec<u8>>>),
}

impl Modules {
    fn contains(&self, name: &str) -> bool {
        match self {
            Modules::Live(set) => set.modules.contains_key(name),
            Modules::Checking(sources) => sources.contains_key(name),
        }
    }
}

/// Module loading for `import` between a site's own files under `api/`.
struct SiteModules {
    current: Rc<RefCell<Option<Modules>>>,
    store: Arc<Store>,
}

impl Resolver for SiteModules {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let refused = || rquickjs::Error::new_resolving(base, name);
        if !(name.starts_with("./") || name.starts_with("../")) {
            return Err(refused());
        }
        let mut parts: Vec<&str> = base.split('/').collect();
        parts.pop();
        for segment in name.split('/') {
            match segment {
                "." | "" => {}
                ".." => {
                    parts.pop().ok_or_else(refused)?;
                }
                s => parts.push(s),
            }
        }
        let resolved = parts.join("/");
        let known = self
            .current
            .borrow()
            .as_ref()
            .is_some_and(|modules| modules.contains(&resolved));
        if resolved.starts_with(super::routes::API_DIR) && known {
            Ok(resolved)
        } else {
            Err(refused())
        }
    }
}

impl Loader for SiteModules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let modules = self
            .current
            .borrow()
            .clone()
            .ok_or_else(|| rquickjs::Error::new_loading(name))?;
        match modules {
            Modules::Live(set) => load_module(ctx, &set, &self.store, name)
                .map_err(|_| rquickjs::Error::new_loading(name)),
            Modules::Checking(sources) => {
                let source = sources
                    .get(name)
                    .ok_or_else(|| rquickjs::Error::new_loading(name))?;
                Module::declare(ctx.clone(), name, source.clone())
            }
        }
    }
}

/// Loads a module of `set` into `ctx`, from cached bytecode when there is
/// some, else compiling the source (and caching its bytecode).
fn load_module<'js>(
    ctx: &Ctx<'js>,
    set: &FunctionSet,
    store: &Store,
    name: &str,
) -> Result<Module<'js, Declared>, String> {
    let source = set
        .modules
        .get(name)
        .ok_or_else(|| format!("no module {name}"))?;
    if let Some(bytecode) = source.bytecode.get() {
        // SAFETY: the bytecode was produced by `Module::write` of this same
        // QuickJS build in this process; it is never read from outside.
        return unsafe { Module::load(ctx.clone(), bytecode) }.map_err(|e| e.to_string());
    }
    let code = store
        .read_blob(&source.hash)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the source of {name} is missing"))?;
    let module = Module::declare(ctx.clone(), name, code.to_vec()).map_err(|e| describe(ctx, e))?;
    if let Ok(bytecode) = module.write(WriteOptions::default()) {
        let _ = source.bytecode.set(Arc::new(bytecode));
    }
    Ok(module)
}

/// A readable message for a JavaScript error: message plus location.
fn describe(ctx: &Ctx<'_>, err: rquickjs::Error) -> String {
    if !matches!(err, rquickjs::Error::Exception) {
        return err.to_string();
    }
    let caught = ctx.catch();
    if let Some(exception) = caught.as_exception() {
        let message = exception.message().unwrap_or_default();
        let location = exception
            .stack()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.trim().strip_prefix("at ").map(str::to_string))
            })
            .unwrap_or_default();
        let name: String = exception
            .get("name")
            .unwrap_or_else(|_| "Error".to_string());
        if location.is_empty() {
            format!("{name}: {message}")
        } else {
            format!("{location}: {name}: {message}")
        }
    } else {
        ctx.json_stringify(caught)
            .ok()
            .flatten()
            .and_then(|s| s.to_string().ok())
            .map(|s| format!("uncaught {s}"))
            .unwrap_or_else(|| "uncaught exception".to_string())
    }
}

pub struct Engine {
    /// A context with the prelude already loaded, made while the worker was idle.
    spare: Option<Context>,
    /// The prelude compiled once per runtime.
    prelude: Vec<u8>,
    /// The host API of the invocation being run, reached by `__fazt_host`.
    host: Rc<RefCell<Option<HostContext>>>,
    rt: Runtime,
    deadline: Rc<Cell<Option<Instant>>>,
    current: Rc<RefCell<Option<Modules>>>,
    limits: Limits,
    store: Arc<Store>,
}

impl Engine {
    pub fn new(limits: Limits, store: Arc<Store>) -> Result<Engine, FnError> {
        let rt =
            Runtime::new().map_err(|e| FnError::Internal(format!("cannot start QuickJS: {e}")))?;
        rt.set_memory_limit(limits.memory_bytes);
        rt.set_max_stack_size(limits.stack_bytes);
        let deadline = Rc::new(Cell::new(None::<Instant>));
        let watch = deadline.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            watch.get().is_some_and(|d| Instant::now() >= d)
        })));
        let current = Rc::new(RefCell::new(None));
        let loader = || SiteModules {
            current: current.clone(),
            store: store.clone(),
        };
        rt.set_loader(loader(), loader());
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
            spare: None,
            prelude,
            host: Rc::new(RefCell::new(None)),
            rt,
            deadline,
            current,
            limits,
            store,
        })
    }

    /// Makes the next invocation's context ahead of time: a fresh context
    /// with the `fazt` API in it. Called when the worker has nothing to do.
    pub fn prepare(&mut self) {
        if self.spare.is_none() {
            self.spare = self.new_context().ok();
        }
    }

    fn new_context(&self) -> Result<Context, FnError> {
        let context = Context::full(&self.rt).map_err(|e| match e {
            rquickjs::Error::Allocation => FnError::OutOfMemory,
            e => FnError::Internal(e.to_string()),
        })?;
        context.with(|ctx| {
            let slot = self.host.clone();
            let bridge = Function::new(ctx.clone(), move |op: String, args: String| -> String {
                let args: Vec<serde_json::Value> = serde_json::from_str(&args).unwrap_or_default();
                let reply = match slot.borrow().as_ref().map(|host| host.call(&op, &args)) {
                    Some(Ok(value)) => serde_json::json!({ "ok": value }),
                    Some(Err(message)) => serde_json::json!({ "error": message }),
                    None => serde_json::json!({ "error": "fazt is only available while handling a request" }),
                };
                reply.to_string()
            });
            let setup = bridge.and_then(|bridge| ctx.globals().set("__fazt_host", bridge)).and_then(|_| {
                // SAFETY: compiled from PRELUDE by this runtime in `Engine::new`.
                let prelude = unsafe { Module::load(ctx.clone(), &self.prelude) }?;
                let (_, done) = prelude.eval()?;
                done.finish::<()>()
            });
            setup.map_err(|e| FnError::Internal(format!("cannot set up a context: {}", describe(&ctx, e))))
        })?;
        Ok(context)
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

    pub fn invoke(&mut self, job: &Invocation, host: HostContext) -> Result<FnResponse, FnError> {
        *self.current.borrow_mut() = Some(Modules::Live(job.set.clone()));
        let deadline = Instant::now() + self.limits.timeout;
        self.deadline.set(Some(deadline));
        let result = self.run(job, host);
        self.deadline.set(None);
        *self.current.borrow_mut() = None;
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

    fn run(&mut self, job: &Invocation, host: HostContext) -> Result<FnResponse, FnError> {
        // Every invocation gets a context no other request has touched.
        let context = match self.spare.take() {
            Some(context) => context,
            None => self.new_context()?,
        };
        *self.host.borrow_mut() = Some(host);
        let store = self.store.clone();
        let result = context.with(|ctx| {
            let fail = |e: rquickjs::Error| match e {
                rquickjs::Error::Allocation => FnError::OutOfMemory,
                e => FnError::Exception(describe(&ctx, e)),
            };

            let module = load_module(&ctx, &job.set, &store, &job.module).map_err(FnError::BadModule)?;
            let (module, evaluated) = module.eval().map_err(fail)?;
            evaluated.finish::<()>().map_err(fail)?;
            let handler: Function = module.get("default").map_err(|_| {
                FnError::BadModule(format!("{} has no default export: write `export default async function (req) {{ ... }}`", job.module))
            })?;

            let request = ctx.json_parse(job.request.to_string()).map_err(fail)?;
            let wrap: Function = ctx.globals().get("__fazt_request").map_err(fail)?;
            let request: Value = wrap.call((request,)).map_err(fail)?;
            let mut returned: Value = handler.call((request,)).map_err(fail)?;
            if let Some(promise) = returned.as_promise().cloned() {
                returned = match promise.finish::<Value>() {
                    Ok(value) => value,
                    Err(rquickjs::Error::WouldBlock) => {
                        return Err(FnError::Exception("the handler's promise never settled".to_string()))
                    }
                    Err(e) => return Err(fail(e)),
                };
            }
            let normalise: Function = ctx.globals().get("__fazt_response").map_err(fail)?;
            let normalised: Value = normalise.call((returned,)).map_err(fail)?;
            let json = ctx
                .json_stringify(normalised)
                .map_err(fail)?
                .and_then(|s| s.to_string().ok())
                .ok_or_else(|| FnError::Internal("the response could not be read".to_string()))?;
            serde_json::from_str(&json).map_err(|e| FnError::Internal(format!("the response could not be read: {e}")))
        });
        *self.host.borrow_mut() = None;
        result
    }
}
