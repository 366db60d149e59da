//! Berth's HTTP layer. [`router`] builds the whole service from its state,
//! so tests and the binary serve exactly the same thing.

pub mod access;
pub mod auth;
pub mod checkpointer;
pub mod clock;
pub mod collector;
pub mod endpoint;
pub mod error;
pub mod failures;
mod fresh;
pub mod health;
mod manage;
pub mod metrics;
pub mod pulls;
mod registry;
pub mod request;
pub mod state;
mod token_service;

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use uuid::Uuid;

pub use error::ApiError;
pub use manage::settle_uploads;
pub use request::RequestId;
pub use state::{AppState, Parts};

/// The whole service, except `/metrics` ([`metrics::router`]), which the
/// binary serves here or on a listener of its own. `pages` are the
/// console's, which is built on this crate: they are logged and measured
/// like every other route.
pub fn router(state: AppState, pages: Router) -> Router {
    Router::new()
        .route("/v2/token", axum::routing::get(token_service::token))
        .fallback(registry::dispatch)
        .with_state(state.clone())
        .merge(management(state.clone()))
        .merge(pages)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            fresh::catch_up,
        ))
        .merge(health::router(state.health.clone()))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::measure,
        ))
        .layer(middleware::from_fn(access_log))
}

/// The management API alone, under `/v2/manage`: what the console calls
/// in-process, with the browser's own credentials, so that every rule and
/// every refusal it shows is the API's.
pub fn management(state: AppState) -> Router {
    Router::new()
        .nest("/v2/manage", manage::router())
        .with_state(state)
}

/// One line per request: method, path, status, duration, request id.
/// Also gives HTTP/2 requests their `Host`.
async fn access_log(mut req: Request, next: Next) -> Response {
    // HTTP/2 carries the host in the URI's authority, not in `Host`: every
    // handler that derives addresses from `Host` sees it either way.
    if !req.headers().contains_key(axum::http::header::HOST) {
        let authority = req
            .uri()
            .authority()
            .and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok());
        if let Some(host) = authority {
            req.headers_mut().insert(axum::http::header::HOST, host);
        }
    }
    let id = Uuid::new_v4();
    req.extensions_mut().insert(RequestId(id));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut response = next.run(req).await;
    let micros = started.elapsed().as_micros();
    tracing::info!(
        target: "berth::access",
        %method,
        %path,
        status = response.status().as_u16(),
        micros,
        request_id = %id,
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("X-Request-Id", v);
    }
    response
}
