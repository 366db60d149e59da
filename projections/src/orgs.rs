//! Organizations by name: existence, id, and how they were created.

use berth_domain::{AccountName, Event, Level, OrgName, Organization, RepoName, UserName};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode};

/// An organization row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRow {
    /// Stream id.
    pub id: Uuid,
    /// When it was created.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
    /// Whether a push created it.
    pub auto: bool,
    /// Owning account (`None` for organizations from before accounts).
    pub owner: Option<AccountName>,
    /// The user who created it.
    pub creator: Option<UserName>,
}

/// The owner of an organization as a batch leaves its row (earlier events
/// of the same batch included), for read models that record it.
pub(crate) fn owner_as_batch_leaves(
    batch: &Batch,
    rows: &Table,
    org: &str,
) -> Result<Option<AccountName>, StoreError> {
    Ok(match batch.get(rows, org)? {
        Some(v) => decode::<OrgRow>(&v)?.owner,
        None => None,
    })
}

/// The organizations read model.
#[derive(Clone)]
pub struct Orgs {
    pub(crate) rows: Table,
    pub(crate) by_account: Table,
    pub(crate) grants: Table,
    /// `account ‖ 0 ‖ user ‖ 0 ‖ org`: the organizations a user holds a
    /// grant on.
    pub(crate) by_grantee: Table,
    /// `org ‖ 0 ‖ name`: the repositories of each organization.
    pub(crate) repos: Table,
}

/// A member of an organization and their grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Their account.
    pub account: AccountName,
    /// Their user name.
    pub user: UserName,
    /// Their level.
    pub level: Level,
}

