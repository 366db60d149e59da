//! Which blobs each repository holds, with their sizes: what a pull may read,
//! what a manifest may reference, and what garbage collection must keep.

use std::collections::HashMap;

use berth_domain::{Digest, Event};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};

use uuid::Uuid;

use crate::keys::{repo_key, suffix};

/// The blob links read model.
#[derive(Clone)]
pub struct BlobLinks {
    pub(crate) rows: Table,
}

fn size_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

impl BlobLinks {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_blob_links")?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) {
        match &rec.event {
            Event::BlobUploaded {
                repo_id,
                digest,
                size,
                ..
            }
            | Event::BlobMounted {
                repo_id,
                digest,
                size,
                ..
            } => {
                let key = repo_key(*repo_id, digest.to_string().as_bytes());
                batch.insert(&self.rows, key, size.to_be_bytes());
            }
            Event::BlobDeleted {
                repo_id, digest, ..
            } => {
                batch.remove(
                    &self.rows,
                    repo_key(*repo_id, digest.to_string().as_bytes()),
                );
            }
            _ => {}
        }
    }

    /// The size of a blob linked to the repository.
    pub fn get(&self, repo_id: Uuid, digest: &Digest) -> Result<Option<u64>, StoreError> {
        Ok(self
            .rows
            .get(repo_key(repo_id, digest.to_string().as_bytes()))?
            .map(|v| size_of(&v)))
    }

    pub(crate) fn load(&self, repo_id: Uuid) -> Result<HashMap<Digest, u64>, StoreError> {
        let mut out = HashMap::new();
        for item in self.rows.prefix(repo_id.as_bytes()) {
            let (k, v) = item?;
            let digest = Digest::parse(&String::from_utf8_lossy(suffix(&k)))?;
            out.insert(digest, size_of(&v));
        }
        Ok(out)
    }
}
