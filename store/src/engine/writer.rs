//! The writer thread: it takes commands from the queue in batches, decides
//! each through the domain (or replays a keyed retry), appends the events
//! and projection rows to one batch, commits it with one fsync, and only
//! then answers every waiter.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_domain::{decide, Command, Digest, Event, Fresh, Loaded, OrgName};
use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    AloneWork, Content, KeyScope, Outcome, Projector, RequestMeta, Sealed, SharedLog, StateLoader,
    WriterObserver,
};
use crate::envelope::{encode_payload, seal, Envelope, Hash, Keyed, Recorded, SCHEMA_VERSION};
use crate::error::StoreError;
use crate::log::{dropped_content, link, ChainPoint, EventLog};
use crate::table::Batch;

/// Most commands folded into one batch; bounds a batch's latency.
const MAX_BATCH: usize = 512;
/// Events fetched from the shared log per catch-up read.
const CATCH_UP_PAGE: usize = 10_000;
/// Aggregates and stream versions kept in the writer's caches before they
/// are dropped and reloaded.
const CACHE_LIMIT: usize = 50_000;

pub(super) type Reply = oneshot::Sender<Result<Outcome, StoreError>>;

/// A job of the open batch: its waiter, its result, and whether that
/// result is a replay from the log (which stands if the batch fails).
type Decided = (Reply, Result<Outcome, StoreError>, bool);

pub(super) struct Job {
    pub(super) command: Command,
    pub(super) content: Content,
    pub(super) meta: RequestMeta,
    pub(super) keyed: Option<Keyed>,
    pub(super) reply: Reply,
}

/// What waits in the writer's queue. Nearly every entry is a command:
/// boxing it to shrink the rare other variant would allocate per command.
#[allow(clippy::large_enum_variant)]
pub(super) enum Work {
    /// A command, batched with others.
    Decide(Job),
    /// Work that must see every earlier command committed and no later one
    /// decided, then a command of its own in its own batch.
    Alone(AloneWork, Reply),
    /// Catch up from the shared log, and say when done if asked to.
    CatchUp(Option<oneshot::Sender<Result<(), StoreError>>>),
}

/// Adds the commands queued now to a batch, up to its limit; the work
/// that ends the run (another kind) is given back.
fn more(rx: &mut mpsc::Receiver<Work>, jobs: &mut Vec<Job>) -> Option<Work> {
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(Work::Decide(job)) => jobs.push(job),
            Ok(other) => return Some(other),
            Err(_) => return None,
        }
    }
    None
}

pub(super) struct Writer {
    log: EventLog,
    projector: Arc<dyn Projector>,
    loader: Arc<dyn StateLoader>,
    head: ChainPoint,
    /// Time of the newest event: times in the log never go backwards, even
    /// when the system clock does, so a time maps to a sequence number by
    /// binary search.
    last_time: DateTime<Utc>,
    cache: Loaded,
    /// Events per stream so far, including those of the open batch.
    versions: HashMap<Uuid, u64>,
    observer: Arc<dyn WriterObserver>,
    /// Why the log's storage failed, once it has: from then on every
    /// command is refused unread (after a failed write or fsync, nothing
    /// the database holds in memory can be trusted).
    failed: Option<String>,
    /// Request keys recorded by the open batch, which its rows do not show
    /// yet: the fingerprint and the answer of each.
    batch_keys: HashMap<KeyScope, (Hash, Vec<u8>)>,
    /// The log of record, when it is shared with other nodes.
    shared: Option<Box<dyn SharedLog>>,
    /// Whether the shared log's write lock is held now.
    locked: bool,
    /// The open batch's events as the shared log will store them.
    sealed: Vec<Sealed>,
    /// Where the last durable sequence number is published.
    durable: Arc<AtomicU64>,
}

