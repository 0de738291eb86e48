//! What a function call is made of, as the pool and the HTTP glue see it:
//! the request a handler receives, what it answered, how it failed, and the
//! limits it runs under.

use std::sync::Arc;
use std::time::Duration;

use rquickjs::object::Property;
use rquickjs::{Ctx, Object};

use super::routes::FunctionSet;

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
    pub request: FnRequest,
}

/// The request a handler receives, as `req` (DESIGN.md §4). Built straight
/// into a JavaScript object: no JSON on the way.
#[derive(Debug, Clone)]
pub struct FnRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    /// Lower-case names, repeated headers already joined.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub ip: Option<String>,
}

impl FnRequest {
    pub(super) fn to_js<'js>(
        &self,
        ctx: &Ctx<'js>,
        prototype: &Object<'js>,
    ) -> rquickjs::Result<Object<'js>> {
        // Defined, not assigned: a header or parameter named `__proto__` or
        // `toString` is data like any other.
        let pairs = |pairs: &[(String, String)]| -> rquickjs::Result<Object<'js>> {
            let object = Object::new(ctx.clone())?;
            for (name, value) in pairs {
                let value = Property::from(value.as_str())
                    .writable()
                    .enumerable()
                    .configurable();
                object.prop(name.as_str(), value)?;
            }
            Ok(object)
        };
        let request = Object::new(ctx.clone())?;
        request.set_prototype(Some(prototype))?;
        request.set("method", self.method.as_str())?;
        request.set("path", self.path.as_str())?;
        request.set("query", pairs(&self.query)?)?;
        request.set("params", pairs(&self.params)?)?;
        request.set("headers", pairs(&self.headers)?)?;
        request.set("body", self.body.as_str())?;
        request.set("ip", self.ip.as_deref())?;
        Ok(request)
    }
}

/// What a function answered, normalised by the prelude.
#[derive(Debug)]
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
    #[error("the site has as many function calls running and waiting as it may")]
    SiteBusy,
    #[error("{0}")]
    Internal(String),
}
