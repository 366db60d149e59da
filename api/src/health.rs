//! Liveness and readiness for load balancers and supervisors. `/healthz`
//! answers `200` while the process serves HTTP at all. `/readyz` answers
//! `200` only while the node takes requests: `503` with the cause while it
//! starts (verifying the log, catching the read models up), while it stops,
//! and while its storage cannot be written.

use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// Where the node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Starting: what it is doing.
    Starting(String),
    /// Taking requests.
    Ready,
    /// Shutting down.
    Stopping,
}

/// The node's status, shared by the startup server, the router and the
/// shutdown path.
#[derive(Debug)]
pub struct Health(RwLock<Status>);

impl Default for Health {
    fn default() -> Self {
        Self(RwLock::new(Status::Starting(
            "opening the data directory".into(),
        )))
    }
}

impl Health {
    /// Moves the node to `status`, and says so in the log.
    pub fn set(&self, status: Status) {
        tracing::info!(?status, "readiness");
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = status;
    }

    /// The status now.
    pub fn status(&self) -> Status {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Why the node does not take requests, or `None` when it does.
    pub fn unready(&self) -> Option<String> {
        match self.status() {
            Status::Ready => None,
            Status::Starting(doing) => Some(format!("starting: {doing}")),
            Status::Stopping => Some("shutting down".into()),
        }
    }
}

/// `503 Service Unavailable` with the cause, in the management error shape,
/// and `Retry-After`.
pub fn unavailable(cause: &str) -> Response {
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"code": "UNAVAILABLE", "message": cause, "field": null})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<Arc<Health>>) -> Response {
    match health.unready() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(cause) => unavailable(&cause),
    }
}

/// `/healthz` and `/readyz`.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// What the node serves while it starts: health, and `503` with the cause
/// for everything else.
pub fn starting_router(health: Arc<Health>) -> Router {
    let fallback = health.clone();
    router(health).fallback(move || {
        let health = fallback.clone();
        async move { unavailable(&health.unready().unwrap_or_else(|| "starting".into())) }
    })
}
