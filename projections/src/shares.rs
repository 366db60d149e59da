//! Shares: which private repository is shared with which account, until
//! when, seen from the repository (the pull path's check), from the sharer
//! ("shared by me") and from the receiver ("shared with me").

use berth_domain::{AccountName, Deadline, Event, RepoPath, ShareNote};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode, repo_key};

/// One share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRow {
    /// The repository's stream.
    pub repo_id: Uuid,
    /// The repository.
    pub repo: RepoPath,
    /// The sharing account.
    pub owner: AccountName,
    /// The account it is shared with.
    pub with: AccountName,
    /// Until when.
    pub deadline: Deadline,
    /// The sharer's note.
    pub description: ShareNote,
    /// When it was granted.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub updated_at: DateTime<Utc>,
}

/// The shares read model.
#[derive(Clone)]
pub struct Shares {
    pub(crate) rows: Table,
    pub(crate) by_owner: Table,
    pub(crate) by_with: Table,
}

/// `account ‖ 0 ‖ repo ‖ 0 ‖ other account`.
fn side_key(account: &AccountName, repo: &RepoPath, other: &AccountName) -> Vec<u8> {
    let mut k = account.as_str().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(repo.to_string().as_bytes());
    k.push(0);
    k.extend_from_slice(other.as_str().as_bytes());
    k
}

fn account_prefix(account: &AccountName) -> Vec<u8> {
    let mut k = account.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

impl Shares {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_shares")?,
            by_owner: log.table("p_shares_by_owner")?,
            by_with: log.table("p_shares_by_with")?,
        })
    }

    fn store(&self, batch: &mut Batch, row: &ShareRow) {
        let key = repo_key(row.repo_id, row.with.as_str().as_bytes());
        batch.insert(&self.rows, &key, encode(row));
        batch.insert(
            &self.by_owner,
            side_key(&row.owner, &row.repo, &row.with),
            row.repo_id.as_bytes(),
        );
        batch.insert(
            &self.by_with,
            side_key(&row.with, &row.repo, &row.owner),
            row.repo_id.as_bytes(),
        );
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) -> Result<(), StoreError> {
        match &rec.event {
            Event::ShareGranted {
                repo_id,
                repo,
                owner,
                with,
                deadline,
                description,
            } => {
                let row = ShareRow {
                    repo_id: *repo_id,
                    repo: repo.clone(),
                    owner: owner.clone(),
                    with: with.clone(),
                    deadline: *deadline,
                    description: description.clone(),
                    created_at: rec.envelope.occurred_at,
                    updated_at: rec.envelope.occurred_at,
                };
                self.store(batch, &row);
            }
            Event::ShareChanged {
                repo_id,
                with,
                deadline,
                description,
                ..
            } => {
                let key = repo_key(*repo_id, with.as_str().as_bytes());
                if let Some(v) = batch.get(&self.rows, &key)? {
                    let mut row: ShareRow = decode(&v)?;
                    row.deadline = *deadline;
                    row.description = description.clone();
                    row.updated_at = rec.envelope.occurred_at;
                    self.store(batch, &row);
                }
            }
            Event::ShareEnded { repo_id, with, .. } => {
                let key = repo_key(*repo_id, with.as_str().as_bytes());
                if let Some(v) = batch.get(&self.rows, &key)? {
                    let row: ShareRow = decode(&v)?;
                    batch.remove(&self.rows, &key);
                    batch.remove(&self.by_owner, side_key(&row.owner, &row.repo, &row.with));
                    batch.remove(&self.by_with, side_key(&row.with, &row.repo, &row.owner));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The share of a repository with an account, if any (expired or not).
    pub fn get(&self, repo_id: Uuid, with: &AccountName) -> Result<Option<ShareRow>, StoreError> {
        self.rows
            .get(repo_key(repo_id, with.as_str().as_bytes()))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Every share of one repository, by receiving account.
    pub fn of_repo(&self, repo_id: Uuid) -> Result<Vec<ShareRow>, StoreError> {
        self.rows
            .prefix(repo_id.as_bytes())
            .map(|item| decode(&item?.1))
            .collect()
    }

    /// The shares an index lists under `account`; on the owner's side the
    /// key ends with the receiver, on the receiver's with the owner.
    fn by_side(
        &self,
        owner_side: bool,
        account: &AccountName,
    ) -> Result<Vec<ShareRow>, StoreError> {
        let table = if owner_side {
            &self.by_owner
        } else {
            &self.by_with
        };
        let mut out = Vec::new();
        for item in table.prefix(account_prefix(account)) {
            let (key, id) = item?;
            let other = key.rsplit(|b| *b == 0).next().unwrap_or_default();
            let Ok(id) = Uuid::from_slice(&id) else {
                continue;
            };
            let other = String::from_utf8_lossy(other);
            if let Ok(other) = AccountName::parse(&other) {
                let with = if owner_side { other } else { account.clone() };
                out.extend(self.get(id, &with)?);
            }
        }
        Ok(out)
    }

    /// What an account shared, by repository then receiver.
    pub fn shared_by(&self, owner: &AccountName) -> Result<Vec<ShareRow>, StoreError> {
        self.by_side(true, owner)
    }

    /// What was shared with an account, by repository.
    pub fn shared_with(&self, with: &AccountName) -> Result<Vec<ShareRow>, StoreError> {
        self.by_side(false, with)
    }
}
