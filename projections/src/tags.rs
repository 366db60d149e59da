//! Tags per repository: digest, media type, image size and update time.

use std::collections::HashMap;
use std::ops::Bound;

use berth_domain::{Digest, Event, TagName};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode, repo_key, suffix};

/// A tag row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRow {
    /// The manifest it points at.
    pub digest: Digest,
    /// That manifest's media type.
    pub media_type: String,
    /// Image size: manifest plus referenced content.
    pub size: u64,
    /// When the tag last moved.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub updated_at: DateTime<Utc>,
}

/// The tags read model.
#[derive(Clone)]
pub struct Tags {
    pub(crate) rows: Table,
}

impl Tags {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_tags")?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) {
        match &rec.event {
            Event::TagPointed {
                repo_id,
                tag,
                digest,
                media_type,
                size,
                ..
            } => {
                let row = TagRow {
                    digest: digest.clone(),
                    media_type: media_type.clone(),
                    size: *size,
                    updated_at: rec.envelope.occurred_at,
                };
                batch.insert(
                    &self.rows,
                    repo_key(*repo_id, tag.as_str().as_bytes()),
                    encode(&row),
                );
            }
            Event::TagDeleted { repo_id, tag, .. } => {
                batch.remove(&self.rows, repo_key(*repo_id, tag.as_str().as_bytes()));
            }
            _ => {}
        }
    }

    /// One tag.
    pub fn get(&self, repo_id: Uuid, tag: &TagName) -> Result<Option<TagRow>, StoreError> {
        self.rows
            .get(repo_key(repo_id, tag.as_str().as_bytes()))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Tag names in lexical order after `last`, at most `limit`.
    pub fn names(
        &self,
        repo_id: Uuid,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let start = match last {
            Some(l) => Bound::Excluded(repo_key(repo_id, l.as_bytes())),
            None => Bound::Included(repo_key(repo_id, b"")),
        };
        let end = match Uuid::from_u128(repo_id.as_u128().wrapping_add(1)) {
            next if next.as_u128() == 0 => Bound::Unbounded,
            next => Bound::Excluded(next.as_bytes().to_vec()),
        };
        let mut out = Vec::new();
        for item in self.rows.range((start, end)).take(limit) {
            let key = item?.0;
            out.push(String::from_utf8_lossy(suffix(&key)).into_owned());
        }
        Ok(out)
    }

    /// Every tag of a repository with its row, by name.
    pub fn all(&self, repo_id: Uuid) -> Result<Vec<(TagName, TagRow)>, StoreError> {
        let mut out = Vec::new();
        for item in self.rows.prefix(repo_id.as_bytes()) {
            let (k, v) = item?;
            let tag = TagName::parse(&String::from_utf8_lossy(suffix(&k)))?;
            out.push((tag, decode(&v)?));
        }
        Ok(out)
    }

    pub(crate) fn load(&self, repo_id: Uuid) -> Result<HashMap<TagName, Digest>, StoreError> {
        let mut out = HashMap::new();
        for item in self.rows.prefix(repo_id.as_bytes()) {
            let (k, v) = item?;
            let tag = TagName::parse(&String::from_utf8_lossy(suffix(&k)))?;
            let row: TagRow = decode(&v)?;
            out.insert(tag, row.digest);
        }
        Ok(out)
    }
}
