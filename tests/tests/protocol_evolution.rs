//! The control protocol tolerates fields it does not know, both ways, so a
//! newer faztctl and an older faztd of the same protocol version (or the
//! reverse) work together. These tests speak raw CBOR frames to a real
//! faztd on its real socket: requests carrying fields the daemon has never
//! heard of, and answers decoded with fields added or missing.

use std::path::Path;

use ciborium::Value;
use fazt_e2e::daemon::Faztd;
use fazt_proto::{ControlRequest, ControlResponse, DaemonStatus, Hello};
use futures_util::{SinkExt, StreamExt};
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tarpc::{ClientMessage, Request, Response};

type Frames = Framed<tokio::net::UnixStream, LengthDelimitedCodec>;

async fn connect(socket: &Path) -> Frames {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    Framed::new(stream, LengthDelimitedCodec::new())
}

/// `request` as the CBOR value tarpc would send, for editing.
fn as_value(id: u64, request: ControlRequest) -> Value {
    let mut context = tarpc::context::current();
    context.deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let message = ClientMessage::Request(Request {
        context,
        id,
        message: request,
    });
    fazt_proto::wire::decode(&fazt_proto::wire::encode(&message)).unwrap()
}

/// Adds `key: value` to the first map (depth first) that has a key `anchor`.
fn add_field(value: &mut Value, anchor: &str, key: &str, extra: Value) -> bool {
    match value {
        Value::Map(pairs) => {
            if pairs.iter().any(|(k, _)| k.as_text() == Some(anchor)) {
                pairs.push((Value::Text(key.to_string()), extra));
                return true;
            }
            pairs
                .iter_mut()
                .any(|(_, v)| add_field(v, anchor, key, extra.clone()))
        }
        Value::Array(items) => items
            .iter_mut()
            .any(|v| add_field(v, anchor, key, extra.clone())),
        _ => false,
    }
}

async fn send(frames: &mut Frames, value: &Value) {
    frames
        .send(bytes::Bytes::from(fazt_proto::wire::encode(value)))
        .await
        .unwrap();
}

/// The next answer, as a raw value.
async fn receive(frames: &mut Frames) -> Value {
    let frame = frames
        .next()
        .await
        .expect("the daemon answers (it did not drop the connection)")
        .unwrap();
    fazt_proto::wire::decode(&frame).unwrap()
}

fn hello() -> ControlRequest {
    ControlRequest::Hello {
        hello: Hello {
            program: "faztctl".into(),
            version: "9.9.9".into(),
            protocol: fazt_proto::PROTOCOL_VERSION,
        },
    }
}

#[test]
fn the_daemon_ignores_request_fields_it_does_not_know() {
    let d = Faztd::start();
    fazt_e2e::runtime().block_on(async {
        let mut frames = connect(&d.socket()).await;

        // A newer client's hello: an extra field in Hello, and an extra argument.
        let mut greeting = as_value(1, hello());
        assert!(add_field(
            &mut greeting,
            "program",
            "features",
            Value::Array(vec![Value::Text("preview".into())])
        ));
        assert!(add_field(
            &mut greeting,
            "hello",
            "client_id",
            Value::Integer(42.into())
        ));
        send(&mut frames, &greeting).await;
        let answer: Response<ControlResponse> =
            fazt_proto::wire::decode(&fazt_proto::wire::encode(&receive(&mut frames).await))
                .unwrap();
        assert_eq!(answer.request_id, 1);
        match answer.message {
            Ok(ControlResponse::Hello(Ok(welcome))) => {
                assert_eq!(welcome.protocol, fazt_proto::PROTOCOL_VERSION)
            }
            other => panic!("hello was not welcomed: {other:?}"),
        }

        // A call with an argument this daemon has no idea of.
        let mut history = as_value(
            2,
            ControlRequest::History {
                site: "demo".into(),
            },
        );
        assert!(add_field(
            &mut history,
            "site",
            "include_files",
            Value::Bool(true)
        ));
        send(&mut frames, &history).await;
        let answer: Response<ControlResponse> =
            fazt_proto::wire::decode(&fazt_proto::wire::encode(&receive(&mut frames).await))
                .unwrap();
        match answer.message {
            Ok(ControlResponse::History(Ok(versions))) => {
                assert_eq!(versions.len(), 1, "the seeded demo has one version");
                assert!(versions[0].live);
            }
            other => panic!("history was not answered: {other:?}"),
        }
    });
}

