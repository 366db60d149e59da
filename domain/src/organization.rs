//! The organization (namespace) aggregate: created explicitly or by a first
//! push, globally unique, owned by an account within its quota, and the
//! access grants its users hold on it.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

use crate::command::{Fresh, Owner};
use crate::error::DomainError;
use crate::event::Event;
use crate::loaded::Loaded;
use crate::names::{AccountName, OrgName, RepoName, UserName};
use crate::policy::{Level, DENIED_MESSAGE};

/// An organization as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Stream id.
    pub id: Uuid,
    /// Owning account (`None` for organizations from before accounts).
    pub owner: Option<AccountName>,
    /// Users' grants on it.
    pub grants: HashMap<(AccountName, UserName), Level>,
    /// How many repositories it holds.
    pub repos: usize,
    /// Some of their names (up to [`SAMPLE`]), to name in a refusal.
    pub sample: BTreeSet<RepoName>,
}

/// Repository names an organization's state keeps for messages.
pub const SAMPLE: usize = 10;

/// What may be asked of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgCommand {
    /// Create an organization explicitly.
    Create {
        /// The name.
        org: OrgName,
        /// The creator and their account's quota.
        by: Owner,
    },
    /// Give users of the owning account levels on the organization, all or
    /// none.
    Grant {
        /// The organization.
        org: OrgName,
        /// The grantees' account (the organization's owner).
        account: AccountName,
        /// Each grantee and the level they get.
        grants: Vec<(UserName, Level)>,
    },
    /// Take a user's grant away.
    Revoke {
        /// The organization.
        org: OrgName,
        /// The grantee's account.
        account: AccountName,
        /// The grantee.
        user: UserName,
    },
    /// Delete an organization that holds no repository.
    Delete {
        /// The organization.
        org: OrgName,
        /// The account asking (its state is read for nothing but kept
        /// current: its organization count drops).
        account: AccountName,
    },
}

impl OrgCommand {
    /// The organization the command is about.
    pub fn org(&self) -> &OrgName {
        match self {
            Self::Create { org, .. }
            | Self::Grant { org, .. }
            | Self::Revoke { org, .. }
            | Self::Delete { org, .. } => org,
        }
    }

    /// The account whose state the decision reads.
    pub fn account(&self) -> &AccountName {
        match self {
            Self::Create { by, .. } => &by.account,
            Self::Grant { account, .. }
            | Self::Revoke { account, .. }
            | Self::Delete { account, .. } => account,
        }
    }
}

/// Decides an organization command.
pub fn decide(state: &Loaded, cmd: &OrgCommand, fresh: Fresh) -> Result<Vec<Event>, DomainError> {
    match cmd {
        OrgCommand::Create { org, by } => {
            if state.orgs.contains_key(org) {
                return Err(DomainError::OrgExists(org.clone()));
            }
            let mut events = Vec::new();
            create(state, org, by, false, fresh, &mut events)?;
            Ok(events)
        }
        OrgCommand::Grant {
            org,
            account,
            grants,
        } => {
            let current = state
                .orgs
                .get(org)
                .ok_or_else(|| DomainError::OrgUnknown(org.clone()))?;
            if current.owner.as_ref() != Some(account) {
                return Err(DomainError::Denied(format!(
                    "only users of the account owning {org} can be granted access to it"
                )));
            }
            grants
                .iter()
                .map(|(user, level)| {
                    state.user(account, user)?;
                    Ok(Event::OrgAccessGranted {
                        org_id: current.id,
                        org: org.clone(),
                        account: account.clone(),
                        user: user.clone(),
                        level: *level,
                    })
                })
                .collect()
        }
        OrgCommand::Revoke { org, account, user } => {
            let current = state
                .orgs
                .get(org)
                .ok_or_else(|| DomainError::OrgUnknown(org.clone()))?;
            if !current
                .grants
                .contains_key(&(account.clone(), user.clone()))
            {
                return Err(DomainError::GrantUnknown {
                    account: account.clone(),
                    user: user.clone(),
                });
            }
            Ok(vec![Event::OrgAccessRevoked {
                org_id: current.id,
                org: org.clone(),
                account: account.clone(),
                user: user.clone(),
            }])
        }
        OrgCommand::Delete { org, .. } => {
            let current = state
                .orgs
                .get(org)
                .ok_or_else(|| DomainError::OrgUnknown(org.clone()))?;
            if current.repos > 0 {
                return Err(DomainError::OrgNotEmpty {
                    org: org.clone(),
                    count: current.repos,
                    sample: current.sample.iter().map(ToString::to_string).collect(),
                });
            }
            let mut grants: Vec<_> = current.grants.keys().cloned().collect();
            grants.sort();
            let mut events: Vec<Event> = grants
                .into_iter()
                .map(|(account, user)| Event::OrgAccessRevoked {
                    org_id: current.id,
                    org: org.clone(),
                    account,
                    user,
                })
                .collect();
            events.push(Event::OrganizationDeleted {
                org_id: current.id,
                org: org.clone(),
                owner: current.owner.clone(),
            });
            Ok(events)
        }
    }
}

