//! The local upload store: bytes are streamed to `<data>/uploads/<id>` (the
//! repository is named in `<id>.repo`) while SHA-256 is computed on a
//! blocking thread, so memory stays flat whatever the size. A session
//! becomes durable with its first acknowledged chunk, and from then on its
//! durable offset is its file length after the last acknowledged chunk;
//! durable sessions survive restarts. An upload finished in the request
//! that started it never needs the session itself on disk, only the blob.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_domain::{Digest, RepoPath};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, Mutex as AsyncMutex};
use uuid::Uuid;

use super::file::{digest_of, start_writeback, write_batch};
use super::{next_piece, Chunks, Session, SessionGuard, UploadStore};
use crate::blobs::BlobStore;
use crate::error::StoreError;
use crate::resumable::Resumable;
use crate::space::Space;

/// Batches in flight between the network and the writing thread: two keep
/// both sides busy and bound memory to a few batches per upload.
const PIPE_DEPTH: usize = 2;
/// Bytes gathered from the network before one hand-off to the writing
/// thread: the body arrives in small frames, and one thread wake-up per
/// frame costs more than the hashing it feeds.
const BATCH: usize = 1 << 20;
/// Dirty bytes after which writeback to the disk is started, so the disk
/// works while the network still delivers and the final fsync is short.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// The local upload area: one data file and one repository file per
/// session under `<data>/uploads`, on the blob tree's filesystem.
pub struct LocalUploads {
    root: PathBuf,
    blobs: Arc<dyn BlobStore>,
    max_blob: u64,
    live: Mutex<HashMap<Uuid, Arc<AsyncMutex<Session>>>>,
    /// Refuses bytes that would eat into the disk's reserve.
    space: Option<Space>,
}

impl LocalUploads {
    /// Opens the upload area and removes sessions idle for longer than
    /// `max_idle` (abandoned pushes).
    pub fn open(
        root: PathBuf,
        blobs: Arc<dyn BlobStore>,
        max_blob: u64,
        max_idle: Duration,
    ) -> Result<Self, StoreError> {
        fs::create_dir_all(&root)?;
        let uploads = Self {
            root,
            blobs,
            max_blob,
            live: Mutex::new(HashMap::new()),
            space: None,
        };
        uploads.remove_idle(max_idle, false)?;
        Ok(uploads)
    }

    /// Guards every session and chunk with the free-space reserve: a new
    /// session, or a chunk, is refused (`StoreError::NoSpace`) while free
    /// space is under it, and a chunk that brings it under the reserve is
    /// cut back to where it began.
    #[must_use]
    pub fn with_space(mut self, space: Space) -> Self {
        self.space = Some(space);
        self
    }

    fn check_space(&self) -> Result<(), StoreError> {
        self.space.as_ref().map_or(Ok(()), Space::check_upload)
    }

    /// Removes (or lists) the sessions idle past `max_idle`: a session's
    /// idle time runs from its newest file (its data grows with every
    /// chunk; its `.repo` file is as old as the session). A session in a
    /// request is busy whatever its age. The map stays locked throughout, so
    /// no request can take a session while it goes.
    fn remove_idle(
        &self,
        max_idle: Duration,
        dry_run: bool,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        /// What one session holds on disk.
        #[derive(Default)]
        struct Held {
            newest: Option<SystemTime>,
            bytes: u64,
            /// Each path, and whether it is a directory.
            paths: Vec<(PathBuf, bool)>,
        }
        let mut sessions: BTreeMap<String, Held> = BTreeMap::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            // A session that finished since the listing has no files left.
            let meta = match entry.metadata() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                other => other?,
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            let session = name.strip_suffix(".repo").unwrap_or(&name).to_owned();
            let held = sessions.entry(session).or_default();
            held.newest = held.newest.max(Some(meta.modified()?));
            held.bytes += if meta.is_dir() { 0 } else { meta.len() };
            held.paths.push((entry.path(), meta.is_dir()));
        }
        let now = SystemTime::now();
        let mut map = self.lock_map();
        let mut gone = Vec::new();
        for (
            session,
            Held {
                newest,
                bytes,
                paths,
            },
        ) in sessions
        {
            let newest = newest.unwrap_or(now);
            if now.duration_since(newest).unwrap_or_default() <= max_idle {
                continue;
            }
            let slot = session
                .parse::<Uuid>()
                .ok()
                .and_then(|id| map.get(&id).cloned());
            // Held until the files are gone: a request already waiting for
            // the session then finds it unknown.
            let busy = slot.as_ref().map(|s| s.try_lock());
            if matches!(busy, Some(Err(_))) {
                continue;
            }
            if !dry_run {
                tracing::info!(%session, "removing abandoned upload");
                if let Ok(id) = session.parse::<Uuid>() {
                    map.remove(&id);
                }
                for (path, dir) in paths {
                    // Sessions written by earlier builds were directories.
                    let removed = if dir {
                        fs::remove_dir_all(path)
                    } else {
                        fs::remove_file(path)
                    };
                    match removed {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                }
            }
            drop(busy);
            gone.push((session, bytes));
        }
        Ok(gone)
    }

