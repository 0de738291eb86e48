//! Which function answers which path: file routing under `api/`.
//!
//! `api/hello.js` → `/api/hello`; `api/index.js` → `/api`;
//! `api/users/[id].js` → `/api/users/42` with `params.id = "42"`;
//! `api/main.js` (the original Fazt's single entry point) → `/api` and any
//! `/api/*` no other file claims. Literal segments beat parameters.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::instances::Compiled;
use crate::store::Hash;

/// Where function sources live inside a site.
pub const API_DIR: &str = "api/";
/// The catch-all entry point.
pub const MAIN_MODULE: &str = "api/main.js";

/// Whether a site file is a function module (not served as a static file).
pub fn is_function_module(path: &str) -> bool {
    path.starts_with(API_DIR) && (path.ends_with(".js") || path.ends_with(".mjs"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
struct Route {
    segments: Vec<Segment>,
    module: String,
}

/// One module of a deployed version: its source blob and, once compiled,
/// its bytecode (shared by every worker, kept as long as the version lives).
#[derive(Debug)]
pub struct ModuleSource {
    pub hash: Hash,
    pub bytecode: OnceLock<Arc<Compiled>>,
}

/// The functions of one deployed version of a site.
#[derive(Debug)]
pub struct FunctionSet {
    pub site: String,
    pub version: u64,
    routes: Vec<Route>,
    catch_all: Option<String>,
    pub modules: HashMap<String, ModuleSource>,
}

/// A matched route: the module to run and the path parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch {
    pub module: String,
    pub params: Vec<(String, String)>,
}

impl FunctionSet {
    /// Builds the routes from a version's files; `None` if it has no functions.
    pub fn build<'a>(
        site: &str,
        version: u64,
        files: impl Iterator<Item = (&'a str, Hash)>,
    ) -> Option<FunctionSet> {
        let mut modules = HashMap::new();
        let mut routes = Vec::new();
        let mut catch_all = None;
        for (path, hash) in files.filter(|(p, _)| is_function_module(p)) {
            modules.insert(
                path.to_string(),
                ModuleSource {
                    hash,
                    bytecode: OnceLock::new(),
                },
            );
            if path == MAIN_MODULE {
                catch_all = Some(path.to_string());
                continue;
            }
            // Files starting with `_` are helpers to import, not routes.
            let name = path.rsplit('/').next().unwrap_or(path);
            if name.starts_with('_') {
                continue;
            }
            let stem = path[API_DIR.len()..]
                .trim_end_matches(".mjs")
                .trim_end_matches(".js");
            let mut segments: Vec<Segment> = stem
                .split('/')
                .map(
                    |s| match s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                        Some(param) => Segment::Param(param.to_string()),
                        None => Segment::Literal(s.to_string()),
                    },
                )
                .collect();
            if segments.last() == Some(&Segment::Literal("index".to_string())) {
                segments.pop();
            }
            routes.push(Route {
                segments,
                module: path.to_string(),
            });
        }
        if modules.is_empty() {
            return None;
        }
        // Most specific first: compare segment kinds left to right, literals first.
        routes.sort_by(|a, b| {
            let rank = |r: &Route| -> Vec<u8> {
                r.segments
                    .iter()
                    .map(|s| matches!(s, Segment::Param(_)) as u8)
                    .collect()
            };
            rank(a).cmp(&rank(b)).then_with(|| a.module.cmp(&b.module))
        });
        Some(FunctionSet {
            site: site.to_string(),
            version,
            routes,
            catch_all,
            modules,
        })
    }

    /// Matches a site path (`api/users/42`, no leading slash) to a function.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let rest = match path.strip_prefix("api") {
            Some("") => "",
            Some(rest) => rest.strip_prefix('/')?,
            None => return None,
        };
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        for route in &self.routes {
            if route.segments.len() != parts.len() {
                continue;
            }
            let mut params = Vec::new();
            let matched = route
                .segments
                .iter()
                .zip(&parts)
                .all(|(seg, part)| match seg {
                    Segment::Literal(lit) => lit == part,
                    Segment::Param(name) => {
                        params.push((name.clone(), part.to_string()));
                        true
                    }
                });
            if matched {
                return Some(RouteMatch {
                    module: route.module.clone(),
                    params,
                });
            }
        }
        self.catch_all.as_ref().map(|module| RouteMatch {
            module: module.clone(),
            params: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> FunctionSet {
        FunctionSet::build("s", 1, paths.iter().map(|p| (*p, [0u8; 32]))).unwrap()
    }

    #[test]
    fn routing_table() {
        let s = set(&[
            "api/hello.js",
            "api/index.js",
            "api/users/[id].js",
            "api/users/me.js",
            "api/users/index.js",
            "api/posts/[id]/comments.js",
            "api/_lib.js",
            "api/main.js",
        ]);
        let m = |p: &str| s.route(p).map(|r| (r.module, r.params));
        let p = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(m("api/hello"), Some(("api/hello.js".into(), p(&[]))));
        assert_eq!(m("api"), Some(("api/index.js".into(), p(&[]))));
        assert_eq!(m("api/users"), Some(("api/users/index.js".into(), p(&[]))));
        assert_eq!(m("api/users/me"), Some(("api/users/me.js".into(), p(&[]))));
        assert_eq!(
            m("api/users/42"),
            Some(("api/users/[id].js".into(), p(&[("id", "42")])))
        );
        assert_eq!(
            m("api/posts/7/comments"),
            Some(("api/posts/[id]/comments.js".into(), p(&[("id", "7")])))
        );
        assert_eq!(
            m("api/_lib"),
            Some(("api/main.js".into(), p(&[]))),
            "helpers are not routes"
        );
        assert_eq!(m("api/anything/else"), Some(("api/main.js".into(), p(&[]))));
        assert_eq!(m("apix"), None);
        assert_eq!(m("about"), None);
    }

    #[test]
    fn no_catch_all_means_no_match() {
        let s = set(&["api/hello.js"]);
        assert!(s.route("api/other").is_none());
        assert!(FunctionSet::build("s", 1, [("index.html", [0u8; 32])].into_iter()).is_none());
    }
}