#[test]
fn a_client_reads_answers_with_fields_added_or_missing() {
    let d = Faztd::start();
    fazt_e2e::runtime().block_on(async {
        let mut frames = connect(&d.socket()).await;
        send(&mut frames, &as_value(1, hello())).await;
        receive(&mut frames).await;
        send(&mut frames, &as_value(2, ControlRequest::Status {})).await;
        let mut answer = receive(&mut frames).await;

        // As a newer daemon would answer: a field this client does not know.
        assert!(add_field(
            &mut answer,
            "uptime_secs",
            "cluster_peers",
            Value::Integer(3.into())
        ));
        let newer: Response<ControlResponse> =
            fazt_proto::wire::decode(&fazt_proto::wire::encode(&answer)).unwrap();
        let status = match newer.message {
            Ok(ControlResponse::Status(Ok(status))) => status,
            other => panic!("status was not decoded: {other:?}"),
        };
        assert_eq!(status.pid, d.pid());
        assert_eq!(status.protocol, fazt_proto::PROTOCOL_VERSION);

        // As an older daemon would answer: without the fields added since.
        let mut older =
            fazt_proto::wire::decode::<Value>(&fazt_proto::wire::encode(&status)).unwrap();
        if let Value::Map(pairs) = &mut older {
            pairs.retain(|(k, _)| {
                !matches!(
                    k.as_text(),
                    Some("realtime_connections" | "realtime_channels" | "domain_warning")
                )
            });
        }
        let decoded: DaemonStatus =
            fazt_proto::wire::decode(&fazt_proto::wire::encode(&older)).unwrap();
        assert_eq!(decoded.realtime_connections, 0);
        assert_eq!(decoded.domain_warning, None);
        assert_eq!(decoded.sites, status.sites);
    });
}

#[test]
fn requests_before_hello_are_refused_by_the_gate() {
    let d = Faztd::start();
    fazt_e2e::runtime().block_on(async {
        let mut frames = connect(&d.socket()).await;
        send(&mut frames, &as_value(1, ControlRequest::Sites {})).await;
        let answer: Response<ControlResponse> =
            fazt_proto::wire::decode(&fazt_proto::wire::encode(&receive(&mut frames).await))
                .unwrap();
        assert!(
            matches!(
                answer.message,
                Ok(ControlResponse::Sites(Err(
                    fazt_proto::RpcError::NoHandshake
                )))
            ),
            "{:?}",
            answer.message
        );
    });
}

/// Renames the method of a request value (the one key of its `message`
/// map), as a newer client's method this daemon has never heard of.
fn rename_method(value: &mut Value, to: &str) -> bool {
    match value {
        Value::Map(pairs) => {
            for (key, inner) in pairs.iter_mut() {
                if key.as_text() == Some("message") {
                    if let Value::Map(method) = inner {
                        if let Some((name, _)) = method.first_mut() {
                            *name = Value::Text(to.to_string());
                            return true;
                        }
                    }
                }
                if rename_method(inner, to) {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|v| rename_method(v, to)),
        _ => false,
    }
}

/// What an older daemon does with a method added since it was built (e.g.
/// `domain_add`): it cannot read the request, and hangs up without an
/// answer. faztctl words that as "upgrade faztd" for such methods
/// (`client::answer_added`); this pins the behaviour it relies on.
#[test]
fn a_method_the_daemon_does_not_know_closes_the_connection() {
    let d = Faztd::start();
    fazt_e2e::runtime().block_on(async {
        let mut frames = connect(&d.socket()).await;
        send(&mut frames, &as_value(1, hello())).await;
        receive(&mut frames).await;
        let mut request = as_value(2, ControlRequest::Sites {});
        assert!(rename_method(&mut request, "ClusterJoin"));
        send(&mut frames, &request).await;
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), frames.next())
            .await
            .expect("the daemon hangs up at once");
        assert!(
            answer.is_none(),
            "no answer, the connection closed: {answer:?}"
        );
        // The daemon itself is fine.
        assert!(d.ctl(&["sites"]).ok().stdout.contains("demo"));
    });
}
