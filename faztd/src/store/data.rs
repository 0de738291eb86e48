//! Per-site data for functions: `fazt.kv` (with TTL), `fazt.docs`
//! collections, and the site's environment (`faztctl env`).
//!
//! Every key starts with the site's name, and the callers (the function
//! host) only ever pass their own site, so a site cannot see another's data.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tables::*;
use super::{Result, Store, StoreError};

/// A stored KV value and when it expires (unix milliseconds).
#[derive(Serialize, Deserialize)]
struct KvEntry {
    v: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn encode(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(StoreError::Encode)
}

pub(super) fn decode<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(StoreError::Decode)
}

impl Store {
    // ----- kv ------------------------------------------------------------

    pub fn kv_get(&self, site: &str, key: &str) -> Result<Option<Value>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(KV)?;
        let Some(raw) = table.get((site, key))? else {
            return Ok(None);
        };
        let entry: KvEntry = decode(raw.value())?;
        Ok(match entry.exp {
            Some(exp) if exp <= now_ms() => None,
            _ => Some(entry.v),
        })
    }

    /// Stores `value`; with `ttl_ms` it disappears after that long.
    pub fn kv_set(&self, site: &str, key: &str, value: Value, ttl_ms: Option<u64>) -> Result<()> {
        let entry = KvEntry {
            v: value,
            exp: ttl_ms.map(|ttl| now_ms() + ttl),
        };
        let txn = self.db.begin_write()?;
        txn.open_table(KV)?
            .insert((site, key), encode(&entry)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Adds `by` to the number at `key` (a missing or expired key counts as
    /// 0) in one write transaction, so concurrent increments all count; keeps
    /// the key's expiry. `Ok(Err(..))` when the value there is not a number.
    pub fn kv_incr(&self, site: &str, key: &str, by: f64) -> Result<Result<f64, String>> {
        let txn = self.db.begin_write()?;
        let result = {
            let mut table = txn.open_table(KV)?;
            let current: Option<KvEntry> = match table.get((site, key))? {
                Some(raw) => Some(decode(raw.value())?),
                None => None,
            };
            let (start, exp) = match current {
                Some(entry) if entry.exp.is_none_or(|exp| exp > now_ms()) => {
                    match entry.v.as_f64() {
                        Some(n) => (n, entry.exp),
                        None => return Ok(Err(format!("the value at {key:?} is not a number"))),
                    }
                }
                _ => (0.0, None),
            };
            let next = start + by;
            let value = serde_json::Number::from_f64(next)
                .map(Value::Number)
                .ok_or_else(|| StoreError::Inconsistent(format!("{next} is not a JSON number")))?;
            // Whole numbers stay integers in JSON.
            let value = match value.as_f64() {
                Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(n as i64),
                _ => value,
            };
            table.insert((site, key), encode(&KvEntry { v: value, exp })?.as_slice())?;
            Ok(next)
        };
        txn.commit()?;
        Ok(result)
    }

    /// Sets `key` to `value` only if its live value is `expected` (`null`:
    /// absent), in one write transaction. Returns whether it did.
    pub fn kv_compare_and_set(
        &self,
        site: &str,
        key: &str,
        expected: &Value,
        value: Value,
        ttl_ms: Option<u64>,
    ) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let swapped = {
            let mut table = txn.open_table(KV)?;
            let current = match table.get((site, key))? {
                Some(raw) => {
                    let entry: KvEntry = decode(raw.value())?;
                    match entry.exp {
                        Some(exp) if exp <= now_ms() => Value::Null,
                        _ => entry.v,
                    }
                }
                None => Value::Null,
            };
            if &current == expected {
                let entry = KvEntry {
                    v: value,
                    exp: ttl_ms.map(|ttl| now_ms() + ttl),
                };
                table.insert((site, key), encode(&entry)?.as_slice())?;
                true
            } else {
                false
            }
        };
        txn.commit()?;
        Ok(swapped)
    }

    pub fn kv_delete(&self, site: &str, key: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let existed = txn.open_table(KV)?.remove((site, key))?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    /// Live entries whose key starts with `prefix`, in key order.
    pub fn kv_list(&self, site: &str, prefix: &str, limit: usize) -> Result<Vec<(String, Value)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(KV)?;
        let now = now_ms();
        let mut out = Vec::new();
        for entry in table.range((site, prefix)..)? {
            let (key, raw) = entry?;
            let (key_site, key) = key.value();
            if key_site != site || !key.starts_with(prefix) || out.len() >= limit {
                break;
            }
            let entry: KvEntry = decode(raw.value())?;
            if entry.exp.is_none_or(|exp| exp > now) {
                out.push((key.to_string(), entry.v));
            }
        }
        Ok(out)
    }

    // ----- docs ----------------------------------------------------------

    /// Every document of a collection, `(id, doc)`, in id order.
    pub fn docs_all(&self, site: &str, collection: &str) -> Result<Vec<(String, Value)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DOCS)?;
        let mut out = Vec::new();
        for entry in table.range((site, collection, "")..)? {
            let (key, raw) = entry?;
            let (s, c, id) = key.value();
            if s != site || c != collection {
                break;
            }
            out.push((id.to_string(), decode(raw.value())?));
        }
        Ok(out)
    }

    /// Writes (inserts or replaces) and deletes documents in one transaction.
    pub fn docs_write(
        &self,
        site: &str,
        collection: &str,
        put: &[(String, Value)],
        delete: &[String],
    ) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(DOCS)?;
            for (id, doc) in put {
                table.insert((site, collection, id.as_str()), encode(doc)?.as_slice())?;
            }
            for id in delete {
                table.remove((site, collection, id.as_str()))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    // ----- env -----------------------------------------------------------

    pub fn env_all(&self, site: &str) -> Result<Vec<(String, String)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENV)?;
        let mut out = Vec::new();
        for entry in table.range((site, "")..)? {
            let (key, value) = entry?;
            let (s, name) = key.value();
            if s != site {
                break;
            }
            out.push((name.to_string(), value.value().to_string()));
        }
        Ok(out)
    }

    pub fn env_set(&self, site: &str, name: &str, value: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(ENV)?.insert((site, name), value)?;
        txn.commit()?;
        Ok(())
    }

    pub fn env_unset(&self, site: &str, name: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let existed = txn.open_table(ENV)?.remove((site, name))?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    /// Drops all of a site's function data (when the site is removed).
    pub(super) fn remove_site_data(txn: &redb::WriteTransaction, site: &str) -> Result<()> {
        let in_site = |s: &str| s == site;
        txn.open_table(KV)?.retain(|(s, _), _| !in_site(s))?;
        txn.open_table(DOCS)?.retain(|(s, _, _), _| !in_site(s))?;
        txn.open_table(ENV)?.retain(|(s, _), _| !in_site(s))?;
        txn.open_table(FUNCTION_LOGS)?
            .retain_in((site, 0)..=(site, u64::MAX), |_, _| false)?;
        Ok(())
    }
}
