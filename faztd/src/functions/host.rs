//! The `fazt` API as the host implements it. JavaScript calls one native
//! function with an operation name and JSON arguments (see `prelude.js`);
//! this module does the work against the store, scoped to the calling site.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::docs_query;
use super::logs::SiteLogs;
use crate::store::Store;

/// Keys and collection names: short, printable.
const MAX_KEY: usize = 512;
/// Largest value one `kv.set` or document may hold.
const MAX_VALUE: usize = 1024 * 1024;
const DEFAULT_FIND_LIMIT: usize = 100;

/// Publishes to realtime channels; provided by the realtime hub when present.
pub trait RealtimeBridge: Send + Sync {
    fn publish(&self, site: &str, channel: &str, data: Value) -> Result<u64, String>;
    fn count(&self, site: &str, channel: &str) -> u64;
    fn presence(&self, site: &str, channel: &str) -> Value;
}

/// What one invocation may touch.
pub struct HostContext {
    pub store: Arc<Store>,
    pub logs: Arc<SiteLogs>,
    pub realtime: Option<Arc<dyn RealtimeBridge>>,
    pub site: String,
    pub version: u64,
}

impl HostContext {
    /// Runs `op` with `args`; errors become exceptions in JavaScript.
    pub fn call(&self, op: &str, args: &[Value]) -> Result<Value, String> {
        let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
        let text = |i: usize, what: &str| -> Result<&str, String> {
            let s = arg(i)
                .as_str()
                .ok_or_else(|| format!("{what} must be a string"))?;
            if s.is_empty() || s.len() > MAX_KEY {
                return Err(format!("{what} must be 1 to {MAX_KEY} characters"));
            }
            Ok(s)
        };
        let site = self.site.as_str();
        let store = |e: crate::store::StoreError| format!("storage error: {e}");
        match op {
            "info" => Ok(
                json!({ "site": site, "version": self.version, "fazt": fazt_proto::FAZT_VERSION }),
            ),
            "log" => {
                let level = arg(0).as_str().unwrap_or("info");
                let message = arg(1).as_str().unwrap_or("");
                self.logs.append(
                    site,
                    level,
                    &super::instances::strip_instance_names(message),
                );
                Ok(Value::Null)
            }
            "kv.get" => Ok(self
                .store
                .kv_get(site, text(0, "key")?)
                .map_err(store)?
                .unwrap_or(Value::Null)),
            "kv.set" => {
                let key = text(0, "key")?;
                let value = arg(1).clone();
                check_size(&value)?;
                let ttl_ms = ttl_ms(arg(2))?;
                self.store.kv_set(site, key, value, ttl_ms).map_err(store)?;
                Ok(Value::Null)
            }
            "kv.incr" => {
                let key = text(0, "key")?;
                let by = match arg(1) {
                    Value::Null => 1.0,
                    v => v.as_f64().ok_or("incr: `by` must be a number")?,
                };
                let next = self.store.kv_incr(site, key, by).map_err(store)??;
                Ok(json!(next))
            }
            "kv.cas" => {
                let key = text(0, "key")?;
                let value = arg(2).clone();
                check_size(&value)?;
                let ttl_ms = ttl_ms(arg(3))?;
                let swapped = self
                    .store
                    .kv_compare_and_set(site, key, arg(1), value, ttl_ms)
                    .map_err(store)?;
                Ok(Value::Bool(swapped))
            }
            "kv.delete" => Ok(Value::Bool(
                self.store.kv_delete(site, text(0, "key")?).map_err(store)?,
            )),
            "kv.list" => {
                let prefix = arg(0).as_str().unwrap_or("");
                let entries = self.store.kv_list(site, prefix, 1000).map_err(store)?;
                Ok(Value::Array(
                    entries
                        .into_iter()
                        .map(|(key, value)| json!({ "key": key, "value": value }))
                        .collect(),
                ))
            }
            "docs.insert" => {
                let collection = text(0, "collection")?;
                let mut doc = arg(1).clone();
                let Some(fields) = doc.as_object_mut() else {
                    return Err("a document must be an object".into());
                };
                let id = match fields.get("_id") {
                    Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_KEY => id.clone(),
                    Some(_) => return Err("_id must be a non-empty string".into()),
                    None => new_id(),
                };
                fields.insert("_id".into(), Value::String(id.clone()));
                check_size(&doc)?;
                self.store
                    .docs_write(site, collection, &[(id.clone(), doc.clone())], &[])
                    .map_err(store)?;
                Ok(doc)
            }
            "docs.find" | "docs.findOne" | "docs.count" => {
                let collection = text(0, "collection")?;
                let query = arg(1);
                let (limit, offset) = if op == "docs.findOne" {
                    (1, 0)
                } else {
                    let opts = arg(2);
                    let n = |k: &str, d: usize| {
                        opts.get(k)
                            .and_then(Value::as_u64)
                            .map(|v| v as usize)
                            .unwrap_or(d)
                    };
                    (n("limit", DEFAULT_FIND_LIMIT), n("offset", 0))
                };
                let mut found = Vec::new();
                let mut matched = 0usize;
                for (_, doc) in self.store.docs_all(site, collection).map_err(store)? {
                    if docs_query::matches(&doc, query)? {
                        if op != "docs.count" && matched >= offset && found.len() < limit {
                            found.push(doc);
                        }
                        matched += 1;
                    }
                }
                Ok(match op {
                    "docs.count" => json!(matched),
                    "docs.findOne" => found.into_iter().next().unwrap_or(Value::Null),
                    _ => Value::Array(found),
                })
            }
            "docs.update" => {
                let collection = text(0, "collection")?;
                let changes = arg(2).as_object().ok_or("changes must be an object")?;
                let mut put = Vec::new();
                for (id, mut doc) in self.store.docs_all(site, collection).map_err(store)? {
                    if docs_query::matches(&doc, arg(1))? {
                        let fields = doc.as_object_mut().expect("documents are objects");
                        for (k, v) in changes {
                            if k != "_id" {
                                fields.insert(k.clone(), v.clone());
                            }
                        }
                        check_size(&doc)?;
                        put.push((id, doc));
                    }
                }
                self.store
                    .docs_write(site, collection, &put, &[])
                    .map_err(store)?;
                Ok(json!(put.len()))
            }
            "docs.delete" => {
                let collection = text(0, "collection")?;
                let mut ids = Vec::new();
                for (id, doc) in self.store.docs_all(site, collection).map_err(store)? {
                    if docs_query::matches(&doc, arg(1))? {
                        ids.push(id);
                    }
                }
                self.store
                    .docs_write(site, collection, &[], &ids)
                    .map_err(store)?;
                Ok(json!(ids.len()))
            }
            "env.get" => {
                let name = text(0, "name")?;
                let env = self.store.env_all(site).map_err(store)?;
                Ok(env
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| Value::String(v))
                    .unwrap_or_else(|| arg(1).clone()))
            }
            "realtime.publish" => {
                let channel = text(0, "channel")?;
                let bridge = self
                    .realtime
                    .as_ref()
                    .ok_or("realtime is not available on this instance")?;
                Ok(json!(bridge.publish(site, channel, arg(1).clone())?))
            }
            "realtime.count" => {
                let channel = text(0, "channel")?;
                Ok(json!(self
                    .realtime
                    .as_ref()
                    .map(|r| r.count(site, channel))
                    .unwrap_or(0)))
            }
            "realtime.presence" => {
                let channel = text(0, "channel")?;
                Ok(self
                    .realtime
                    .as_ref()
                    .map(|r| r.presence(site, channel))
                    .unwrap_or(json!([])))
            }
            other => Err(format!("fazt has no operation {other}")),
        }
    }
}

