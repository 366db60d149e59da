//! Timelines: the sequence numbers of every event that touched an
//! organization or a repository, by name and across incarnations, so an
//! auditor's timeline (and later an as-of query) reads those events from
//! the log without scanning it.

use berth_domain::{OrgName, RepoPath};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};

/// The timeline index.
#[derive(Clone)]
pub struct Timeline {
    pub(crate) rows: Table,
}

/// What a timeline is of.
#[derive(Debug, Clone)]
pub enum Resource {
    /// An organization: its own events and all its repositories'.
    Org(OrgName),
    /// One repository name.
    Repo(RepoPath),
}

fn prefix(resource: &Resource) -> Vec<u8> {
    let (kind, name) = match resource {
        Resource::Org(org) => (b'o', org.to_string()),
        Resource::Repo(repo) => (b'r', repo.to_string()),
    };
    let mut k = vec![kind];
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

fn key(resource: &Resource, seq: u64) -> Vec<u8> {
    let mut k = prefix(resource);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

impl Timeline {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_timeline")?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) {
        if let Some(org) = rec.event.organization() {
            batch.insert(&self.rows, key(&Resource::Org(org.clone()), rec.seq), []);
        }
        if let Some(repo) = rec.event.repository() {
            batch.insert(&self.rows, key(&Resource::Repo(repo.clone()), rec.seq), []);
        }
    }

    /// The sequence numbers of a resource's events after `after`, oldest
    /// first, at most `limit`.
    pub fn seqs(
        &self,
        resource: &Resource,
        after: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let start = key(resource, after.saturating_add(1));
        let p = prefix(resource);
        let mut out = Vec::new();
        for item in self.rows.range::<&[u8], _>(start.as_slice()..) {
            let (k, _) = item?;
            if !k.starts_with(&p) || out.len() == limit {
                break;
            }
            let seq = k
                .get(p.len()..)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes);
            out.push(seq);
        }
        Ok(out)
    }
}
