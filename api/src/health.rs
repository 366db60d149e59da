//! Liveness and readiness for load balancers and supervisors. `/healthz`
//! answers `200` while the process serves HTTP at all. `/readyz` answers
//! `200` only while the node takes requests: `503` with the cause while it
//! starts (verifying the log, catching the read models up), while it stops,
//! while its disk is too full to take uploads, and once its log's storage
//! has failed.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use berth_store::space::Space;
use berth_store::WriterObserver;
use serde_json::json;

use crate::metrics::Metrics;

/// Where the node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Starting: what it is doing.
    Starting(String),
    /// Taking requests.
    Ready,
    /// Shutting down.
    Stopping,
    /// The log's storage failed: the node stops, for its supervisor to
    /// restart it.
    Failed(String),
}

/// The node's status, shared by the startup server, the router and the
/// shutdown path, and the free-space guard it reports on.
pub struct Health {
    status: RwLock<Status>,
    space: OnceLock<Space>,
    failed: tokio::sync::Notify,
    probes: OnceLock<Vec<Arc<dyn Probe>>>,
}

/// A service the node depends on and that can fail apart from it (the
/// shared log's database, the object store): readiness asks each one and
/// reports each by name.
pub trait Probe: Send + Sync + 'static {
    /// Its name in the readiness answer.
    fn name(&self) -> &'static str;
    /// Whether it answers now; why not, if not.
    fn check(&self) -> futures_util::future::BoxFuture<'_, Result<(), String>>;
}

/// How long readiness waits for one dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self {
            status: RwLock::new(Status::Starting("opening the data directory".into())),
            space: OnceLock::new(),
            failed: tokio::sync::Notify::new(),
            probes: OnceLock::new(),
        }
    }
}

impl Health {
    /// Moves the node to `status`, and says so in the log. A failure stays.
    pub fn set(&self, status: Status) {
        tracing::info!(?status, "readiness");
        let mut now = self
            .status
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(*now, Status::Failed(_)) {
            return;
        }
        if matches!(status, Status::Failed(_)) {
            // One waiter (the serve loop); a permit if it is not waiting yet.
            self.failed.notify_one();
        }
        *now = status;
    }

    /// Reports these dependencies in readiness too, each by name.
    pub fn watch_dependencies(&self, probes: Vec<Arc<dyn Probe>>) {
        let _ = self.probes.set(probes);
    }

    /// Each dependency's name and state (`ok`, or why not), asked at once.
    pub async fn dependencies(&self) -> Vec<(&'static str, Result<(), String>)> {
        let probes = self.probes.get().map(Vec::as_slice).unwrap_or_default();
        futures_util::future::join_all(probes.iter().map(|p| async move {
            let state = match tokio::time::timeout(PROBE_TIMEOUT, p.check()).await {
                Ok(state) => state,
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            (p.name(), state)
        }))
        .await
    }

    /// Reports the data directory's free space in readiness too.
    pub fn watch_space(&self, space: Space) {
        let _ = self.space.set(space);
    }

    /// Completes when the log's storage has failed: the serve loop then
    /// shuts down.
    pub async fn failure(&self) {
        if !matches!(self.status(), Status::Failed(_)) {
            self.failed.notified().await;
        }
    }

    /// The status now.
    pub fn status(&self) -> Status {
        self.status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Why the node does not take requests, or `None` when it does: also
    /// while the disk is too full to take uploads.
    pub fn unready(&self) -> Option<String> {
        match self.status() {
            Status::Ready => self
                .space
                .get()
                .and_then(|s| s.check_upload().err())
                .map(|e| e.to_string()),
            Status::Starting(doing) => Some(format!("starting: {doing}")),
            Status::Stopping => Some("shutting down".into()),
            Status::Failed(cause) => Some(format!(
                "the event log cannot be written ({cause}); the node is restarting"
            )),
        }
    }
}

/// Hears the writer: its batches go to the metrics, its failure to
/// readiness (and so to the serve loop, which stops the node).
pub struct WriterWatch {
    /// Where batches are counted.
    pub metrics: Arc<Metrics>,
    /// Where the failure is reported.
    pub health: Arc<Health>,
}

impl WriterObserver for WriterWatch {
    fn batch_committed(&self, commands: usize, events: u64, commit: Duration) {
        self.metrics.batch_committed(commands, events, commit);
    }

    fn writer_failed(&self, cause: &str) {
        self.health.set(Status::Failed(cause.to_owned()));
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

/// `ready`, then one line per dependency; `503` naming each dependency's
/// state when one of them fails.
async fn readyz(State(health): State<Arc<Health>>) -> Response {
    if let Some(cause) = health.unready() {
        return unavailable(&cause);
    }
    let dependencies = health.dependencies().await;
    if dependencies.iter().all(|(_, state)| state.is_ok()) {
        let mut body = String::from("ready\n");
        for (name, _) in &dependencies {
            body.push_str(&format!("{name}: ok\n"));
        }
        return (StatusCode::OK, body).into_response();
    }
    let states: Vec<String> = dependencies
        .iter()
        .map(|(name, state)| match state {
            Ok(()) => format!("{name}: ok"),
            Err(why) => format!("{name}: {why}"),
        })
        .collect();
    unavailable(&states.join("; "))
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