/// The `{ttl: seconds}` option of `kv.set` and `kv.compareAndSet`.
fn ttl_ms(options: &Value) -> Result<Option<u64>, String> {
    match options.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(ttl) => match ttl.as_f64() {
            Some(secs) if secs > 0.0 => Ok(Some((secs * 1000.0) as u64)),
            _ => Err("ttl must be a positive number of seconds".into()),
        },
    }
}

fn check_size(value: &Value) -> Result<(), String> {
    let size = serde_json::to_vec(value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_VALUE {
        return Err(format!(
            "the value is {size} bytes; the limit is {MAX_VALUE}"
        ));
    }
    Ok(())
}

/// A unique, sortable document id: time in ms plus a process-wide counter.
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&ms.to_le_bytes());
    hasher.update(&n.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    format!("{ms:012x}{}", &hasher.finalize().to_hex()[..8])
}

/// `fazt.realtime` publishes through the instance's channel hub.
impl RealtimeBridge for crate::realtime::ChannelHub {
    fn publish(&self, site: &str, channel: &str, data: Value) -> Result<u64, String> {
        crate::realtime::ChannelHub::publish(self, site, channel, &data).map_err(|e| e.to_string())
    }

    fn count(&self, site: &str, channel: &str) -> u64 {
        crate::realtime::ChannelHub::count(self, site, channel) as u64
    }

    fn presence(&self, site: &str, channel: &str) -> Value {
        Value::Array(crate::realtime::ChannelHub::presence(self, site, channel))
    }
}