impl Writer {
    /// A writer whose log ends at `head`, written at `last_time`.
    pub(super) fn new(
        log: EventLog,
        projector: Arc<dyn Projector>,
        loader: Arc<dyn StateLoader>,
        (head, last_time): (ChainPoint, DateTime<Utc>),
        observer: Arc<dyn WriterObserver>,
        (shared, durable): (Option<Box<dyn SharedLog>>, Arc<AtomicU64>),
    ) -> Self {
        Self {
            log,
            projector,
            loader,
            head,
            last_time,
            cache: Loaded::default(),
            versions: HashMap::new(),
            observer,
            failed: None,
            batch_keys: HashMap::new(),
            shared,
            locked: false,
            sealed: Vec::new(),
            durable,
        }
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Work>) {
        let mut held = None;
        while let Some(first) = held.take().or_else(|| rx.blocking_recv()) {
            let first = match first {
                Work::Decide(job) => job,
                Work::Alone(work, reply) => {
                    self.alone(work, reply);
                    continue;
                }
                Work::CatchUp(reply) => {
                    // Catch-ups queued behind this one are served by the
                    // same read: under load, notifications pile up.
                    let mut replies: Vec<_> = reply.into_iter().collect();
                    loop {
                        match rx.try_recv() {
                            Ok(Work::CatchUp(reply)) => replies.extend(reply),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let caught = self.absorb();
                    if let Err(e) = &caught {
                        tracing::warn!(error = %e, "catching up from the shared log failed");
                    }
                    for reply in replies {
                        let _ =
                            reply.send(caught.as_ref().map_err(StoreError::told_again).copied());
                    }
                    continue;
                }
            };
            let mut jobs = vec![first];
            held = more(&mut rx, &mut jobs);
            let opened = self.open_shared();
            // Commands that came while the shared lock was on its way
            // join the batch: the busier the cluster, the larger it is.
            if opened.is_ok() && held.is_none() {
                held = more(&mut rx, &mut jobs);
            }
            self.process(jobs, opened);
        }
        tracing::info!(head = self.head.seq, "writer stopped");
    }

    /// Runs work alone, then commits the command it returns on its own.
    /// With a shared log, the work runs under the cluster-wide write lock:
    /// no node decides anything while it runs.
    fn alone(&mut self, work: AloneWork, reply: Reply) {
        if let Err(e) = self.open_shared() {
            let _ = reply.send(Err(e));
            return;
        }
        match work() {
            Ok((command, meta)) => self.process(
                vec![Job {
                    command,
                    content: Content::new(),
                    meta,
                    keyed: None,
                    reply,
                }],
                Ok(()),
            ),
            Err(e) => {
                self.release();
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Takes the shared log's write lock and catches up to its head,
    /// unless the lock is held already (then no other node has committed
    /// since); nothing to do when the log is not shared.
    fn open_shared(&mut self) -> Result<(), StoreError> {
        let Some(shared) = self.shared.as_mut() else {
            return Ok(());
        };
        if self.locked {
            return Ok(());
        }
        shared.lock()?;
        self.locked = true;
        self.absorb().inspect_err(|_| self.release())
    }

    /// Ends a locked transaction that appends nothing.
    fn release(&mut self) {
        if let (Some(shared), true) = (self.shared.as_mut(), self.locked) {
            shared.release();
        }
        self.locked = false;
    }

    /// Applies the shared log's events that this node has not seen (other
    /// nodes' commits) to the local log and read models, checking every
    /// link of the chain on the way, and folds them into the cached
    /// aggregates. A catch-up that fails drops the caches, which may have
    /// taken events the local log did not.
    fn absorb(&mut self) -> Result<(), StoreError> {
        self.absorb_pages().inspect_err(|_| self.forget())
    }

    fn absorb_pages(&mut self) -> Result<(), StoreError> {
        loop {
            let Some(shared) = self.shared.as_mut() else {
                return Ok(());
            };
            let events = shared.since(self.head.seq, CATCH_UP_PAGE)?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(());
            };
            let mut batch = self.log.batch();
            let mut head = self.head;
            for event in &events {
                let (recorded, next) = link(head, event.seq, &event.value)?;
                self.log.mirror(&mut batch, event, &recorded);
                self.projector.apply(&mut batch, &recorded)?;
                self.last_time = self.last_time.max(recorded.envelope.occurred_at);
                self.cache.evolve_held(&recorded.event);
                if let Some(version) = self.versions.get_mut(&recorded.envelope.stream) {
                    *version = recorded.envelope.stream_version;
                }
                head = next;
            }
            self.log.set_head(&mut batch, head);
            self.projector.set_checkpoint(&mut batch, head.seq);
            self.log.commit_mirrored(batch)?;
            self.head = head;
            self.durable.store(head.seq, Ordering::Release);
            tracing::debug!(to = last, "caught up from the shared log");
            if events.len() < CATCH_UP_PAGE {
                return Ok(());
            }
        }
    }

    fn forget(&mut self) {
        self.cache = Loaded::default();
        self.versions.clear();
    }

    /// Decides and commits a batch; `opened` is how taking the shared
    /// lock went (`open_shared`).
    fn process(&mut self, jobs: Vec<Job>, opened: Result<(), StoreError>) {
        if let Some(cause) = self.failed.clone() {
            self.release();
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Unwritable(cause.clone())));
            }
            return;
        }
        if self.cache.repos.len() > CACHE_LIMIT || self.versions.len() > CACHE_LIMIT {
            self.forget();
        }
        if let Err(e) = opened {
            let cause = match e {
                StoreError::LogUnavailable(cause) => cause,
                other => other.to_string(),
            };
            tracing::warn!(%cause, "the shared log cannot be written; the batch fails");
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(StoreError::LogUnavailable(cause.clone())));
            }
            return;
        }
        self.sealed.clear();
        let mut batch = self.log.batch();
        self.batch_keys.clear();
        let start = self.head;
        let mut outcomes: Vec<Decided> = Vec::with_capacity(jobs.len());
        let mut failure = None;
        for job in jobs {
            if failure.is_some() {
                outcomes.push((job.reply, Err(StoreError::Closed), true));
                continue;
            }
            // A replay of a key this same batch recorded stands or falls
            // with the batch; one from the log stands whatever happens.
            let mut from_log = false;
            let result = match self.replayed(&job) {
                Ok(Some((answer, in_batch))) => {
                    from_log = !in_batch;
                    Ok(Outcome::Replayed(answer))
                }
                Ok(None) => self
                    .decide(&job.command)
                    .and_then(|events| self.record(&mut batch, events, &job))
                    .map(Outcome::Recorded),
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                if !matches!(e, StoreError::Rejected(_) | StoreError::KeyReused { .. }) {
                    failure = Some(e.to_string());
                }
            }
            outcomes.push((job.reply, result, from_log));
        }
        if failure.is_none() && self.head != start {
            self.log.set_head(&mut batch, self.head);
            self.projector.set_checkpoint(&mut batch, self.head.seq);
            let began = std::time::Instant::now();
            match self.commit(batch, start) {
                Ok(()) => {
                    self.durable.store(self.head.seq, Ordering::Release);
                    self.observer.batch_committed(
                        outcomes.len(),
                        self.head.seq - start.seq,
                        began.elapsed(),
                    );
                }
                // Refused before anything was written: a definite failure,
                // and the next batch may find space again.
                Err(StoreError::NoSpace(reason)) => {
                    tracing::warn!(%reason, "batch refused: the disk is full");
                    return self.fail_all(start, outcomes, || StoreError::NoSpace(reason.clone()));
                }
                // The shared log refused or lost the batch (only it
                // answers these): the local log holds nothing of it, so
                // this node goes on once the shared log is back.
                Err(StoreError::LogUnavailable(cause)) => {
                    tracing::warn!(%cause, "the shared log refused the batch");
                    return self.fail_all(start, outcomes, || {
                        StoreError::LogUnavailable(cause.clone())
                    });
                }
                Err(StoreError::OutcomeUnknown(cause)) => {
                    tracing::warn!(%cause, "the shared log lost its connection at commit");
                    return self.fail_all(start, outcomes, || {
                        StoreError::OutcomeUnknown(cause.clone())
                    });
                }
                // The batch may have reached the journal: its outcome is
                // unknown, and the database can no longer be trusted.
                Err(e) => {
                    let cause = e.to_string();
                    tracing::error!(%cause, "the event log's storage failed; the writer stops");
                    self.failed = Some(cause.clone());
                    self.observer.writer_failed(&cause);
                    return self.fail_all(start, outcomes, || {
                        StoreError::OutcomeUnknown(cause.clone())
                    });
                }
            }
        }
        // Nothing was appended (every command refused, replayed or failed):
        // the lock is given back.
        self.release();
        if let Some(reason) = failure {
            tracing::error!(%reason, "batch not committed; every command in it fails");
            return self.fail_all(start, outcomes, || StoreError::CommitFailed(reason.clone()));
        }
        for (reply, result, _) in outcomes {
            let _ = reply.send(result);
        }
    }

    /// Makes the batch durable: with a shared log, appended there and
    /// committed (which ends the lock), then mirrored locally without an
    /// fsync of its own; otherwise committed to the local log with one.
    fn commit(&mut self, batch: Batch, start: ChainPoint) -> Result<(), StoreError> {
        let Some(shared) = self.shared.as_mut() else {
            return self.log.commit(batch);
        };
        self.locked = false;
        shared.append(std::mem::take(&mut self.sealed))?;
        if let Err(e) = self.log.commit_mirrored(batch) {
            // Durable in the shared log all the same: the next catch-up
            // brings the batch back from there.
            tracing::error!(error = %e, "the local mirror did not take a committed batch");
            self.head = start;
            self.forget();
        }
        Ok(())
    }

    /// Answers every command of a batch that was not committed (those the
    /// domain refused keep their refusal, and replays from the log their
    /// answer), and forgets what deciding it assumed.
    fn fail_all(
        &mut self,
        start: ChainPoint,
        outcomes: Vec<Decided>,
        error: impl Fn() -> StoreError,
    ) {
        self.head = start;
        self.forget();
        for (reply, result, from_log) in outcomes {
            // A refusal stays a refusal, and a replay of a committed answer
            // stays that answer: neither depended on this batch.
            let answer = match result {
                Err(refused @ (StoreError::Rejected(_) | StoreError::KeyReused { .. })) => {
                    Err(refused)
                }
                Ok(replayed @ Outcome::Replayed(_)) if from_log => Ok(replayed),
                _ => Err(error()),
            };
            let _ = reply.send(answer);
        }
    }

    /// The first answer to a keyed request this job repeats, if the
    /// caller's key is remembered (in this batch or in the log) with the
    /// same fingerprint, and whether this batch recorded it; `KeyReused`
    /// if remembered with another fingerprint.
    fn replayed(&self, job: &Job) -> Result<Option<(Vec<u8>, bool)>, StoreError> {
        let Some(keyed) = &job.keyed else {
            return Ok(None);
        };
        let scope = KeyScope::of(&job.meta.actor, &keyed.key);
        let first = match self.batch_keys.get(&scope) {
            Some((fingerprint, answer)) => Some((*fingerprint, answer.clone(), true)),
            None => match self.loader.remembered(&scope, Utc::now())? {
                Some(seq) => self
                    .log
                    .get(seq)?
                    .and_then(|r| r.envelope.keyed)
                    .map(|k| (k.fingerprint, k.answer, false)),
                None => None,
            },
        };
        match first {
            Some((fingerprint, answer, in_batch)) if fingerprint == keyed.fingerprint => {
                Ok(Some((answer, in_batch)))
            }
            Some(_) => Err(StoreError::KeyReused {
                key: keyed.key.clone(),
            }),
            None => Ok(None),
        }
    }

    fn decide(&mut self, command: &Command) -> Result<Vec<Event>, StoreError> {
        let touches = command.touches();
        for repo in touches.repos {
            self.hydrate_org(repo.org())?;
            if !self.cache.repos.contains_key(repo) {
                if let Some(state) = self.loader.load_repo(repo)? {
                    self.cache.repos.insert(repo.clone(), state);
                }
            }
        }
        for name in touches.accounts {
            if !self.cache.accounts.contains_key(name) {
                if let Some(account) = self.loader.load_account(name)? {
                    self.cache.accounts.insert(name.clone(), account);
                }
            }
        }
        for org in touches.orgs {
            self.hydrate_org(org)?;
        }
        let fresh = Fresh {
            org_id: Uuid::new_v4(),
            repo_id: Uuid::new_v4(),
            account_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
        };
        decide(&self.cache, command, fresh).map_err(StoreError::from)
    }

    fn hydrate_org(&mut self, name: &OrgName) -> Result<(), StoreError> {
        if !self.cache.orgs.contains_key(name) {
            if let Some(org) = self.loader.load_org(name)? {
                self.cache.orgs.insert(name.clone(), org);
            }
        }
        Ok(())
    }

    /// The next version of a stream: one past the events it holds so far.
    fn next_version(&mut self, stream: Uuid) -> Result<u64, StoreError> {
        let current = match self.versions.get(&stream) {
            Some(v) => *v,
            None => self.log.stream_version(stream)?,
        };
        self.versions.insert(stream, current + 1);
        Ok(current + 1)
    }

    fn record(
        &mut self,
        batch: &mut Batch,
        events: Vec<Event>,
        job: &Job,
    ) -> Result<Vec<Recorded>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let meta = &job.meta;
        if let Some(keyed) = &job.keyed {
            self.batch_keys.insert(
                KeyScope::of(&meta.actor, &keyed.key),
                (keyed.fingerprint, keyed.answer.clone()),
            );
        }
        let mut keyed = job.keyed.clone();
        for (digest, bytes) in &job.content.logged {
            self.log.put_content(batch, digest, bytes);
        }
        // The envelope keeps microseconds; stamping at that precision makes
        // live rows and rows replayed from the log identical.
        let now = Utc::now().trunc_subsecs(6).max(self.last_time);
        self.last_time = now;
        let mut recorded = Vec::with_capacity(events.len());
        for event in events {
            let stream = event.stream_id();
            let stream_version = self.next_version(stream)?;
            self.cache.evolve(&event);
            let seq = self.head.seq + 1;
            let envelope = Envelope {
                schema: SCHEMA_VERSION,
                event_type: event.kind().to_owned(),
                stream,
                stream_version,
                occurred_at: now,
                actor: meta.actor.clone(),
                request_id: meta.request_id,
                prev_hash: self.head.hash,
                payload: encode_payload(&event)?,
                keyed: keyed.take(),
            };
            let (value, hash) = seal(seq, &envelope)?;
            if self.shared.is_some() {
                self.sealed.push(Sealed {
                    seq,
                    value: value.clone(),
                    content: first(recorded.is_empty(), &job.content.logged),
                    blobs: first(recorded.is_empty(), &job.content.blobs),
                    dropped: dropped_content(&event).cloned().collect(),
                });
            }
            self.log.append(batch, seq, value);
            self.log.set_stream_version(batch, stream, stream_version);
            let rec = Recorded {
                seq,
                envelope,
                event,
            };
            self.projector.apply(batch, &rec)?;
            recorded.push(rec);
            self.head = ChainPoint { seq, hash };
        }
        Ok(recorded)
    }
}

/// A job's content of one kind, carried on its first event only.
fn first(is_first: bool, content: &BTreeMap<Digest, Bytes>) -> Vec<(Digest, Bytes)> {
    match is_first {
        true => content
            .iter()
            .map(|(d, b)| (d.clone(), b.clone()))
            .collect(),
        false => Vec::new(),
    }
}
