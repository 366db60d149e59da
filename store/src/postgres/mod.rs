//! The event log in PostgreSQL, for several nodes: the same sealed
//! envelopes and the same hash chain as the local log, in a table ordered
//! by the global sequence number. Writers serialize on a transaction-scoped
//! advisory lock; every node mirrors the table into its own fjall log and
//! read models, woken by `LISTEN/NOTIFY` and polling as a fallback.

use std::ops::ControlFlow;
use std::thread;
use std::time::Duration;

use berth_domain::Digest;
use bytes::Bytes;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Config, NoTls};

use crate::engine::{Sealed, SharedLog, WeakEngine};
use crate::envelope::Recorded;
use crate::error::StoreError;
use crate::log::{link, ChainPoint};

mod conn;
mod sessions;

use conn::Conn;

pub use sessions::PgSessions;

/// The advisory lock every writer of the cluster takes: "berth" in ASCII.
const WRITE_LOCK: i64 = 0x0062_6572_7468;
/// The channel a commit notifies, with the new head as its payload.
const CHANNEL: &str = "berth_log";
/// How long a node waits for a notification before it polls anyway.
const POLL: Duration = Duration::from_secs(1);
/// How long a node lets other nodes' commits gather before it catches up
/// with them: the bound on how stale a read that finds what it asks for
/// may be (one that does not catch up first), and what keeps a busy
/// cluster from catching up once per commit on every node.
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
CREATE TABLE IF NOT EXISTS berth_pins (
    holder    UUID        PRIMARY KEY,
    digest    TEXT        NOT NULL,
    pinned_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS berth_pins_digest ON berth_pins (digest);
";

/// A connection to the shared log, reopened when it breaks.
pub struct PgLog {
    config: Config,
    client: Option<Conn>,
    /// The head of the batch inserted in the open transaction: the other
    /// nodes are notified of it in the commit's round trip.
    inserted: Option<u64>,
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

impl PgLog {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and creates
    /// the log's tables if they are missing.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let mut log = Self {
            config: config(url)?,
            client: None,
            inserted: None,
        };
        log.client()?
            .batch_execute(SCHEMA)
            .map_err(|e| unavailable(&e))?;
        Ok(log)
    }

    /// The open connection, or a new one if there is none or it broke.
    fn client(&mut self) -> Result<&mut Conn, StoreError> {
        if self.client.as_ref().is_none_or(Conn::is_closed) {
            self.client = None;
            let client = self.config.connect(NoTls).map_err(|e| unavailable(&e))?;
            self.client = Some(Conn::new(client));
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::LogUnavailable("no connection".into()))
    }

    /// Runs `f` on the connection; a failure that broke the connection
    /// drops it, so the next call reconnects.
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let client = self.client()?;
        let result = f(client);
        if result.is_err() && client.is_closed() {
            self.client = None;
        }
        result.map_err(|e| unavailable(&e))
    }

    /// [`PgLog::with`], tried once more on a new connection when the first
    /// try found the connection broken: for statements that write nothing
    /// (a read, the opening of a transaction).
    fn again<T>(
        &mut self,
        mut f: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        match self.with(&mut f) {
            Err(_) if self.client.is_none() => self.with(f),
            other => other,
        }
    }

    /// A 32-byte secret every node must share (the token key, the
    /// checkpoint seed): the first node to start stores `fresh`, and every
    /// node then reads the one stored.
    pub fn shared_secret(&mut self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let row = self.with(|c| {
            c.execute(
                "INSERT INTO berth_secrets (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &&fresh[..]],
            )?;
            c.query_one("SELECT key FROM berth_secrets WHERE name = $1", &[&name])
        })?;
        let key: Vec<u8> = row.get(0);
        key.try_into().map_err(|_| StoreError::Corrupt {
            seq: 0,
            reason: format!("the shared secret {name:?} is not 32 bytes"),
        })
    }

    /// The shared log's head: its last sequence number (0 when empty).
    fn head_seq(&mut self) -> Result<u64, StoreError> {
        let row =
            self.with(|c| c.query_one("SELECT COALESCE(MAX(seq), 0) FROM berth_events", &[]))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
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
        match self.head_seq() {
            Ok(0) => {}
            not_empty => {
                self.release();
                return Err(not_empty.err().unwrap_or(StoreError::NotEmpty));
            }
        }
        let last = events.last().map_or(0, |e| e.seq);
        let mut events = events.into_iter().peekable();
        let mut content = Some(content);
        while events.peek().is_some() {
            let mut page: Vec<Sealed> = events.by_ref().take(PAGE).collect();
            if page.last().is_some_and(|e| e.seq == last) {
                if let Some(last) = page.last_mut() {
                    last.content = content.take().unwrap_or_default();
                }
            }
            if let Err(e) = self.insert(page) {
                self.release();
                return Err(e);
            }
        }
        self.commit()
    }
}

