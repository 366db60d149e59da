//! `Idempotency-Key` on management writes: a client that did not hear the
//! answer (a timeout, a dropped connection, a `503` saying the outcome is
//! unknown) sends the request again with the same key, and gets the first
//! answer instead of a second change or a `409`.
//!
//! A write's answer is built before its command is submitted and recorded
//! with its first event (docs/decisions.md, "Retrying a management write").
//! A retry is found twice: before the handler runs, so that its own checks
//! (a deleted repository is now unknown) do not answer in the first one's
//! place; and by the writer, so that two retries racing each other are
//! decided once.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_store::envelope::Hash;
use berth_store::{KeyScope, Keyed, StoreError};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{Refusal, MAX_BODY};
use crate::error::ApiError;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on an answer replayed from the log rather than made afresh.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest key: a UUID is 36 characters, and a client's own scheme has room.
pub const MAX_KEY: usize = 255;

/// A request's key and fingerprint. The fingerprint is known before the
/// handler runs for a JSON body; a web upload's is its plan, set by the
/// upload handler once every file is read.
#[derive(Clone)]
pub struct RequestKey {
    /// The key.
    pub key: String,
    fingerprint: Arc<OnceLock<Hash>>,
}

impl RequestKey {
    /// Sets the fingerprint of a request whose body only its handler reads.
    pub fn settle(&self, parts: &[&[u8]]) {
        let _ = self.fingerprint.set(fingerprint_of(parts));
    }

    fn fingerprint(&self) -> Result<Hash, StoreError> {
        self.fingerprint
            .get()
            .copied()
            .ok_or_else(|| StoreError::Task("the request's fingerprint was not taken".into()))
    }
}

/// SHA-256 over length-prefixed parts, so that no two lists of parts
/// collide by where one ends and the next begins.
fn fingerprint_of(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"berth-request-v1");
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

fn invalid(message: String) -> Response {
    Refusal(ApiError::Invalid {
        field: "Idempotency-Key".into(),
        message,
    })
    .into_response()
}

/// Reads the key of a write, checks it, and takes the request's
/// fingerprint: method, path and query, and the body, which is read here
/// (it is at most 256 KiB) and handed on unchanged. A multipart body (a
/// web upload) streams on untouched.
pub async fn take(req: Request, next: Next) -> Response {
    let writes = [Method::POST, Method::PATCH, Method::DELETE];
    let Some(value) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    if !writes.contains(req.method()) {
        return next.run(req).await;
    }
    let key = match value.to_str() {
        Ok(k) if (1..=MAX_KEY).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            return invalid(format!(
                "Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters (a UUID will do)"
            ))
        }
    };
    let request_key = RequestKey {
        key,
        fingerprint: Arc::new(OnceLock::new()),
    };
    let (mut parts, body) = req.into_parts();
    let body = if is_multipart(&parts.headers) {
        body
    } else {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            return Refusal(ApiError::Invalid {
                field: String::new(),
                message: "request body is missing or larger than 256 KiB".into(),
            })
            .into_response();
        };
        let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
        let body = canonical(&bytes);
        request_key.settle(&[parts.method.as_str().as_bytes(), target.as_bytes(), &body]);
        Body::from(bytes)
    };
    parts.extensions.insert(request_key);
    next.run(Request::from_parts(parts, body)).await
}

/// A JSON body as the fingerprint sees it: its keys in order and without
/// white space, so that a client that serialises the same request anew
/// still matches, and without its password fields. The fingerprint is kept
/// in the log, and a fast hash of a known body is a fast guess at the
/// password in it; a retry that changes only a password is therefore
/// replayed, not refused. A body that is not JSON is taken as it is.
fn canonical(body: &[u8]) -> Vec<u8> {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                fields.retain(|name, _| !name.contains("password"));
                fields.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            strip(&mut value);
            value.to_string().into_bytes()
        }
        Err(_) => body.to_vec(),
    }
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/"))
}

