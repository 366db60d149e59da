//! Online garbage collection: removes blob files, stored manifests and
//! upload sessions that nothing needs any more, while the registry serves.
//!
//! The protocol (docs/operations.md has the long form, with the races of
//! other registries it answers):
//! - **Mark** reads the read models off the writer: a blob is a candidate
//!   when no live repository links it and its file is older than the grace
//!   period; a stored manifest when no live repository holds it.
//! - **Sweep** runs on the writer thread alone ([`Engine::alone`]), in steps:
//!   every command submitted before a step is committed, none after it is
//!   decided until the step ends. Each candidate is checked again there,
//!   against read models that are exactly as current as the log, and only
//!   then removed. A push links a blob or a manifest only through a command
//!   the writer decides, so a link and a removal are always ordered: a link
//!   decided first makes the candidate referenced and it stays; a removal
//!   first makes the link's decision see no blob (a mount names a source
//!   that no longer links it, a manifest names a blob the repository does
//!   not link) and the push is refused, never acknowledged.
//! - **Pins** close the one gap the writer cannot see: an upload's bytes
//!   enter the blob tree before the command that links them is decided. An
//!   upload pins its digest before it moves its file in and unpins it after
//!   the link is decided; a sweep skips a pinned blob, and checks and
//!   removes under the pin table's lock, so a pin either comes first (the
//!   blob stays) or after the removal (the upload then moves its own file
//!   in).
//!
//! Each sweep step becomes one `GarbageCollected` event listing what it
//! removed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use berth_domain::{Command, Digest, Event};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::blobs::BlobStore;
use crate::engine::{AloneWork, Engine, RequestMeta};
use crate::error::StoreError;
use crate::log::EventLog;
use crate::uploads::UploadStore;

/// Candidates checked and removed per sweep step: each step holds the
/// writer while it removes files, so a step stays short.
const STEP: usize = 256;

/// What garbage collection asks the read models, which are as current as
/// the log when the writer asks.
pub trait References: Send + Sync + 'static {
    /// Whether a live repository links the blob. A manifest's blobs are
    /// always linked in its repository (the domain refuses a manifest that
    /// names an unlinked blob, and the unlinking of a referenced one).
    fn blob_referenced(&self, digest: &Digest) -> Result<bool, StoreError>;
    /// Whether a live repository holds the manifest.
    fn manifest_referenced(&self, digest: &Digest) -> Result<bool, StoreError>;
}

/// Digests whose bytes are entering the blob tree ahead of the command
/// that will link them.
#[derive(Default)]
pub struct Pins {
    held: Mutex<HashMap<Digest, usize>>,
    /// The pins of every node, in a cluster: a sweep on one node must see
    /// an upload in progress on another.
    shared: Option<Arc<dyn SharedPins>>,
}

/// Pins recorded where every node of a cluster sees them. Recording a pin
/// and a removal's check-then-remove exclude each other, per digest: a pin
/// recorded first keeps the blob, and one recorded during a removal waits
/// for it to end (the upload then moves its own bytes in).
pub trait SharedPins: Send + Sync + 'static {
    /// Records the pin `holder` on `digest`.
    fn pin<'a>(&'a self, digest: &'a Digest, holder: Uuid)
        -> BoxFuture<'a, Result<(), StoreError>>;
    /// Drops the pin `holder`, if it was recorded; sent after its
    /// recording, it removes it even if that was still on its way.
    fn unpin(&self, holder: Uuid) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Runs `remove` unless a node pins `digest`, with no pin recorded
    /// meanwhile; `None` when pinned.
    fn unless_pinned(
        &self,
        digest: &Digest,
        remove: &mut dyn FnMut() -> Result<bool, StoreError>,
    ) -> Result<Option<bool>, StoreError>;
}

/// Keeps a blob from being collected until it is dropped.
pub struct Pin {
    pins: Arc<Pins>,
    digest: Digest,
    /// Its record among the shared pins, if there are any.
    holder: Option<Uuid>,
}

impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pins")
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl Pins {
    /// Pins this node's uploads and sweeps see; with `shared`, those of
    /// every node of a cluster too.
    pub fn new(shared: Option<Arc<dyn SharedPins>>) -> Self {
        Self {
            held: Mutex::default(),
            shared,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, usize>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pins a digest: take it before the bytes move in, and hold it until
    /// the command linking them has been decided.
    pub async fn pin(self: &Arc<Self>, digest: &Digest) -> Result<Pin, StoreError> {
        let mut pin = self.hold(digest);
        if let Some(shared) = &self.shared {
            // Named before it is recorded: a pin dropped on the way (its
            // request ended) or refused is removed, not left to expire.
            let holder = Uuid::new_v4();
            pin.holder = Some(holder);
            shared.pin(digest, holder).await?;
        }
        Ok(pin)
    }

    /// Pins a digest on this node only: for a store that records the
    /// shared pin itself, with what it writes anyway (an upload session's
    /// row, see `PgSessions::load_pinned`).
    pub fn hold(self: &Arc<Self>, digest: &Digest) -> Pin {
        *self.lock().entry(digest.clone()).or_default() += 1;
        Pin {
            pins: self.clone(),
            digest: digest.clone(),
            holder: None,
        }
    }

    /// Runs `remove` under the table's lock (and the shared pins' check)
    /// unless the digest is pinned.
    fn unless_pinned(
        &self,
        digest: &Digest,
        mut remove: impl FnMut() -> Result<bool, StoreError>,
    ) -> Option<Result<bool, StoreError>> {
        let held = self.lock();
        if held.contains_key(digest) {
            return None;
        }
        match &self.shared {
            None => Some(remove()),
            Some(shared) => shared.unless_pinned(digest, &mut remove).transpose(),
        }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        {
            let mut held = self.pins.lock();
            if let Some(n) = held.get_mut(&self.digest) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&self.digest);
                }
            }
        }
        let (Some(shared), Some(holder)) = (self.pins.shared.clone(), self.holder) else {
            return;
        };
        // Off the request; a pin that stays (no runtime to run the unpin,
        // or a failed one) expires (see `SharedPins`).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("a shared pin stays until it expires");
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = shared.unpin(holder).await {
                tracing::warn!(error = %e, "a shared pin stays until it expires");
            }
        });
    }
}

