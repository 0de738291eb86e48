//! The query language of `fazt.docs` (DESIGN.md §4): `{ field: value }` for
//! equality, or `{ field: { $eq $ne $gt $gte $lt $lte $in $contains } }`.
//! Fields may be dotted paths into nested objects.

use std::cmp::Ordering;

use serde_json::Value;

/// Whether `doc` satisfies every condition of `query`.
pub fn matches(doc: &Value, query: &Value) -> Result<bool, String> {
    let Some(conditions) = query.as_object() else {
        return if query.is_null() {
            Ok(true)
        } else {
            Err("a query must be an object".into())
        };
    };
    for (field, condition) in conditions {
        let actual = lookup(doc, field);
        let ok = match condition.as_object() {
            Some(ops) if !ops.is_empty() && ops.keys().all(|k| k.starts_with('$')) => {
                let mut all = true;
                for (op, expected) in ops {
                    all &= apply(op, actual, expected)?;
                }
                all
            }
            _ => actual == Some(condition),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, key| v.get(key))
}

fn apply(op: &str, actual: Option<&Value>, expected: &Value) -> Result<bool, String> {
    Ok(match op {
        "$eq" => actual == Some(expected),
        "$ne" => actual != Some(expected),
        "$gt" => compare(actual, expected) == Some(Ordering::Greater),
        "$gte" => matches!(
            compare(actual, expected),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        "$lt" => compare(actual, expected) == Some(Ordering::Less),
        "$lte" => matches!(
            compare(actual, expected),
            Some(Ordering::Less | Ordering::Equal)
        ),
        "$in" => match expected.as_array() {
            Some(options) => actual.is_some_and(|a| options.contains(a)),
            None => return Err("$in needs an array".into()),
        },
        "$contains" => match actual {
            Some(Value::Array(items)) => items.contains(expected),
            Some(Value::String(s)) => expected.as_str().is_some_and(|e| s.contains(e)),
            _ => false,
        },
        other => return Err(format!("unknown query operator {other}")),
    })
}

/// Numbers compare as numbers, strings as strings; anything else does not compare.
fn compare(actual: Option<&Value>, expected: &Value) -> Option<Ordering> {
    match (actual?, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operators() {
        let doc = json!({"name": "ada", "age": 36, "tags": ["math", "code"], "address": {"city": "London"}});
        let yes = [
            json!({}),
            json!({"name": "ada"}),
            json!({"age": {"$gt": 30, "$lt": 40}}),
            json!({"age": {"$gte": 36}}),
            json!({"age": {"$lte": 36}}),
            json!({"name": {"$ne": "bob"}}),
            json!({"name": {"$in": ["ada", "bob"]}}),
            json!({"tags": {"$contains": "code"}}),
            json!({"name": {"$contains": "d"}}),
            json!({"address.city": "London"}),
            json!({"missing": {"$ne": 1}}),
        ];
        let no = [
            json!({"name": "bob"}),
            json!({"age": {"$gt": 36}}),
            json!({"age": {"$lt": "x"}}),
            json!({"tags": {"$contains": "art"}}),
            json!({"address.city": "Paris"}),
            json!({"missing": 1}),
        ];
        for q in yes {
            assert!(matches(&doc, &q).unwrap(), "{q}");
        }
        for q in no {
            assert!(!matches(&doc, &q).unwrap(), "{q}");
        }
        assert!(matches(&doc, &json!({"age": {"$regex": "x"}})).is_err());
        assert!(matches(&doc, &json!({"name": {"$in": "ada"}})).is_err());
        assert!(matches(&doc, &json!([1])).is_err());
    }
}
