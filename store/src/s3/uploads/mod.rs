//! Upload sessions several nodes share: each chunk streams into an object
//! of its own (`uploads/<id>/<start>-<tag>`, in multipart parts) on whichever node
//! receives it, which hashes it on the way; the session row in the shared
//! database then carries the offset, the running SHA-256 and the chunks'
//! starts to the next chunk's node. Completion checks the digest from that
//! state, without reading the bytes back, and copies a single chunk into
//! place inside the store (or joins several chunks into the blob object).
//! A blob that arrives whole in one request and fits in one part is
//! verified before it is stored, and then written straight into place: a
//! larger one into its object, a small one into the shared database by
//! the transaction that appends the event linking it.

use std::sync::Arc;
use std::time::Duration;

use berth_domain::{Algorithm, Digest, RepoPath};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use object_store::path::Path as Key;
use object_store::{ObjectStore, WriteMultipart};
use tokio::sync::Mutex as AsyncMutex;
use uuid::Uuid;

use super::hashing::Hashing;
use super::{failed, S3Blobs, UploadIds, PART, PARTS_IN_FLIGHT};
use crate::engine::Content;
use crate::error::StoreError;
use crate::gc::{Pin, Pins};
use crate::postgres::{PgSessions, SessionRow, SMALL_BLOB};
use crate::resumable::Resumable;
use crate::uploads::{next_piece, Chunks, Finished, Session, SessionGuard, UploadStore};

mod completion;
mod ending;

use ending::delete_chunks;

/// Upload sessions in the shared database, bytes in the object store.
pub struct SharedUploads {
    s3: S3Blobs,
    sessions: Arc<PgSessions>,
    ids: UploadIds,
    max_blob: u64,
}

impl SharedUploads {
    /// Sessions in `sessions`, with ids from `ids`, bytes in `s3` (a small
    /// blob sent whole in the database, as [`super::SharedBlobs`] reads
    /// it); chunks past `max_blob` in all are refused.
    pub fn new(s3: S3Blobs, sessions: Arc<PgSessions>, ids: UploadIds, max_blob: u64) -> Self {
        Self {
            s3,
            sessions,
            ids,
            max_blob,
        }
    }

    /// A session for one request, from its row: one of another repository
    /// or an ended one is unknown here. Without a row, a session is new if
    /// this cluster issued its id for `repo`, and unknown if not.
    async fn guard(
        &self,
        id: Uuid,
        repo: &RepoPath,
        row: Option<SessionRow>,
    ) -> Result<SessionGuard, StoreError> {
        let name = repo.to_string();
        let session = match row {
            Some(row) if row.repo == name && !row.ended => Session {
                id,
                repo: repo.clone(),
                offset: row.offset,
                hasher: Resumable::from_bytes(&row.hash_state),
                durable: true,
                chunks: row.chunks,
                tags: row.tags,
            },
            None if self.ids.issued(id, &name) => Session::new(id, repo),
            _ => return Err(StoreError::UploadUnknown),
        };
        Ok(Arc::new(AsyncMutex::new(session)).lock_owned().await)
    }

    /// A chunk's object: named by its start and by the tag of the request
    /// that stored it, so that two requests racing at one offset write two
    /// objects, and the row names the one whose hash it recorded. Rows
    /// written before tags have none: their chunks are named by start.
    fn chunk_key(&self, id: Uuid, start: u64, tag: Option<i64>) -> Key {
        match tag {
            Some(tag) => self.s3.key(&format!("uploads/{id}/{start:020}-{tag:016x}")),
            None => self.s3.key(&format!("uploads/{id}/{start:020}")),
        }
    }

    /// The tag for a session's next chunk: none for a session whose
    /// chunks were stored untagged.
    fn next_tag(session: &Session) -> Option<i64> {
        (session.chunks.len() == session.tags.len()).then(|| {
            let random = Uuid::new_v4();
            i64::from_be_bytes(random.as_bytes()[..8].try_into().unwrap_or_default())
        })
    }

    /// The session's chunk objects in order, checked against its offset:
    /// the starts recorded with the session must begin at 0 and rise, and
    /// carry a tag each, or none at all.
    fn chunks(&self, session: &Session) -> Result<Vec<Key>, StoreError> {
        let (id, starts, tags) = (session.id, &session.chunks, &session.tags);
        let covers = starts
            .first()
            .map_or(session.offset == 0, |first| *first == 0)
            && starts.windows(2).all(|w| w[0] < w[1])
            && starts.last().is_none_or(|last| *last < session.offset)
            && (tags.is_empty() || tags.len() == starts.len());
        if !covers {
            return Err(StoreError::ObjectStore(format!(
                "upload {id}: its recorded chunks {starts:?} (tags {tags:?}) do not cover its {} bytes",
                session.offset
            )));
        }
        Ok(starts
            .iter()
            .enumerate()
            .map(|(i, start)| self.chunk_key(id, *start, tags.get(i).copied()))
            .collect())
    }

