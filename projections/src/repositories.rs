//! Repositories: the live name → incarnation index (which also serves the
//! catalog, in name order) and each incarnation's row.

use berth_domain::{AccountName, Event, Level, RepoPath, UserName};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode};
use crate::orgs::{members_under, Member};

/// A repository incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRow {
    /// Stream id.
    pub id: Uuid,
    /// Owning organization's stream id.
    pub org_id: Uuid,
    /// When it was created.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
}

/// The repositories read model.
#[derive(Clone)]
pub struct Repositories {
    pub(crate) by_name: Table,
    pub(crate) public: Table,
    pub(crate) grants: Table,
}

/// `repo_id ‖ account ‖ 0x00 ‖ user`.
fn grant_key(repo_id: Uuid, account: &AccountName, user: &UserName) -> Vec<u8> {
    let mut k = repo_id.as_bytes().to_vec();
    k.extend_from_slice(account.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(user.as_str().as_bytes());
    k
}

impl Repositories {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            by_name: log.table("p_repos")?,
            public: log.table("p_public_repos")?,
            grants: log.table("p_repo_grants")?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) {
        match &rec.event {
            Event::RepositoryCreated {
                repo_id,
                org_id,
                repo,
            } => {
                let row = RepoRow {
                    id: *repo_id,
                    org_id: *org_id,
                    created_at: rec.envelope.occurred_at,
                };
                batch.insert(&self.by_name, repo.to_string(), encode(&row));
            }
            Event::RepositoryVisibilityChanged {
                repo_id, public, ..
            } => {
                if *public {
                    batch.insert(&self.public, repo_id.as_bytes(), []);
                } else {
                    batch.remove(&self.public, repo_id.as_bytes());
                }
            }
            Event::RepoAccessGranted {
                repo_id,
                account,
                user,
                level,
                ..
            } => {
                batch.insert(
                    &self.grants,
                    grant_key(*repo_id, account, user),
                    encode(level),
                );
            }
            Event::RepoAccessRevoked {
                repo_id,
                account,
                user,
                ..
            } => {
                batch.remove(&self.grants, grant_key(*repo_id, account, user));
            }
            Event::RepositoryDeleted { repo_id, repo } => {
                batch.remove(&self.by_name, repo.to_string());
                batch.remove(&self.public, repo_id.as_bytes());
            }
            _ => {}
        }
    }

    /// A user's own grant on a repository incarnation.
    pub fn grant(
        &self,
        repo_id: Uuid,
        account: &AccountName,
        user: &UserName,
    ) -> Result<Option<Level>, StoreError> {
        self.grants
            .get(grant_key(repo_id, account, user))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Every grant on one repository, by account and user.
    pub fn grants_on(&self, repo_id: Uuid) -> Result<Vec<Member>, StoreError> {
        members_under(&self.grants, repo_id.as_bytes())
    }

    /// Whether a repository incarnation is public.
    pub fn is_public(&self, repo_id: Uuid) -> Result<bool, StoreError> {
        self.public.contains(repo_id.as_bytes())
    }

    /// The live incarnation of a name.
    pub fn get(&self, path: &RepoPath) -> Result<Option<RepoRow>, StoreError> {
        self.by_name
            .get(path.to_string())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Repository names in order, after `last`, at most `limit`.
    pub fn names(&self, last: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let iter = match last {
            Some(l) => self.by_name.range::<&[u8], _>((
                std::ops::Bound::Excluded(l.as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => self.by_name.iter(),
        };
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let key = item?.0;
            out.push(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(out)
    }
}
