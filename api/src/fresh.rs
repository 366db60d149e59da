//! Read-your-writes through a load balancer: a node of a cluster may not
//! yet have applied what another node just committed. Before it refuses a
//! caller (not found, not allowed, unknown credentials) it catches up to
//! the shared log's head and decides again; decisions from credentials and
//! permissions that are not a refusal (the token service, every write but a
//! blob upload's bytes) catch up first. A node on its own log does nothing
//! here.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Whether a request carries blob bytes: the hot path of a push, whose
/// session lives in the shared database already.
fn carries_blob_bytes(req: &Request) -> bool {
    req.uri().path().contains("/blobs/uploads/")
}

/// Whether an answer refuses the caller in a way that another node's
/// fresh write could turn.
fn refuses(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    )
}

/// The middleware; see the module's comment.
pub async fn catch_up(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !app.engine.is_shared() {
        return next.run(req).await;
    }
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    let first = req.uri().path() == "/v2/token" || !(reads || carries_blob_bytes(&req));
    if first {
        if let Err(e) = app.engine.sync().await {
            return ApiError::from(e).into_response();
        }
        return next.run(req).await;
    }
    if !reads {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let again = parts.clone();
    let answer = next.clone().run(Request::from_parts(parts, body)).await;
    if !refuses(answer.status()) {
        return answer;
    }
    if let Err(e) = app.engine.sync().await {
        tracing::warn!(error = %e, "could not catch up before a refusal");
        return answer;
    }
    next.run(Request::from_parts(again, Body::empty())).await
}
