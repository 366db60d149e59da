//! What an audit record says about an event beyond its envelope: whether it
//! is a success, a refusal or a failure, with which error code, how many
//! attempts it stands for, and which resource it is about. One function
//! answers for every event, so the audit index, the query API and the
//! offline command line cannot disagree.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::names::{AccountName, OrgName, RepoPath};

/// The client address under which failures from more addresses than a
/// window counts apart are counted together.
pub const OTHER_ADDRESSES: &str = "*";

/// Where a request arrived. Variants are only ever appended: the position
/// is part of the encoded log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Surface {
    /// Registry routes (`/v2/<name>/...`).
    Registry,
    /// The token service (`/v2/token`).
    TokenService,
    /// The management API and the console.
    Manage,
}

impl Surface {
    /// Its name in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::TokenService => "token",
            Self::Manage => "manage",
        }
    }
}

/// Why a known user's login failed. Variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginFailure {
    /// The password, access-key password or temporary secret was wrong.
    WrongSecret,
    /// The user is disabled.
    UserDisabled,
    /// The access key is disabled.
    KeyDisabled,
    /// The temporary login has expired.
    LoginExpired,
}

/// What a refused push tried to store. Variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pushed {
    /// A blob (a finished upload).
    Blob,
    /// A manifest.
    Manifest,
}

/// How an audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// It happened.
    Ok,
    /// An authenticated caller lacked the permission.
    Denied,
    /// Credentials or content were refused.
    Failed,
}

impl Outcome {
    /// Every outcome, for parsing filters.
    pub const ALL: [Self; 3] = [Self::Ok, Self::Denied, Self::Failed];

    /// The word audit records and filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    /// The outcome a filter word names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The resource an event is about, as plain text for records and filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The organization.
    pub org: Option<String>,
    /// The repository, `org/name`.
    pub repo: Option<String>,
    /// The tag.
    pub tag: Option<String>,
    /// The manifest or blob digest.
    pub digest: Option<String>,
    /// The user it is about, `account/user`.
    pub user: Option<String>,
    /// The account a share is with.
    pub share: Option<String>,
    /// The access key or temporary login id.
    pub key: Option<String>,
}

/// Everything an audit record adds to the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// How it ended.
    pub outcome: Outcome,
    /// The error code of a refusal or failure.
    pub code: Option<String>,
    /// How many attempts the record stands for (aggregates and pull counts).
    pub count: u64,
    /// What it is about.
    pub resource: Resource,
    /// Accounts the event names besides the actor's and the organization
    /// owner's (the account a share is with, a user's account): their
    /// administrators may read the record.
    pub accounts: Vec<AccountName>,
}

fn user_ref(account: &AccountName, user: &crate::UserName) -> Option<String> {
    Some(format!("{account}/{user}"))
}