    /// Streams a body into one chunk object while a blocking thread hashes
    /// it; the object and the session row move together, or neither does.
    /// With `whole`, the body is the whole blob: when it fits in one part
    /// it is checked against that digest and stored as the blob itself.
    async fn append_body(
        &self,
        session: &mut Session,
        mut body: Chunks,
        expected: Option<u64>,
        whole: Option<&Digest>,
    ) -> Result<Stored, StoreError> {
        let start = session.offset;
        let before = session.hasher.clone();
        let mut hashing = Hashing::new(session.hasher.take());
        let tag = Self::next_tag(session);
        let key = self.chunk_key(session.id, start, tag);
        // Bytes are held until a whole part is there: a chunk smaller than
        // a part (most blobs) is then stored with one request, and only a
        // larger one starts a multipart upload.
        let mut writer: Option<WriteMultipart> = None;
        let mut held: Vec<Bytes> = Vec::new();
        let mut held_len = 0usize;
        let mut written = 0u64;
        let mut failure = None;
        while let Some(piece) = next_piece(&mut body, start, &mut written, self.max_blob).await {
            let chunk = match piece {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if let Err(e) = hashing.feed(&chunk).await {
                failure = Some(e);
                break;
            }
            held_len += chunk.len();
            held.push(chunk);
            if held_len < PART {
                continue;
            }
            let part = match writer.as_mut() {
                Some(w) => w,
                None => match self.s3.store.put_multipart(&key).await {
                    Ok(upload) => writer.insert(WriteMultipart::new_with_chunk_size(upload, PART)),
                    Err(e) => {
                        failure = Some(failed("starting a chunk upload", e));
                        break;
                    }
                },
            };
            if let Err(e) = part.wait_for_capacity(PARTS_IN_FLIGHT).await {
                failure = Some(failed("storing a chunk", e));
                break;
            }
            for bytes in held.drain(..) {
                part.put(bytes);
            }
            held_len = 0;
        }
        let hashed = hashing.finish().await?;
        if failure.is_none() {
            if let Some(e) = expected.filter(|e| *e != written) {
                failure = Some(StoreError::LengthMismatch {
                    expected: e,
                    received: written,
                });
            }
        }
        if let Some(e) = failure {
            if let Some(w) = writer {
                let _ = w.abort().await;
            }
            session.hasher = before;
            return Err(e);
        }
        // A whole blob that fit in memory is checked before anything is
        // written, and then written as the blob itself.
        if let (true, Some(digest), Some(state)) = (writer.is_none(), whole, hashed.clone()) {
            session.hasher = before;
            let actual = Digest::from_bytes(Algorithm::Sha256, &state.finish())?;
            if &actual != digest {
                if !session.durable && written <= SMALL_BLOB {
                    return Ok(Stored::NotWhole(Bytes::from(held.concat()), actual));
                }
                return Err(StoreError::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                });
            }
            if written <= SMALL_BLOB {
                return Ok(Stored::Held(Bytes::from(held.concat())));
            }
            self.s3
                .store
                .put(&self.s3.blob_key(digest), held.into_iter().collect())
                .await
                .map_err(|e| failed("storing the blob", e))?;
            return Ok(Stored::Blob(written));
        }
        let stored = match writer {
            Some(mut w) => {
                for bytes in held {
                    w.put(bytes);
                }
                w.finish().await.map(drop)
            }
            // An empty body stores no chunk.
            None if written == 0 => {
                session.hasher = hashed;
                return Ok(Stored::Chunk);
            }
            None => self
                .s3
                .store
                .put(&key, held.into_iter().collect())
                .await
                .map(drop),
        };
        if let Err(e) = stored {
            session.hasher = before;
            return Err(failed("storing a chunk", e));
        }
        let state = hashed.as_ref().map(Resumable::to_bytes).unwrap_or_default();
        let (id, repo) = (session.id, session.repo.to_string());
        let moved = self
            .sessions
            .advance(id, &repo, (start, start + written), &state, tag)
            .await?;
        if !moved {
            // Another request moved the session first, or it ended: this
            // chunk is no part of it.
            tokio::spawn(delete_chunks(self.s3.store.clone(), id, vec![key]));
            session.hasher = before;
            return Err(StoreError::UploadUnknown);
        }
        session.durable = true;
        session.offset = start + written;
        session.hasher = hashed;
        session.chunks.push(start);
        session.tags.extend(tag);
        Ok(Stored::Chunk)
    }

