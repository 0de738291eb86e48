//! Readable messages for JavaScript failures: name, message and where,
//! with module instance numbers taken out (users see their own file names).

use rquickjs::{Ctx, Value};

use super::instances::strip_instance_names;

/// A readable message for a JavaScript error: message plus location.
pub(super) fn describe(ctx: &Ctx<'_>, err: rquickjs::Error) -> String {
    if !matches!(err, rquickjs::Error::Exception) {
        return strip_instance_names(&err.to_string()).into_owned();
    }
    describe_thrown(ctx, ctx.catch())
}

/// A readable message for a thrown (or rejected-with) value.
pub(super) fn describe_thrown<'js>(ctx: &Ctx<'js>, caught: Value<'js>) -> String {
    strip_instance_names(&describe_value(ctx, caught)).into_owned()
}

fn describe_value<'js>(ctx: &Ctx<'js>, caught: Value<'js>) -> String {
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
