//! Blob upload sessions: the port the registry's handlers see (a session,
//! its bytes streamed in and checked against a digest at the end), and
//! the local store behind it (`local`).

use std::sync::Arc;
use std::time::Duration;

use berth_domain::{Digest, RepoPath};
use bytes::Bytes;
use futures_util::future::{try_join, BoxFuture};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use crate::engine::Content;
use crate::error::StoreError;
use crate::gc::{Pin, Pins};
use crate::resumable::Resumable;

mod file;
mod local;

pub use local::LocalUploads;

/// One upload in progress.
#[derive(Debug)]
pub struct Session {
    /// Session id, the last segment of its URL.
    pub id: Uuid,
    /// The repository it was started for.
    pub repo: RepoPath,
    /// Bytes durably received.
    pub offset: u64,
    /// SHA-256 of the first `offset` bytes, when it is known: kept while
    /// the server runs (locally) or in the shared session row; without it
    /// the bytes are hashed again on completion.
    pub(crate) hasher: Option<Resumable>,
    /// Whether the session's files are known to be on disk.
    pub(crate) durable: bool,
    /// Where each stored chunk starts, for a store that keeps chunks
    /// apart until completion (the shared one); empty elsewhere.
    pub(crate) chunks: Vec<u64>,
    /// The tag of each stored chunk, which names its object with its start
    /// (the shared store); empty elsewhere.
    pub(crate) tags: Vec<i64>,
}

impl Session {
    /// A session that holds no byte yet, and nothing of it is stored.
    pub(crate) fn new(id: Uuid, repo: &RepoPath) -> Self {
        Self {
            id,
            repo: repo.clone(),
            offset: 0,
            hasher: Some(Resumable::default()),
            durable: false,
            chunks: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// An exclusive hold on a session for one request.
pub type SessionGuard = OwnedMutexGuard<Session>;

/// Bytes of a request body as they arrive from the network.
pub type Chunks = BoxStream<'static, Result<Bytes, BoxError>>;

/// Why a request body broke off.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A verified upload, ready to be linked.
#[derive(Debug)]
pub struct Finished {
    /// The blob's size.
    pub size: u64,
    /// What the command that links it must carry: the blob's bytes, when
    /// the store leaves their writing to that command's commit.
    pub content: Content,
}

/// Where upload sessions live between a client's requests. Handlers see
/// only this, so sessions shared between several nodes can stand in for
/// local ones without touching them.
pub trait UploadStore: Send + Sync + 'static {
    /// Starts a session for `repo`.
    fn create<'a>(&'a self, repo: &'a RepoPath) -> BoxFuture<'a, Result<Uuid, StoreError>>;
    /// Takes the session for one request. A session of another repository
    /// is unknown here, as is one that does not exist.
    fn acquire<'a>(
        &'a self,
        id: Uuid,
        repo: &'a RepoPath,
    ) -> BoxFuture<'a, Result<SessionGuard, StoreError>>;
    /// Takes the session to finish it as `digest`, pinned in `pins` from
    /// before its bytes move in until the pin is dropped (after the link
    /// is decided): in one step, where the store records the pin with the
    /// session. `whole` is the length of the request's body when it
    /// names no range: a store may then take the body as the whole blob
    /// before it reads the session.
    fn acquire_pinned<'a>(
        &'a self,
        id: Uuid,
        repo: &'a RepoPath,
        digest: &'a Digest,
        pins: &'a Arc<Pins>,
        _whole: Option<u64>,
    ) -> BoxFuture<'a, Result<(SessionGuard, Pin), StoreError>> {
        Box::pin(try_join(self.acquire(id, repo), pins.pin(digest)))
    }
    /// Appends a body, hashing as it goes. When `expected` is given the
    /// body must be exactly that long. Nothing of a failed chunk is kept.
    fn append<'a>(
        &'a self,
        session: &'a mut Session,
        body: Chunks,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    /// Makes the session durable before a chunk the client may resume from
    /// is acknowledged.
    fn persist<'a>(&'a self, session: &'a mut Session) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Verifies the bytes against `expected` and hands them to the blob
    /// store; returns the blob size.
    fn complete<'a>(
        &'a self,
        session: SessionGuard,
        expected: &'a Digest,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    /// Appends the last body (empty when the client sent the bytes
    /// before), then completes: one call, so that a store may put a blob
    /// that arrives whole straight into its place, or leave its bytes to
    /// the link's commit.
    fn finish<'a>(
        &'a self,
        mut session: SessionGuard,
        body: Chunks,
        expected: Option<u64>,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<Finished, StoreError>> {
        Box::pin(async move {
            self.append(&mut session, body, expected).await?;
            let size = self.complete(session, digest).await?;
            Ok(Finished {
                size,
                content: Content::new(),
            })
        })
    }
    /// Cancels a session and removes what it holds.
    fn discard(&self, session: SessionGuard) -> Result<(), StoreError>;
    /// Sessions held now, open or abandoned and not yet removed.
    fn open_sessions(&self) -> Result<usize, StoreError>;
    /// Removes sessions idle for longer than `max_idle` (abandoned pushes)
    /// and not in a request now, or with `dry_run` only lists them; returns
    /// each one's id and the bytes it held.
    fn collect_idle(
        &self,
        max_idle: Duration,
        dry_run: bool,
    ) -> Result<Vec<(String, u64)>, StoreError>;
}

/// The next piece of a chunk's body, counted against the blob size limit
/// from the session's `start`: `None` at its end, an error when the body
/// broke off or the blob would pass `limit`.
pub(crate) async fn next_piece(
    body: &mut Chunks,
    start: u64,
    received: &mut u64,
    limit: u64,
) -> Option<Result<Bytes, StoreError>> {
    let chunk = match body.next().await? {
        Ok(c) => c,
        Err(e) => return Some(Err(StoreError::BodyAborted(e.to_string()))),
    };
    *received += chunk.len() as u64;
    if start + *received > limit {
        return Some(Err(StoreError::TooLarge { limit }));
    }
    Some(Ok(chunk))
}

#[cfg(test)]
mod tests;
