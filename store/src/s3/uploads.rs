//! Upload sessions several nodes share: each chunk streams into one object
//! (`uploads/<id>/<start offset>`, in multipart parts) on whichever node
//! receives it, which hashes it on the way; the session row in the shared
//! database then carries the offset and the running SHA-256 to the next
//! chunk's node. Completion checks the digest from that state, without
//! reading the bytes back, and copies a single chunk into place inside the
//! store (or joins several chunks into the blob object).

use std::sync::Arc;
use std::time::Duration;

use berth_domain::{Algorithm, Digest, RepoPath};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest as _, Sha256, Sha512};
use tokio::sync::{mpsc, Mutex as AsyncMutex};
use uuid::Uuid;

use super::{failed, S3Blobs, PART, PARTS_IN_FLIGHT};
use crate::error::StoreError;
use crate::postgres::PgSessions;
use crate::resumable::Resumable;
use crate::uploads::{next_piece, Chunks, Session, SessionGuard, UploadStore};

/// Upload sessions in the shared database, bytes in the object store.
pub struct SharedUploads {
    s3: S3Blobs,
    sessions: Arc<PgSessions>,
    max_blob: u64,
}

/// Runs blocking session-table work off the async workers.
async fn table<T: Send + 'static>(
    sessions: &Arc<PgSessions>,
    f: impl FnOnce(&PgSessions) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let sessions = sessions.clone();
    tokio::task::spawn_blocking(move || f(&sessions)).await?
}

impl SharedUploads {
    /// Sessions in `sessions`, bytes in `s3`; chunks past `max_blob` in
    /// all are refused.
    pub fn new(s3: S3Blobs, sessions: PgSessions, max_blob: u64) -> Self {
        Self {
            s3,
            sessions: Arc::new(sessions),
            max_blob,
        }
    }

    fn chunk_prefix(&self, id: Uuid) -> Key {
        self.s3.key(&format!("uploads/{id}"))
    }

    fn chunk_key(&self, id: Uuid, start: u64) -> Key {
        self.s3.key(&format!("uploads/{id}/{start:020}"))
    }

