//! The JSON frames of `/_ws` (DESIGN.md §5). Only this file knows their
//! shape: the hub and the connection speak in Rust types and ready-made
//! [`Message`]s, serialised once and shared by every subscriber.
//!
//! Client → server: `subscribe {channel, since?, info?}`, `unsubscribe
//! {channel}`, `publish {channel, data}`, `ping`.
//! Server → client: `subscribed`, `unsubscribed`, `message {channel, id, ts,
//! data}`, `presence {event: members|join|leave}`, `error {code, message}`,
//! `pong`.

use serde::Deserialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A frame a client sent.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientFrame {
    Subscribe {
        channel: String,
        /// Replay the kept messages with a greater id, then go live.
        #[serde(default)]
        since: Option<u64>,
        /// What other members see of this client on `presence-*` channels.
        #[serde(default)]
        info: Option<Value>,
    },
    Unsubscribe {
        channel: String,
    },
    Publish {
        channel: String,
        #[serde(default)]
        data: Value,
    },
    Ping {
        /// Echoed back in the pong, so a client can match them up.
        #[serde(default)]
        data: Option<Value>,
    },
}

/// Why a frame was refused; the `code` field of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadFrame,
    BadChannel,
    FrameTooLarge,
    NotAllowed,
    TooManySubscriptions,
    TooManyChannels,
    TooManyConnections,
    AlreadySubscribed,
    NotSubscribed,
    InfoTooLarge,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::BadChannel => "bad_channel",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::NotAllowed => "publish_not_allowed",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::TooManyChannels => "too_many_channels",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::AlreadySubscribed => "already_subscribed",
            ErrorCode::NotSubscribed => "not_subscribed",
            ErrorCode::InfoTooLarge => "info_too_large",
        }
    }
}

/// Parses a client's text frame; the error is a sentence for the client.
pub fn parse(text: &str) -> Result<ClientFrame, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "not a valid frame ({e}); send JSON such as {{\"type\":\"subscribe\",\"channel\":\"news\"}}"
        )
    })
}

fn text(value: Value) -> Message {
    Message::text(value.to_string())
}

pub fn error(code: ErrorCode, message: &str, channel: Option<&str>) -> Message {
    let mut v = json!({ "type": "error", "code": code.as_str(), "message": message });
    if let Some(channel) = channel {
        v["channel"] = json!(channel);
    }
    text(v)
}

pub fn pong(data: Option<Value>) -> Message {
    match data {
        Some(data) => text(json!({ "type": "pong", "data": data })),
        None => text(json!({ "type": "pong" })),
    }
}

/// `replayed` messages follow this frame; `missed` says older ones the
/// client asked for are gone (history is bounded).
pub fn subscribed(channel: &str, replayed: usize, missed: bool, last_id: Option<u64>) -> Message {
    text(json!({
        "type": "subscribed",
        "channel": channel,
        "replayed": replayed,
        "missed": missed,
        "lastId": last_id,
    }))
}

pub fn unsubscribed(channel: &str) -> Message {
    text(json!({ "type": "unsubscribed", "channel": channel }))
}

/// A published message, serialised once for every subscriber. `data` is
/// already JSON text.
pub fn message(channel: &str, id: u64, ts: u64, data: &str) -> Message {
    let channel = Value::from(channel).to_string();
    Message::text(format!(
        r#"{{"type":"message","channel":{channel},"id":{id},"ts":{ts},"data":{data}}}"#
    ))
}

/// One member of a presence channel as clients see it.
pub fn member(client: u64, info: &Value) -> Value {
    json!({ "id": client, "info": info })
}

pub fn presence_members(channel: &str, me: u64, members: Vec<Value>) -> Message {
    text(json!({
        "type": "presence",
        "channel": channel,
        "event": "members",
        "me": me,
        "members": members,
    }))
}

/// `join` or `leave`.
pub fn presence_change(channel: &str, event: &str, member: Value) -> Message {
    text(json!({ "type": "presence", "channel": channel, "event": event, "member": member }))
}

/// Channel names: 1 to 128 visible ASCII characters.
pub fn valid_channel(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_graphic())
}

/// Channels whose subscribers see each other.
pub fn is_presence(name: &str) -> bool {
    name.starts_with("presence-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_frames() {
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"a","since":5}"#).unwrap(),
            ClientFrame::Subscribe {
                channel: "a".into(),
                since: Some(5),
                info: None
            }
        );
        assert_eq!(
            parse(r#"{"type":"publish","channel":"a","data":{"x":1}}"#).unwrap(),
            ClientFrame::Publish {
                channel: "a".into(),
                data: json!({"x": 1})
            }
        );
        assert!(matches!(
            parse(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping { data: None }
        ));
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"type":"launch"}"#).is_err());
        assert!(parse(r#"{"type":"subscribe"}"#).is_err());
    }

    #[test]
    fn message_frames_are_json() {
        let m = message("a\"b", 7, 9, r#"{"k":[1,2]}"#);
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        assert_eq!(v["channel"], "a\"b");
        assert_eq!(v["id"], 7);
        assert_eq!(v["data"]["k"][1], 2);
    }

    #[test]
    fn channel_names() {
        assert!(valid_channel("chat-1"));
        assert!(!valid_channel(""));
        assert!(!valid_channel("with space"));
        assert!(!valid_channel(&"x".repeat(129)));
        assert!(is_presence("presence-room"));
        assert!(!is_presence("room"));
    }
}
