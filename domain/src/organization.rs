//! The organization (namespace) aggregate: created explicitly or by a first
//! push, globally unique, owned by an account within its quota, and the
//! access grants its users hold on it.

use uuid::Uuid;

use crate::command::{Fresh, Owner};
use crate::error::DomainError;
use crate::event::Event;
use crate::loaded::Loaded;
use crate::names::{AccountName, OrgName, UserName};
use crate::policy::{Level, DENIED_MESSAGE};

/// An organization as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Stream id.
    pub id: Uuid,
    /// Owning account (`None` for organizations from before accounts).
    pub owner: Option<AccountName>,
}

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
}

impl OrgCommand {
    /// The organization the command is about.
    pub fn org(&self) -> &OrgName {
        match self {
            Self::Create { org, .. } | Self::Grant { org, .. } => org,
        }
    }

    /// The account whose state the decision reads.
    pub fn account(&self) -> &AccountName {
        match self {
            Self::Create { by, .. } => &by.account,
            Self::Grant { account, .. } => account,
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
        return Err(DomainError::Denied(DENIED_MESSAGE.into()));
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

/// Folds an event into an organization; only a creation makes one exist.
pub fn evolve(state: Option<Organization>, event: &Event) -> Option<Organization> {
    match event {
        Event::OrgCreated { org_id, .. } => Some(Organization {
            id: *org_id,
            owner: None,
        }),
        Event::NamespaceCreated {
            org_id, account, ..
        } => Some(Organization {
            id: *org_id,
            owner: Some(account.clone()),
        }),
        _ => state,
    }
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
            Err(DomainError::Denied(DENIED_MESSAGE.into())),
            "beyond the quota"
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