/// `a ‖ 0x00 ‖ b`: validated names never hold a zero byte.
fn pair(a: &str, b: &str) -> Vec<u8> {
    let mut k = a.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// The grants in a table keyed `prefix ‖ account ‖ 0 ‖ user`, with the
/// level as value: an organization's or a repository's members.
pub(crate) fn members_under(grants: &Table, prefix: &[u8]) -> Result<Vec<Member>, StoreError> {
    let mut out = Vec::new();
    for item in grants.prefix(prefix) {
        let (k, v) = item?;
        let rest = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        let Some((account, user)) = rest.split_once('\0') else {
            continue;
        };
        if let (Ok(account), Ok(user)) = (AccountName::parse(account), UserName::parse(user)) {
            out.push(Member {
                account,
                user,
                level: decode(&v)?,
            });
        }
    }
    Ok(out)
}

fn grantee_key(account: &AccountName, user: &UserName, org: &OrgName) -> Vec<u8> {
    let mut k = pair(account.as_str(), user.as_str());
    k.push(0);
    k.extend_from_slice(org.as_str().as_bytes());
    k
}

fn grant_key(org: &OrgName, account: &AccountName, user: &UserName) -> Vec<u8> {
    let mut k = pair(org.as_str(), account.as_str());
    k.push(0);
    k.extend_from_slice(user.as_str().as_bytes());
    k
}

impl Orgs {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_orgs")?,
            by_account: log.table("p_account_orgs")?,
            grants: log.table("p_org_grants")?,
            by_grantee: log.table("p_org_grantees")?,
            repos: log.table("p_org_repos")?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) {
        match &rec.event {
            Event::OrgCreated { org_id, org, auto } => {
                let row = OrgRow {
                    id: *org_id,
                    created_at: rec.envelope.occurred_at,
                    auto: *auto,
                    owner: None,
                    creator: None,
                };
                batch.insert(&self.rows, org.as_str(), encode(&row));
            }
            Event::NamespaceCreated {
                org_id,
                org,
                account,
                user,
                auto,
                ..
            } => {
                let row = OrgRow {
                    id: *org_id,
                    created_at: rec.envelope.occurred_at,
                    auto: *auto,
                    owner: Some(account.clone()),
                    creator: Some(user.clone()),
                };
                batch.insert(&self.rows, org.as_str(), encode(&row));
                batch.insert(&self.by_account, pair(account.as_str(), org.as_str()), []);
            }
            Event::OrgAccessGranted {
                org,
                account,
                user,
                level,
                ..
            } => {
                batch.insert(&self.grants, grant_key(org, account, user), encode(level));
                batch.insert(&self.by_grantee, grantee_key(account, user, org), []);
            }
            Event::OrgAccessRevoked {
                org, account, user, ..
            } => {
                batch.remove(&self.grants, grant_key(org, account, user));
                batch.remove(&self.by_grantee, grantee_key(account, user, org));
            }
            Event::OrganizationDeleted { org, owner, .. } => {
                batch.remove(&self.rows, org.as_str());
                if let Some(owner) = owner {
                    batch.remove(&self.by_account, pair(owner.as_str(), org.as_str()));
                }
            }
            Event::RepositoryCreated { repo, .. } => {
                batch.insert(
                    &self.repos,
                    pair(repo.org().as_str(), repo.name().as_str()),
                    [],
                );
            }
            Event::RepositoryDeleted { repo, .. } => {
                batch.remove(&self.repos, pair(repo.org().as_str(), repo.name().as_str()));
            }
            _ => {}
        }
    }

    /// Every grant on an organization, by account and user.
    pub fn members(&self, org: &OrgName) -> Result<Vec<Member>, StoreError> {
        let mut prefix = org.as_str().as_bytes().to_vec();
        prefix.push(0);
        members_under(&self.grants, &prefix)
    }

    /// The organizations a user holds a grant on.
    pub fn granted_to(
        &self,
        account: &AccountName,
        user: &UserName,
    ) -> Result<Vec<OrgName>, StoreError> {
        let mut prefix = pair(account.as_str(), user.as_str());
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.by_grantee.prefix(&prefix) {
            let (k, _) = item?;
            if let Ok(org) = OrgName::parse(&String::from_utf8_lossy(&k[prefix.len()..])) {
                out.push(org);
            }
        }
        Ok(out)
    }

    /// The organizations an account owns, by name.
    pub fn owned_by(&self, account: &AccountName) -> Result<Vec<OrgName>, StoreError> {
        let mut prefix = account.as_str().as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.by_account.prefix(&prefix) {
            let (k, _) = item?;
            if let Ok(org) = OrgName::parse(&String::from_utf8_lossy(&k[prefix.len()..])) {
                out.push(org);
            }
        }
        Ok(out)
    }

    /// The names of an organization's repositories, in name order, at most
    /// `limit`, and how many there are in all.
    pub fn repositories(
        &self,
        org: &OrgName,
        limit: usize,
    ) -> Result<(Vec<RepoName>, usize), StoreError> {
        let mut prefix = org.as_str().as_bytes().to_vec();
        prefix.push(0);
        let (mut names, mut count) = (Vec::new(), 0);
        for item in self.repos.prefix(&prefix) {
            let (k, _) = item?;
            count += 1;
            if names.len() < limit {
                if let Ok(name) = RepoName::parse(&String::from_utf8_lossy(&k[prefix.len()..])) {
                    names.push(name);
                }
            }
        }
        Ok((names, count))
    }

    /// A user's own grant on an organization.
    pub fn grant(
        &self,
        org: &OrgName,
        account: &AccountName,
        user: &UserName,
    ) -> Result<Option<Level>, StoreError> {
        self.grants
            .get(grant_key(org, account, user))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// How many organizations an account owns.
    pub fn count_owned(&self, account: &AccountName) -> Result<usize, StoreError> {
        Ok(self.owned_by(account)?.len())
    }

    /// One organization.
    pub fn get(&self, name: &OrgName) -> Result<Option<OrgRow>, StoreError> {
        self.rows
            .get(name.as_str())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub(crate) fn load(&self, name: &OrgName) -> Result<Option<Organization>, StoreError> {
        let Some(row) = self.get(name)? else {
            return Ok(None);
        };
        let grants = self
            .members(name)?
            .into_iter()
            .map(|m| ((m.account, m.user), m.level))
            .collect();
        let (sample, repos) = self.repositories(name, berth_domain::organization::SAMPLE)?;
        Ok(Some(Organization {
            id: row.id,
            owner: row.owner,
            grants,
            repos,
            sample: sample.into_iter().collect(),
        }))
    }
}
