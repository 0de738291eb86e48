//! `publish`: an operator sends a message on a site's channel
//! (`faztctl publish SITE CHANNEL JSON`), as a function would.

use std::sync::Arc;

use fazt_proto::{PublishOutcome, RpcError};

use crate::instance::Instance;
use crate::realtime::RealtimeError;

pub async fn publish(
    instance: &Arc<Instance>,
    site: String,
    channel: String,
    data_json: String,
) -> Result<PublishOutcome, RpcError> {
    if instance.catalog.site(&site).is_none() {
        return Err(RpcError::NotFound(format!(
            "there is no site {site:?} (see `faztctl sites`)"
        )));
    }
    let data: serde_json::Value = serde_json::from_str(&data_json).map_err(|e| {
        RpcError::Invalid(format!(
            "the message is not valid JSON ({e}); quote strings, e.g. '\"hello\"'"
        ))
    })?;
    let hub = &instance.realtime;
    let id = hub.publish(&site, &channel, &data).map_err(|e| match e {
        RealtimeError::TooLarge { .. } => RpcError::TooLarge(e.to_string()),
        _ => RpcError::Invalid(format!("cannot publish on {channel:?}: {e}")),
    })?;
    Ok(PublishOutcome {
        subscribers: hub.count(&site, &channel) as u64,
        site,
        channel,
        id,
    })
}
