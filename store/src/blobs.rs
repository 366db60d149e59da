//! Content-addressed blob files under `<data>/blobs/<alg>/<2 hex>/<hex>`.
//! A file appears there only by an atomic rename of fully written, fsynced,
//! verified bytes, so a present file is always complete and correct.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use berth_domain::Digest;
use bytes::Bytes;

/// Size of each read when streaming a blob out.
const READ_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the network per response.
const READ_AHEAD: usize = 2;

use crate::error::StoreError;

/// The blob tree.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
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

    /// Streams `len` bytes of a blob from `start`. One blocking thread reads
    /// ahead in large chunks while the network sends, with at most a few
    /// chunks in memory per reader.
    pub fn read_range(
        &self,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static, StoreError>
    {
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
        Ok(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }

    /// Moves a verified, fsynced file into place and makes the rename
    /// durable. If the blob is already present the file is simply dropped.
    pub fn ingest(&self, file: &Path, digest: &Digest) -> Result<(), StoreError> {
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
}
