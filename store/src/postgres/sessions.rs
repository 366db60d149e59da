//! Upload sessions in the shared log's database, so that a chunked upload
//! whose requests land on different nodes finds its state on each: the
//! repository, the offset and the running SHA-256 of the bytes so far.
//! The bytes themselves are objects in the object store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_domain::Digest;
use futures_util::future::BoxFuture;
use postgres::{Client, Config, NoTls};
use uuid::Uuid;

use super::conn::Pipe;
use super::removals::Removals;
use super::{config, unavailable};
use crate::error::StoreError;
use crate::gc::SharedPins;
use crate::lease::{Hold, Lease, Leases};

/// Connections kept open between requests, per pool.
const IDLE_CONNECTIONS: usize = 8;

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The repository it was started for.
    pub repo: String,
    /// Bytes received and stored.
    pub offset: u64,
    /// The running hash of those bytes.
    pub hash_state: Vec<u8>,
    /// Where each stored chunk starts, in order: the chunk objects' names,
    /// so that completion need not list them.
    pub chunks: Vec<u64>,
    /// The tag of each chunk, which names its object with its start; empty
    /// for a row written before tags.
    pub tags: Vec<i64>,
    /// Cancelled or failed: the row stays only to say so (a session with
    /// no row may be new, see `SharedUploads`).
    pub ended: bool,
}

/// Blocking connections to one server, reused between calls: for the
/// collectors, readiness and counts, which run on threads of their own.
pub(super) struct Pool {
    config: Config,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    /// Runs `f` on a pooled connection; a broken one is not returned. A
    /// pooled connection is only found broken (the server restarted while
    /// it idled) when it is used: `f` is then run once more on a new one.
    pub(super) fn with<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .filter(|c| !c.is_closed());
        let fresh = || self.config.connect(NoTls).map_err(|e| unavailable(&e));
        let mut conn = match pooled {
            Some(c) => c,
            None => fresh()?,
        };
        let mut result = f(&mut conn);
        if result.is_err() && conn.is_closed() {
            conn = fresh()?;
            result = f(&mut conn);
        }
        let result = result.map_err(|e| unavailable(&e));
        if !conn.is_closed() {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(conn);
            }
        }
        result
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        close_off_runtime(std::mem::take(
            self.idle
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ));
    }
}

/// Drops blocking clients where that is safe. A blocking client closes by
/// running a runtime of its own, which panics on a thread that drives
/// async tasks, and their last owner may be one (a node's state dropped
/// as it stops, which then stops without flushing; a lease's task, as it
/// is aborted). They then close on a thread of their own.
fn close_off_runtime<T: Send + 'static>(clients: T) {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::spawn(move || drop(clients));
    }
}

/// The sessions table and the shared pins. The request path's statements
/// go over two shared connections: one whose commits wait for the
/// server's WAL flush, for what acknowledges bytes, and one whose commits
/// do not (`synchronous_commit = off`), for what a crash of the server may
/// lose at no cost to a client: the row of a session that holds no byte
/// yet, the removal of a finished one, a pin (see docs/decisions.md). The
/// rest (collectors, readiness, counts, leases) blocks, on pooled
/// connections: run it off the async workers.
pub struct PgSessions {
    config: Config,
    pub(super) pool: Pool,
    pub(super) durable: Pipe,
    pub(super) relaxed: Arc<Pipe>,
    /// Finished sessions, removed a run at a time.
    finished: Removals,
    /// Released pins, removed a run at a time.
    released: Removals,
}

/// A session's columns, as `load` and `load_pinned` return them.
fn session_row(r: &tokio_postgres::Row) -> SessionRow {
    SessionRow {
        repo: r.get(0),
        offset: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
        hash_state: r.get(2),
        chunks: r
            .get::<_, Vec<i64>>(3)
            .into_iter()
            .filter_map(|start| u64::try_from(start).ok())
            .collect(),
        ended: r.get(4),
        tags: r.get(5),
    }
}

