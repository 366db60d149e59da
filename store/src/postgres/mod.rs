//! The event log in PostgreSQL, for several nodes: the same sealed
//! envelopes and the same hash chain as the local log, in a table ordered
//! by the global sequence number. Writers serialize on a transaction-scoped
//! advisory lock; every node mirrors the table into its own fjall log and
//! read models, woken by `LISTEN/NOTIFY` and polling as a fallback.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use berth_domain::Digest;
use bytes::Bytes;
use futures_util::future::{join, try_join};
use postgres::fallible_iterator::FallibleIterator;
use tokio_postgres::types::ToSql;
use tokio_postgres::Config;

use crate::engine::{Sealed, SharedLog, WeakEngine};
use crate::envelope::Recorded;
use crate::error::StoreError;
use crate::log::{link, ChainPoint};

mod blobs;
mod conn;
mod removals;
mod sessions;

use conn::{Conn, Pipe};

pub use blobs::SMALL_BLOB;
pub use sessions::{PgSessions, SessionRow};

/// The advisory lock every writer of the cluster takes: "berth" in ASCII.
const WRITE_LOCK: i64 = 0x0062_6572_7468;
/// The channel a commit notifies, with the new head as its payload.
const CHANNEL: &str = "berth_log";
/// How long a node waits for a notification before it polls anyway.
const POLL: Duration = Duration::from_secs(1);
/// How long a node lets other nodes' commits gather, after it caught up on
/// the first of a run at once: the bound on how stale a read that finds
/// what it asks for may be (one that does not catch up first), and what
/// keeps a busy cluster from catching up once per commit on every node.
const FOLLOW_DELAY: Duration = Duration::from_millis(10);
/// How long a connection attempt may take: a log that cannot be reached
/// fails the write fast, and the client retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS berth_events (
    seq  BIGINT PRIMARY KEY,
    body BYTEA  NOT NULL
);
CREATE TABLE IF NOT EXISTS berth_content (
    digest TEXT   PRIMARY KEY,
    seq    BIGINT NOT NULL,
    body   BYTEA  NOT NULL
);
CREATE INDEX IF NOT EXISTS berth_content_seq ON berth_content (seq);
CREATE TABLE IF NOT EXISTS berth_secrets (
    name TEXT  PRIMARY KEY,
    key  BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS berth_uploads (
    id            UUID        PRIMARY KEY,
    repo          TEXT        NOT NULL,
    upload_offset BIGINT      NOT NULL,
    hash_state    BYTEA       NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE berth_uploads ADD COLUMN IF NOT EXISTS chunks BIGINT[] NOT NULL DEFAULT '{}';
ALTER TABLE berth_uploads ADD COLUMN IF NOT EXISTS pinned TEXT;
ALTER TABLE berth_uploads ADD COLUMN IF NOT EXISTS ended BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE berth_uploads ADD COLUMN IF NOT EXISTS chunk_tags BIGINT[] NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS berth_pins (
    holder    UUID        PRIMARY KEY,
    digest    TEXT        NOT NULL,
    pinned_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS berth_pins_digest ON berth_pins (digest);
CREATE TABLE IF NOT EXISTS berth_blobs (
    digest    TEXT        PRIMARY KEY,
    body      BYTEA       NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
";

/// A connection to the shared log, reopened when it breaks. Its calls
/// block: it belongs to a thread of its own (the writer's, a command's),
/// and drives its connection on a runtime of its own.
pub struct PgLog {
    runtime: tokio::runtime::Runtime,
    pipe: Pipe,
    /// The write lock was asked for: it goes out with the next statement,
    /// in the same round trip.
    opening: bool,
}

/// What a PostgreSQL failure means for the request: the log is unavailable
/// and nothing was written.
fn unavailable(e: &postgres::Error) -> StoreError {
    StoreError::LogUnavailable(match e.as_db_error() {
        // The server's own words ("the database system is shutting down").
        Some(db) => db.message().to_owned(),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    })
}

fn seq_of(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Connection settings from a `postgres://` address, with a short
/// connect timeout and keepalives unless the address sets them.
fn config(url: &str) -> Result<Config, StoreError> {
    let mut config: Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::LogUnavailable(format!("{url:?}: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(10));
    Ok(config)
}

const SINCE: &str = "SELECT e.seq, e.body, c.digest, c.body \
     FROM (SELECT seq, body FROM berth_events WHERE seq > $1 ORDER BY seq LIMIT $2) e \
     LEFT JOIN LATERAL \
     (SELECT digest, body FROM berth_content WHERE berth_content.seq = e.seq OFFSET 0) c \
     ON true ORDER BY e.seq";
const DROP_CONTENT: &str = "DELETE FROM berth_content WHERE digest = ANY($1::text[])";
/// A batch's events and the content and small blobs they brought, in one
/// statement. A blob stored again counts as new for the collection's grace
/// period, as an object written again does.
const WRITE: &str = "WITH events AS \
     (INSERT INTO berth_events (seq, body) SELECT * FROM unnest($1::int8[], $2::bytea[])), \
     blobs AS (INSERT INTO berth_blobs (digest, body) \
     SELECT * FROM unnest($6::text[], $7::bytea[]) \
     ON CONFLICT (digest) DO UPDATE SET stored_at = now()) \
     INSERT INTO berth_content (digest, seq, body) \
     SELECT * FROM unnest($3::text[], $4::int8[], $5::bytea[]) \
     ON CONFLICT (digest) DO NOTHING";

impl PgLog {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and creates
    /// the log's tables if they are missing.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::Io)?;
        let log = Self {
            runtime,
            pipe: Pipe::new(config(url)?),
            opening: false,
        };
        log.with(|c| async move { c.batch_execute(SCHEMA).await })?;
        Ok(log)
    }

    /// Runs `f` on the connection, once more on a new one when the first
    /// try found it broken (the server restarted while it idled): every
    /// statement run here writes nothing, or writes it only once (the
    /// schema, a shared secret, the opening of a transaction).
    fn with<T, F: Future<Output = Result<T, postgres::Error>>>(
        &self,
        f: impl Fn(Arc<Conn>) -> F,
    ) -> Result<T, StoreError> {
        self.runtime.block_on(self.pipe.with(f))
    }

    /// A 32-byte secret every node must share (the token key, the
    /// checkpoint seed): the first node to start stores `fresh`, and every
    /// node then reads the one stored.
    pub fn shared_secret(&mut self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let row = self.with(|c| async move {
            c.execute(
                "INSERT INTO berth_secrets (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &&fresh[..]],
            )
            .await?;
            c.query_one("SELECT key FROM berth_secrets WHERE name = $1", &[&name])
                .await
        })?;
        let key: Vec<u8> = row.get(0);
        key.try_into().map_err(|_| StoreError::Corrupt {
            seq: 0,
            reason: format!("the shared secret {name:?} is not 32 bytes"),
        })
    }

    /// Reads the whole log from the start, checking every hash and every
    /// link, and calls `visit` on each event in order (as stored, decoded,
    /// and the chain position it ends) until it says to stop; returns the
    /// last position visited. `berth log verify`, a rebuild and an export
    /// read the shared log through here.
    pub fn scan(
        &mut self,
        mut visit: impl FnMut(&Sealed, Recorded, ChainPoint) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<ChainPoint, StoreError> {
        const PAGE: usize = 10_000;
        let mut at = ChainPoint::START;
        loop {
            let events = self.since(at.seq, PAGE)?;
            let full = events.len() == PAGE;
            for event in events {
                let (recorded, next) = link(at, event.seq, &event.value)?;
                let flow = visit(&event, recorded, next)?;
                at = next;
                if flow.is_break() {
                    return Ok(at);
                }
            }
            if !full {
                return Ok(at);
            }
        }
    }

    /// Fills an empty shared log with a whole log read from elsewhere (an
    /// export), in one transaction under the write lock: all of it or
    /// nothing. Content goes with the last event.
    pub fn import(
        &mut self,
        events: Vec<Sealed>,
        content: Vec<(Digest, Bytes)>,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 5_000;
        self.lock()?;
        match self.since(0, 1) {
            Ok(first) if first.is_empty() => {}
            not_empty => {
                self.release();
                return Err(not_empty.err().unwrap_or(StoreError::NotEmpty));
            }
        }
        let mut pages: Vec<Vec<Sealed>> = Vec::new();
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            pages.push(events.by_ref().take(PAGE).collect());
        }
        let last = pages.pop().unwrap_or_default();
        for page in pages {
            if let Err(e) = self.write(page, false) {
                self.release();
                return Err(e);
            }
        }
        let mut last = last;
        if let Some(event) = last.last_mut() {
            event.content = content;
        }
        self.write(last, true)
    }
}

impl SharedLog for PgLog {
    /// Sent with the catch-up that always follows it: one round trip
    /// takes the lock and reads what other nodes committed before it.
    fn lock(&mut self) -> Result<(), StoreError> {
        self.opening = true;
        Ok(())
    }

    /// One query: the page of events, each with its content rows (an
    /// event with several comes once per row). The content is looked up
    /// per event (`OFFSET 0` keeps the planner from flattening the lateral
    /// join): the generic plan of a prepared join merges with the whole
    /// content table instead, whose cost grows with the log. A connection
    /// broken while idle (the server restarted) is only found broken when
    /// it is next used: this read, and the opening of the transaction sent
    /// with it, are then tried once more on a new connection.
    fn since(&mut self, after: u64, limit: usize) -> Result<Vec<Sealed>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let open = std::mem::take(&mut self.opening);
        let rows = self.with(|c| async move {
            let since = c.statement(SINCE).await?;
            let opened = async {
                match open {
                    true => {
                        c.batch_execute(&format!(
                            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                        ))
                        .await
                    }
                    false => Ok(()),
                }
            };
            let after = seq_of(after);
            let params: [&(dyn ToSql + Sync); 2] = [&after, &limit];
            let read = c.client().query(&since, &params);
            Ok(try_join(opened, read).await?.1)
        })?;
        let mut events: Vec<Sealed> = Vec::with_capacity(rows.len());
        for row in rows {
            let seq = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            if events.last().is_none_or(|e| e.seq != seq) {
                events.push(Sealed::stored(seq, row.get(1)));
            }
            let Some(digest) = row.get::<_, Option<&str>>(2) else {
                continue;
            };
            let digest = Digest::parse(digest).map_err(|e| StoreError::Corrupt {
                seq,
                reason: format!("content stored with it has a bad digest: {e}"),
            })?;
            let bytes = Bytes::from(row.get::<_, Vec<u8>>(3));
            if let Some(event) = events.last_mut() {
                event.content.push((digest, bytes));
            }
        }
        Ok(events)
    }

    fn append(&mut self, events: Vec<Sealed>) -> Result<(), StoreError> {
        self.write(events, true)
    }

    fn release(&mut self) {
        if std::mem::take(&mut self.opening) {
            return;
        }
        if let Some(conn) = self.pipe.current() {
            if self
                .runtime
                .block_on(conn.batch_execute("ROLLBACK"))
                .is_err()
            {
                self.pipe.forget();
            }
        }
    }
}

impl PgLog {
    /// Writes events and their content in the open transaction (one
    /// statement, so that a statement that fails before it is sent writes
    /// none of it) and, when `commit`, notifies the other nodes of the new
    /// head (delivered at commit) and commits: everything in one round
    /// trip. Only a broken connection leaves the outcome open: the server
    /// may have committed before it broke. A statement that failed ended
    /// the transaction without committing what it would have written.
    fn write(&mut self, events: Vec<Sealed>, commit: bool) -> Result<(), StoreError> {
        let head = events.last().map(|e| e.seq);
        let mut seqs = Vec::with_capacity(events.len());
        let mut bodies = Vec::with_capacity(events.len());
        let (mut digests, mut content_seqs, mut content) = (Vec::new(), Vec::new(), Vec::new());
        let mut dropped = Vec::new();
        // One row per digest: an upsert may not touch a row twice in one
        // statement, and two jobs of a batch may bring the same blob.
        let mut blobs = std::collections::BTreeMap::new();
        for event in events {
            dropped.extend(event.dropped.iter().map(ToString::to_string));
            for (digest, bytes) in event.blobs {
                blobs.insert(digest.to_string(), bytes.to_vec());
            }
            for (digest, bytes) in event.content {
                digests.push(digest.to_string());
                content_seqs.push(seq_of(event.seq));
                content.push(bytes.to_vec());
            }
            seqs.push(seq_of(event.seq));
            bodies.push(event.value);
        }
        let (blob_digests, blob_bodies): (Vec<String>, Vec<Vec<u8>>) = blobs.into_iter().unzip();
        let ending = match (commit, head) {
            (false, _) => None,
            (true, Some(head)) => Some(format!("NOTIFY {CHANNEL}, '{head}'; COMMIT")),
            (true, None) => Some("COMMIT".to_owned()),
        };
        let conn = self.runtime.block_on(self.pipe.conn())?;
        let (written, committed) = self.runtime.block_on(async {
            let prepared = try_join(conn.statement(DROP_CONTENT), conn.statement(WRITE)).await;
            let (drop, write) = match prepared {
                Ok(statements) => statements,
                Err(e) => return (Err(e), Ok(())),
            };
            let client = conn.client();
            // Only a collection drops content, and it commits alone.
            let dropping = async {
                match dropped.is_empty() {
                    true => Ok(0),
                    false => client.execute(&drop, &[&dropped]).await,
                }
            };
            let params: [&(dyn ToSql + Sync); 7] = [
                &seqs,
                &bodies,
                &digests,
                &content_seqs,
                &content,
                &blob_digests,
                &blob_bodies,
            ];
            let writing = client.execute(&write, &params);
            let ending = async {
                match &ending {
                    Some(sql) => client.batch_execute(sql).await,
                    None => Ok(()),
                }
            };
            join(try_join(dropping, writing), ending).await
        });
        let failure = match (written, committed) {
            (Ok(_), Ok(())) => return Ok(()),
            (Err(e), _) | (Ok(_), Err(e)) => e,
        };
        if !commit {
            self.release();
        } else if conn.is_closed() && failure.as_db_error().is_none() {
            return Err(StoreError::OutcomeUnknown(format!(
                "the event log (PostgreSQL) connection broke at commit: {failure}"
            )));
        }
        Err(unavailable(&failure))
    }
}

/// Listens for other nodes' commits and nudges the writer to catch up, on
/// every notification of a head past what this node has, and at least once
/// per second (a notification lost while the connection was down is made
/// up by the poll). Runs until the engine stops; it holds no strong
/// handle, so it never keeps it running.
pub fn spawn_tail(url: String, engine: WeakEngine) -> std::io::Result<thread::JoinHandle<()>> {
    let nudge = move |head: Option<u64>| match engine.upgrade() {
        Some(engine) => {
            // This node's own commits come back as notifications too.
            if head.is_none_or(|head| head > engine.durable_seq()) {
                engine.nudge();
            }
            true
        }
        None => false,
    };
    thread::Builder::new()
        .name("berth-log-tail".into())
        .spawn(move || loop {
            let listened = (|| -> Result<(), StoreError> {
                let mut client = postgres::Config::from(config(&url)?)
                    .connect(postgres::NoTls)
                    .map_err(|e| unavailable(&e))?;
                client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .map_err(|e| unavailable(&e))?;
                loop {
                    // Whether a notification came or the wait ran out, the
                    // writer looks: polling covers what LISTEN missed.
                    let heard = client
                        .notifications()
                        .timeout_iter(POLL)
                        .next()
                        .map_err(|e| unavailable(&e))?;
                    let head = heard.and_then(|n| n.payload().parse::<u64>().ok());
                    if !nudge(head) {
                        return Ok(());
                    }
                    if head.is_none() {
                        continue;
                    }
                    // A commit is caught up on at once; those that follow
                    // it within the delay come in runs, and one catch-up
                    // takes the rest of the run.
                    thread::sleep(FOLLOW_DELAY);
                    let mut pending = client.notifications();
                    let mut later = pending.iter();
                    let mut rest = None;
                    while let Ok(Some(n)) = later.next() {
                        rest = rest.max(n.payload().parse::<u64>().ok());
                    }
                    if rest.is_some() && !nudge(rest) {
                        return Ok(());
                    }
                }
            })();
            match listened {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "listening to the shared log failed; retrying");
                    if !nudge(None) {
                        return;
                    }
                    thread::sleep(POLL);
                }
            }
        })
}
