//! The envelope every event is written in, and the hash chain that links them.
//!
//! Stored value of sequence `n`: `hash(n) ‖ postcard(envelope)`, where
//! `hash(n) = SHA-256(hash(n-1) ‖ n as u64 big-endian ‖ postcard(envelope))`.
//! Keeping `hash(n)` beside the bytes lets a verifier name the altered event
//! itself, not the one after it.

use berth_domain::{Actor, Event};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::error::StoreError;

/// The envelope and payload encoding in force. Older versions are upcast on
/// read; a version newer than this stops startup rather than being misread.
///
/// - 1: the first envelope.
/// - 2: the actor also carries the credential id (access key or temporary
///   login) and the user agent. Payloads are encoded as in 1.
/// - 3: the envelope ends with the `Idempotency-Key` of the request that
///   caused the event, if it carried one. Payloads are encoded as in 1.
pub const SCHEMA_VERSION: u16 = 3;

/// How long a request's `Idempotency-Key` is remembered: a retry within
/// this time gets the first request's answer.
pub const KEY_MEMORY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Length of a chain hash.
pub const HASH_LEN: usize = 32;

/// A chain hash.
pub type Hash = [u8; HASH_LEN];

/// The hash before the first event.
pub const GENESIS: Hash = [0; HASH_LEN];

/// Metadata around one event, as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Encoding version of `payload`.
    pub schema: u16,
    /// Event type name, readable without decoding the payload.
    pub event_type: String,
    /// Aggregate stream the event belongs to.
    pub stream: Uuid,
    /// Position of the event in its stream, from 1.
    pub stream_version: u64,
    /// When the engine accepted it.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub occurred_at: DateTime<Utc>,
    /// Who caused it and from where.
    pub actor: Actor,
    /// The request it came from, to correlate with access logs.
    pub request_id: Uuid,
    /// Chain hash of the previous event.
    pub prev_hash: Hash,
    /// The event, postcard-encoded under `schema`.
    #[serde(with = "payload_bytes")]
    pub payload: Vec<u8>,
    /// The key of the request that caused this event, on the first event
    /// of that request only.
    pub keyed: Option<Keyed>,
}

/// A request that carried an `Idempotency-Key`, as the log remembers it:
/// enough to know a retry of it and to answer the retry as the request was
/// answered, from the log alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyed {
    /// The key the client chose.
    pub key: String,
    /// SHA-256 of the request's method, path and body: the same key on
    /// another request is refused, not replayed.
    pub fingerprint: Hash,
    /// The answer, as the layer that made it encoded it; opaque here.
    #[serde(with = "payload_bytes")]
    pub answer: Vec<u8>,
}

/// The payload as one byte string rather than a sequence of bytes: the
/// same postcard encoding (a length, then the bytes), read in one copy
/// instead of byte by byte.
mod payload_bytes {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// The actor as schema 1 wrote it.
#[derive(Deserialize)]
struct ActorV1 {
    account: Option<String>,
    user: Option<String>,
    credential: berth_domain::CredentialKind,
    client_addr: Option<String>,
}

impl From<ActorV1> for Actor {
    fn from(v1: ActorV1) -> Self {
        Self {
            account: v1.account,
            user: v1.user,
            credential: v1.credential,
            client_addr: v1.client_addr,
            credential_id: None,
            user_agent: None,
        }
    }
}

/// The envelope as schemas 1 (with an [`ActorV1`]) and 2 (with an
/// [`Actor`]) wrote it, without a request key; read, never written.
#[derive(Deserialize)]
struct EnvelopeBefore3<A> {
    schema: u16,
    event_type: String,
    stream: Uuid,
    stream_version: u64,
    #[serde(with = "chrono::serde::ts_microseconds")]
    occurred_at: DateTime<Utc>,
    actor: A,
    request_id: Uuid,
    prev_hash: Hash,
    #[serde(with = "payload_bytes")]
    payload: Vec<u8>,
}

impl<A: Into<Actor>> From<EnvelopeBefore3<A>> for Envelope {
    fn from(old: EnvelopeBefore3<A>) -> Self {
        Self {
            schema: old.schema,
            event_type: old.event_type,
            stream: old.stream,
            stream_version: old.stream_version,
            occurred_at: old.occurred_at,
            actor: old.actor.into(),
            request_id: old.request_id,
            prev_hash: old.prev_hash,
            payload: old.payload,
            keyed: None,
        }
    }
}

/// Decodes stored envelope bytes of any known schema into the current
/// shape. The schema is the first field, read before the rest.
fn decode_envelope(encoded: &[u8]) -> Result<Envelope, String> {
    let (schema, _) =
        postcard::take_from_bytes::<u16>(encoded).map_err(|e| format!("no schema version: {e}"))?;
    let decoded = match schema {
        1 => postcard::from_bytes::<EnvelopeBefore3<ActorV1>>(encoded).map(Envelope::from),
        2 => postcard::from_bytes::<EnvelopeBefore3<Actor>>(encoded).map(Envelope::from),
        SCHEMA_VERSION => postcard::from_bytes::<Envelope>(encoded),
        other => {
            return Err(format!(
                "schema version {other} is not known to this build (newest known: {SCHEMA_VERSION})"
            ))
        }
    };
    decoded.map_err(|e| format!("envelope does not decode: {e}"))
}

/// An event as it sits in the log: its sequence number, envelope and
/// decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Global sequence number, from 1.
    pub seq: u64,
    /// Envelope metadata.
    pub envelope: Envelope,
    /// The decoded event.
    pub event: Event,
}