fn offset_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgSessions {
    /// Sessions in the database at `url` (whose tables `PgLog::connect`
    /// creates).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let config = config(url)?;
        let mut relaxed = config.clone();
        let options = format!(
            "{} -c synchronous_commit=off",
            config.get_options().unwrap_or_default()
        );
        relaxed.options(options.trim());
        let relaxed = Arc::new(Pipe::new(relaxed));
        Ok(Self {
            pool: Pool {
                config: config.clone().into(),
                idle: Mutex::new(Vec::new()),
            },
            durable: Pipe::new(config.clone()),
            finished: Removals::new(
                "UPDATE berth_uploads SET ended = true, updated_at = now() WHERE id = ANY($1)",
                relaxed.clone(),
            ),
            released: Removals::new(
                "DELETE FROM berth_pins WHERE holder = ANY($1)",
                relaxed.clone(),
            ),
            relaxed,
            config: config.into(),
        })
    }

    /// A session, if it exists.
    pub async fn load(&self, id: Uuid) -> Result<Option<SessionRow>, StoreError> {
        let row = self
            .relaxed
            .with(|c| async move {
                c.query_opt(
                    "SELECT repo, upload_offset, hash_state, chunks, ended, chunk_tags \
                     FROM berth_uploads WHERE id = $1",
                    &[&id],
                )
                .await
            })
            .await?;
        Ok(row.as_ref().map(session_row))
    }

    /// A session of `repo` about to be finished as `digest`, which its row
    /// pins (see [`SharedPins`]) until the row goes: one statement, under
    /// the digest's advisory lock, that reads the session and pins, where a
    /// separate pin would take a transaction and a removal of its own. A
    /// session of another repository is neither pinned nor returned, an
    /// ended one returned unpinned.
    pub async fn load_pinned(
        &self,
        id: Uuid,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<SessionRow>, StoreError> {
        let (key, digest) = (pin_key(digest), &digest.to_string());
        let row = self
            .relaxed
            .with(|c| async move {
                c.query_opt(
                    "WITH held AS (SELECT pg_advisory_xact_lock($3)) \
                     UPDATE berth_uploads \
                     SET pinned = CASE WHEN ended THEN pinned ELSE $2 END, updated_at = now() \
                     FROM held WHERE id = $1 AND repo = $4 \
                     RETURNING repo, upload_offset, hash_state, chunks, ended, chunk_tags",
                    &[&id, &digest, &key, &repo],
                )
                .await
            })
            .await?;
        Ok(row.as_ref().map(session_row))
    }

    /// Records a chunk of session `id` of `repo` stored from `from` to
    /// `to` bytes with the new hash state and the chunk's tag, writing the
    /// session's row with its first chunk; false if the session was not at
    /// `from` (another request moved it, or it ended).
    pub async fn advance(
        &self,
        id: Uuid,
        repo: &str,
        (from, to): (u64, u64),
        hash_state: &[u8],
        tag: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (from, to) = (offset_of(from), offset_of(to));
        let tags: &[i64] = &tag.into_iter().collect::<Vec<_>>();
        let row = self
            .durable
            .with(|c| async move {
                c.query_one(
                    "WITH moved AS (UPDATE berth_uploads SET upload_offset = $3, hash_state = $4, \
                     chunks = array_append(chunks, $2), \
                     chunk_tags = chunk_tags || $6::int8[], updated_at = now() \
                     WHERE id = $1 AND upload_offset = $2 AND repo = $5 AND NOT ended \
                     RETURNING id), \
                     born AS (INSERT INTO berth_uploads \
                     (id, repo, upload_offset, hash_state, chunks, chunk_tags) \
                     SELECT $1, $5, $3, $4, ARRAY[$2::int8], $6::int8[] \
                     WHERE $2 = 0 AND NOT EXISTS (SELECT 1 FROM moved) \
                     ON CONFLICT (id) DO NOTHING RETURNING id) \
                     SELECT (SELECT count(*) FROM moved) + (SELECT count(*) FROM born)",
                    &[&id, &from, &to, &hash_state, &repo, &tags],
                )
                .await
            })
            .await?;
        Ok(row.get::<_, i64>(0) == 1)
    }

    /// Ends session `id` of `repo` (cancelled, or failed its digest): its
    /// row stays, marked, until the idle sessions are collected, so that
    /// the session is unknown from then on, not new.
    pub async fn end(&self, id: Uuid, repo: &str) -> Result<(), StoreError> {
        self.relaxed
            .with(|c| async move {
                c.execute(
                    "INSERT INTO berth_uploads (id, repo, upload_offset, hash_state, ended) \
                     VALUES ($1, $2, 0, '', true) \
                     ON CONFLICT (id) DO UPDATE SET ended = true, updated_at = now()",
                    &[&id, &repo],
                )
                .await
            })
            .await
            .map(drop)
    }

    /// Ends a finished session's row, with the others finished meanwhile:
    /// off the request path, where a few milliseconds more of the session
    /// cost nothing. The row stays, ended, until idle sessions are
    /// collected: the session is unknown from then on.
    pub async fn retire(&self, id: Uuid) -> Result<(), StoreError> {
        self.finished.remove(id).await
    }

    /// Forgets a session.
    pub async fn remove(&self, id: Uuid) -> Result<(), StoreError> {
        self.relaxed
            .with(|c| async move {
                c.execute("DELETE FROM berth_uploads WHERE id = $1", &[&id])
                    .await
            })
            .await
            .map(drop)
    }

    /// Whether the database answers: for readiness.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.pool.with(|c| c.batch_execute("SELECT 1"))
    }

    /// Sessions held now.
    pub fn count(&self) -> Result<usize, StoreError> {
        let row = self
            .pool
            .with(|c| c.query_one("SELECT count(*) FROM berth_uploads WHERE NOT ended", &[]))?;
        Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Removes the rows of sessions that ended longer than `max_idle` ago:
    /// by then a client has long stopped asking about them.
    pub fn drop_ended(&self, max_idle: Duration) -> Result<u64, StoreError> {
        let seconds = max_idle.as_secs_f64();
        self.pool.with(|c| {
            c.execute(
                "DELETE FROM berth_uploads \
                 WHERE ended AND updated_at < now() - make_interval(secs => $1)",
                &[&seconds],
            )
        })
    }

    /// Open sessions untouched for longer than `max_idle`, with their
    /// offsets.
    pub fn idle(&self, max_idle: Duration) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let seconds = max_idle.as_secs_f64();
        let rows = self.pool.with(|c| {
            c.query(
                "SELECT id::text, upload_offset FROM berth_uploads \
                 WHERE NOT ended AND updated_at < now() - make_interval(secs => $1)",
                &[&seconds],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id: &str = r.get(0);
                Some((
                    id.parse().ok()?,
                    u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                ))
            })
            .collect())
    }
}

