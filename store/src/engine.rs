//! The single writer: commands queue to one thread, which decides them
//! through the domain, appends their events and projection rows in one
//! fjall batch, makes it durable with one fsync, and only then answers every
//! waiter in the batch (group commit).

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::thread;

use berth_domain::{
    decide, Account, AccountName, Actor, Command, Digest, Event, Fresh, Loaded, OrgName,
    Organization, RepoPath, Repository,
};
use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::envelope::{encode_payload, seal, Envelope, Hash, Keyed, Recorded, SCHEMA_VERSION};
use crate::error::StoreError;
use crate::log::{ChainPoint, EventLog};
use crate::table::Batch;

/// Most commands folded into one batch; bounds a batch's latency.
const MAX_BATCH: usize = 512;
/// Aggregates and stream versions kept in the writer's caches before they
/// are dropped and reloaded.
const CACHE_LIMIT: usize = 50_000;
/// Commands waiting for the writer before submitters wait for room.
const QUEUE: usize = 4096;

/// Read models fed by the engine in the same batch as the events.
pub trait Projector: Send + Sync + 'static {
    /// Adds the rows that follow from one event to the batch.
    fn apply(&self, batch: &mut Batch, recorded: &Recorded) -> Result<(), StoreError>;
    /// Adds the checkpoint (last applied sequence) to the batch.
    fn set_checkpoint(&self, batch: &mut Batch, seq: u64);
    /// The last sequence applied.
    fn checkpoint(&self) -> Result<u64, StoreError>;
    /// Drops every row and the checkpoint, for a rebuild.
    fn reset(&self) -> Result<(), StoreError>;
}

/// Where the writer loads the aggregates a command touches. Read models
/// written atomically with the log are as current as the log itself, so
/// they can serve; the writer never replays history to decide.
pub trait StateLoader: Send + Sync + 'static {
    /// An organization, if it exists.
    fn load_org(&self, name: &OrgName) -> Result<Option<Organization>, StoreError>;
    /// A repository, if it exists.
    fn load_repo(&self, path: &RepoPath) -> Result<Option<Repository>, StoreError>;
    /// An account and its users, if it exists.
    fn load_account(&self, name: &AccountName) -> Result<Option<Account>, StoreError>;
    /// The sequence number of the event that recorded a request key, if
    /// it is still remembered at `now`.
    fn remembered(&self, scope: &KeyScope, now: DateTime<Utc>) -> Result<Option<u64>, StoreError>;
}

/// Whose key it is: keys are per caller, so two users may pick the same
/// one without meeting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    /// The caller's account.
    pub account: Option<String>,
    /// The caller's user.
    pub user: Option<String>,
    /// The key.
    pub key: String,
}

impl KeyScope {
    /// The scope of `key` sent by `actor`.
    pub fn of(actor: &Actor, key: &str) -> Self {
        Self {
            account: actor.account.clone(),
            user: actor.user.clone(),
            key: key.to_owned(),
        }
    }
}

/// What became of a submitted command.
#[derive(Debug)]
pub enum Outcome {
    /// It was decided and its events are durable.
    Recorded(Vec<Recorded>),
    /// It repeats a keyed request that is already in the log: nothing was
    /// decided, and this is the answer recorded with the first one.
    Replayed(Vec<u8>),
}

/// Who asked, carried into every envelope.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The principal.
    pub actor: Actor,
    /// The request id (also in the access log).
    pub request_id: Uuid,
}

type Reply = oneshot::Sender<Result<Outcome, StoreError>>;

/// Bytes that become durable with a command's events, keyed by digest,
/// and only if the command is accepted.
pub type Content = BTreeMap<Digest, Bytes>;

struct Job {
    command: Command,
    content: Content,
    meta: RequestMeta,
    keyed: Option<Keyed>,
    reply: Reply,
}

/// Work run on the writer thread alone; it returns the command that
/// records what it did.
pub type AloneWork = Box<dyn FnOnce() -> Result<(Command, RequestMeta), StoreError> + Send>;

/// What waits in the writer's queue. Nearly every entry is a command:
/// boxing it to shrink the rare other variant would allocate per command.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// A command, batched with others.
    Decide(Job),
    /// Work that must see every earlier command committed and no later one
    /// decided, then a command of its own in its own batch.
    Alone(AloneWork, Reply),
}

/// Handle to the writer. Cloning is cheap; every clone feeds the same queue.
#[derive(Clone)]
pub struct Engine {
    queue: mpsc::Sender<Work>,
}

/// Opens the log, verifies its tail, brings projections up to date, and
/// starts the writer thread. Returns the handle and the thread to join on
/// shutdown (it ends when every handle is dropped).
pub fn start(
    log: EventLog,
    projector: Arc<dyn Projector>,
    loader: Arc<dyn StateLoader>,
) -> Result<(Engine, thread::JoinHandle<()>), StoreError> {
    start_observed(log, projector, loader, Arc::new(Unobserved))
}

