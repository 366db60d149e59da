//! Accounts and their users: who exists, who administers what, and the
//! password verifiers that logins are checked against.

use std::collections::HashMap;

use berth_domain::{AccountName, AccountState, Event, PasswordHash, UserName, UserState};
use berth_store::{Recorded, StoreError};
use chrono::{DateTime, Utc};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode};

/// An account row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    /// Stream id.
    pub id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Stream id.
    pub id: Uuid,
    /// Whether the user administers the account.
    pub admin: bool,
    /// Password verifier.
    pub password: PasswordHash,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// The accounts read model.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) rows: Keyspace,
    pub(crate) users: Keyspace,
}

/// `account ‖ 0x00 ‖ user`: names never hold a zero byte, so the account
/// is exactly the bytes before it and its users are one prefix.
fn user_key(account: &AccountName, user: &UserName) -> Vec<u8> {
    let mut k = account_prefix(account);
    k.extend_from_slice(user.as_str().as_bytes());
    k
}

fn account_prefix(account: &AccountName) -> Vec<u8> {
    let mut k = account.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

impl Accounts {
    pub(crate) fn open(db: &Database) -> Result<Self, StoreError> {
        Ok(Self {
            rows: db.keyspace("p_accounts", KeyspaceCreateOptions::default)?,
            users: db.keyspace("p_users", KeyspaceCreateOptions::default)?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut OwnedWriteBatch, rec: &Recorded) {
        match &rec.event {
            Event::AccountCreated {
                account_id,
                account,
            } => {
                let row = AccountRow {
                    id: *account_id,
                    created_at: rec.envelope.occurred_at,
                };
                batch.insert(&self.rows, account.as_str(), encode(&row));
            }
            Event::UserCreated {
                user_id,
                account,
                user,
                admin,
                password,
                ..
            } => {
                let row = UserRow {
                    id: *user_id,
                    admin: *admin,
                    password: password.clone(),
                    created_at: rec.envelope.occurred_at,
                };
                batch.insert(&self.users, user_key(account, user), encode(&row));
            }
            _ => {}
        }
    }

    /// One account.
    pub fn get(&self, account: &AccountName) -> Result<Option<AccountRow>, StoreError> {
        self.rows
            .get(account.as_str())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// One user of an account.
    pub fn user(
        &self,
        account: &AccountName,
        user: &UserName,
    ) -> Result<Option<UserRow>, StoreError> {
        self.users
            .get(user_key(account, user))?
            .map(|v| decode(&v))
            .transpose()
    }

    pub(crate) fn load(&self, account: &AccountName) -> Result<Option<AccountState>, StoreError> {
        let Some(row) = self.get(account)? else {
            return Ok(None);
        };
        let prefix = account_prefix(account);
        let mut users = HashMap::new();
        for item in self.users.prefix(&prefix) {
            let (k, v) = item.into_inner()?;
            let name = UserName::parse(&String::from_utf8_lossy(&k[prefix.len()..]))?;
            let user: UserRow = decode(&v)?;
            users.insert(
                name,
                UserState {
                    id: user.id,
                    version: 0,
                },
            );
        }
        Ok(Some(AccountState {
            id: row.id,
            version: 0,
            users,
        }))
    }
}
