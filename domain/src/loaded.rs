//! The aggregates loaded for one decision. The engine loads every name a
//! command [touches](crate::Command::touches) before deciding, so a name
//! absent from these maps is a name that does not exist; nothing is ever
//! invented on read.

use std::collections::HashMap;
use std::hash::Hash;

use crate::account::{self, Account, User};
use crate::command::Touches;
use crate::error::DomainError;
use crate::event::Event;
use crate::names::{AccountName, OrgName, RepoPath, UserName};
use crate::organization::{self, Organization};
use crate::repository::{self, Repository};

/// Organizations, repositories and accounts by name, as far as loaded.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Organizations by name.
    pub orgs: HashMap<OrgName, Organization>,
    /// Repositories by name.
    pub repos: HashMap<RepoPath, Repository>,
    /// Accounts (with their users) by name.
    pub accounts: HashMap<AccountName, Account>,
}

impl Loaded {
    /// Folds one event into the aggregates it concerns.
    pub fn evolve(&mut self, event: &Event) {
        self.fold_in(event, false);
    }

    /// Folds one event into the aggregates it concerns that are held here,
    /// and leaves the others out: a cache kept across events decided
    /// elsewhere must not hold an aggregate built from later events alone.
    pub fn evolve_held(&mut self, event: &Event) {
        self.fold_in(event, true);
    }

    fn fold_in(&mut self, event: &Event, held_only: bool) {
        if let Some(org) = org_of(event) {
            fold(&mut self.orgs, org, held_only, |s| {
                organization::evolve(s, event)
            });
        }
        if let Some(repo) = event.repository() {
            fold(&mut self.repos, repo, held_only, |s| {
                repository::evolve(s, event)
            });
        }
        if let Some(name) = account_of(event) {
            fold(&mut self.accounts, name, held_only, |s| {
                account::evolve(s, event)
            });
        }
    }

    /// A copy of what a command touches (each repository with its
    /// organization): all a decision may read, without copying the rest.
    #[must_use]
    pub fn only(&self, touches: &Touches<'_>) -> Self {
        let mut out = Self::default();
        let orgs = touches
            .orgs
            .iter()
            .copied()
            .chain(touches.repos.iter().map(|r| r.org()));
        for org in orgs {
            if let Some(o) = self.orgs.get(org) {
                out.orgs.insert(org.clone(), o.clone());
            }
        }
        for repo in &touches.repos {
            if let Some(r) = self.repos.get(*repo) {
                out.repos.insert((*repo).clone(), r.clone());
            }
        }
        for account in &touches.accounts {
            if let Some(a) = self.accounts.get(*account) {
                out.accounts.insert((*account).clone(), a.clone());
            }
        }
        out
    }

    /// A user of an account, or the refusal that names them unknown.
    pub fn user(&self, account: &AccountName, user: &UserName) -> Result<&User, DomainError> {
        self.accounts
            .get(account)
            .and_then(|a| a.users.get(user))
            .ok_or_else(|| DomainError::UserUnknown {
                account: account.clone(),
                user: user.clone(),
            })
    }

    /// A repository, or the refusal that names it unknown.
    pub fn repo(&self, repo: &RepoPath) -> Result<&Repository, DomainError> {
        self.repos
            .get(repo)
            .ok_or_else(|| DomainError::RepositoryUnknown(repo.clone()))
    }
}

fn fold<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    key: &K,
    held_only: bool,
    f: impl FnOnce(Option<V>) -> Option<V>,
) {
    if held_only && !map.contains_key(key) {
        return;
    }
    let before = map.remove(key);
    if let Some(after) = f(before) {
        map.insert(key.clone(), after);
    }
}

fn org_of(event: &Event) -> Option<&OrgName> {
    match event {
        Event::OrgCreated { org, .. }
        | Event::NamespaceCreated { org, .. }
        | Event::OrgAccessGranted { org, .. }
        | Event::OrgAccessRevoked { org, .. }
        | Event::OrganizationDeleted { org, .. } => Some(org),
        // An organization counts its repositories.
        Event::RepositoryCreated { repo, .. } | Event::RepositoryDeleted { repo, .. } => {
            Some(repo.org())
        }
        _ => None,
    }
}

fn account_of(event: &Event) -> Option<&AccountName> {
    match event {
        Event::AccountCreated { account, .. }
        | Event::UserCreated { account, .. }
        | Event::NamespaceCreated { account, .. }
        | Event::AccessKeyCreated { account, .. }
        | Event::AccessKeyEnabledChanged { account, .. }
        | Event::AccessKeyDeleted { account, .. }
        | Event::TemporaryLoginIssued { account, .. }
        | Event::AccessDenied { account, .. }
        | Event::UserPasswordChanged { account, .. }
        | Event::UserDisabled { account, .. }
        | Event::UserEnabled { account, .. } => Some(account),
        Event::OrganizationDeleted { owner, .. } => owner.as_ref(),
        _ => None,
    }
}