/// How old an unreferenced thing must be before it goes.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// An unreferenced blob file younger than this stays: a floor under
    /// the pins, not the protocol's safety.
    pub grace: Duration,
    /// An upload session untouched for longer than this is abandoned.
    pub upload_max_idle: Duration,
}

/// One thing removed (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// A digest, or an upload session's id.
    pub id: String,
    /// The bytes it held.
    pub bytes: u64,
}

/// What one run removed, or would remove.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The run's id, in its events.
    pub run: Uuid,
    /// Whether this was a dry run (nothing removed, no event).
    pub dry_run: bool,
    /// Blob files.
    pub blobs: Vec<Item>,
    /// Stored manifests.
    pub manifests: Vec<Item>,
    /// Abandoned upload sessions.
    pub uploads: Vec<Item>,
    /// All the bytes.
    pub bytes: u64,
    /// How long the run took.
    pub seconds: f64,
    /// Sequence numbers of the run's `GarbageCollected` events.
    pub events: Vec<u64>,
}

/// Digests with their sizes.
type Listed = Vec<(Digest, u64)>;

/// What the mark phase found: candidates to check again and remove, and
/// the abandoned upload sessions it already removed (nothing references a
/// session, so there is nothing to check again).
#[derive(Debug)]
pub struct Candidates {
    run: Uuid,
    dry_run: bool,
    blobs: Listed,
    manifests: Listed,
    uploads: Vec<Item>,
}

/// Runs garbage collection, one run at a time.
pub struct Collector {
    parts: Parts,
    policy: Policy,
    running: tokio::sync::Mutex<()>,
}

/// The parts a [`Collector`] works on.
pub struct Parts {
    /// Blob bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Upload sessions.
    pub uploads: Arc<dyn UploadStore>,
    /// The database, with the stored manifests.
    pub log: EventLog,
    /// The read models, asked what is referenced.
    pub references: Arc<dyn References>,
    /// The writer.
    pub engine: Engine,
    /// The pins uploads take.
    pub pins: Arc<Pins>,
}

