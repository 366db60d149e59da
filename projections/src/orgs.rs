//! Organizations by name: existence, id, and how they were created.

use berth_domain::{AccountName, Event, Level, OrgName, Organization, UserName};
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
    pub created_at: DateTime<Utc>,
    /// Whether a push created it.
    pub auto: bool,
    /// Owning account (`None` for organizations from before accounts).
    pub owner: Option<AccountName>,
    /// The user who created it.
    pub creator: Option<UserName>,
}

/// The organizations read model.
#[derive(Clone)]
pub struct Orgs {
    pub(crate) rows: Table,
    pub(crate) by_account: Table,
    pub(crate) grants: Table,
}

/// `a ‖ 0x00 ‖ b`: validated names never hold a zero byte.
fn pair(a: &str, b: &str) -> Vec<u8> {
    let mut k = a.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(b.as_bytes());
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
            }
            _ => {}
        }
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
        let mut prefix = account.as_str().as_bytes().to_vec();
        prefix.push(0);
        let mut n = 0;
        for item in self.by_account.prefix(prefix) {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// One organization.
    pub fn get(&self, name: &OrgName) -> Result<Option<OrgRow>, StoreError> {
        self.rows
            .get(name.as_str())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub(crate) fn load(&self, name: &OrgName) -> Result<Option<Organization>, StoreError> {
        Ok(self.get(name)?.map(|row| Organization {
            id: row.id,
            owner: row.owner,
        }))
    }
}
