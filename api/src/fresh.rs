//! Read-your-writes through a load balancer: a node of a cluster may not
//! yet have applied what another node just committed. Before it refuses a
//! caller (not found, not allowed, unknown credentials) it catches up to
//! the shared log's head and decides again: a read, or a registry write
//! whose body is small enough to keep for a second run. The token service,
//! whose grants from stale permissions would be smaller but not a refusal,
//! and every other write catch up first; a blob upload's bytes do neither.
//! A node on its own log does nothing here.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_domain::limits::MAX_MANIFEST_BYTES;
use bytes::Bytes;

use crate::error::ApiError;
use crate::state::AppState;

/// Whether a request carries blob bytes: the hot path of a push, whose
/// session lives in the shared database already.
fn carries_blob_bytes(req: &Request) -> bool {
    req.uri().path().contains("/blobs/uploads/")
}

/// Whether a request is a registry write (a manifest pushed or deleted, a
/// blob unlinked): the domain decides it under the write lock, after the
/// writer caught up, so only its authorization reads this node's models.
/// A management write may read them further (a collection's marking).
fn registry_write(req: &Request) -> bool {
    let path = req.uri().path();
    path.starts_with("/v2/")
        && !path.starts_with("/v2/manage/")
        && (path.contains("/manifests/") || path.contains("/blobs/"))
}

/// Whether an answer refuses the caller in a way that another node's
/// fresh write could turn.
fn refuses(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    )
}

/// The largest body a write may have and still be run a second time after
/// a refusal: a manifest's limit. A larger one catches up first.
const KEPT_BODY: usize = MAX_MANIFEST_BYTES;

/// The body's length when it is known before it is read: from
/// `Content-Length`, or none at all.
fn known_length(req: &Request) -> Option<usize> {
    let headers = req.headers();
    match headers.get(header::CONTENT_LENGTH) {
        Some(length) => length.to_str().ok()?.parse().ok(),
        None => (!headers.contains_key(header::TRANSFER_ENCODING)).then_some(0),
    }
}

/// The middleware; see the module's comment.
pub async fn catch_up(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !app.engine.is_shared() {
        return next.run(req).await;
    }
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reads && carries_blob_bytes(&req) {
        return next.run(req).await;
    }
    let retried =
        reads || (registry_write(&req) && known_length(&req).is_some_and(|n| n <= KEPT_BODY));
    if req.uri().path() == "/v2/token" || !retried {
        if let Err(e) = app.engine.sync().await {
            return ApiError::from(e).into_response();
        }
        return next.run(req).await;
    }
    // A refusal changed nothing (every command is all or nothing), so the
    // request may run again once this node has caught up.
    let (parts, body) = req.into_parts();
    let body = match reads {
        true => Bytes::new(),
        false => match axum::body::to_bytes(body, KEPT_BODY).await {
            Ok(bytes) => bytes,
            Err(e) => {
                return ApiError::BadRequest(format!("the request body could not be read: {e}"))
                    .into_response()
            }
        },
    };
    let again = parts.clone();
    let answer = next
        .clone()
        .run(Request::from_parts(parts, Body::from(body.clone())))
        .await;
    if !refuses(answer.status()) {
        return answer;
    }
    if let Err(e) = app.engine.sync().await {
        tracing::warn!(error = %e, "could not catch up before a refusal");
        return answer;
    }
    next.run(Request::from_parts(again, Body::from(body))).await
}
