//! The single writer: commands queue to one thread, which decides them
//! through the domain, appends their events and projection rows in one
//! fjall batch, makes it durable with one fsync, and only then answers every
//! waiter in the batch (group commit). This module holds the engine's
//! ports, its handle and its start-up; `writer` holds the thread.

mod writer;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use berth_domain::{
    Account, AccountName, Actor, Command, Digest, OrgName, Organization, RepoPath, Repository,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::envelope::{Keyed, Recorded};
use crate::error::StoreError;
use crate::log::{ChainPoint, EventLog};
use crate::table::Batch;
use writer::{Job, Work, Writer};

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

/// An event as it is stored: its sequence number, its sealed bytes (its
/// chain hash, then its encoded envelope), and the content (manifest bytes)
/// its command brought, carried on the command's first event.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Sequence number.
    pub seq: u64,
    /// Hash and encoded envelope, exactly as the local log stores them.
    pub value: Vec<u8>,
    /// Content that became durable with this event.
    pub content: Vec<(Digest, Bytes)>,
    /// Blob bytes for the shared database's blob table, written with this
    /// event (see [`Content::blobs`]); never read back into the log.
    pub blobs: Vec<(Digest, Bytes)>,
    /// Content this event removes (a garbage collection's manifests): the
    /// shared log drops it in the same transaction.
    pub dropped: Vec<Digest>,
}

impl Sealed {
    /// An event read back from where it is stored, before its content is.
    pub fn stored(seq: u64, value: Vec<u8>) -> Self {
        Self {
            seq,
            value,
            content: Vec::new(),
            blobs: Vec::new(),
            dropped: Vec::new(),
        }
    }
}

/// The log of record when several nodes write to one log (PostgreSQL).
/// Each node's local log becomes a mirror of it, and its read models are
/// fed from that mirror; the writer takes the cluster-wide lock, catches up
/// to the head, decides, appends and commits, so every node decides from
/// the same history.
pub trait SharedLog: Send + 'static {
    /// Opens a transaction that holds the cluster-wide write lock until
    /// [`SharedLog::append`] commits it or [`SharedLog::release`] drops it.
    fn lock(&mut self) -> Result<(), StoreError>;
    /// Up to `limit` events after sequence `after`, oldest first.
    fn since(&mut self, after: u64, limit: usize) -> Result<Vec<Sealed>, StoreError>;
    /// Appends a batch in the locked transaction and commits it: the
    /// events are durable when this returns `Ok`.
    fn append(&mut self, events: Vec<Sealed>) -> Result<(), StoreError>;
    /// Ends the locked transaction without appending.
    fn release(&mut self);
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

/// Bytes that become durable with a command's events, keyed by digest,
/// and only if the command is accepted.
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// Kept beside the events themselves (manifests): every node's copy of
    /// the log holds them.
    pub logged: BTreeMap<Digest, Bytes>,
    /// Blobs whose bytes a cluster keeps in its log's database (small
    /// ones sent whole), written in the transaction that links them: no
    /// window where they are stored and unlinked, which a collection would
    /// need a pin to see. A log that is not shared has no place for them.
    pub blobs: BTreeMap<Digest, Bytes>,
}

impl Content {
    /// No content.
    pub fn new() -> Self {
        Self::default()
    }

    /// Content kept with the log.
    pub fn logged(items: impl IntoIterator<Item = (Digest, Bytes)>) -> Self {
        Self {
            logged: items.into_iter().collect(),
            blobs: BTreeMap::new(),
        }
    }
}

/// Work run on the writer thread alone; it returns the command that
/// records what it did.
pub type AloneWork = Box<dyn FnOnce() -> Result<(Command, RequestMeta), StoreError> + Send>;

/// Handle to the writer. Cloning is cheap; every clone feeds the same queue.
#[derive(Clone)]
pub struct Engine {
    queue: mpsc::Sender<Work>,
    /// Whether the log of record is shared with other nodes.
    shared: bool,
    /// The last sequence number known durable, published by the writer
    /// after each commit: rows past it may be a failed batch's.
    durable: Arc<AtomicU64>,
}

/// An [`Engine`] handle that lets the writer stop once every strong handle
/// is gone.
#[derive(Clone)]
pub struct WeakEngine {
    queue: mpsc::WeakSender<Work>,
    shared: bool,
    durable: Arc<AtomicU64>,
}