impl Collector {
    /// A collector over `parts`.
    pub fn new(parts: Parts, policy: Policy) -> Self {
        Self {
            parts,
            policy,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs once: marks, then (unless `dry_run`) sweeps in steps, each
    /// recorded as an event on behalf of `meta`'s actor. A run asked for
    /// while another runs waits for it.
    pub async fn run(&self, dry_run: bool, meta: RequestMeta) -> Result<Report, StoreError> {
        let _one = self.running.lock().await;
        let started = Instant::now();
        let candidates = self.mark(dry_run).await?;
        let mut report = self.sweep(candidates, meta).await?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The mark phase of [`Collector::run`], on its own so that a caller
    /// (the interleaving tests) can act between the two phases. Abandoned
    /// upload sessions are removed here unless `dry_run`.
    pub async fn mark(&self, dry_run: bool) -> Result<Candidates, StoreError> {
        let (blobs, log, references, grace) = (
            self.parts.blobs.clone(),
            self.parts.log.clone(),
            self.parts.references.clone(),
            self.policy.grace,
        );
        let (blobs, manifests) = tokio::task::spawn_blocking(move || {
            mark(blobs.as_ref(), &log, references.as_ref(), grace)
        })
        .await??;
        let (uploads, max_idle) = (self.parts.uploads.clone(), self.policy.upload_max_idle);
        let sessions =
            tokio::task::spawn_blocking(move || uploads.collect_idle(max_idle, dry_run)).await??;
        Ok(Candidates {
            run: Uuid::new_v4(),
            dry_run,
            blobs,
            manifests,
            uploads: sessions
                .into_iter()
                .map(|(id, bytes)| Item { id, bytes })
                .collect(),
        })
    }

    /// The sweep phase of [`Collector::run`]: removes the candidates that
    /// are still unreferenced, step by step on the writer alone, and
    /// records each step. A dry run's candidates are only reported.
    pub async fn sweep(
        &self,
        candidates: Candidates,
        meta: RequestMeta,
    ) -> Result<Report, StoreError> {
        let mut report = Report {
            run: candidates.run,
            dry_run: candidates.dry_run,
            uploads: candidates.uploads,
            ..Report::default()
        };
        if candidates.dry_run {
            report.blobs = items(&candidates.blobs);
            report.manifests = items(&candidates.manifests);
        } else {
            // At least one step, so that a run that found nothing is recorded.
            let steps = candidates
                .blobs
                .len()
                .max(candidates.manifests.len())
                .div_ceil(STEP)
                .max(1);
            let chunk =
                |list: &Listed, n: usize| list.chunks(STEP).nth(n).unwrap_or_default().to_vec();
            for n in 0..steps {
                // The sessions went in the mark; the first step records them.
                let uploads = if n == 0 {
                    let s = &report.uploads;
                    (s.len() as u64, s.iter().map(|i| i.bytes).sum())
                } else {
                    (0, 0)
                };
                let step = Step {
                    run: report.run,
                    blobs: chunk(&candidates.blobs, n),
                    manifests: chunk(&candidates.manifests, n),
                    uploads,
                };
                for recorded in self.parts.engine.alone(self.step_work(step, &meta)).await? {
                    report.events.push(recorded.seq);
                    if let Event::GarbageCollected {
                        blobs, manifests, ..
                    } = &recorded.event
                    {
                        report.blobs.extend(items(blobs));
                        report.manifests.extend(items(manifests));
                    }
                }
            }
        }
        report.bytes = [&report.blobs, &report.manifests, &report.uploads]
            .into_iter()
            .flatten()
            .map(|i| i.bytes)
            .sum();
        Ok(report)
    }

    /// The work of one step, to run on the writer alone.
    fn step_work(&self, step: Step, meta: &RequestMeta) -> AloneWork {
        let (store, log, references, pins, meta) = (
            self.parts.blobs.clone(),
            self.parts.log.clone(),
            self.parts.references.clone(),
            self.parts.pins.clone(),
            meta.clone(),
        );
        Box::new(move || {
            let command = step.sweep(store.as_ref(), &log, references.as_ref(), &pins)?;
            Ok((command, meta))
        })
    }
}

fn items(list: &[(Digest, u64)]) -> Vec<Item> {
    list.iter()
        .map(|(d, bytes)| Item {
            id: d.to_string(),
            bytes: *bytes,
        })
        .collect()
}

/// Finds the candidates: unreferenced blobs past the grace period, and
/// unreferenced stored manifests (a manifest's bytes are stored in the
/// same write as the event that makes it referenced, so none is ever
/// young and unreferenced).
fn mark(
    blobs: &dyn BlobStore,
    log: &EventLog,
    references: &dyn References,
    grace: Duration,
) -> Result<(Listed, Listed), StoreError> {
    let now = SystemTime::now();
    let mut unreferenced_blobs = Vec::new();
    for blob in blobs.list()? {
        let age = now.duration_since(blob.stored_at).unwrap_or_default();
        if age >= grace && !references.blob_referenced(&blob.digest)? {
            unreferenced_blobs.push((blob.digest, blob.size));
        }
    }
    let mut unreferenced_manifests = Vec::new();
    for (digest, size) in log.contents()? {
        if !references.manifest_referenced(&digest)? {
            unreferenced_manifests.push((digest, size));
        }
    }
    Ok((unreferenced_blobs, unreferenced_manifests))
}

/// One sweep step's candidates.
struct Step {
    run: Uuid,
    blobs: Vec<(Digest, u64)>,
    manifests: Vec<(Digest, u64)>,
    /// Sessions removed before the sweep, and their bytes: recorded with
    /// the first step.
    uploads: (u64, u64),
}

impl Step {
    /// Runs on the writer thread alone: checks each candidate again and
    /// removes those still unreferenced; returns the command recording
    /// what went. A file that cannot be removed stays, and is logged.
    fn sweep(
        self,
        store: &dyn BlobStore,
        log: &EventLog,
        references: &dyn References,
        pins: &Pins,
    ) -> Result<Command, StoreError> {
        let mut blobs = Vec::new();
        for (digest, size) in self.blobs {
            if references.blob_referenced(&digest)? {
                continue;
            }
            match pins.unless_pinned(&digest, || store.delete(&digest)) {
                Some(Ok(true)) => blobs.push((digest, size)),
                Some(Ok(false)) | None => {}
                Some(Err(e)) => {
                    tracing::warn!(%digest, error = %e, "garbage collection could not remove a blob");
                }
            }
        }
        let mut manifests = Vec::new();
        for (digest, size) in self.manifests {
            if !references.manifest_referenced(&digest)? {
                manifests.push((digest, size));
            }
        }
        let digests: Vec<Digest> = manifests.iter().map(|(d, _)| d.clone()).collect();
        log.remove_contents(&digests)?;
        let bytes = blobs.iter().chain(&manifests).map(|(_, s)| s).sum::<u64>() + self.uploads.1;
        Ok(Command::RecordCollection {
            run: self.run,
            blobs,
            manifests,
            uploads: self.uploads.0,
            bytes,
        })
    }
}