impl SharedLog for PgLog {
    /// A connection broken while idle (the server restarted) is only found
    /// broken when it is next used: this first statement of a batch is
    /// then tried once more on a new connection, as nothing was written.
    fn lock(&mut self) -> Result<(), StoreError> {
        let sql = format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})");
        self.again(|c| c.batch_execute(&sql))
    }

    /// One query: the page of events, each with its content rows (an
    /// event with several comes once per row). The content is looked up
    /// per event (`OFFSET 0` keeps the planner from flattening the lateral
    /// join): the generic plan of a prepared join merges with the whole
    /// content table instead, whose cost grows with the log.
    fn since(&mut self, after: u64, limit: usize) -> Result<Vec<Sealed>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.again(|c| {
            c.query(
                "SELECT e.seq, e.body, c.digest, c.body \
                 FROM (SELECT seq, body FROM berth_events WHERE seq > $1 ORDER BY seq LIMIT $2) e \
                 LEFT JOIN LATERAL \
                 (SELECT digest, body FROM berth_content WHERE berth_content.seq = e.seq OFFSET 0) c \
                 ON true ORDER BY e.seq",
                &[&seq_of(after), &limit],
            )
        })?;
        let mut events: Vec<Sealed> = Vec::with_capacity(rows.len());
        for row in rows {
            let seq = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            if events.last().is_none_or(|e| e.seq != seq) {
                events.push(Sealed {
                    seq,
                    value: row.get(1),
                    content: Vec::new(),
                    dropped: Vec::new(),
                });
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
        if let Err(e) = self.insert(events) {
            self.release();
            return Err(e);
        }
        self.commit()
    }

    fn release(&mut self) {
        self.inserted = None;
        if let Some(client) = self.client.as_mut() {
            if client.batch_execute("ROLLBACK").is_err() {
                self.client = None;
            }
        }
    }
}

impl PgLog {
    /// Inserts events and their content in the open transaction.
    fn insert(&mut self, events: Vec<Sealed>) -> Result<(), StoreError> {
        let head = events.last().map_or(0, |e| e.seq);
        let mut seqs = Vec::with_capacity(events.len());
        let mut bodies = Vec::with_capacity(events.len());
        let (mut digests, mut content_seqs, mut content) = (Vec::new(), Vec::new(), Vec::new());
        let mut dropped = Vec::new();
        for event in events {
            dropped.extend(event.dropped.iter().map(ToString::to_string));
            for (digest, bytes) in event.content {
                digests.push(digest.to_string());
                content_seqs.push(seq_of(event.seq));
                content.push(bytes.to_vec());
            }
            seqs.push(seq_of(event.seq));
            bodies.push(event.value);
        }
        self.with(|c| {
            c.execute(
                "INSERT INTO berth_events (seq, body) SELECT * FROM unnest($1::int8[], $2::bytea[])",
                &[&seqs, &bodies],
            )?;
            if !dropped.is_empty() {
                c.execute(
                    "DELETE FROM berth_content WHERE digest = ANY($1::text[])",
                    &[&dropped],
                )?;
            }
            if !digests.is_empty() {
                c.execute(
                    "INSERT INTO berth_content (digest, seq, body) \
                     SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[]) \
                     ON CONFLICT (digest) DO NOTHING",
                    &[&digests, &content_seqs, &content],
                )?;
            }
            Ok(())
        })?;
        self.inserted = Some(head);
        Ok(())
    }

    /// Notifies the other nodes of the new head (delivered at commit) and
    /// commits the open transaction, in one round trip. Only a broken
    /// connection leaves the outcome open: the server may have committed
    /// before it broke. An error the server answered left nothing
    /// committed, and the transaction is ended.
    fn commit(&mut self) -> Result<(), StoreError> {
        let sql = match self.inserted.take() {
            Some(head) => format!("NOTIFY {CHANNEL}, '{head}'; COMMIT"),
            None => "COMMIT".to_owned(),
        };
        let client = self.client()?;
        match client.batch_execute(&sql) {
            Ok(()) => Ok(()),
            Err(e) if e.as_db_error().is_some() => {
                self.release();
                Err(unavailable(&e))
            }
            Err(e) => {
                self.client = None;
                Err(StoreError::OutcomeUnknown(format!(
                    "the event log (PostgreSQL) connection broke at commit: {e}"
                )))
            }
        }
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
                let mut client = config(&url)?.connect(NoTls).map_err(|e| unavailable(&e))?;
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
                    let mut head = heard.and_then(|n| n.payload().parse::<u64>().ok());
                    if head.is_some() {
                        // Commits come in runs: one catch-up takes a run.
                        thread::sleep(FOLLOW_DELAY);
                        let mut pending = client.notifications();
                        let mut later = pending.iter();
                        while let Ok(Some(n)) = later.next() {
                            head = head.max(n.payload().parse().ok());
                        }
                    }
                    if !nudge(head) {
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