impl PgSessions {
    /// Every session's id: an upload's object without a session is
    /// left over.
    pub fn ids(&self) -> Result<std::collections::HashSet<Uuid>, StoreError> {
        let rows = self
            .pool
            .with(|c| c.query("SELECT id::text FROM berth_uploads", &[]))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<_, &str>(0).parse().ok())
            .collect())
    }
}

/// How long a pin counts: a node that died holding one leaves its row,
/// and no upload waits this long between its bytes and its link.
const PIN_LIFETIME: &str = "1 hour";

/// The advisory-lock key that a digest's pin and its removal share.
fn pin_key(digest: &Digest) -> i64 {
    lock_key(&format!("berth-pin:{digest}"))
}

/// Pins are rows of `berth_pins`. Recording one and a removal's check and
/// removal each hold the digest's transaction-scoped advisory lock, so
/// they exclude each other.
impl SharedPins for PgSessions {
    /// One round trip (a digest and a UUID are safe to write as literals),
    /// committed without waiting for the WAL: a pin lives for seconds, and
    /// a crash of the server fails the upload's link anyway.
    fn pin<'a>(
        &'a self,
        digest: &'a Digest,
        holder: Uuid,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let sql = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}); \
             INSERT INTO berth_pins (holder, digest) VALUES ('{holder}', '{digest}'); COMMIT",
            pin_key(digest)
        );
        Box::pin(async move {
            self.relaxed
                .with(|c| {
                    let sql = sql.clone();
                    async move { c.batch_execute(&sql).await }
                })
                .await
        })
    }

    /// With the pins released meanwhile, a few milliseconds later: the
    /// delete still follows the pin's insert on the same connection.
    fn unpin(&self, holder: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.released.remove(holder))
    }

    fn unless_pinned(
        &self,
        digest: &Digest,
        remove: &mut dyn FnMut() -> Result<bool, StoreError>,
    ) -> Result<Option<bool>, StoreError> {
        let check = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}); \
             DELETE FROM berth_pins WHERE pinned_at < now() - interval '{PIN_LIFETIME}'",
            pin_key(digest)
        );
        self.pool
            .with(|c| {
                c.batch_execute(&check)?;
                let pinned = c.query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM berth_pins WHERE digest = $1) \
                         + (SELECT count(*) FROM berth_uploads WHERE pinned = $1 \
                         AND updated_at > now() - interval '{PIN_LIFETIME}')"
                    ),
                    &[&digest.to_string()],
                );
                let outcome = match pinned {
                    Ok(row) if row.get::<_, i64>(0) == 0 => Ok(Some(remove())),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                };
                c.batch_execute(if outcome.is_ok() {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                })?;
                outcome
            })?
            .transpose()
    }
}

/// The advisory-lock key of a lease: a stable hash of its name, beside the
/// writers' lock.
fn lease_key(name: &str) -> i64 {
    lock_key(&format!("berth-lease:{name}"))
}

/// A stable 64-bit advisory-lock key for a name.
fn lock_key(name: &str) -> i64 {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(name);
    i64::from_be_bytes(hash[..8].try_into().unwrap_or_default())
}

/// Leases are session-level advisory locks, each held by a connection of
/// its own: dropping the lease closes it, and a node that dies gives its
/// leases up with its connections.
impl Leases for PgSessions {
    fn try_take(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(|e| unavailable(&e))?;
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&lease_key(name)])
            .map_err(|e| unavailable(&e))?;
        Ok(row
            .get::<_, bool>(0)
            .then(|| Lease::new(Session(Some(client)))))
    }
}

/// The connection whose session holds a lease's lock.
struct Session(Option<Client>);

impl Hold for Session {
    fn alive(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| c.simple_query("SELECT 1").is_ok())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        close_off_runtime(self.0.take());
    }
}