    fn data(&self, id: Uuid) -> PathBuf {
        self.root.join(id.to_string())
    }

    fn repo_file(&self, id: Uuid) -> PathBuf {
        self.root.join(format!("{id}.repo"))
    }

    /// Starts a session; it is made durable by `persist` when its first
    /// chunk is acknowledged.
    fn create_session(&self, repo: &RepoPath) -> Result<Uuid, StoreError> {
        self.check_space()?;
        let id = Uuid::new_v4();
        fs::write(self.repo_file(id), repo.to_string())?;
        fs::File::create(self.data(id))?;
        let session = Session::new(id, repo);
        self.lock_map()
            .insert(id, Arc::new(AsyncMutex::new(session)));
        Ok(id)
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<AsyncMutex<Session>>>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the session for one request. A session of another repository is
    /// unknown here, as is one that does not exist.
    async fn acquire_session(&self, id: Uuid, repo: &RepoPath) -> Result<SessionGuard, StoreError> {
        let slot = {
            let mut map = self.lock_map();
            match map.get(&id) {
                Some(s) => s.clone(),
                None => {
                    let session = self.load(id)?;
                    let slot = Arc::new(AsyncMutex::new(session));
                    map.insert(id, slot.clone());
                    slot
                }
            }
        };
        let guard = slot.lock_owned().await;
        if &guard.repo != repo || !self.data(id).exists() {
            return Err(StoreError::UploadUnknown);
        }
        Ok(guard)
    }

    /// Reads a session left by an earlier run of the server.
    fn load(&self, id: Uuid) -> Result<Session, StoreError> {
        let repo = fs::read_to_string(self.repo_file(id)).map_err(|_| StoreError::UploadUnknown)?;
        let repo = RepoPath::parse(&repo).map_err(|_| StoreError::UploadUnknown)?;
        let offset = fs::metadata(self.data(id))
            .map_err(|_| StoreError::UploadUnknown)?
            .len();
        Ok(Session {
            id,
            repo,
            offset,
            hasher: None,
            durable: true,
            chunks: Vec::new(),
            tags: Vec::new(),
        })
    }

    /// Makes a session's files durable (its data was synced by `append`):
    /// called before acknowledging a chunk that the client may resume from.
    async fn persist_session(&self, session: &mut Session) -> Result<(), StoreError> {
        if session.durable {
            return Ok(());
        }
        let (repo_file, root) = (self.repo_file(session.id), self.root.clone());
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            fs::File::open(repo_file)?.sync_all()?;
            fs::File::open(root)?.sync_all()?;
            Ok(())
        })
        .await??;
        session.durable = true;
        Ok(())
    }

    /// Appends a body to the session, hashing as it goes. When `expected` is
    /// given the body must be exactly that long. On any failure the file is
    /// cut back to where it was: nothing of a failed chunk is kept.
    async fn append_body(
        &self,
        session: &mut Session,
        body: Chunks,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.check_space()?;
        let start = session.offset;
        let path = self.data(session.id);
        let hasher = session.hasher.take();
        let result = match self.pump(path.clone(), start, hasher, body).await {
            Ok((_, written)) if expected.is_some_and(|e| e != written) => {
                Err(StoreError::LengthMismatch {
                    expected: expected.unwrap_or_default(),
                    received: written,
                })
            }
            other => other,
        };
        match result {
            Ok((hasher, written)) => {
                session.offset = start + written;
                session.hasher = hasher;
                Ok(written)
            }
            Err(e) => {
                // The running hash may have seen the cut bytes: hash again on completion.
                session.hasher = None;
                let truncated = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(start).and_then(|_| f.sync_all()));
                if let Err(t) = truncated {
                    tracing::error!(session = %session.id, error = %t, "could not cut back a failed chunk");
                }
                Err(e)
            }
        }
    }

    async fn pump(
        &self,
        path: PathBuf,
        start: u64,
        hasher: Option<Resumable>,
        mut body: Chunks,
    ) -> Result<(Option<Resumable>, u64), StoreError> {
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(PIPE_DEPTH);
        let space = self.space.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut file = fs::OpenOptions::new().append(true).open(&path)?;
            let mut hasher = hasher;
            let mut written = 0u64;
            let mut flushed = 0u64;
            while let Some(batch) = rx.blocking_recv() {
                if let Some(h) = hasher.as_mut() {
                    for chunk in &batch {
                        h.update(chunk);
                    }
                }
                written += write_batch(&mut file, &batch)?;
                if written - flushed >= WRITEBACK_EVERY {
                    start_writeback(&file, start + flushed, written - flushed);
                    flushed = written;
                    if let Some(space) = &space {
                        space.check_upload()?;
                    }
                }
            }
            file.sync_data()?;
            Ok((hasher, written))
        });
        let mut received = 0u64;
        let mut failure = None;
        let mut batch = Vec::new();
        let mut batched = 0usize;
        while let Some(piece) = next_piece(&mut body, start, &mut received, self.max_blob).await {
            let chunk = match piece {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            batched += chunk.len();
            batch.push(chunk);
            if batched >= BATCH {
                batched = 0;
                if tx.send(std::mem::take(&mut batch)).await.is_err() {
                    break;
                }
            }
        }
        if failure.is_none() && !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        drop(tx);
        let outcome = writer.await?;
        match failure {
            Some(e) => Err(e),
            None => outcome,
        }
    }

    /// Verifies the session's bytes against `expected` and moves them into
    /// the blob store. On a mismatch the session is removed: its bytes can
    /// never become that blob. Returns the blob size.
    async fn complete_session(
        &self,
        mut session: SessionGuard,
        expected: &Digest,
    ) -> Result<u64, StoreError> {
        let path = self.data(session.id);
        let hasher = session.hasher.take();
        let expected_alg = expected.algorithm();
        let hashed = tokio::task::spawn_blocking({
            let path = path.clone();
            move || digest_of(&path, expected_alg, hasher)
        })
        .await??;
        let actual = hashed;
        if &actual != expected {
            self.discard_session(session)?;
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let size = session.offset;
        let blobs = self.blobs.clone();
        let digest = expected.clone();
        tokio::task::spawn_blocking(move || blobs.ingest(&path, &digest)).await??;
        self.discard_session(session)?;
        Ok(size)
    }

    /// Cancels a session and removes its files.
    fn discard_session(&self, session: SessionGuard) -> Result<(), StoreError> {
        self.lock_map().remove(&session.id);
        for path in [self.data(session.id), self.repo_file(session.id)] {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }
}

impl UploadStore for LocalUploads {
    /// Two empty files, created on the request's task.
    fn create<'a>(&'a self, repo: &'a RepoPath) -> BoxFuture<'a, Result<Uuid, StoreError>> {
        Box::pin(async move { self.create_session(repo) })
    }

    fn acquire<'a>(
        &'a self,
        id: Uuid,
        repo: &'a RepoPath,
    ) -> BoxFuture<'a, Result<SessionGuard, StoreError>> {
        Box::pin(self.acquire_session(id, repo))
    }

    fn append<'a>(
        &'a self,
        session: &'a mut Session,
        body: Chunks,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.append_body(session, body, expected))
    }

    fn persist<'a>(&'a self, session: &'a mut Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.persist_session(session))
    }

    fn complete<'a>(
        &'a self,
        session: SessionGuard,
        expected: &'a Digest,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.complete_session(session, expected))
    }

    fn discard(&self, session: SessionGuard) -> Result<(), StoreError> {
        self.discard_session(session)
    }

    /// Each session is a data file beside its `.repo` file.
    fn open_sessions(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for entry in fs::read_dir(&self.root)? {
            if entry?.path().extension().is_some_and(|e| e == "repo") {
                n += 1;
            }
        }
        Ok(n)
    }

    fn collect_idle(
        &self,
        max_idle: Duration,
        dry_run: bool,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.remove_idle(max_idle, dry_run)
    }
}
