//! Which blobs each repository holds, with their sizes: what a pull may read,
//! what a manifest may reference, and what garbage collection must keep.

use std::collections::HashMap;

use berth_domain::{Digest, Event};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};

use uuid::Uuid;

use crate::keys::{held, holder_key, holder_prefix, repo_key, suffix};

/// The blob links read model.
#[derive(Clone)]
pub struct BlobLinks {
    pub(crate) rows: Table,
    /// The same links by digest: which repositories hold a blob.
    pub(crate) holders: Table,
}

fn size_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

impl BlobLinks {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_blob_links")?,
            holders: log.table("p_blob_holders")?,
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
                batch.insert(&self.holders, holder_key(digest, *repo_id), []);
            }
            Event::BlobDeleted {
                repo_id, digest, ..
            } => {
                batch.remove(
                    &self.rows,
                    repo_key(*repo_id, digest.to_string().as_bytes()),
                );
                batch.remove(&self.holders, holder_key(digest, *repo_id));
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

    /// Whether any live repository links the blob.
    pub fn held(&self, digest: &Digest) -> Result<bool, StoreError> {
        held(&self.holders, digest)
    }

    /// The repositories (incarnation ids) that hold a blob.
    pub fn holders(&self, digest: &Digest) -> Result<Vec<Uuid>, StoreError> {
        let prefix = holder_prefix(digest);
        let mut out = Vec::new();
        for item in self.holders.prefix(&prefix) {
            let (k, _) = item?;
            if let Ok(id) = Uuid::from_slice(&k[prefix.len()..]) {
                out.push(id);
            }
        }
        Ok(out)
    }
}
