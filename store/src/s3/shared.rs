//! The blobs of a cluster: small ones in the shared database (see
//! `postgres::blobs`), the rest in the bucket. A digest may be in both
//! (sent whole once, and chunked another time); either copy is the blob.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_domain::Digest;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use super::S3Blobs;
use crate::blobs::{BlobStore, ByteStream, StoredBlob};
use crate::error::StoreError;
use crate::postgres::{PgSessions, SMALL_BLOB};

/// Blobs in the shared database and the bucket, as one store.
#[derive(Clone)]
pub struct SharedBlobs {
    s3: S3Blobs,
    db: Arc<PgSessions>,
}

impl SharedBlobs {
    /// Small blobs in `db`, the rest in `s3`.
    pub fn new(s3: S3Blobs, db: Arc<PgSessions>) -> Self {
        Self { s3, db }
    }
}

impl BlobStore for SharedBlobs {
    /// Blobs arriving as files (web uploads of archives) go to the bucket.
    fn ingest(&self, file: &Path, digest: &Digest) -> Result<(), StoreError> {
        self.s3.ingest(file, digest)
    }

    /// A range that ends past [`SMALL_BLOB`] can only be in the bucket, so
    /// a large blob's pull asks the database nothing. The database is
    /// asked when the stream is first polled, so this does not block.
    fn open_range(&self, digest: &Digest, start: u64, len: u64) -> Result<ByteStream, StoreError> {
        if len == 0 || start.saturating_add(len) > SMALL_BLOB {
            return self.s3.open_range(digest, start, len);
        }
        let (s3, db, digest) = (self.s3.clone(), self.db.clone(), digest.clone());
        let get = async move {
            match db.read_blob(&digest, start, len).await {
                // A row is whole, as an object is: a short one is an error,
                // not a short body under a full Content-Length.
                Ok(Some(bytes)) if bytes.len() as u64 != len => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{digest} holds {} of the {len} bytes asked for",
                        bytes.len()
                    ),
                )),
                Ok(Some(bytes)) => {
                    Ok(futures_util::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed())
                }
                Ok(None) => s3
                    .open_range(&digest, start, len)
                    .map_err(std::io::Error::other),
                Err(e) => Err(std::io::Error::other(e)),
            }
        };
        Ok(Box::pin(futures_util::stream::once(get).try_flatten()))
    }

    fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match self.db.blob_size(digest)? {
            Some(size) => Ok(Some(size)),
            None => self.s3.stat(digest),
        }
    }

    fn delete(&self, digest: &Digest) -> Result<bool, StoreError> {
        let in_db = self.db.delete_blob(digest)?;
        let in_bucket = self.s3.delete(digest)?;
        Ok(in_db || in_bucket)
    }

    /// Both listings, a digest in both counted once, as new as its newer
    /// copy.
    fn list(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let mut all = self.s3.list()?;
        all.extend(self.db.list_blobs()?);
        all.sort_by(|a, b| a.digest.cmp(&b.digest).then(b.stored_at.cmp(&a.stored_at)));
        all.dedup_by(|later, kept| later.digest == kept.digest);
        Ok(all)
    }

    /// A blob in the database has no address of its own: the node serves
    /// it. Only a blob of at most [`SMALL_BLOB`] bytes can be there, so a
    /// larger one's redirect asks the database nothing.
    fn presign(
        &self,
        digest: &Digest,
        size: u64,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        if size <= SMALL_BLOB && self.db.blob_size(digest)?.is_some() {
            return Ok(None);
        }
        self.s3.presign(digest, size, ttl)
    }
}

impl std::fmt::Debug for SharedBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBlobs")
            .field("s3", &self.s3)
            .finish_non_exhaustive()
    }
}
