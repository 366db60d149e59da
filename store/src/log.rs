//! The append-only event log in fjall: one keyspace keyed by big-endian
//! sequence number, a meta keyspace with the chain head and the last
//! verified checkpoint, and the version of every stream.

use std::ops::{ControlFlow, RangeInclusive};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use berth_domain::{Digest, Event};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode,
    Readable,
};
use uuid::Uuid;

use crate::checkpoint::Checkpoint;
use crate::envelope::{open, Hash, Recorded, GENESIS, HASH_LEN};
use crate::error::StoreError;
use crate::space::Space;
use crate::table::{Batch, Table};

const HEAD: &[u8] = b"head";
const VERIFIED: &[u8] = b"verified";

/// A position in the chain: a sequence number and the hash ending there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPoint {
    /// Sequence number (0 before the first event).
    pub seq: u64,
    /// Chain hash at `seq`.
    pub hash: Hash,
}

impl ChainPoint {
    /// The empty log.
    pub const START: Self = Self {
        seq: 0,
        hash: GENESIS,
    };

    fn encode(&self) -> Vec<u8> {
        let mut v = self.seq.to_be_bytes().to_vec();
        v.extend_from_slice(&self.hash);
        v
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let hash = bytes.get(8..8 + HASH_LEN)?.try_into().ok()?;
        Some(Self { seq, hash })
    }
}

/// Block cache of the database unless configured: fjall's own default
/// (32 MiB) lets a scan of a million events evict the index blocks that
/// point reads of old events need, which then cost milliseconds each.
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// The fjall database that holds the log and, in the same database so that
/// one batch covers both, every projection.
#[derive(Clone)]
pub struct EventLog {
    db: Database,
    events: Keyspace,
    meta: Keyspace,
    streams: Keyspace,
    content: Keyspace,
    /// The free-space guard, once the server sets one.
    space: Arc<OnceLock<Space>>,
    /// Commits until the injected failure (0: none); test builds only.
    #[cfg(feature = "fault-injection")]
    fault: Arc<std::sync::atomic::AtomicU64>,
}

