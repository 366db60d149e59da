//! The authorization policy: who may do what to which repository. Pure, so
//! the token service, the registry routes and the management API all ask the
//! same function, and tests can walk every role against every action.

use serde::{Deserialize, Serialize};

use crate::names::{AccountName, UserName, OPERATOR_ACCOUNT};

/// The registry's one message for every refusal of a push or an
/// organization it cannot create: it says nothing about what exists.
pub const DENIED_MESSAGE: &str = "you do not have the permission";

/// A permission level on an organization or repository. Higher levels
/// include the lower ones; the management API writes them as 1, 3 and 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Pull only.
    Read,
    /// Read, push, edit attributes.
    Edit,
    /// Edit, delete, grant and revoke, share.
    Manage,
}

impl Level {
    /// The number the management API uses.
    pub fn code(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Edit => 3,
            Self::Manage => 7,
        }
    }

    /// Parses the management API's number.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(Self::Read),
            3 => Some(Self::Edit),
            7 => Some(Self::Manage),
            _ => None,
        }
    }
}

/// An action on a repository, as registry token scopes name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Read manifests, tags, blobs, referrers.
    Pull,
    /// Upload blobs, push manifests.
    Push,
    /// Remove tags, manifests, blobs.
    Delete,
}

impl Action {
    /// The scope word (`pull`, `push`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
        }
    }

    /// Parses a scope word; `*` is not an action.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" => Some(Self::Pull),
            "push" => Some(Self::Push),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The level an action needs.
    pub fn needs(self) -> Level {
        match self {
            Self::Pull => Level::Read,
            Self::Push => Level::Edit,
            Self::Delete => Level::Manage,
        }
    }

    /// The scope word that stands for a level in a registry token.
    pub fn granting(level: Level) -> Self {
        match level {
            Level::Read => Self::Pull,
            Level::Edit => Self::Push,
            Level::Manage => Self::Delete,
        }
    }
}

/// An authenticated user, as the policy sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Their account.
    pub account: AccountName,
    /// Their user name.
    pub user: UserName,
    /// Whether they administer their account.
    pub account_admin: bool,
}

impl Principal {
    /// The platform operator: an administrator of the `system` account.
    pub fn is_operator(&self) -> bool {
        self.account_admin && self.account.as_str() == OPERATOR_ACCOUNT
    }
}

/// What the policy needs to know about an organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrgFacts {
    /// The owning account; `None` for organizations created before accounts
    /// existed, which only the operator manages.
    pub owner: Option<AccountName>,
    /// The user who created it (inside the owning account).
    pub creator: Option<UserName>,
    /// The caller's own grant on the organization, if any.
    pub grant: Option<Level>,
}

/// What the policy needs to know about a repository.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoFacts {
    /// Whether it exists.
    pub exists: bool,
    /// Whether every user (and, where allowed, anyone) may pull it.
    pub public: bool,
    /// The caller's own grant on the repository, if any.
    pub grant: Option<Level>,
    /// Whether it is shared with the caller's account, and the share has
    /// not expired.
    pub shared: bool,
}

/// Whether a principal administers an account: its own admins, and the
/// operator for every account.
pub fn manages_account(p: &Principal, account: &AccountName) -> bool {
    p.is_operator() || (p.account_admin && &p.account == account)
}

/// The level a principal holds on an existing organization itself: manage
/// for whoever administers the owning account and for its creator, else the
/// principal's own grant.
pub fn org_level(p: &Principal, org: &OrgFacts) -> Option<Level> {
    let owner_admin = match &org.owner {
        Some(owner) => manages_account(p, owner),
        None => p.is_operator(),
    };
    let creator = org.owner.as_ref() == Some(&p.account) && org.creator.as_ref() == Some(&p.user);
    if owner_admin || creator {
        return Some(Level::Manage);
    }
    org.grant
}