impl Event {
    /// The audit facts of this event.
    pub fn audit(&self) -> Facts {
        let mut r = Resource {
            repo: self.repository().map(ToString::to_string),
            org: self.organization().map(ToString::to_string),
            ..Resource::default()
        };
        let (mut outcome, mut code, mut count) = (Outcome::Ok, None, 1);
        let mut accounts = Vec::new();
        match self {
            Self::BlobUploaded { digest, .. }
            | Self::BlobMounted { digest, .. }
            | Self::BlobDeleted { digest, .. }
            | Self::ManifestPushed { digest, .. }
            | Self::ManifestDeleted { digest, .. } => r.digest = Some(digest.to_string()),
            Self::TagPointed { tag, digest, .. } | Self::TagDeleted { tag, digest, .. } => {
                r.tag = Some(tag.to_string());
                r.digest = Some(digest.to_string());
            }
            Self::AccountCreated { account, .. } => accounts.push(account.clone()),
            Self::NamespaceCreated { account, .. } => accounts.push(account.clone()),
            Self::OrganizationDeleted { owner, .. } => accounts.extend(owner.clone()),
            Self::UserCreated { account, user, .. }
            | Self::OrgAccessGranted { account, user, .. }
            | Self::OrgAccessRevoked { account, user, .. }
            | Self::RepoAccessGranted { account, user, .. }
            | Self::RepoAccessRevoked { account, user, .. }
            | Self::UserPasswordChanged { account, user, .. }
            | Self::UserDisabled { account, user, .. }
            | Self::UserEnabled { account, user, .. } => {
                r.user = user_ref(account, user);
                accounts.push(account.clone());
            }
            Self::AccessKeyCreated {
                account, user, ak, ..
            }
            | Self::AccessKeyEnabledChanged {
                account, user, ak, ..
            }
            | Self::AccessKeyDeleted {
                account, user, ak, ..
            }
            | Self::TemporaryLoginIssued {
                account,
                user,
                login_id: ak,
                ..
            } => {
                r.user = user_ref(account, user);
                r.key = Some(ak.clone());
                accounts.push(account.clone());
            }
            Self::AccessDenied {
                account,
                user,
                resource,
                ..
            } => {
                r.user = user_ref(account, user);
                accounts.push(account.clone());
                if let Ok(repo) = RepoPath::parse(resource) {
                    r.org = Some(repo.org().to_string());
                    r.repo = Some(repo.to_string());
                } else if let Ok(org) = OrgName::parse(resource) {
                    r.org = Some(org.to_string());
                }
                (outcome, code) = (Outcome::Denied, Some("DENIED".to_owned()));
            }
            Self::LoggedIn { account, user, .. } => {
                r.user = user_ref(account, user);
                accounts.push(account.clone());
            }
            Self::LoginFailed { account, user, .. } => {
                r.user = user_ref(account, user);
                accounts.push(account.clone());
                (outcome, code) = (Outcome::Failed, Some("UNAUTHORIZED".to_owned()));
            }
            Self::PushRejected {
                account,
                user,
                repo,
                reference,
                code: rejected,
                ..
            } => {
                r.user = user_ref(account, user);
                r.org = Some(repo.org().to_string());
                r.repo = Some(repo.to_string());
                if reference.contains(':') {
                    r.digest = Some(reference.clone());
                } else {
                    r.tag = Some(reference.clone());
                }
                accounts.push(account.clone());
                (outcome, code) = (Outcome::Failed, Some(rejected.clone()));
            }
            Self::FailuresCounted { count: n, .. } => {
                (outcome, code, count) = (Outcome::Failed, Some("UNAUTHORIZED".to_owned()), *n);
            }
            Self::ShareGranted { owner, with, .. } => {
                r.share = Some(with.to_string());
                accounts.extend([owner.clone(), with.clone()]);
            }
            Self::ShareChanged { with, .. } | Self::ShareEnded { with, .. } => {
                r.share = Some(with.to_string());
                accounts.push(with.clone());
            }
            Self::PullsCounted { pulls, .. } => count = *pulls,
            Self::OrgCreated { .. }
            | Self::RepositoryCreated { .. }
            | Self::RepositoryVisibilityChanged { .. }
            | Self::RepositoryAttributesChanged { .. }
            | Self::RepositoryDeleted { .. }
            | Self::CheckpointRecorded { .. } => {}
            Self::GarbageCollected {
                blobs, manifests, ..
            } => count = (blobs.len() + manifests.len()) as u64,
        }
        Facts {
            outcome,
            code,
            count,
            resource: r,
            accounts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{TagName, UserName};
    use crate::Digest;
    use uuid::Uuid;

    fn repo() -> RepoPath {
        RepoPath::parse("acme/web").unwrap()
    }

    #[test]
    fn a_tag_event_names_its_organization_repository_tag_and_digest() {
        let digest = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let facts = Event::TagDeleted {
            repo_id: Uuid::nil(),
            repo: repo(),
            tag: TagName::parse("v1").unwrap(),
            digest: digest.clone(),
        }
        .audit();
        assert_eq!(facts.outcome, Outcome::Ok);
        assert_eq!(facts.resource.org.as_deref(), Some("acme"));
        assert_eq!(facts.resource.repo.as_deref(), Some("acme/web"));
        assert_eq!(facts.resource.tag.as_deref(), Some("v1"));
        assert_eq!(facts.resource.digest, Some(digest.to_string()));
    }

    #[test]
    fn a_denial_names_the_repository_it_was_refused_on() {
        let facts = Event::AccessDenied {
            user_id: Uuid::nil(),
            account: AccountName::parse("beta").unwrap(),
            user: UserName::parse("bob").unwrap(),
            action: "push".into(),
            resource: "acme/web".into(),
        }
        .audit();
        assert_eq!(facts.outcome, Outcome::Denied);
        assert_eq!(facts.code.as_deref(), Some("DENIED"));
        assert_eq!(facts.resource.repo.as_deref(), Some("acme/web"));
        assert_eq!(facts.resource.user.as_deref(), Some("beta/bob"));
        assert_eq!(facts.accounts, vec![AccountName::parse("beta").unwrap()]);
    }

    #[test]
    fn a_rejected_push_by_tag_or_digest_is_a_failure_with_its_code() {
        let rejected = |reference: &str| {
            Event::PushRejected {
                user_id: Uuid::nil(),
                account: AccountName::parse("acme").unwrap(),
                user: UserName::parse("ci").unwrap(),
                repo: repo(),
                object: Pushed::Manifest,
                reference: reference.into(),
                code: "MANIFEST_BLOB_UNKNOWN".into(),
                message: "missing".into(),
            }
            .audit()
        };
        let by_tag = rejected("v1");
        assert_eq!(by_tag.outcome, Outcome::Failed);
        assert_eq!(by_tag.code.as_deref(), Some("MANIFEST_BLOB_UNKNOWN"));
        assert_eq!(by_tag.resource.tag.as_deref(), Some("v1"));
        let by_digest = rejected("sha256:00");
        assert_eq!(by_digest.resource.digest.as_deref(), Some("sha256:00"));
        assert_eq!(by_digest.resource.tag, None);
    }

    #[test]
    fn outcomes_parse_from_their_words() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("success"), None);
    }
}