    /// The session's chunk objects in order, checked to cover exactly its
    /// first `offset` bytes; a chunk past the offset (written, then not
    /// recorded) is left for removal with the session.
    async fn chunks(&self, id: Uuid, offset: u64) -> Result<Vec<Key>, StoreError> {
        let prefix = self.chunk_prefix(id);
        let mut listing = self.s3.store.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| failed("listing an upload's chunks", e))?;
            let start = meta
                .location
                .filename()
                .and_then(|name| name.parse::<u64>().ok());
            if let Some(start) = start {
                found.push((start, meta.size, meta.location));
            }
        }
        found.sort_by_key(|(start, ..)| *start);
        let mut at = 0;
        let mut keys = Vec::new();
        for (start, size, key) in found {
            if start >= offset {
                break;
            }
            if start != at {
                return Err(StoreError::ObjectStore(format!(
                    "upload {id}: its chunks leave a gap at byte {at}"
                )));
            }
            at += size;
            keys.push(key);
        }
        if at != offset {
            return Err(StoreError::ObjectStore(format!(
                "upload {id}: its chunks hold {at} bytes, not {offset}"
            )));
        }
        Ok(keys)
    }

    /// Streams a body into one chunk object while a blocking thread hashes
    /// it; the object and the session row move together, or neither does.
    async fn append_body(
        &self,
        session: &mut Session,
        mut body: Chunks,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let start = session.offset;
        let before = session.hasher.clone();
        let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(PARTS_IN_FLIGHT);
        let mut running = session.hasher.take();
        let hashing = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = rx.blocking_recv() {
                if let Some(h) = running.as_mut() {
                    h.update(&chunk);
                }
            }
            running
        });
        let key = self.chunk_key(session.id, start);
        // Bytes are held until a whole part is there: a chunk smaller than
        // a part (most blobs) is then stored with one request, and only a
        // larger one starts a multipart upload.
        let mut writer: Option<WriteMultipart> = None;
        let mut held: Vec<bytes::Bytes> = Vec::new();
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
            if tx.send(chunk.clone()).await.is_err() {
                failure = Some(StoreError::Task("the hashing thread stopped".into()));
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
        drop(tx);
        let hashed = hashing.await?;
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
                return Ok(0);
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
        let id = session.id;
        let moved = table(&self.sessions, move |t| {
            t.advance(id, start, start + written, &state)
        })
        .await?;
        if !moved {
            session.hasher = before;
            return Err(StoreError::UploadUnknown);
        }
        session.offset = start + written;
        session.hasher = hashed;
        Ok(written)
    }

    /// The digest of the session's bytes: from the carried state for
    /// SHA-256, else by reading the chunks back.
    async fn digest_of(
        &self,
        session: &mut Session,
        chunks: &[Key],
        alg: Algorithm,
    ) -> Result<Digest, StoreError> {
        if let (Algorithm::Sha256, Some(state)) = (alg, session.hasher.take()) {
            return Ok(Digest::from_bytes(alg, &state.finish())?);
        }
        let mut sha256 = Sha256::new();
        let mut sha512 = Sha512::new();
        for key in chunks {
            let mut stream = self
                .s3
                .store
                .get(key)
                .await
                .map_err(|e| failed("reading a chunk back", e))?
                .into_stream();
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(|e| failed("reading a chunk back", e))?;
                match alg {
                    Algorithm::Sha256 => sha256.update(&bytes),
                    Algorithm::Sha512 => sha512.update(&bytes),
                }
            }
        }
        let hash = match alg {
            Algorithm::Sha256 => sha256.finalize().to_vec(),
            Algorithm::Sha512 => sha512.finalize().to_vec(),
        };
        Ok(Digest::from_bytes(alg, &hash)?)
    }

    async fn complete_session(
        &self,
        mut session: SessionGuard,
        expected: &Digest,
    ) -> Result<u64, StoreError> {
        let chunks = self.chunks(session.id, session.offset).await?;
        let actual = self
            .digest_of(&mut session, &chunks, expected.algorithm())
            .await?;
        if &actual != expected {
            self.discard_session(session).await?;
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        match chunks.as_slice() {
            [one] => self.s3.adopt(one, expected).await?,
            several => self.join(several, expected).await?,
        }
        let (size, id) = (session.offset, session.id);
        for key in &chunks {
            self.s3
                .store
                .delete(key)
                .await
                .map_err(|e| failed("removing an upload's chunk", e))?;
        }
        table(&self.sessions, move |t| t.remove(id)).await?;
        Ok(size)
    }

    /// Writes the blob object from several verified chunks, streamed
    /// through this node (an empty blob is an empty list).
    async fn join(&self, chunks: &[Key], digest: &Digest) -> Result<(), StoreError> {
        let target = self.s3.blob_key(digest);
        if chunks.is_empty() {
            return self
                .s3
                .store
                .put(&target, object_store::PutPayload::default())
                .await
                .map(drop)
                .map_err(|e| failed("storing the blob", e));
        }
        let upload = self
            .s3
            .store
            .put_multipart(&target)
            .await
            .map_err(|e| failed("starting the blob upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        for key in chunks {
            let got = match self.s3.store.get(key).await {
                Ok(got) => got,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(failed("reading a chunk back", e));
                }
            };
            let mut stream = got.into_stream();
            while let Some(bytes) = stream.next().await {
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(failed("reading a chunk back", e));
                    }
                };
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| failed("storing the blob", e))?;
                writer.put(bytes);
            }
        }
        writer
            .finish()
            .await
            .map(drop)
            .map_err(|e| failed("storing the blob", e))
    }

    /// Removes a session's chunk objects, then its row.
    async fn remove(&self, id: Uuid) -> Result<(), StoreError> {
        let prefix = self.chunk_prefix(id);
        let mut listing = self.s3.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| failed("listing an upload's chunks", e))?;
            self.s3
                .store
                .delete(&meta.location)
                .await
                .map_err(|e| failed("removing an upload's chunk", e))?;
        }
        table(&self.sessions, move |t| t.remove(id)).await
    }

    async fn discard_session(&self, session: SessionGuard) -> Result<(), StoreError> {
        self.remove(session.id).await
    }
}

impl UploadStore for SharedUploads {
    fn create(&self, repo: &RepoPath) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        self.sessions
            .create(id, &repo.to_string(), &Resumable::default().to_bytes())?;
        Ok(id)
    }

    /// Each request reads the session afresh: the previous chunk may have
    /// gone to another node.
    fn acquire<'a>(
        &'a self,
        id: Uuid,
        repo: &'a RepoPath,
    ) -> BoxFuture<'a, Result<SessionGuard, StoreError>> {
        Box::pin(async move {
            let row = table(&self.sessions, move |t| t.load(id))
                .await?
                .filter(|row| row.repo == repo.to_string())
                .ok_or(StoreError::UploadUnknown)?;
            let session = Session {
                id,
                repo: repo.clone(),
                offset: row.offset,
                hasher: Resumable::from_bytes(&row.hash_state),
                durable: true,
            };
            Ok(Arc::new(AsyncMutex::new(session)).lock_owned().await)
        })
    }

    fn append<'a>(
        &'a self,
        session: &'a mut Session,
        body: Chunks,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.append_body(session, body, expected))
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

    fn discard(&self, session: SessionGuard) -> Result<(), StoreError> {
        self.s3.wait(self.remove(session.id))
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
                self.s3.wait(self.remove(*id))?;
            }
        }
        Ok(idle
            .into_iter()
            .map(|(id, bytes)| (id.to_string(), bytes))
            .collect())
    }
}
