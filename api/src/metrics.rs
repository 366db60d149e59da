//! Prometheus metrics, in the text format `prometheus-client` writes:
//! request latency by route class and status class, bytes in and out, the
//! writer's batches and commit latency, the log head and the read models'
//! checkpoint, open upload sessions, blob store bytes and objects, garbage
//! collection runs, failed logins and throttled attempts. Served at `/metrics`, on the main
//! listener or on one of its own (`--metrics-listen`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_store::Projector;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// What a request is about, for its metrics.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Class {
    /// Blob reads and deletes.
    blob,
    /// Manifest reads, writes and deletes.
    manifest,
    /// Blob upload sessions.
    upload,
    /// The token service.
    token,
    /// The management API.
    manage,
    /// The console.
    console,
    /// The rest: `/v2/`, the catalog, tag lists, referrers, health.
    other,
}

impl Class {
    /// The class of a request path.
    pub fn of(path: &str) -> Self {
        if path == "/v2/token" {
            Self::token
        } else if path.starts_with("/v2/manage/") || path == "/v2/manage" {
            Self::manage
        } else if path.starts_with("/console") {
            Self::console
        } else if path.contains("/blobs/uploads") {
            Self::upload
        } else if path.starts_with("/v2/") && path.contains("/blobs/") {
            Self::blob
        } else if path.starts_with("/v2/") && path.contains("/manifests/") {
            Self::manifest
        } else {
            Self::other
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    class: Class,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: Class,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SurfaceLabel {
    surface: &'static str,
}

/// Every metric, and the registry that writes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram>,
    bytes_in: Family<ClassLabel, Counter>,
    bytes_out: Family<ClassLabel, Counter>,
    batch_commands: Histogram,
    batch_events: Histogram,
    commit_seconds: Histogram,
    log_head: Gauge,
    checkpoint: Gauge,
    upload_sessions: Gauge,
    blob_bytes: Gauge,
    blob_objects: Gauge,
    login_failures: Family<SurfaceLabel, Counter>,
    throttled: Counter,
    gc_runs: Counter,
    gc_bytes: Counter,
    gc_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("berth");
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 18))
        });
        registry.register(
            "http_request_duration_seconds",
            "Request latency, from the request's arrival to its response headers, by route class and status class",
            requests.clone(),
        );
        let bytes_in = Family::<ClassLabel, Counter>::default();
        registry.register(
            "http_received_bytes",
            "Request body bytes received",
            bytes_in.clone(),
        );
        let bytes_out = Family::<ClassLabel, Counter>::default();
        registry.register(
            "http_sent_bytes",
            "Response body bytes sent",
            bytes_out.clone(),
        );
        let batch_commands = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "writer_batch_commands",
            "Commands per committed writer batch (group commit)",
            batch_commands.clone(),
        );
        let batch_events = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "writer_batch_events",
            "Events appended per committed writer batch",
            batch_events.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register(
            "writer_commit_seconds",
            "Time to write and fsync one writer batch",
            commit_seconds.clone(),
        );
        let log_head = Gauge::default();
        registry.register(
            "log_head_sequence",
            "Sequence number of the newest event",
            log_head.clone(),
        );
        let checkpoint = Gauge::default();
        registry.register(
            "projection_checkpoint_sequence",
            "Sequence number the read models have applied (the head minus this is their lag)",
            checkpoint.clone(),
        );
        let upload_sessions = Gauge::default();
        registry.register(
            "upload_sessions_open",
            "Blob upload sessions held in the upload area",
            upload_sessions.clone(),
        );
        let blob_bytes = Gauge::default();
        registry.register(
            "blob_store_bytes",
            "Bytes in the blob store, as of its last count",
            blob_bytes.clone(),
        );
        let blob_objects = Gauge::default();
        registry.register(
            "blob_store_objects",
            "Blobs in the blob store, as of its last count",
            blob_objects.clone(),
        );
        let login_failures = Family::<SurfaceLabel, Counter>::default();
        registry.register(
            "login_failures",
            "Failed logins (wrong secret, unknown name, disabled user or key, expired login), by surface",
            login_failures.clone(),
        );
        let throttled = Counter::default();
        registry.register(
            "login_throttled",
            "Login attempts refused by the limiter",
            throttled.clone(),
        );
        let gc_runs = Counter::default();
        registry.register(
            "gc_runs",
            "Garbage-collection runs that removed (not dry runs)",
            gc_runs.clone(),
        );
        let gc_bytes = Counter::default();
        registry.register(
            "gc_reclaimed_bytes",
            "Bytes garbage collection removed: blobs, stored manifests, abandoned uploads",
            gc_bytes.clone(),
        );
        let gc_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "gc_duration_seconds",
            "Time one garbage-collection run took, mark and sweep",
            gc_seconds.clone(),
        );
        Self {
            registry,
            requests,
            bytes_in,
            bytes_out,
            batch_commands,
            batch_events,
            commit_seconds,
            log_head,
            checkpoint,
            upload_sessions,
            blob_bytes,
            blob_objects,
            login_failures,
            throttled,
            gc_runs,
            gc_bytes,
            gc_seconds,
        }
    }
}