impl Recorded {
    /// The event as auditors read it (`berth log show`, timelines):
    /// sequence, time, type, stream, actor, request id, the request's
    /// `Idempotency-Key` and the event.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "occurred_at": self.envelope.occurred_at.to_rfc3339(),
            "type": self.envelope.event_type,
            "stream": self.envelope.stream,
            "stream_version": self.envelope.stream_version,
            "actor": self.envelope.actor,
            "request_id": self.envelope.request_id,
            "idempotency_key": self.envelope.keyed.as_ref().map(|k| &k.key),
            "event": self.payload_json(),
        })
    }

    /// The event's fields, with password and login verifiers redacted:
    /// what an auditor reads never helps anyone log in.
    pub fn payload_json(&self) -> serde_json::Value {
        let mut event = serde_json::to_value(&self.event).unwrap_or_default();
        if let Some(body) = event
            .as_object_mut()
            .and_then(|o| o.values_mut().next())
            .and_then(serde_json::Value::as_object_mut)
        {
            for secret in ["password", "verifier"] {
                if let Some(v) = body.get_mut(secret) {
                    *v = serde_json::Value::from("<redacted>");
                }
            }
        }
        event
    }
}

/// Computes `hash(n)` from the previous hash and the encoded envelope.
pub fn chain_hash(prev: &Hash, seq: u64, encoded: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(encoded);
    h.finalize().into()
}

/// Encodes an event's payload under the current schema.
pub fn encode_payload(event: &Event) -> Result<Vec<u8>, StoreError> {
    Ok(postcard::to_stdvec(event)?)
}

/// Encodes an envelope for storage, returning the stored value and its hash.
pub fn seal(seq: u64, envelope: &Envelope) -> Result<(Vec<u8>, Hash), StoreError> {
    let encoded = postcard::to_stdvec(envelope)?;
    let hash = chain_hash(&envelope.prev_hash, seq, &encoded);
    let mut value = Vec::with_capacity(HASH_LEN + encoded.len());
    value.extend_from_slice(&hash);
    value.extend_from_slice(&encoded);
    Ok((value, hash))
}

/// Decodes a stored value, checking its own hash. The caller checks the
/// link to the previous event.
pub fn open(seq: u64, value: &[u8]) -> Result<(Recorded, Hash), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { seq, reason };
    if value.len() < HASH_LEN {
        return Err(corrupt("value is shorter than its hash".into()));
    }
    let (stored_hash, encoded) = value.split_at(HASH_LEN);
    let envelope = decode_envelope(encoded).map_err(corrupt)?;
    let hash = chain_hash(&envelope.prev_hash, seq, encoded);
    if hash.as_slice() != stored_hash {
        return Err(corrupt("content does not match its hash".into()));
    }
    let event = decode_payload(&envelope).map_err(corrupt)?;
    Ok((
        Recorded {
            seq,
            envelope,
            event,
        },
        hash,
    ))
}

fn decode_payload(envelope: &Envelope) -> Result<Event, String> {
    match envelope.schema {
        // Payloads are encoded the same way in every schema.
        1..=SCHEMA_VERSION => {
            let event: Event = postcard::from_bytes(&envelope.payload)
                .map_err(|e| format!("{} payload does not decode: {e}", envelope.event_type))?;
            if event.kind() != envelope.event_type {
                return Err(format!(
                    "envelope says {} but payload is {}",
                    envelope.event_type,
                    event.kind()
                ));
            }
            Ok(event)
        }
        other => Err(format!(
            "schema version {other} is not known to this build (newest known: {SCHEMA_VERSION})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_domain::OrgName;

    fn envelope(schema: u16) -> Envelope {
        let event = Event::OrgCreated {
            org_id: Uuid::from_u128(1),
            org: OrgName::parse("acme").unwrap(),
            auto: false,
        };
        Envelope {
            schema,
            event_type: event.kind().into(),
            stream: event.stream_id(),
            stream_version: 1,
            occurred_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
            actor: Actor::system(),
            request_id: Uuid::from_u128(2),
            prev_hash: GENESIS,
            payload: encode_payload(&event).unwrap(),
            keyed: None,
        }
    }

    #[test]
    fn sealed_values_open_to_the_same_event() {
        let (value, hash) = seal(3, &envelope(SCHEMA_VERSION)).unwrap();
        let (recorded, opened_hash) = open(3, &value).unwrap();
        assert_eq!(recorded.envelope, envelope(SCHEMA_VERSION));
        assert_eq!(opened_hash, hash);
        assert!(
            open(4, &value).is_err(),
            "the sequence number is part of the hash"
        );
    }

    #[test]
    fn an_unknown_schema_version_is_refused_by_sequence_number() {
        let (value, _) = seal(9, &envelope(SCHEMA_VERSION + 1)).unwrap();
        match open(9, &value) {
            Err(StoreError::Corrupt { seq: 9, reason }) => {
                let unknown = format!("schema version {} is not known", SCHEMA_VERSION + 1);
                assert!(reason.contains(&unknown), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_payload_of_another_type_is_refused() {
        let mut e = envelope(SCHEMA_VERSION);
        e.event_type = "TagPointed".into();
        let (value, _) = seal(1, &e).unwrap();
        assert!(matches!(
            open(1, &value),
            Err(StoreError::Corrupt { seq: 1, .. })
        ));
    }
}