/// Creates an organization owned by `by`'s account, within its quota; also
/// the first step of a push into an organization that does not exist yet.
pub(crate) fn create(
    state: &Loaded,
    org: &OrgName,
    by: &Owner,
    auto: bool,
    fresh: Fresh,
    events: &mut Vec<Event>,
) -> Result<(), DomainError> {
    let account = state
        .accounts
        .get(&by.account)
        .ok_or_else(|| DomainError::AccountUnknown(by.account.clone()))?;
    if account.orgs >= by.org_quota {
        // A push says nothing about why; an explicit request names the quota.
        return Err(if auto {
            DomainError::Denied(DENIED_MESSAGE.into())
        } else {
            DomainError::QuotaExceeded(by.org_quota)
        });
    }
    events.push(Event::NamespaceCreated {
        org_id: fresh.org_id,
        org: org.clone(),
        account_id: account.id,
        account: by.account.clone(),
        user: by.user.clone(),
        auto,
    });
    Ok(())
}

/// Folds an event into an organization; only a creation makes one exist,
/// and a deletion ends it.
pub fn evolve(state: Option<Organization>, event: &Event) -> Option<Organization> {
    let created = |id: Uuid, owner: Option<AccountName>| Organization {
        id,
        owner,
        grants: HashMap::new(),
        repos: 0,
        sample: BTreeSet::new(),
    };
    match event {
        Event::OrgCreated { org_id, .. } => return Some(created(*org_id, None)),
        Event::NamespaceCreated {
            org_id, account, ..
        } => return Some(created(*org_id, Some(account.clone()))),
        Event::OrganizationDeleted { .. } => return None,
        _ => {}
    }
    let mut o = state?;
    match event {
        Event::OrgAccessGranted {
            account,
            user,
            level,
            ..
        } => {
            o.grants.insert((account.clone(), user.clone()), *level);
        }
        Event::OrgAccessRevoked { account, user, .. } => {
            o.grants.remove(&(account.clone(), user.clone()));
        }
        Event::RepositoryCreated { repo, .. } => {
            o.repos += 1;
            if o.sample.len() < SAMPLE {
                o.sample.insert(repo.name().clone());
            }
        }
        Event::RepositoryDeleted { repo, .. } => {
            o.repos = o.repos.saturating_sub(1);
            o.sample.remove(repo.name());
        }
        _ => {}
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::testing::*;

    fn create_cmd(org: &str, quota: usize) -> Command {
        Command::Org(OrgCommand::Create {
            org: org_name(org),
            by: owner("acme", "root", quota),
        })
    }

    #[test]
    fn an_organization_is_created_once_within_the_quota() {
        let events = given(acme()).when(create_cmd("team", 1)).unwrap();
        assert!(matches!(
            events.as_slice(),
            [Event::NamespaceCreated { auto: false, account, user, .. }]
                if account.as_str() == "acme" && user.as_str() == "root"
        ));
        let mut history = acme().to_vec();
        history.extend(events);
        let g = given(history);
        assert_eq!(
            g.when(create_cmd("team", 5)),
            Err(DomainError::OrgExists(org_name("team")))
        );
        assert_eq!(
            g.when(create_cmd("other", 1)),
            Err(DomainError::QuotaExceeded(1)),
            "beyond the quota, named"
        );
    }

    #[test]
    fn a_grant_list_is_all_or_nothing() {
        let mut history = acme().to_vec();
        history.push(user_created("acme", "alice"));
        history.extend(given(history.clone()).when(create_cmd("team", 5)).unwrap());
        let grant = |users: &[&str]| {
            Command::Org(OrgCommand::Grant {
                org: org_name("team"),
                account: account("acme"),
                grants: users.iter().map(|u| (user(u), Level::Read)).collect(),
            })
        };
        let g = given(history);
        assert_eq!(g.when(grant(&["alice", "root"])).unwrap().len(), 2);
        assert_eq!(
            g.when(grant(&["alice", "nosuch", "root"])),
            Err(DomainError::UserUnknown {
                account: account("acme"),
                user: user("nosuch")
            })
        );
        assert_eq!(
            g.when(Command::Org(OrgCommand::Grant {
                org: org_name("ghost"),
                account: account("acme"),
                grants: vec![(user("alice"), Level::Read)],
            })),
            Err(DomainError::OrgUnknown(org_name("ghost")))
        );
    }

    #[test]
    fn revoking_needs_a_grant_and_deleting_needs_an_empty_organization() {
        let mut history = acme().to_vec();
        history.push(user_created("acme", "alice"));
        history.extend(given(history.clone()).when(create_cmd("team", 5)).unwrap());
        let grant = Command::Org(OrgCommand::Grant {
            org: org_name("team"),
            account: account("acme"),
            grants: vec![(user("alice"), Level::Edit)],
        });
        history.extend(given(history.clone()).when(grant).unwrap());
        let revoke = |u: &str| {
            Command::Org(OrgCommand::Revoke {
                org: org_name("team"),
                account: account("acme"),
                user: user(u),
            })
        };
        let g = given(history.clone());
        assert!(matches!(
            g.when(revoke("alice")).unwrap().as_slice(),
            [Event::OrgAccessRevoked { .. }]
        ));
        assert_eq!(
            g.when(revoke("root")),
            Err(DomainError::GrantUnknown {
                account: account("acme"),
                user: user("root")
            })
        );
        let delete = Command::Org(OrgCommand::Delete {
            org: org_name("team"),
            account: account("acme"),
        });
        let kinds: Vec<_> = g
            .when(delete.clone())
            .unwrap()
            .iter()
            .map(Event::kind)
            .collect();
        assert_eq!(kinds, ["OrgAccessRevoked", "OrganizationDeleted"]);
        history.push(Event::RepositoryCreated {
            repo_id: FRESH.repo_id,
            org_id: FRESH.org_id,
            repo: repo("team/web"),
        });
        assert_eq!(
            given(history).when(delete),
            Err(DomainError::OrgNotEmpty {
                org: org_name("team"),
                count: 1,
                sample: vec!["web".into()],
            })
        );
    }

    #[test]
    fn only_the_owning_accounts_users_are_granted() {
        let mut history = acme().to_vec();
        history.extend(given(history.clone()).when(create_cmd("team", 5)).unwrap());
        let result = given(history).when(Command::Org(OrgCommand::Grant {
            org: org_name("team"),
            account: account("other"),
            grants: vec![(user("eve"), Level::Read)],
        }));
        assert!(matches!(result, Err(DomainError::Denied(_))));
    }
}