impl Metrics {
    /// A batch the writer committed.
    #[allow(clippy::cast_precision_loss)]
    pub fn batch_committed(&self, commands: usize, events: u64, commit: Duration) {
        self.batch_commands.observe(commands as f64);
        self.batch_events.observe(events as f64);
        self.commit_seconds.observe(commit.as_secs_f64());
    }

    /// A failed login on `surface`.
    pub fn login_failed(&self, surface: &'static str) {
        self.login_failures
            .get_or_create(&SurfaceLabel { surface })
            .inc();
    }

    /// A login attempt the limiter refused.
    pub fn throttled(&self) {
        self.throttled.inc();
    }

    /// A garbage-collection run removed `bytes` in `seconds`.
    pub fn collected(&self, bytes: u64, seconds: f64) {
        self.gc_runs.inc();
        self.gc_bytes.inc_by(bytes);
        self.gc_seconds.observe(seconds);
    }

    /// The blob store's totals, from its last count.
    pub fn blob_store(&self, bytes: u64, objects: u64) {
        self.blob_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.blob_objects
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
    }
}

/// Counts a body's bytes as its frames pass; the count reaches the counter
/// when the body goes away (ended, or dropped by a client that left). The
/// body's size hint passes through, so `Content-Length` stays.
fn counted(body: Body, family: Family<ClassLabel, Counter>, class: Class) -> Body {
    Body::new(Counted {
        inner: body,
        seen: 0,
        family,
        class,
    })
}

struct Counted {
    inner: Body,
    seen: u64,
    family: Family<ClassLabel, Counter>,
    class: Class,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.seen += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.family
            .get_or_create(&ClassLabel { class: self.class })
            .inc_by(self.seen);
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware: times every request and counts its bytes both ways.
pub async fn measure(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let class = Class::of(req.uri().path());
    let started = Instant::now();
    let req = req.map(|b| counted(b, metrics.bytes_in.clone(), class));
    let response = next.run(req).await;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            class,
            status: status_class(response.status()),
        })
        .observe(started.elapsed().as_secs_f64());
    response.map(|b| counted(b, metrics.bytes_out.clone(), class))
}

/// The text exposition, with the gauges read now.
async fn exposition(State(app): State<AppState>) -> Response {
    let metrics = app.metrics.clone();
    let sampled = app
        .read(move |p| {
            let head = p.log.head()?.seq;
            let applied = p.models.checkpoint()?;
            Ok((head, applied, p.uploads.open_sessions()?))
        })
        .await;
    match sampled {
        Ok((head, applied, sessions)) => {
            metrics
                .log_head
                .set(i64::try_from(head).unwrap_or(i64::MAX));
            metrics
                .checkpoint
                .set(i64::try_from(applied).unwrap_or(i64::MAX));
            metrics
                .upload_sessions
                .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        }
        Err(e) => tracing::warn!(error = %e, "metrics: gauges not sampled"),
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &metrics.registry) {
        tracing::error!(error = %e, "metrics: encoding failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// `/metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(exposition))
        .with_state(state)
}

/// Counts the blob store now and then (a walk of its tree), so scrapes
/// never walk it.
pub fn spawn_blob_counter(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let blobs = state.blobs.clone();
            match tokio::task::spawn_blocking(move || blobs.usage()).await {
                Ok(Ok((bytes, objects))) => state.metrics.blob_store(bytes, objects),
                Ok(Err(e)) => tracing::warn!(error = %e, "metrics: blob store not counted"),
                Err(e) => tracing::warn!(error = %e, "metrics: blob count task failed"),
            }
            tokio::time::sleep(every).await;
        }
    })
}