impl WeakEngine {
    /// The engine, while it runs.
    pub fn upgrade(&self) -> Option<Engine> {
        self.queue.upgrade().map(|queue| Engine {
            queue,
            shared: self.shared,
            durable: self.durable.clone(),
        })
    }
}

/// Opens the log, verifies its tail, brings projections up to date, and
/// starts the writer thread. Returns the handle and the thread to join on
/// shutdown (it ends when every handle is dropped).
pub fn start(
    log: EventLog,
    projector: Arc<dyn Projector>,
    loader: Arc<dyn StateLoader>,
) -> Result<(Engine, thread::JoinHandle<()>), StoreError> {
    start_observed(log, projector, loader, Arc::new(Unobserved), None)
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

/// [`start`], with an observer of the writer's batches, and with the log
/// of record shared with other nodes when `shared` is given: the local
/// log must then be a prefix of it (a mirror that fell behind is caught up
/// by the writer; call [`Engine::sync`] before serving).
pub fn start_observed(
    log: EventLog,
    projector: Arc<dyn Projector>,
    loader: Arc<dyn StateLoader>,
    observer: Arc<dyn WriterObserver>,
    mut shared: Option<Box<dyn SharedLog>>,
) -> Result<(Engine, thread::JoinHandle<()>), StoreError> {
    let head = startup_check(&log)?;
    catch_up(&log, projector.as_ref())?;
    if let Some(shared) = shared.as_deref_mut() {
        mirrors(&log, head, shared)?;
    }
    let last_time = log
        .get(head.seq)?
        .map_or(DateTime::<Utc>::MIN_UTC, |r| r.envelope.occurred_at);
    let (queue, rx) = mpsc::channel(QUEUE);
    let is_shared = shared.is_some();
    let durable = Arc::new(AtomicU64::new(head.seq));
    let writer = Writer::new(
        log,
        projector,
        loader,
        (head, last_time),
        observer,
        (shared, durable.clone()),
    );
    let handle = thread::Builder::new()
        .name("berth-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok((
        Engine {
            queue,
            shared: is_shared,
            durable,
        },
        handle,
    ))
}

/// Checks that the local log is a prefix of the shared one: the shared log
/// holds the local head's event, byte for byte. A local log that is ahead,
/// or that differs, belongs to another history and must not be served.
fn mirrors(log: &EventLog, head: ChainPoint, shared: &mut dyn SharedLog) -> Result<(), StoreError> {
    if head.seq == 0 {
        return Ok(());
    }
    let theirs = shared.since(head.seq - 1, 1)?;
    let ours = log.point_at(head.seq)?;
    match theirs.first() {
        Some(event) if event.seq == head.seq && event.value.get(..ours.hash.len()) == Some(&ours.hash[..]) => Ok(()),
        Some(_) => Err(StoreError::Corrupt {
            seq: head.seq,
            reason: "this node's local log differs from the shared log here: it belongs to another history; move the node's data directory aside to mirror the shared log afresh".into(),
        }),
        None => Err(StoreError::Corrupt {
            seq: head.seq,
            reason: "this node's local log is ahead of the shared log (was the shared log restored from an older backup?); move the node's data directory aside to mirror the shared log afresh".into(),
        }),
    }
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
        if !self.shared && !content.blobs.is_empty() {
            return Err(StoreError::CommitFailed(
                "blob bytes were sent to be written with the log, which is not shared: this node stores them in its blob store".into(),
            ));
        }
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

    /// Brings this node's log and read models up to the shared log's head
    /// as it is now; at once when the log is not shared. A node calls it
    /// before it answers "not found", so that a write acknowledged by
    /// another node is never denied here.
    pub async fn sync(&self) -> Result<(), StoreError> {
        if !self.shared {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::CatchUp(Some(reply)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Asks the writer to catch up from the shared log when it is next
    /// idle, without waiting: for the tail that hears of other nodes'
    /// commits. A nudge that finds the queue full is dropped: the writer
    /// catches up before every batch anyway.
    pub fn nudge(&self) {
        let _ = self.queue.try_send(Work::CatchUp(None));
    }

    /// The last sequence number known durable: a read of a row past it
    /// may see a batch whose commit is failing, which nobody may answer
    /// for.
    pub fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Whether the log of record is shared with other nodes.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// A handle that does not keep the writer running: for threads that
    /// live as long as the writer, not longer.
    pub fn downgrade(&self) -> WeakEngine {
        WeakEngine {
            queue: self.queue.downgrade(),
            shared: self.shared,
            durable: self.durable.clone(),
        }
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
