//! Storage usage of a set of repositories, from the image list and the
//! blob links: what their images add up to, what they hold on disk, and
//! what deleting them would free. Layers shared between images are stored
//! once, so the three differ.

use std::collections::{BTreeMap, BTreeSet};

use berth_domain::{Digest, RepoPath};
use berth_store::StoreError;
use serde::Serialize;

use crate::ReadModels;

/// Storage figures of some repositories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Storage {
    /// The sum of their images' sizes (each tag's manifest, config and
    /// layers), counting a shared layer once per image.
    pub logical_bytes: u64,
    /// The distinct blobs they hold: what they take on disk.
    pub stored_bytes: u64,
    /// The blobs only they hold: what deleting them all would free.
    pub unique_bytes: u64,
}

impl ReadModels {
    /// The storage figures of `repos` taken together (names that do not
    /// exist count nothing).
    pub fn storage(&self, repos: &[RepoPath]) -> Result<Storage, StoreError> {
        let mut out = Storage::default();
        let mut ids = BTreeSet::new();
        let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
        for path in repos {
            let Some(row) = self.repos.get(path)? else {
                continue;
            };
            ids.insert(row.id);
            if let Some(image) = self.images.get(path)? {
                out.logical_bytes += image.size;
            }
            blobs.extend(self.blob_links.load(row.id)?);
        }
        for (digest, size) in &blobs {
            out.stored_bytes += size;
            if self
                .blob_links
                .holders(digest)?
                .iter()
                .all(|id| ids.contains(id))
            {
                out.unique_bytes += size;
            }
        }
        Ok(out)
    }
}
