//! The control protocol's encoding: tarpc messages as CBOR (ciborium), in
//! length-delimited frames on a Unix socket. Both sides get their transport
//! from [`transport`], so there is one way to speak it.
//!
//! Why CBOR: it is self-describing (fields travel with their names), so a
//! field one side does not know is skipped and a field it misses takes its
//! `#[serde(default)]`: a newer faztctl and an older faztd of the same
//! protocol version work together (see the rules in `service.rs`). It keeps
//! byte buffers as byte strings (`serde_bytes` on `Chunk::data`), so uploads
//! cost no more than with a binary format. pueue moved to CBOR for the same
//! reasons.

use std::io;
use std::marker::PhantomData;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tarpc::serde_transport::Transport;
use tarpc::tokio_serde::{Deserializer, Serializer};
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tokio::io::{AsyncRead, AsyncWrite};

/// Encodes `SinkItem`s and decodes `Item`s as CBOR. (The phantom types are
/// functions so the codec is `Send`/`Sync` whatever the items are.)
pub struct Cbor<Item, SinkItem> {
    _types: PhantomData<Direction<Item, SinkItem>>,
}

type Direction<Item, SinkItem> = (fn() -> Item, fn(SinkItem));

impl<Item, SinkItem> Default for Cbor<Item, SinkItem> {
    fn default() -> Self {
        Cbor {
            _types: PhantomData,
        }
    }
}

impl<Item, SinkItem: Serialize> Serializer<SinkItem> for Cbor<Item, SinkItem> {
    type Error = io::Error;

    fn serialize(self: Pin<&mut Self>, item: &SinkItem) -> Result<Bytes, io::Error> {
        let mut out = Vec::new();
        ciborium::into_writer(item, &mut out).map_err(io::Error::other)?;
        Ok(out.into())
    }
}

impl<Item: for<'de> Deserialize<'de>, SinkItem> Deserializer<Item> for Cbor<Item, SinkItem> {
    type Error = io::Error;

    fn deserialize(self: Pin<&mut Self>, src: &BytesMut) -> Result<Item, io::Error> {
        ciborium::from_reader(&src[..]).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a control message could not be read: {e}"),
            )
        })
    }
}

/// The framed CBOR transport over `stream`, for either side: the daemon
/// (`Item` = requests, `SinkItem` = responses) or the client (the reverse).
pub fn transport<S, Item, SinkItem>(stream: S) -> Transport<S, Item, SinkItem, Cbor<Item, SinkItem>>
where
    S: AsyncRead + AsyncWrite,
    Item: for<'de> Deserialize<'de>,
    SinkItem: Serialize,
{
    let mut codec = LengthDelimitedCodec::builder();
    codec.max_frame_length(crate::MAX_FRAME_BYTES);
    tarpc::serde_transport::new(codec.new_framed(stream), Cbor::default())
}

/// CBOR bytes of `value`, as they travel (for tests and tools).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("serialising to memory");
    out
}

/// `T` from CBOR bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> io::Result<T> {
    ciborium::from_reader(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DaemonStatus, Hello};

    /// A newer peer's struct: everything `Hello` has, and more.
    #[derive(Serialize)]
    struct NewerHello {
        program: String,
        version: String,
        protocol: u32,
        features: Vec<String>,
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let newer = NewerHello {
            program: "faztctl".into(),
            version: "9.9".into(),
            protocol: crate::PROTOCOL_VERSION,
            features: vec!["preview".into()],
        };
        let hello: Hello = decode(&encode(&newer)).unwrap();
        assert_eq!(hello.program, "faztctl");
        assert_eq!(hello.protocol, crate::PROTOCOL_VERSION);
    }

    #[test]
    fn optional_fields_may_be_missing() {
        // An older daemon's status, without the fields added since.
        #[derive(Serialize)]
        struct OlderStatus {
            version: String,
            commit: String,
            protocol: u32,
            pid: u32,
            uptime_secs: u64,
            data_path: String,
            data_bytes: u64,
            socket_path: String,
            domain: String,
            domain_source: String,
            listen: String,
            sites: u64,
            health: String,
        }
        let older = OlderStatus {
            version: "0.1.0".into(),
            commit: "abc".into(),
            protocol: crate::PROTOCOL_VERSION,
            pid: 7,
            uptime_secs: 1,
            data_path: "/d".into(),
            data_bytes: 0,
            socket_path: "/s".into(),
            domain: "localhost".into(),
            domain_source: "detected".into(),
            listen: "127.0.0.1:8080".into(),
            sites: 2,
            health: "ok".into(),
        };
        let status: DaemonStatus = decode(&encode(&older)).unwrap();
        assert_eq!(status.sites, 2);
        assert_eq!(status.domain_warning, None);
        assert_eq!(status.realtime_connections, 0);
    }

    /// A domain from a faztd without HTTPS has no certificate; one from a
    /// later faztd may say more of its certificate than this build knows.
    #[test]
    fn a_domains_certificate_may_be_missing_or_say_more() {
        #[derive(Serialize)]
        struct WithoutHttps {
            domain: String,
            site: String,
            added_at: u64,
            url: String,
        }
        let plain = WithoutHttps {
            domain: "example.org".into(),
            site: "blog".into(),
            added_at: 1,
            url: "http://example.org/".into(),
        };
        let info: crate::DomainInfo = decode(&encode(&plain)).unwrap();
        assert!(info.certificate.is_none());

        #[derive(Serialize)]
        struct LaterCertificate {
            name: String,
            valid_until: u64,
            issuer: String,
        }
        #[derive(Serialize)]
        struct WithHttps {
            domain: String,
            site: String,
            added_at: u64,
            url: String,
            certificate: LaterCertificate,
        }
        let later = WithHttps {
            domain: "example.org".into(),
            site: "blog".into(),
            added_at: 1,
            url: "https://example.org/".into(),
            certificate: LaterCertificate {
                name: "example.org".into(),
                valid_until: 99,
                issuer: "Pebble".into(),
            },
        };
        let info: crate::DomainInfo = decode(&encode(&later)).unwrap();
        let cert = info.certificate.expect("a certificate");
        assert_eq!((cert.valid_until, cert.renew_at), (Some(99), None));
    }

    #[test]
    fn chunks_travel_as_byte_strings() {
        let chunk = crate::Chunk {
            hash: crate::BlobHash([1; 32]),
            offset: 0,
            data: vec![0xab; 1000],
        };
        let bytes = encode(&chunk);
        // An array of numbers would take ~2 bytes per element.
        assert!(bytes.len() < 1000 + 200, "{} bytes", bytes.len());
        let back: crate::Chunk = decode(&bytes).unwrap();
        assert_eq!(back.data, chunk.data);
    }
}
