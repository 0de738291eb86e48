//! Module loading for a site's functions: `import` resolved only between
//! the site's own files under `api/`, each module loaded as the calling
//! request's own instance (`instances`), from bytecode compiled once per
//! deployed version.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::loader::{Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Module};

use super::instances::{instance_name, split_instance_name, strip_instance_names, Compiled};
use super::messages::describe;
use super::routes::FunctionSet;
use crate::store::Store;

/// The modules an engine is working with right now.
#[derive(Clone)]
pub(super) enum Modules {
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
pub(super) struct SiteModules {
    /// What the running invocation (or deploy check) may import.
    pub(super) current: Rc<RefCell<Option<Modules>>>,
    /// Counts the module instances loaded, for the engine.
    pub(super) loaded: Rc<Cell<u32>>,
    pub(super) store: Arc<Store>,
}

impl Resolver for SiteModules {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let refused = || rquickjs::Error::new_resolving(strip_instance_names(base), name);
        if !(name.starts_with("./") || name.starts_with("../")) {
            return Err(refused());
        }
        // An import made by instance N of a module resolves to instance N
        // of the imported module: one instance per request (`instances`).
        let (base_path, instance) = split_instance_name(base);
        let mut parts: Vec<&str> = base_path.split('/').collect();
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
            Ok(match instance {
                Some(instance) => instance_name(&resolved, instance),
                None => resolved,
            })
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
            Modules::Live(set) => {
                let (path, instance) = split_instance_name(name);
                let instance = instance.ok_or_else(|| rquickjs::Error::new_loading(name))?;
                self.loaded.set(self.loaded.get() + 1);
                load_instance(ctx, &set, &self.store, path, instance)
                    .map_err(|message| rquickjs::Error::new_loading_message(path, message))
            }
            Modules::Checking(sources) => {
                let source = sources
                    .get(name)
                    .ok_or_else(|| rquickjs::Error::new_loading(name))?;
                Module::declare(ctx.clone(), name, source.clone())
            }
        }
    }
}

/// Loads instance `instance` of module `path` of `set` into `ctx`, from
/// the version's cached bytecode, compiling (and caching) it the first time.
pub(super) fn load_instance<'js>(
    ctx: &Ctx<'js>,
    set: &FunctionSet,
    store: &Store,
    path: &str,
    instance: u64,
) -> Result<Module<'js, Declared>, String> {
    let source = set
        .modules
        .get(path)
        .ok_or_else(|| format!("no module {path}"))?;
    let compiled = match source.bytecode.get() {
        Some(compiled) => compiled.clone(),
        None => {
            let code = store
                .read_blob(&source.hash)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the source of {path} is missing"))?;
            let compiled = Arc::new(
                Compiled::compile(ctx, path, code.to_vec()).map_err(|e| describe(ctx, e))?,
            );
            source.bytecode.get_or_init(|| compiled).clone()
        }
    };
    compiled
        .instantiate(ctx, instance)
        .map_err(|e| describe(ctx, e))
}
