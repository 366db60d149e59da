//! Small blobs in the shared database, beside the manifests: an image's
//! config and its tiny layers would otherwise each cost the object store a
//! request (and a cloud store a per-request fee and tens of milliseconds)
//! for a few hundred bytes. Only a blob sent whole, of at most
//! [`SMALL_BLOB`] bytes, is stored here; everything else is an object.

use std::time::{Duration, SystemTime};

use berth_domain::Digest;

use super::PgSessions;
use crate::blobs::StoredBlob;
use crate::error::StoreError;

/// The largest blob kept in the database: configs (a few KiB) and tiny
/// layers fit, each body one TOAST value, and the table stays small beside
/// the bucket.
pub const SMALL_BLOB: u64 = 64 << 10;

fn offset_of(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl PgSessions {
    /// `len` bytes of a small blob from `start`, if the database holds it.
    pub async fn read_blob(
        &self,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let digest = &digest.to_string();
        // substring counts from 1.
        let (from, count) = (offset_of(start.saturating_add(1)), offset_of(len));
        let row = self
            .relaxed
            .with(|c| async move {
                c.query_opt(
                    "SELECT substring(body FROM $2 FOR $3) FROM berth_blobs WHERE digest = $1",
                    &[&digest, &from, &count],
                )
                .await
            })
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// A small blob's size, if the database holds it; blocking.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let row = self.pool.with(|c| {
            c.query_opt(
                "SELECT octet_length(body) FROM berth_blobs WHERE digest = $1",
                &[&digest.to_string()],
            )
        })?;
        Ok(row.map(|r| u64::try_from(r.get::<_, i32>(0)).unwrap_or(0)))
    }

    /// Removes a small blob; whether there was one. Blocking.
    pub fn delete_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        let gone = self.pool.with(|c| {
            c.execute(
                "DELETE FROM berth_blobs WHERE digest = $1",
                &[&digest.to_string()],
            )
        })?;
        Ok(gone > 0)
    }

    /// Every small blob, for garbage collection; blocking.
    pub fn list_blobs(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let rows = self.pool.with(|c| {
            c.query(
                "SELECT digest, octet_length(body), \
                 extract(epoch FROM stored_at)::float8 FROM berth_blobs",
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let stored = Duration::try_from_secs_f64(r.get::<_, f64>(2)).ok()?;
                Some(StoredBlob {
                    digest: Digest::parse(r.get::<_, &str>(0)).ok()?,
                    size: u64::try_from(r.get::<_, i32>(1)).ok()?,
                    stored_at: SystemTime::UNIX_EPOCH + stored,
                })
            })
            .collect())
    }
}