/// The first answer to an earlier request with this caller's key, if it
/// is remembered: replayed when the fingerprints agree, refused with
/// `422` when they do not. `None` when the key is new, or when the
/// fingerprint is not known yet (the writer checks again at commit).
pub async fn earlier(
    app: &AppState,
    scope: KeyScope,
    key: &RequestKey,
) -> Result<Option<Response>, Refusal> {
    let Some(fingerprint) = key.fingerprint.get().copied() else {
        return Ok(None);
    };
    let first = app
        .read(move |parts| {
            let now = chrono::Utc::now();
            let Some(seq) = parts.models.request_keys.remembered(&scope, now)? else {
                return Ok(None);
            };
            // A key in a batch not yet durable (its commit may be failing
            // now) is left to the writer, which answers with that batch.
            if seq > parts.engine.durable_seq() {
                return Ok(None);
            }
            Ok(parts.log.get(seq)?.and_then(|r| r.envelope.keyed))
        })
        .await?;
    // After a failed commit, what the database shows may not be durable:
    // the writer answers instead (503), and a restart reads what is.
    if matches!(app.health.status(), crate::health::Status::Failed(_)) {
        return Ok(None);
    }
    match first {
        None => Ok(None),
        Some(first) if first.fingerprint == fingerprint => Ok(Some(replay(&first.answer))),
        Some(first) => Err(Refusal(ApiError::from(StoreError::KeyReused {
            key: first.key,
        }))),
    }
}

/// What a write answers. It is built before the command is submitted, so
/// that it can be recorded with the command's first event and replayed.
pub struct Reply {
    status: StatusCode,
    body: Option<Value>,
    /// What a replay shows instead of `body`, when `body` holds a secret
    /// that is shown once and stored nowhere.
    replayed: Option<Value>,
}

impl Reply {
    /// `201 Created` with a JSON body.
    pub fn created(body: Value) -> Self {
        Self::with(StatusCode::CREATED, body)
    }

    /// `200 OK` with a JSON body.
    pub fn ok(body: Value) -> Self {
        Self::with(StatusCode::OK, body)
    }

    /// `204 No Content`.
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            replayed: None,
        }
    }

    fn with(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            replayed: None,
        }
    }

    /// What a replay answers instead of the body, which holds a secret:
    /// the log never holds one.
    pub fn replayed_as(mut self, body: Value) -> Self {
        self.replayed = Some(body);
        self
    }

    /// The answer as recorded in the log: readable by `berth log show`.
    pub(super) fn recorded(&self, key: &RequestKey) -> Result<Keyed, StoreError> {
        let body = self.replayed.as_ref().or(self.body.as_ref());
        Ok(Keyed {
            key: key.key.clone(),
            fingerprint: key.fingerprint()?,
            answer: json!({ "status": self.status.as_u16(), "body": body })
                .to_string()
                .into_bytes(),
        })
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.body {
            Some(body) => (self.status, axum::Json(body)).into_response(),
            None => self.status.into_response(),
        }
    }
}

/// Answers a retry with the answer the log recorded for the first request.
pub fn replay(answer: &[u8]) -> Response {
    let recorded: Value = serde_json::from_slice(answer).unwrap_or_default();
    let status = recorded["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = match &recorded["body"] {
        Value::Null => status.into_response(),
        body => (status, axum::Json(body.clone())).into_response(),
    };
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_fingerprinted_with_their_boundaries() {
        assert_ne!(
            fingerprint_of(&[b"ab", b"c"]),
            fingerprint_of(&[b"a", b"bc"])
        );
        assert_eq!(fingerprint_of(&[b"a", b"b"]), fingerprint_of(&[b"a", b"b"]));
    }

    #[test]
    fn json_bodies_match_by_content_and_without_passwords() {
        let a = canonical(br#"{"name":"x","admin_password":"one","admin_user":"a"}"#);
        let b =
            canonical(b"{ \"admin_user\": \"a\", \"admin_password\": \"two\", \"name\": \"x\" }");
        assert_eq!(a, b);
        assert_eq!(a, br#"{"admin_user":"a","name":"x"}"#.to_vec());
        assert_ne!(canonical(br#"{"name":"y"}"#), canonical(br#"{"name":"x"}"#));
        assert_eq!(canonical(b"not json"), b"not json".to_vec());
    }

    #[test]
    fn a_recorded_answer_replays_to_the_same_status_and_body() {
        let key = RequestKey {
            key: "k".into(),
            fingerprint: Arc::new(OnceLock::new()),
        };
        key.settle(&[b"POST"]);
        let reply = Reply::created(json!({ "ak": "A", "sk": "S" }))
            .replayed_as(json!({ "ak": "A", "sk": null }));
        let recorded = reply.recorded(&key).unwrap();
        let text = String::from_utf8(recorded.answer.clone()).unwrap();
        assert!(
            !text.contains("\"S\""),
            "the secret is not recorded: {text}"
        );
        let replayed = replay(&recorded.answer);
        assert_eq!(replayed.status(), StatusCode::CREATED);
        assert_eq!(replayed.headers()[REPLAYED], "true");
        let empty = Reply::no_content().recorded(&key).unwrap();
        assert_eq!(replay(&empty.answer).status(), StatusCode::NO_CONTENT);
    }
}
