//! Accounts and their users: who exists, who administers what, and the
//! password verifiers that logins are checked against.

use std::collections::HashMap;

use berth_domain::{Account, AccountName, Event, PasswordHash, User, UserName};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode};

/// An account row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    /// Stream id.
    pub id: Uuid,
    /// When it was created.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
}

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Stream id.
    pub id: Uuid,
    /// Whether the user administers the account.
    pub admin: bool,
    /// When the user was created.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
}

/// An access key row, keyed by the key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRow {
    /// Owner's account.
    pub account: AccountName,
    /// Owner.
    pub user: UserName,
    /// SHA-256 (hex) of the login password the key yields.
    pub verifier: String,
    /// When it was created.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
}

/// A temporary docker login, keyed by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporaryLoginRow {
    /// Owner's account.
    pub account: AccountName,
    /// Owner.
    pub user: UserName,
    /// SHA-256 (hex) of the secret.
    pub verifier: String,
    /// When it stops working.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub expires_at: DateTime<Utc>,
}

/// The accounts read model: accounts, users, access keys, temporary logins.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) rows: Table,
    pub(crate) users: Table,
    pub(crate) passwords: Table,
    pub(crate) disabled_users: Table,
    pub(crate) keys: Table,
    pub(crate) user_keys: Table,
    pub(crate) disabled_keys: Table,
    pub(crate) temporary: Table,
}

fn user_key_entry(account: &AccountName, user: &UserName, ak: &str) -> Vec<u8> {
    let mut k = user_key(account, user);
    k.push(0);
    k.extend_from_slice(ak.as_bytes());
    k
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
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_accounts")?,
            users: log.table("p_users")?,
            passwords: log.table("p_user_passwords")?,
            disabled_users: log.table("p_disabled_users")?,
            keys: log.table("p_access_keys")?,
            user_keys: log.table("p_user_keys")?,
            disabled_keys: log.table("p_disabled_keys")?,
            temporary: log.table("p_temporary_logins")?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) {
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
                    created_at: rec.envelope.occurred_at,
                };
                batch.insert(&self.users, user_key(account, user), encode(&row));
                batch.insert(&self.passwords, user_key(account, user), encode(password));
            }
            // Passwords and the disabled flag are their own keyspaces so that
            // every write here is blind: several changes to one user in one
            // batch all land.
            Event::UserPasswordChanged {
                account,
                user,
                password,
                ..
            } => {
                batch.insert(&self.passwords, user_key(account, user), encode(password));
            }
            Event::UserDisabled { account, user, .. } => {
                batch.insert(&self.disabled_users, user_key(account, user), []);
            }
            Event::UserEnabled { account, user, .. } => {
                batch.remove(&self.disabled_users, user_key(account, user));
            }
            Event::AccessKeyCreated {
                account,
                user,
                ak,
                verifier,
                ..
            } => {
                let row = AccessKeyRow {
                    account: account.clone(),
                    user: user.clone(),
                    verifier: verifier.clone(),
                    created_at: rec.envelope.occurred_at,
                };
                batch.insert(&self.keys, ak.as_str(), encode(&row));
                batch.insert(&self.user_keys, user_key_entry(account, user, ak), []);
            }
            // Kept as its own set so that every write is blind: a key created
            // and disabled in the same batch ends up disabled.
            Event::AccessKeyEnabledChanged { ak, enabled, .. } => {
                if *enabled {
                    batch.remove(&self.disabled_keys, ak.as_str());
                } else {
                    batch.insert(&self.disabled_keys, ak.as_str(), []);
                }
            }
            Event::AccessKeyDeleted {
                account, user, ak, ..
            } => {
                batch.remove(&self.keys, ak.as_str());
                batch.remove(&self.disabled_keys, ak.as_str());
                batch.remove(&self.user_keys, user_key_entry(account, user, ak));
            }
            Event::TemporaryLoginIssued {
                account,
                user,
                login_id,
                verifier,
                expires_at,
                ..
            } => {
                let row = TemporaryLoginRow {
                    account: account.clone(),
                    user: user.clone(),
                    verifier: verifier.clone(),
                    expires_at: *expires_at,
                };
                batch.insert(&self.temporary, login_id.as_str(), encode(&row));
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

    /// A user's password verifier.
    pub fn password(
        &self,
        account: &AccountName,
        user: &UserName,
    ) -> Result<Option<PasswordHash>, StoreError> {
        self.passwords
            .get(user_key(account, user))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Whether a user is disabled.
    pub fn is_disabled(&self, account: &AccountName, user: &UserName) -> Result<bool, StoreError> {
        self.disabled_users.contains(user_key(account, user))
    }

    /// One access key.
    pub fn key(&self, ak: &str) -> Result<Option<AccessKeyRow>, StoreError> {
        self.keys.get(ak)?.map(|v| decode(&v)).transpose()
    }

    /// Whether an existing access key is enabled.
    pub fn key_enabled(&self, ak: &str) -> Result<bool, StoreError> {
        Ok(!self.disabled_keys.contains(ak)?)
    }

    /// A user's access keys, in key-id order, with whether each is enabled.
    pub fn keys_of(
        &self,
        account: &AccountName,
        user: &UserName,
    ) -> Result<Vec<(String, AccessKeyRow, bool)>, StoreError> {
        let mut prefix = user_key(account, user);
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.user_keys.prefix(&prefix) {
            let k = item?.0;
            let ak = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(row) = self.key(&ak)? {
                let enabled = self.key_enabled(&ak)?;
                out.push((ak, row, enabled));
            }
        }
        Ok(out)
    }

    /// An account's users in name order, each with whether it is enabled.
    pub fn users_of(
        &self,
        account: &AccountName,
    ) -> Result<Vec<(UserName, UserRow, bool)>, StoreError> {
        let prefix = account_prefix(account);
        let mut out = Vec::new();
        for item in self.users.prefix(&prefix) {
            let (k, v) = item?;
            let name = UserName::parse(&String::from_utf8_lossy(&k[prefix.len()..]))?;
            let enabled = !self.is_disabled(account, &name)?;
            out.push((name, decode(&v)?, enabled));
        }
        Ok(out)
    }

    /// One temporary login.
    pub fn temporary_login(&self, login_id: &str) -> Result<Option<TemporaryLoginRow>, StoreError> {
        self.temporary
            .get(login_id)?
            .map(|v| decode(&v))
            .transpose()
    }

    pub(crate) fn load(&self, account: &AccountName) -> Result<Option<Account>, StoreError> {
        let Some(row) = self.get(account)? else {
            return Ok(None);
        };
        let mut users = HashMap::new();
        for (name, user, enabled) in self.users_of(account)? {
            let keys = self
                .keys_of(account, &name)?
                .into_iter()
                .map(|(ak, _, enabled)| (ak, enabled))
                .collect();
            users.insert(
                name,
                User {
                    id: user.id,
                    keys,
                    disabled: !enabled,
                },
            );
        }
        Ok(Some(Account {
            id: row.id,
            users,
            orgs: 0,
        }))
    }
}