/// Hears about every batch the writer commits: for metrics.
pub trait WriterObserver: Send + Sync + 'static {
    /// A batch of `commands` commands appending `events` events was made
    /// durable; the commit (write and fsync) took `commit`.
    fn batch_committed(&self, commands: usize, events: u64, commit: std::time::Duration);
    /// The log's storage failed: the writer takes no more commands, and
    /// the node must restart to recover (docs/decisions.md says why).
    fn writer_failed(&self, cause: &str);
}

struct Unobserved;

impl WriterObserver for Unobserved {
    fn batch_committed(&self, _: usize, _: u64, _: std::time::Duration) {}
    fn writer_failed(&self, _: &str) {}
}

/// [`start`], with an observer of the writer's batches.
pub fn start_observed(
    log: EventLog,
    projector: Arc<dyn Projector>,
    loader: Arc<dyn StateLoader>,
    observer: Arc<dyn WriterObserver>,
) -> Result<(Engine, thread::JoinHandle<()>), StoreError> {
    let head = startup_check(&log)?;
    catch_up(&log, projector.as_ref())?;
    let last_time = log
        .get(head.seq)?
        .map_or(DateTime::<Utc>::MIN_UTC, |r| r.envelope.occurred_at);
    let (queue, rx) = mpsc::channel(QUEUE);
    let writer = Writer {
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
    };
    let handle = thread::Builder::new()
        .name("berth-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok((Engine { queue }, handle))
}

/// Checks that the log is contiguous and its chain holds from the last
/// verified checkpoint to the head, then moves the checkpoint there.
pub fn startup_check(log: &EventLog) -> Result<ChainPoint, StoreError> {
    let verified = log.verified()?;
    let head = log.verify_from(verified)?;
    if head != verified {
        log.set_verified(head)?;
    }
    tracing::info!(
        head = head.seq,
        checked = head.seq - verified.seq,
        "event log verified"
    );
    Ok(head)
}

/// Replays the events a projector has not seen yet, in batches.
pub fn catch_up(log: &EventLog, projector: &dyn Projector) -> Result<u64, StoreError> {
    const REPLAY_BATCH: usize = 65_536;
    let from = projector.checkpoint()?;
    let start = log.point_at(from)?;
    let mut batch = log.batch();
    let mut pending = 0usize;
    let mut last = from;
    log.scan(start, |recorded| {
        projector.apply(&mut batch, &recorded)?;
        last = recorded.seq;
        pending += 1;
        if pending == REPLAY_BATCH {
            projector.set_checkpoint(&mut batch, last);
            log.commit(std::mem::replace(&mut batch, log.batch()))?;
            pending = 0;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if pending > 0 {
        projector.set_checkpoint(&mut batch, last);
        log.commit(batch)?;
    }
    if last > from {
        tracing::info!(from, to = last, "projections caught up");
    }
    Ok(last)
}

impl Engine {
    /// Decides a command and returns its events once they are durable.
    pub async fn submit(
        &self,
        command: Command,
        meta: RequestMeta,
    ) -> Result<Vec<Recorded>, StoreError> {
        self.submit_with(command, Content::new(), meta).await
    }

    /// Decides a command that brings content (a manifest's bytes): the
    /// content is stored in the same atomic write as the events that accept
    /// it, and not at all if the command is refused.
    pub async fn submit_with(
        &self,
        command: Command,
        content: Content,
        meta: RequestMeta,
    ) -> Result<Vec<Recorded>, StoreError> {
        match self.send(command, content, meta, None).await? {
            Outcome::Recorded(recorded) => Ok(recorded),
            // Only a keyed command is ever replayed.
            Outcome::Replayed(_) => Ok(Vec::new()),
        }
    }

    /// Decides a command sent with an `Idempotency-Key`, unless the same
    /// caller's key is remembered: then the first request's answer comes
    /// back if `keyed` has the same fingerprint, and `KeyReused` if not.
    /// The check is made by the writer, so two retries racing each other
    /// are decided once.
    pub async fn submit_keyed(
        &self,
        command: Command,
        content: Content,
        meta: RequestMeta,
        keyed: Keyed,
    ) -> Result<Outcome, StoreError> {
        self.send(command, content, meta, Some(keyed)).await
    }

    async fn send(
        &self,
        command: Command,
        content: Content,
        meta: RequestMeta,
        keyed: Option<Keyed>,
    ) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            command,
            content,
            meta,
            keyed,
            reply,
        };
        self.queue
            .send(Work::Decide(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `work` on the writer thread between two batches: every command
    /// submitted before it is decided and durable, and none submitted after
    /// it is decided until it returns. The command it returns is then
    /// decided and committed in a batch of its own. This is how garbage
    /// collection removes bytes without racing a push that links them.
    /// The work blocks the writer: keep it short.
    pub async fn alone(&self, work: AloneWork) -> Result<Vec<Recorded>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::Alone(work, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        match answer.await.map_err(|_| StoreError::Closed)?? {
            Outcome::Recorded(recorded) => Ok(recorded),
            Outcome::Replayed(_) => Ok(Vec::new()),
        }
    }
}

struct Writer {
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
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Work>) {
        let mut held = None;
        while let Some(first) = held.take().or_else(|| rx.blocking_recv()) {
            let first = match first {
                Work::Decide(job) => job,
                Work::Alone(work, reply) => {
                    self.alone(work, reply);
                    continue;
                }
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Work::Decide(job)) => jobs.push(job),
                    Ok(alone @ Work::Alone(..)) => {
                        held = Some(alone);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.process(jobs);
        }
        tracing::info!(head = self.head.seq, "writer stopped");
    }

    /// Runs work alone, then commits the command it returns on its own.
    fn alone(&mut self, work: AloneWork, reply: Reply) {
        match work() {
            Ok((command, meta)) => self.process(vec![Job {
                command,
                content: Content::new(),
                meta,
                keyed: None,
                reply,
            }]),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn forget(&mut self) {
        self.cache = Loaded::default();
        self.versions.clear();
    }

    fn process(&mut self, jobs: Vec<Job>) {
        if let Some(cause) = &self.failed {
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Unwritable(cause.clone())));
            }
            return;
        }
        if self.cache.repos.len() > CACHE_LIMIT || self.versions.len() > CACHE_LIMIT {
            self.forget();
        }
        let mut batch = self.log.batch();
        self.batch_keys.clear();
        let start = self.head;
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut failure = None;
        for job in jobs {
            if failure.is_some() {
                outcomes.push((job.reply, Err(StoreError::Closed)));
                continue;
            }
            let result = match self.replayed(&job) {
                Ok(Some(answer)) => Ok(Outcome::Replayed(answer)),
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
            outcomes.push((job.reply, result));
        }
        if failure.is_none() && self.head != start {
            self.log.set_head(&mut batch, self.head);
            self.projector.set_checkpoint(&mut batch, self.head.seq);
            let began = std::time::Instant::now();
            match self.log.commit(batch) {
                Ok(()) => self.observer.batch_committed(
                    outcomes.len(),
                    self.head.seq - start.seq,
                    began.elapsed(),
                ),
                // Refused before anything was written: a definite failure,
                // and the next batch may find space again.
                Err(StoreError::NoSpace(reason)) => {
                    tracing::warn!(%reason, "batch refused: the disk is full");
                    return self.fail_all(start, outcomes, || StoreError::NoSpace(reason.clone()));
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
        if let Some(reason) = failure {
            tracing::error!(%reason, "batch not committed; every command in it fails");
            return self.fail_all(start, outcomes, || StoreError::CommitFailed(reason.clone()));
        }
        for (reply, result) in outcomes {
            let _ = reply.send(result);
        }
    }

    /// Answers every command of a batch that was not committed (those the
    /// domain refused keep their refusal), and forgets what deciding it
    /// assumed.
    fn fail_all(
        &mut self,
        start: ChainPoint,
        outcomes: Vec<(Reply, Result<Outcome, StoreError>)>,
        error: impl Fn() -> StoreError,
    ) {
        self.head = start;
        self.forget();
        for (reply, result) in outcomes {
            // A refusal stays a refusal and a replay a replay: neither
            // wrote anything.
            let answer = match result {
                Err(refused @ (StoreError::Rejected(_) | StoreError::KeyReused { .. })) => {
                    Err(refused)
                }
                Ok(replayed @ Outcome::Replayed(_)) => Ok(replayed),
                _ => Err(error()),
            };
            let _ = reply.send(answer);
        }
    }

    /// The first answer to a keyed request this job repeats, if the
    /// caller's key is remembered (in this batch or in the log) with the
    /// same fingerprint; `KeyReused` if with another.
    fn replayed(&self, job: &Job) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(keyed) = &job.keyed else {
            return Ok(None);
        };
        let scope = KeyScope::of(&job.meta.actor, &keyed.key);
        let first = match self.batch_keys.get(&scope) {
            Some((fingerprint, answer)) => Some((*fingerprint, answer.clone())),
            None => match self.loader.remembered(&scope, Utc::now())? {
                Some(seq) => self
                    .log
                    .get(seq)?
                    .and_then(|r| r.envelope.keyed)
                    .map(|k| (k.fingerprint, k.answer)),
                None => None,
            },
        };
        match first {
            Some((fingerprint, answer)) if fingerprint == keyed.fingerprint => Ok(Some(answer)),
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
        for (digest, bytes) in &job.content {
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
