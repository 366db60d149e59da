//! Manifests per repository, and the referrers index (subject → manifests
//! that name it), kept together because both change on the same events.

use std::collections::{BTreeMap, HashMap};

use berth_domain::{Digest, Event, ManifestMeta};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode, held, holder_key, repo_key, suffix};

/// A stored manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Media type it was pushed with.
    pub media_type: String,
    /// Manifest bytes.
    pub size: u64,
    /// Size of the content it references.
    pub content_size: u64,
    /// Its subject, if it is a referrer.
    pub subject: Option<Digest>,
    /// When it was pushed.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub pushed_at: DateTime<Utc>,
    /// The blobs and child manifests it references.
    pub references: Vec<Digest>,
}

/// A referrer as the referrers API describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferrerRow {
    /// The referring manifest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The manifests and referrers read model.
#[derive(Clone)]
pub struct Manifests {
    pub(crate) rows: Table,
    pub(crate) referrers: Table,
    /// The same manifests by digest: which repositories hold one, so that
    /// garbage collection can tell a stored manifest nobody holds.
    pub(crate) holders: Table,
}

fn referrer_key(repo_id: Uuid, subject: &Digest, digest: &Digest) -> Vec<u8> {
    let mut suffix = subject.to_string().into_bytes();
    suffix.push(0);
    suffix.extend_from_slice(digest.to_string().as_bytes());
    repo_key(repo_id, &suffix)
}

impl Manifests {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_manifests")?,
            referrers: log.table("p_referrers")?,
            holders: log.table("p_manifest_holders")?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) {
        match &rec.event {
            Event::ManifestPushed {
                repo_id,
                digest,
                media_type,
                size,
                content_size,
                subject,
                artifact_type,
                annotations,
                blobs,
                manifests,
                ..
            } => {
                let row = ManifestRow {
                    media_type: media_type.clone(),
                    size: *size,
                    content_size: *content_size,
                    subject: subject.clone(),
                    pushed_at: rec.envelope.occurred_at,
                    references: blobs.iter().chain(manifests).cloned().collect(),
                };
                let key = repo_key(*repo_id, digest.to_string().as_bytes());
                batch.insert(&self.rows, key, encode(&row));
                batch.insert(&self.holders, holder_key(digest, *repo_id), []);
                if let Some(subject) = subject {
                    let referrer = ReferrerRow {
                        digest: digest.clone(),
                        media_type: media_type.clone(),
                        size: *size,
                        artifact_type: artifact_type.clone(),
                        annotations: annotations.clone(),
                    };
                    batch.insert(
                        &self.referrers,
                        referrer_key(*repo_id, subject, digest),
                        encode(&referrer),
                    );
                }
            }
            Event::ManifestDeleted {
                repo_id,
                digest,
                subject,
                ..
            } => {
                batch.remove(
                    &self.rows,
                    repo_key(*repo_id, digest.to_string().as_bytes()),
                );
                batch.remove(&self.holders, holder_key(digest, *repo_id));
                if let Some(subject) = subject {
                    batch.remove(&self.referrers, referrer_key(*repo_id, subject, digest));
                }
            }
            _ => {}
        }
    }

    /// One manifest.
    pub fn get(&self, repo_id: Uuid, digest: &Digest) -> Result<Option<ManifestRow>, StoreError> {
        self.rows
            .get(repo_key(repo_id, digest.to_string().as_bytes()))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Whether any live repository holds the manifest.
    pub fn held(&self, digest: &Digest) -> Result<bool, StoreError> {
        held(&self.holders, digest)
    }

    /// Manifests in the repository that name `subject`, in digest order.
    pub fn referrers(
        &self,
        repo_id: Uuid,
        subject: &Digest,
    ) -> Result<Vec<ReferrerRow>, StoreError> {
        let mut prefix = subject.to_string().into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.referrers.prefix(repo_key(repo_id, &prefix)) {
            let (_, v) = item?;
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    pub(crate) fn load(&self, repo_id: Uuid) -> Result<HashMap<Digest, ManifestMeta>, StoreError> {
        let mut out = HashMap::new();
        for item in self.rows.prefix(repo_id.as_bytes()) {
            let (k, v) = item?;
            let digest = Digest::parse(&String::from_utf8_lossy(suffix(&k)))?;
            let row: ManifestRow = decode(&v)?;
            out.insert(
                digest,
                ManifestMeta {
                    media_type: row.media_type,
                    total_size: row.size + row.content_size,
                    subject: row.subject,
                    references: row.references,
                },
            );
        }
        Ok(out)
    }
}