/// The level a caller holds on a repository of an existing organization:
/// the highest of the organization level, the repository grant, and read for
/// public repositories and for a live share with the caller's account.
/// Repository grants add to organization grants and never remove.
pub fn repo_level(
    caller: Option<&Principal>,
    org: &OrgFacts,
    repo: &RepoFacts,
    anonymous_pull: bool,
) -> Option<Level> {
    let public_read = (repo.exists && repo.public).then_some(Level::Read);
    let Some(p) = caller else {
        return public_read.filter(|_| anonymous_pull);
    };
    let shared_read = (repo.exists && repo.shared).then_some(Level::Read);
    [org_level(p, org), repo.grant, public_read, shared_read]
        .into_iter()
        .flatten()
        .max()
}

/// The level a caller holds on a repository whose organization does not
/// exist yet: an authenticated caller whose account is within its quota may
/// create it by pushing (edit); nobody else gets anything.
pub fn unclaimed_level(caller: Option<&Principal>, owned: usize, quota: usize) -> Option<Level> {
    caller.and(Some(Level::Edit)).filter(|_| owned < quota)
}

/// Whether a principal may change a user: users change their own password;
/// whoever administers the account changes anyone's password and disables
/// or re-enables users, but not themselves.
pub fn may_update_user(
    p: &Principal,
    account: &AccountName,
    user: &UserName,
    password: bool,
    enabled: bool,
) -> bool {
    let is_self = &p.account == account && &p.user == user;
    let admin = manages_account(p, account);
    (!password || is_self || admin) && (!enabled || (admin && !is_self))
}

/// Whether a principal may read the audit trail of something an account
/// owns: the operator always, an account's administrators for their own.
pub fn may_audit(p: &Principal, owner: Option<&AccountName>) -> bool {
    p.is_operator() || owner.is_some_and(|o| manages_account(p, o))
}

/// The audit records a principal may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditScope {
    /// Every record: the operator.
    All,
    /// Records about one account's resources and users: its
    /// administrators.
    Account(AccountName),
}

/// Which audit records a principal may read; `None` for a user who is no
/// administrator, who reads none.
pub fn audit_scope(p: &Principal) -> Option<AuditScope> {
    if p.is_operator() {
        Some(AuditScope::All)
    } else if p.account_admin {
        Some(AuditScope::Account(p.account.clone()))
    } else {
        None
    }
}