    /// The last body, then completion; a blob that arrives whole is put in
    /// place by [`SharedUploads::append_body`], or a small one left to the
    /// link's commit, and its session forgotten.
    async fn finish_body(
        &self,
        mut session: SessionGuard,
        body: Chunks,
        expected: Option<u64>,
        digest: &Digest,
    ) -> Result<Finished, StoreError> {
        let whole = (session.offset == 0
            && session.hasher.is_some()
            && digest.algorithm() == Algorithm::Sha256)
            .then_some(digest);
        let (size, content) = match self.append_body(&mut session, body, expected, whole).await {
            Ok(Stored::Blob(size)) => {
                self.retire(&session);
                (size, Content::new())
            }
            Ok(Stored::Held(bytes)) => {
                self.retire(&session);
                let size = bytes.len() as u64;
                let mut content = Content::new();
                content.blobs.insert(digest.clone(), bytes);
                (size, content)
            }
            Ok(Stored::Chunk) => (
                self.complete_session(session, digest).await?,
                Content::new(),
            ),
            Ok(Stored::NotWhole(last, actual)) => (
                self.finish_after_chunks(&session, last, digest, actual)
                    .await?,
                Content::new(),
            ),
            Err(e @ StoreError::DigestMismatch { .. }) => {
                self.forget(&session).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        Ok(Finished { size, content })
    }
}

/// Where [`SharedUploads::append_body`] put a body.
enum Stored {
    /// A chunk of the session, recorded in its row.
    Chunk,
    /// The whole blob, verified, in its place; its size.
    Blob(u64),
    /// The whole blob, verified and small: its bytes, for the database,
    /// with the command that links it.
    Held(Bytes),
    /// Nothing: a small body taken as the whole blob of a session with no
    /// row seen, which it is not (its bytes, and what they hash to).
    NotWhole(Bytes, Digest),
}

impl UploadStore for SharedUploads {
    /// Writes nothing: the session's row comes with its first chunk.
    fn create<'a>(&'a self, repo: &'a RepoPath) -> BoxFuture<'a, Result<Uuid, StoreError>> {
        Box::pin(async move { Ok(self.ids.issue(&repo.to_string())) })
    }

    /// Each request reads the session afresh: the previous chunk may have
    /// gone to another node.
    fn acquire<'a>(
        &'a self,
        id: Uuid,
        repo: &'a RepoPath,
    ) -> BoxFuture<'a, Result<SessionGuard, StoreError>> {
        Box::pin(async move { self.guard(id, repo, self.sessions.load(id).await?).await })
    }

    /// The pin is recorded on the session's row by the statement that
    /// reads it, and goes with the row (see `PgSessions::load_pinned`); a
    /// session with no row is pinned apart. A small body said to be the
    /// whole blob is first taken as that, for a session that this cluster
    /// issued, without a read or a pin: its bytes go to the database with
    /// the event that links them, and the row is read only if they are
    /// not the blob after all.
    fn acquire_pinned<'a>(
        &'a self,
        id: Uuid,
        repo: &'a RepoPath,
        digest: &'a Digest,
        pins: &'a Arc<Pins>,
        whole: Option<u64>,
    ) -> BoxFuture<'a, Result<(SessionGuard, Pin), StoreError>> {
        Box::pin(async move {
            let name = repo.to_string();
            let small = whole.is_some_and(|len| len <= SMALL_BLOB)
                && digest.algorithm() == Algorithm::Sha256;
            if small && self.ids.issued(id, &name) {
                return Ok((self.guard(id, repo, None).await?, pins.hold(digest)));
            }
            let pin = pins.hold(digest);
            match self.sessions.load_pinned(id, &name, digest).await? {
                Some(row) => Ok((self.guard(id, repo, Some(row)).await?, pin)),
                None => {
                    let session = self.guard(id, repo, None).await?;
                    Ok((session, pins.pin(digest).await?))
                }
            }
        })
    }

    fn append<'a>(
        &'a self,
        session: &'a mut Session,
        body: Chunks,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let start = session.offset;
            self.append_body(session, body, expected, None).await?;
            Ok(session.offset - start)
        })
    }

    /// A chunk is durable, object and row, when `append` returns.
    fn persist<'a>(&'a self, _session: &'a mut Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn complete<'a>(
        &'a self,
        session: SessionGuard,
        expected: &'a Digest,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.complete_session(session, expected))
    }

    fn finish<'a>(
        &'a self,
        session: SessionGuard,
        body: Chunks,
        expected: Option<u64>,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<Finished, StoreError>> {
        Box::pin(self.finish_body(session, body, expected, digest))
    }

    fn discard(&self, session: SessionGuard) -> Result<(), StoreError> {
        self.s3.wait(self.forget(&session))
    }

    fn open_sessions(&self) -> Result<usize, StoreError> {
        self.sessions.count()
    }

    fn collect_idle(
        &self,
        max_idle: Duration,
        dry_run: bool,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let idle = self.sessions.idle(max_idle)?;
        if !dry_run {
            for (id, _) in &idle {
                tracing::info!(session = %id, "removing abandoned upload");
                self.s3.wait(self.sessions.remove(*id))?;
            }
            let ended = self.sessions.drop_ended(max_idle)?;
            tracing::info!(rows = ended, "removed the rows of ended upload sessions");
            let removed = self.s3.wait(self.sweep(max_idle))?;
            tracing::info!(objects = removed, "removed left-over upload objects");
        }
        Ok(idle
            .into_iter()
            .map(|(id, bytes)| (id.to_string(), bytes))
            .collect())
    }
}
