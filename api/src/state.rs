//! What every handler shares: the engine (the only writer), the read models,
//! and the blob and upload stores.

use std::sync::Arc;

use berth_projections::ReadModels;
use berth_store::archive::Limits;
use berth_store::gc::{Collector, Pins};
use berth_store::imports::Imports;
use berth_store::lease::{Lease, Leases};
use berth_store::{BlobStore, CheckpointKey, Engine, EventLog, StoreError, UploadStore};

use crate::auth::limiter::LoginLimiter;
use crate::auth::token::SigningKey;
use crate::auth::Settings;
use crate::failures::FailureCounter;
use crate::pulls::PullCounter;

/// The service's shared state. Cloning is cheap.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

/// The parts of the service.
pub struct Parts {
    /// Queue to the single writer.
    pub engine: Engine,
    /// The log's database (manifest bytes live there too).
    pub log: EventLog,
    /// Read models for every query.
    pub models: ReadModels,
    /// Blob bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Upload sessions.
    pub uploads: Arc<dyn UploadStore>,
    /// Blobs on their way in, kept from garbage collection.
    pub pins: Arc<Pins>,
    /// Garbage collection.
    pub gc: Arc<Collector>,
    /// Web upload jobs and their staging.
    pub imports: Arc<Imports>,
    /// What one uploaded archive may cost.
    pub archive_limits: Limits,
    /// Readiness, for `/readyz` and the shutdown path.
    pub health: Arc<crate::health::Health>,
    /// Metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The data directory's free-space guard.
    pub space: berth_store::space::Space,
    /// Authentication and authorization settings.
    pub settings: Settings,
    /// Token signing key.
    pub key: SigningKey,
    /// Checkpoint signing key.
    pub checkpoints: CheckpointKey,
    /// Failed-login throttle.
    pub limiter: LoginLimiter,
    /// Manifest pulls not yet recorded.
    pub pulls: PullCounter,
    /// Failures of anonymous callers and unknown users not yet recorded.
    pub failures: FailureCounter,
    /// Leases of the scheduled singletons (garbage collection, checkpoints).
    pub leases: Arc<dyn Leases>,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    /// Runs a synchronous storage read off the async workers (fjall and the
    /// filesystem block).
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Parts) -> Result<T, StoreError> + Send + 'static,
    {
        let parts = self.0.clone();
        tokio::task::spawn_blocking(move || f(&parts)).await?
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// A scheduled job that runs on one node of a cluster at a time: the node
/// that holds its lease, kept while the node lives and checked before each
/// run.
pub struct Singleton {
    name: &'static str,
    held: Option<Lease>,
}

impl Singleton {
    /// The job called `name` (the lease's name).
    pub fn new(name: &'static str) -> Self {
        Self { name, held: None }
    }

    /// Whether this node runs the job now: it holds the lease still, or
    /// takes it now.
    pub async fn mine(&mut self, app: &AppState) -> bool {
        let (leases, name, held) = (app.leases.clone(), self.name, self.held.take());
        let checked = tokio::task::spawn_blocking(move || {
            let kept = held.and_then(|mut lease| lease.alive().then_some(lease));
            match kept {
                Some(lease) => Some(lease),
                None => leases.try_take(name).unwrap_or_else(|e| {
                    tracing::warn!(lease = name, error = %e, "cannot take the lease");
                    None
                }),
            }
        })
        .await;
        self.held = checked.ok().flatten();
        if self.held.is_none() {
            tracing::debug!(lease = name, "another node holds the lease");
        }
        self.held.is_some()
    }
}