impl EventLog {
    /// Opens (or creates) the database under `dir` with the default block
    /// cache.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the database under `dir` with a block cache of
    /// `cache_bytes`: reads of old events and index lookups stay in memory
    /// while it holds the tables' index and filter blocks.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = Database::builder(dir)
            .manual_journal_persist(true)
            .cache_size(cache_bytes)
            .open()?;
        // Every event is its own checksummed, uncompressed record in a value
        // file: damage to one event's bytes fails that event's read alone,
        // so verification names it exactly.
        let events = db.keyspace("log", || {
            KeyspaceCreateOptions::default().with_kv_separation(Some(
                KvSeparationOptions::default()
                    .separation_threshold(1)
                    .compression(CompressionType::None),
            ))
        })?;
        let meta = db.keyspace("log_meta", KeyspaceCreateOptions::default)?;
        let streams = db.keyspace("log_streams", KeyspaceCreateOptions::default)?;
        let content = db.keyspace("manifest_content", KeyspaceCreateOptions::default)?;
        Ok(Self {
            db,
            events,
            meta,
            streams,
            content,
            space: Arc::default(),
            #[cfg(feature = "fault-injection")]
            fault: Arc::new(std::sync::atomic::AtomicU64::new(
                std::env::var("BERTH_FAULT_FAIL_COMMIT")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            )),
        })
    }

    /// Copies every keyspace, as of one instant, into a new database under
    /// `target`, and makes it durable; returns the head at that instant.
    /// The server keeps writing meanwhile: fjall's snapshot is consistent
    /// across keyspaces, so the copy holds the log, its chain head and the
    /// read models at one point, with their checkpoint.
    pub fn copy_to(&self, target: &Path) -> Result<ChainPoint, StoreError> {
        const ROWS_PER_BATCH: usize = 10_000;
        let snapshot = self.db.snapshot();
        let head = match snapshot.get(&self.meta, HEAD)? {
            None => ChainPoint::START,
            Some(v) => ChainPoint::decode(&v).ok_or_else(|| StoreError::Corrupt {
                seq: 0,
                reason: "the head record is malformed".into(),
            })?,
        };
        let copy = Self::open(target)?;
        for name in self.db.list_keyspace_names() {
            let name: &str = name.as_ref();
            let from = self.db.keyspace(name, KeyspaceCreateOptions::default)?;
            // The log's own keyspaces exist in the copy already, with their
            // options; the read models' are made here.
            let to = copy.db.keyspace(name, KeyspaceCreateOptions::default)?;
            let mut batch = copy.db.batch();
            let mut rows = 0;
            for item in snapshot.iter(&from) {
                let (k, v) = item.into_inner()?;
                batch.insert(&to, k, v);
                rows += 1;
                if rows % ROWS_PER_BATCH == 0 {
                    std::mem::replace(&mut batch, copy.db.batch()).commit()?;
                }
            }
            batch.commit()?;
        }
        copy.db.persist(PersistMode::SyncAll)?;
        copy.flush()?;
        Ok(head)
    }

    /// A table of the database, for a read model's rows: in the same
    /// database as the log, so one batch covers both.
    pub fn table(&self, name: &str) -> Result<Table, StoreError> {
        Ok(Table {
            keyspace: self.db.keyspace(name, KeyspaceCreateOptions::default)?,
            name: name.into(),
        })
    }

    /// A new batch to append events and projection rows atomically.
    pub fn batch(&self) -> Batch {
        Batch::new(self.db.batch())
    }

    /// Guards every later commit with a free-space check: a commit that
    /// would eat into the log's reserve is refused before anything is
    /// written (`StoreError::NoSpace`).
    pub fn guard_space(&self, space: Space) {
        let _ = self.space.set(space);
    }

    /// Commits a batch and makes it durable before returning.
    pub fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if let Some(space) = self.space.get() {
            space.check_events()?;
        }
        batch.into_writes()?.commit()?;
        #[cfg(feature = "fault-injection")]
        if self.fault_due() {
            return Err(StoreError::Io(std::io::Error::from_raw_os_error(libc::EIO)));
        }
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Whether this commit is the one to fail: counts down, once.
    #[cfg(feature = "fault-injection")]
    fn fault_due(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.fault
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok_and(|before| before == 1)
    }

    /// The last appended event's position, as recorded by the writer.
    pub fn head(&self) -> Result<ChainPoint, StoreError> {
        self.point(HEAD)
    }

    /// The last position verified at startup.
    pub fn verified(&self) -> Result<ChainPoint, StoreError> {
        self.point(VERIFIED)
    }

    fn point(&self, key: &[u8]) -> Result<ChainPoint, StoreError> {
        match self.meta.get(key)? {
            None => Ok(ChainPoint::START),
            Some(v) => ChainPoint::decode(&v).ok_or_else(|| StoreError::Corrupt {
                seq: 0,
                reason: format!(
                    "meta record {:?} is malformed",
                    String::from_utf8_lossy(key)
                ),
            }),
        }
    }

    /// Writes every keyspace's memtable to its table files, so the journal
    /// holds nothing that the tables do not; called on clean shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in self.db.list_keyspace_names() {
            self.db
                .keyspace(&name, KeyspaceCreateOptions::default)?
                .rotate_memtable_and_wait()?;
        }
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Records a verified checkpoint, trusted by the next startup.
    pub fn set_verified(&self, point: ChainPoint) -> Result<(), StoreError> {
        self.meta.insert(VERIFIED, point.encode())?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Adds one sealed event to a batch.
    pub(crate) fn append(&self, batch: &mut Batch, seq: u64, value: Vec<u8>) {
        batch.inner.insert(&self.events, seq.to_be_bytes(), value);
    }

    /// Adds an event sealed elsewhere (the shared log, an export) to a
    /// batch, with its stream's version and the content it brought; the
    /// caller has checked its link with [`link`].
    pub fn mirror(&self, batch: &mut Batch, event: &crate::engine::Sealed, recorded: &Recorded) {
        self.append(batch, event.seq, event.value.clone());
        self.set_stream_version(
            batch,
            recorded.envelope.stream,
            recorded.envelope.stream_version,
        );
        for (digest, bytes) in &event.content {
            self.put_content(batch, digest, bytes);
        }
        for digest in dropped_content(&recorded.event) {
            batch.inner.remove(&self.content, digest.to_string());
        }
    }

    /// Adds the new head to a batch, for a log filled by [`EventLog::mirror`].
    pub fn record_head(&self, batch: &mut Batch, head: ChainPoint) {
        self.set_head(batch, head);
    }

    /// Commits a batch without waiting for the disk: for a node whose log
    /// of record is shared, where the local log is a mirror that a restart
    /// catches up again from the shared one.
    pub(crate) fn commit_mirrored(&self, batch: Batch) -> Result<(), StoreError> {
        batch.into_writes()?.commit()?;
        Ok(())
    }

    /// Adds the new head to a batch.
    pub(crate) fn set_head(&self, batch: &mut Batch, head: ChainPoint) {
        batch.inner.insert(&self.meta, HEAD, head.encode());
    }

    /// Adds a stream's new version to a batch.
    pub(crate) fn set_stream_version(&self, batch: &mut Batch, stream: Uuid, version: u64) {
        batch
            .inner
            .insert(&self.streams, stream.as_bytes(), version.to_be_bytes());
    }

    /// Adds content (manifest bytes) to a batch, keyed by its digest. Small
    /// content lives in the database rather than in files so that it becomes
    /// durable in the same atomic write as the events that accept it.
    pub(crate) fn put_content(&self, batch: &mut Batch, digest: &Digest, bytes: &[u8]) {
        batch.inner.insert(&self.content, digest.to_string(), bytes);
    }

    /// Stored content by digest.
    pub fn content(&self, digest: &Digest) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .content
            .get(digest.to_string())?
            .map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Every stored content's digest and size, for garbage collection.
    pub fn contents(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.content.iter() {
            let (k, v) = item.into_inner()?;
            if let Ok(digest) = Digest::parse(&String::from_utf8_lossy(&k)) {
                out.push((digest, v.len() as u64));
            }
        }
        Ok(out)
    }

    /// Removes stored content (manifests nothing references any more) in
    /// one durable write.
    pub fn remove_contents(&self, digests: &[Digest]) -> Result<(), StoreError> {
        if digests.is_empty() {
            return Ok(());
        }
        let mut batch = self.batch();
        for digest in digests {
            batch.inner.remove(&self.content, digest.to_string());
        }
        self.commit(batch)
    }

    /// The number of events in a stream so far.
    pub fn stream_version(&self, stream: Uuid) -> Result<u64, StoreError> {
        Ok(self
            .streams
            .get(stream.as_bytes())?
            .and_then(|v| v.as_ref().try_into().ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Reads events after `from`, checking every hash and every link, and
    /// calls `visit` on each in order until it says to stop. Stops at the
    /// first bad event and names its sequence number; returns the last
    /// position visited.
    pub fn scan(
        &self,
        from: ChainPoint,
        mut visit: impl FnMut(Recorded) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<ChainPoint, StoreError> {
        self.scan_stored(from, |recorded, _| visit(recorded))
    }

    /// [`EventLog::scan`], with each event's stored bytes beside it: an
    /// export copies them as they are, so old schemas stay old.
    pub fn scan_stored(
        &self,
        from: ChainPoint,
        mut visit: impl FnMut(Recorded, &[u8]) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<ChainPoint, StoreError> {
        let mut at = from;
        for item in self.events.range((from.seq + 1).to_be_bytes()..) {
            let expected = at.seq + 1;
            let (key, value) = item.into_inner().map_err(|e| StoreError::Corrupt {
                seq: expected,
                reason: format!("storage cannot read the event: {e}"),
            })?;
            let seq = key
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    seq: expected,
                    reason: "log key is not a sequence number".into(),
                })?;
            let (recorded, next) = link(at, seq, &value)?;
            let flow = visit(recorded, &value)?;
            at = next;
            if flow.is_break() {
                break;
            }
        }
        Ok(at)
    }

    /// Reads the events whose sequence numbers lie in `seqs`, each checked
    /// against its own hash, newest first or oldest first, until `visit`
    /// says to stop. For audit queries that read the log itself.
    pub fn each_in(
        &self,
        seqs: RangeInclusive<u64>,
        newest_first: bool,
        mut visit: impl FnMut(Recorded) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let range = seqs.start().to_be_bytes()..=seqs.end().to_be_bytes();
        let items = self.events.range(range);
        let items: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(items.rev())
        } else {
            Box::new(items)
        };
        for item in items {
            let (key, value) = item.into_inner()?;
            let seq = key
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    seq: *seqs.start(),
                    reason: "log key is not a sequence number".into(),
                })?;
            if visit(open(seq, &value)?.0)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The last sequence number at or before an instant (0 when the log
    /// starts later): the writer never lets times go backwards, so a binary
    /// search over the log.
    pub fn seq_at(&self, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let (mut lo, mut hi) = (0u64, self.head()?.seq);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let time = self.get(mid)?.map(|r| r.envelope.occurred_at);
            if time.is_some_and(|t| t <= at) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// One event, checked against its own hash (its link backwards is
    /// checked by full verification).
    pub fn get(&self, seq: u64) -> Result<Option<Recorded>, StoreError> {
        match self.events.get(seq.to_be_bytes())? {
            Some(value) => Ok(Some(open(seq, &value)?.0)),
            None => Ok(None),
        }
    }

    /// The chain position at `seq`: the event there, checked against its own
    /// hash (its link backwards is checked by full verification).
    pub fn point_at(&self, seq: u64) -> Result<ChainPoint, StoreError> {
        if seq == 0 {
            return Ok(ChainPoint::START);
        }
        let value = self
            .events
            .get(seq.to_be_bytes())?
            .ok_or_else(|| StoreError::Corrupt {
                seq,
                reason: "event is missing from the log".into(),
            })?;
        let (_, hash) = open(seq, &value)?;
        Ok(ChainPoint { seq, hash })
    }

    /// Checks that the log still extends a held checkpoint: it reaches the
    /// checkpoint's sequence number, and the event there has the chain hash
    /// the checkpoint holds. With the chain verified, that proves every
    /// event up to it is unchanged.
    pub fn extends(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let head = self.head()?;
        if checkpoint.seq > head.seq {
            return Err(StoreError::Corrupt {
                seq: head.seq + 1,
                reason: format!(
                    "the log ends at sequence {} but a checkpoint of {} holds sequence {}: events were removed",
                    head.seq, checkpoint.time, checkpoint.seq
                ),
            });
        }
        let at = self.point_at(checkpoint.seq)?;
        if Some(at.hash) != checkpoint.hash_bytes() {
            return Err(StoreError::Corrupt {
                seq: checkpoint.seq,
                reason: format!(
                    "the chain hash here is not the one the checkpoint of {} holds: the log was rewritten up to here",
                    checkpoint.time
                ),
            });
        }
        Ok(())
    }

    /// Verifies the chain from `from` to the recorded head.
    pub fn verify_from(&self, from: ChainPoint) -> Result<ChainPoint, StoreError> {
        let head = self.head()?;
        if head.seq < from.seq {
            return Err(StoreError::Corrupt {
                seq: head.seq + 1,
                reason: format!(
                    "the log's head is {} but sequence {} was verified earlier: events were lost",
                    head.seq, from.seq
                ),
            });
        }
        let end = self.scan(from, |_| Ok(ControlFlow::Continue(())))?;
        if end.seq != head.seq {
            return Err(StoreError::Corrupt {
                seq: end.seq.min(head.seq) + 1,
                reason: format!(
                    "the log ends at sequence {} but its recorded head is {}",
                    end.seq, head.seq
                ),
            });
        }
        if end.hash != head.hash {
            return Err(StoreError::Corrupt {
                seq: end.seq,
                reason: "the last event does not match the head hash recorded with it".into(),
            });
        }
        Ok(end)
    }
}

/// Checks that a stored event follows `at` (the next sequence number, and
/// a previous-hash link to `at`'s hash) and its own hash; returns it and
/// the chain position it ends. Every reader of a whole chain goes through
/// here: the local scan, the shared log's verification and a mirror's
/// catch-up.
/// The stored content an event removes: the manifests a garbage
/// collection step swept. The node that swept removed its own copy; every
/// other copy (the shared log's, the other nodes' mirrors) goes with the
/// event.
pub(crate) fn dropped_content(event: &Event) -> impl Iterator<Item = &Digest> {
    let swept = match event {
        Event::GarbageCollected { manifests, .. } => manifests.as_slice(),
        _ => &[],
    };
    swept.iter().map(|(digest, _)| digest)
}

pub fn link(at: ChainPoint, seq: u64, value: &[u8]) -> Result<(Recorded, ChainPoint), StoreError> {
    if seq != at.seq + 1 {
        return Err(StoreError::Corrupt {
            seq: at.seq + 1,
            reason: format!("sequence jumps from {} to {seq}", at.seq),
        });
    }
    let (recorded, hash) = open(seq, value)?;
    if recorded.envelope.prev_hash != at.hash {
        return Err(StoreError::Corrupt {
            seq,
            reason: format!(
                "its previous-hash link does not match event {} (that event or this link was rewritten)",
                at.seq
            ),
        });
    }
    Ok((recorded, ChainPoint { seq, hash }))
}
