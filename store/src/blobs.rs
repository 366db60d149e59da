//! Blob storage: the [`BlobStore`] port the registry needs, and its
//! local-files implementation, content-addressed under
//! `<data>/blobs/<alg>/<2 hex>/<hex>`. A file appears there only by an
//! atomic rename of fully written, fsynced, verified bytes, so a present
//! file is always complete and correct.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_domain::Digest;
use bytes::Bytes;
use futures_util::stream::BoxStream;

/// Blob bytes as they stream out.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Where verified blob bytes live. Handlers and uploads see only this, so
/// another backend (an object store) can stand in without touching them.
/// Every method blocks: call them off the async workers.
pub trait BlobStore: Send + Sync + 'static {
    /// Takes a finished upload's file, already verified to hash to
    /// `digest`, and makes it durable as that blob.
    fn ingest(&self, file: &Path, digest: &Digest) -> Result<(), StoreError>;
    /// Streams `len` bytes of a blob from `start`.
    fn open_range(&self, digest: &Digest, start: u64, len: u64) -> Result<ByteStream, StoreError>;
    /// The blob's size, if it is stored.
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;
    /// Removes a blob's bytes; whether there were any.
    fn delete(&self, digest: &Digest) -> Result<bool, StoreError>;
    /// Every stored blob, for garbage collection.
    fn list(&self) -> Result<Vec<StoredBlob>, StoreError>;
    /// Bytes and blobs stored, counted now (a walk: not per request).
    fn usage(&self) -> Result<(u64, u64), StoreError> {
        let blobs = self.list()?;
        Ok((blobs.iter().map(|b| b.size).sum(), blobs.len() as u64))
    }
    /// An address the client can fetch the blob (of `size` bytes) from
    /// directly, valid for `ttl`, where the store can hand one out (an
    /// object store's signed URL); `None` when the registry must serve the
    /// bytes itself.
    fn presign(
        &self,
        _digest: &Digest,
        _size: u64,
        _ttl: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}

/// A stored blob as garbage collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When its bytes were stored.
    pub stored_at: SystemTime,
}

/// Size of each read when streaming a blob out.
const READ_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the network per response.
const READ_AHEAD: usize = 2;

use crate::error::StoreError;

/// The local blob tree.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Opens the tree under `root`; uploads must live on the same
    /// filesystem so that moving a finished upload in is a rename.
    pub fn open(root: PathBuf) -> Result<Self, StoreError> {
        fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// Where a blob's bytes live.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }
}

impl BlobStore for LocalBlobs {
    /// One blocking thread reads ahead in large chunks while the network
    /// sends, with at most a few chunks in memory per reader.
    fn open_range(&self, digest: &Digest, start: u64, len: u64) -> Result<ByteStream, StoreError> {
        let mut file = fs::File::open(self.path(digest))?;
        file.seek(SeekFrom::Start(start))?;
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::task::spawn_blocking(move || {
            let mut left = len;
            while left > 0 {
                let want = usize::try_from(left.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
                // Read into spare capacity: no zero-fill of a buffer about
                // to be overwritten.
                let mut buf = Vec::with_capacity(want);
                let outcome = match (&mut file).take(want as u64).read_to_end(&mut buf) {
                    Ok(n) if n == want => Ok(Bytes::from(buf)),
                    Ok(n) => Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("blob file ended {} bytes early", want - n),
                    )),
                    Err(e) => Err(e),
                };
                let failed = outcome.is_err();
                if tx.blocking_send(outcome).is_err() || failed {
                    return;
                }
                left -= want as u64;
            }
        });
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        )))
    }

    /// Moves a verified, fsynced file into place and makes the rename
    /// durable. If the blob is already present the file is simply dropped.
    fn ingest(&self, file: &Path, digest: &Digest) -> Result<(), StoreError> {
        let target = self.path(digest);
        if target.exists() {
            fs::remove_file(file)?;
            return Ok(());
        }
        let dir = target.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        fs::rename(file, &target)?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn delete(&self, digest: &Digest) -> Result<bool, StoreError> {
        match fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Walks `<alg>/<2 hex>/<hex>`; files whose names are not digests (a
    /// stray editor file, say) are not blobs and are left out.
    fn list(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let mut out = Vec::new();
        self.walk(|blob| out.push(blob))?;
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    fn usage(&self) -> Result<(u64, u64), StoreError> {
        let (mut bytes, mut objects) = (0, 0);
        self.walk(|blob| {
            bytes += blob.size;
            objects += 1;
        })?;
        Ok((bytes, objects))
    }
}

impl LocalBlobs {
    /// Visits every stored blob.
    fn walk(&self, mut visit: impl FnMut(StoredBlob)) -> Result<(), StoreError> {
        for alg in fs::read_dir(&self.root)? {
            let alg = alg?;
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            for shard in fs::read_dir(alg.path())? {
                for file in fs::read_dir(shard?.path())? {
                    let file = file?;
                    let name = file.file_name().to_string_lossy().into_owned();
                    if let Ok(digest) = Digest::parse(&format!("{alg_name}:{name}")) {
                        // A blob removed since the listing is simply not there.
                        let meta = match file.metadata() {
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            other => other?,
                        };
                        visit(StoredBlob {
                            digest,
                            size: meta.len(),
                            stored_at: meta.modified()?,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use sha2::{Digest as _, Sha256};

    fn stored(blobs: &LocalBlobs, dir: &Path, bytes: &[u8]) -> Digest {
        let digest =
            Digest::from_bytes(berth_domain::Algorithm::Sha256, &Sha256::digest(bytes)).unwrap();
        let file = dir.join("upload");
        fs::write(&file, bytes).unwrap();
        blobs.ingest(&file, &digest).unwrap();
        digest
    }

    #[tokio::test]
    async fn ingest_stat_read_list_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(tmp.path().join("blobs")).unwrap();
        let a = stored(&blobs, tmp.path(), b"hello blob");
        let b = stored(&blobs, tmp.path(), b"another");
        assert_eq!(blobs.stat(&a).unwrap(), Some(10));
        let mut stream = blobs.open_range(&a, 6, 4).unwrap();
        let mut read = Vec::new();
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(read, b"blob");
        let listed = |blobs: &LocalBlobs| {
            let list = blobs.list().unwrap();
            list.into_iter()
                .map(|s| (s.digest, s.size))
                .collect::<Vec<_>>()
        };
        let mut expected = vec![(a.clone(), 10), (b.clone(), 7)];
        expected.sort();
        assert_eq!(listed(&blobs), expected);
        assert!(blobs.delete(&a).unwrap());
        assert!(!blobs.delete(&a).unwrap(), "already gone");
        assert_eq!(blobs.stat(&a).unwrap(), None);
        assert_eq!(listed(&blobs), vec![(b, 7)]);
    }
}
