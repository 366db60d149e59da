//! Content-addressed blob files under `<data>/blobs/<alg>/<2 hex>/<hex>`.
//! A file appears there only by an atomic rename of fully written, fsynced,
//! verified bytes, so a present file is always complete and correct.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_domain::Digest;
use uuid::Uuid;

use crate::error::StoreError;

/// The blob tree.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    staging: PathBuf,
}

impl BlobStore {
    /// Opens the tree under `root`, with `staging` (same filesystem) for
    /// small writes.
    pub fn open(root: PathBuf, staging: PathBuf) -> Result<Self, StoreError> {
        fs::create_dir_all(&root)?;
        fs::create_dir_all(&staging)?;
        Ok(Self { root, staging })
    }

    /// Where a blob's bytes live.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    /// The stored size, or `None` if the bytes are not on disk.
    pub fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
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

    /// Stores small content (a manifest) already held in memory.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        if self.path(digest).exists() {
            return Ok(());
        }
        let tmp = self.staging.join(Uuid::new_v4().to_string());
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        self.ingest(&tmp, digest).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    /// Reads small content (a manifest) whole.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        Ok(fs::read(self.path(digest))?)
    }
}