/// Whether a held level reaches the one needed.
pub fn allows(level: Option<Level>, needed: Level) -> bool {
    level.is_some_and(|l| l >= needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(account: &str, admin: bool) -> Principal {
        Principal {
            account: AccountName::parse(account).unwrap(),
            user: UserName::parse("u").unwrap(),
            account_admin: admin,
        }
    }

    fn org(owner: &str, grant: Option<Level>) -> OrgFacts {
        OrgFacts {
            owner: Some(AccountName::parse(owner).unwrap()),
            creator: None,
            grant,
        }
    }

    const PRIVATE: RepoFacts = RepoFacts {
        exists: true,
        public: false,
        grant: None,
        shared: false,
    };
    const PUBLIC: RepoFacts = RepoFacts {
        exists: true,
        public: true,
        grant: None,
        shared: false,
    };

    #[test]
    fn owners_admins_and_operator_manage() {
        let admin = principal("acme", true);
        assert_eq!(
            repo_level(Some(&admin), &org("acme", None), &PRIVATE, false),
            Some(Level::Manage)
        );
        let operator = principal(OPERATOR_ACCOUNT, true);
        assert_eq!(
            repo_level(Some(&operator), &org("acme", None), &PRIVATE, false),
            Some(Level::Manage)
        );
        let other_admin = principal("other", true);
        assert_eq!(
            repo_level(Some(&other_admin), &org("acme", None), &PRIVATE, false),
            None
        );
    }

    #[test]
    fn grants_add_and_public_reads() {
        let member = principal("acme", false);
        assert_eq!(
            repo_level(Some(&member), &org("acme", None), &PRIVATE, false),
            None
        );
        let read = org("acme", Some(Level::Read));
        assert_eq!(
            repo_level(Some(&member), &read, &PRIVATE, false),
            Some(Level::Read)
        );
        let repo_edit = RepoFacts {
            grant: Some(Level::Edit),
            ..PRIVATE
        };
        assert_eq!(
            repo_level(Some(&member), &read, &repo_edit, false),
            Some(Level::Edit)
        );
        let outsider = principal("other", false);
        assert_eq!(
            repo_level(Some(&outsider), &org("acme", None), &PUBLIC, false),
            Some(Level::Read)
        );
        assert!(!allows(Some(Level::Read), Level::Edit));
        assert!(allows(Some(Level::Edit), Level::Edit));
        assert!(!allows(Some(Level::Edit), Level::Manage));
    }

    #[test]
    fn anonymous_pull_only_of_public_and_only_when_allowed() {
        assert_eq!(
            repo_level(None, &org("acme", None), &PUBLIC, true),
            Some(Level::Read)
        );
        assert_eq!(repo_level(None, &org("acme", None), &PUBLIC, false), None);
        assert_eq!(repo_level(None, &org("acme", None), &PRIVATE, true), None);
    }

    #[test]
    fn creators_manage_their_organization() {
        let member = principal("acme", false);
        let created = OrgFacts {
            creator: Some(member.user.clone()),
            ..org("acme", None)
        };
        assert_eq!(org_level(&member, &created), Some(Level::Manage));
        let outsider = principal("other", false);
        let foreign = OrgFacts {
            creator: Some(outsider.user.clone()),
            ..org("acme", None)
        };
        assert_eq!(
            org_level(&outsider, &foreign),
            None,
            "same user name, other account"
        );
    }

    #[test]
    fn unclaimed_organizations_are_pushable_within_the_quota() {
        let member = principal("acme", false);
        assert_eq!(unclaimed_level(Some(&member), 1, 2), Some(Level::Edit));
        assert_eq!(unclaimed_level(Some(&member), 2, 2), None);
        assert_eq!(unclaimed_level(None, 0, 2), None);
    }

    #[test]
    fn who_may_update_a_user() {
        let admin = principal("acme", true);
        let member = principal("acme", false);
        let acme = AccountName::parse("acme").unwrap();
        let other = UserName::parse("bob").unwrap();
        assert!(may_update_user(&member, &acme, &member.user, true, false));
        assert!(!may_update_user(&member, &acme, &member.user, false, true));
        assert!(!may_update_user(&member, &acme, &other, true, false));
        assert!(may_update_user(&admin, &acme, &other, true, true));
        assert!(!may_update_user(&admin, &acme, &admin.user, false, true));
        let outsider = principal("other", true);
        assert!(!may_update_user(&outsider, &acme, &other, true, false));
    }

    #[test]
    fn a_live_share_gives_read_to_the_other_account_only() {
        let outsider = principal("other", false);
        let shared = RepoFacts {
            shared: true,
            ..PRIVATE
        };
        assert_eq!(
            repo_level(Some(&outsider), &org("acme", None), &shared, false),
            Some(Level::Read)
        );
        assert_eq!(
            repo_level(None, &org("acme", None), &shared, true),
            None,
            "a share is for an account's users, never anonymous"
        );
    }

    #[test]
    fn level_codes() {
        for l in [Level::Read, Level::Edit, Level::Manage] {
            assert_eq!(Level::from_code(u64::from(l.code())), Some(l));
        }
        assert_eq!(Level::from_code(2), None);
    }

    #[test]
    fn the_operator_audits_all_an_admin_their_account_a_member_nothing() {
        assert_eq!(
            audit_scope(&principal(OPERATOR_ACCOUNT, true)),
            Some(AuditScope::All)
        );
        assert_eq!(
            audit_scope(&principal("acme", true)),
            Some(AuditScope::Account(AccountName::parse("acme").unwrap()))
        );
        assert_eq!(audit_scope(&principal("acme", false)), None);
        assert_eq!(audit_scope(&principal(OPERATOR_ACCOUNT, false)), None);
    }
}
