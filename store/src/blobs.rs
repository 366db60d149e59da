//! Content-addressed blob files under `<data>/blobs/<alg>/<2 hex>/<hex>`.
//! A file appears there only by an atomic rename of fully written, fsynced,
//! verified bytes, so a present file is always complete and correct.

use std::fs;
use std::path::{Path, PathBuf};

use berth_domain::Digest;

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
}
