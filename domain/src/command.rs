//! Commands: what a caller asks the registry to change.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::credentials::PasswordHash;
use crate::digest::Digest;
use crate::manifest::ParsedManifest;
use crate::names::{AccountName, OrgName, RepoPath, TagName, UserName};
use crate::policy::Level;

/// A request to change the registry, decided by [`crate::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Link a blob whose bytes were just verified and stored.
    LinkUploadedBlob {
        /// Who pushes, when known: owns an organization the push creates.
        by: Option<Owner>,
        /// Target repository.
        repo: RepoPath,
        /// Verified digest.
        digest: Digest,
        /// Size in bytes.
        size: u64,
    },
    /// Link a blob that another repository already holds.
    MountBlob {
        /// Who pushes, when known.
        by: Option<Owner>,
        /// Target repository.
        repo: RepoPath,
        /// The blob.
        digest: Digest,
        /// Source repository.
        from: RepoPath,
    },
    /// Store a manifest, optionally pointing a tag at it.
    PushManifest {
        /// Who pushes, when known.
        by: Option<Owner>,
        /// Target repository.
        repo: RepoPath,
        /// Tag named in the URL, if the reference was a tag.
        tag: Option<TagName>,
        /// Digest of the manifest bytes.
        digest: Digest,
        /// Size of the manifest bytes.
        size: u64,
        /// What the manifest references.
        manifest: ParsedManifest,
    },
    /// Remove a tag.
    DeleteTag {
        /// Repository.
        repo: RepoPath,
        /// The tag.
        tag: TagName,
    },
    /// Remove a manifest and every tag pointing at it.
    DeleteManifest {
        /// Repository.
        repo: RepoPath,
        /// The manifest.
        digest: Digest,
    },
    /// Unlink a blob from a repository.
    DeleteBlob {
        /// Repository.
        repo: RepoPath,
        /// The blob.
        digest: Digest,
    },
    /// Create an account with its first (admin) user.
    CreateAccount {
        /// The new account's name.
        account: AccountName,
        /// Its first user, who administers it.
        admin_user: UserName,
        /// Verifier of that user's password.
        admin_password: PasswordHash,
    },
    /// Create an organization explicitly.
    CreateNamespace {
        /// The name.
        org: OrgName,
        /// The creator and their account's quota.
        by: Owner,
    },
    /// Make a repository public or private.
    SetVisibility {
        /// The repository.
        repo: RepoPath,
        /// Public or not.
        public: bool,
    },
    /// Give a user of the owning account a level on an organization.
    GrantOrgAccess {
        /// The organization.
        org: OrgName,
        /// The grantee's account.
        account: AccountName,
        /// The grantee.
        user: UserName,
        /// The level.
        level: Level,
    },
    /// Give a user of the owning account a level on one repository.
    GrantRepoAccess {
        /// The repository.
        repo: RepoPath,
        /// The grantee's account (the organization's owner).
        account: AccountName,
        /// The grantee.
        user: UserName,
        /// The level.
        level: Level,
    },
    /// Record a new access key of a user.
    CreateAccessKey {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The key id.
        ak: String,
        /// SHA-256 (hex) of the login password the key yields.
        verifier: String,
    },
    /// Enable or disable an access key.
    SetAccessKeyEnabled {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The key id.
        ak: String,
        /// Whether it works.
        enabled: bool,
    },
    /// Delete an access key.
    DeleteAccessKey {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The key id.
        ak: String,
    },
    /// Record a temporary docker login.
    IssueTemporaryLogin {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The login id.
        login_id: String,
        /// SHA-256 (hex) of its secret.
        verifier: String,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// Record that an authenticated user was refused.
    RecordDenial {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// What they tried.
        action: String,
        /// On what.
        resource: String,
    },
    /// Replace a user's password.
    ChangePassword {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// Verifier of the new password.
        password: PasswordHash,
    },
    /// Disable or re-enable a user.
    SetUserEnabled {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// Whether they may log in.
        enabled: bool,
    },
    /// Add a user to an existing account.
    CreateUser {
        /// The account.
        account: AccountName,
        /// The new user's name.
        user: UserName,
        /// Whether the user administers the account.
        admin: bool,
        /// Verifier of the user's password.
        password: PasswordHash,
    },
}

/// The user on whose behalf an organization may be created, with the quota
/// that applies to their account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The account that will own it.
    pub account: AccountName,
    /// The user who creates it.
    pub user: UserName,
    /// Most organizations the account may own.
    pub org_quota: usize,
}

/// The names whose state a decision reads; the engine loads exactly these.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touches<'a> {
    /// Repositories (and, with each, its organization).
    pub repos: Vec<&'a RepoPath>,
    /// Accounts (with their users).
    pub accounts: Vec<&'a AccountName>,
    /// Organizations on their own.
    pub orgs: Vec<&'a OrgName>,
}

impl Command {
    /// The names whose state the decision needs.
    pub fn touches(&self) -> Touches<'_> {
        match self {
            Self::MountBlob { repo, from, by, .. } => Touches {
                repos: vec![repo, from],
                accounts: by.iter().map(|o| &o.account).collect(),
                ..Touches::default()
            },
            Self::LinkUploadedBlob { repo, by, .. } | Self::PushManifest { repo, by, .. } => {
                Touches {
                    repos: vec![repo],
                    accounts: by.iter().map(|o| &o.account).collect(),
                    ..Touches::default()
                }
            }
            Self::DeleteTag { repo, .. }
            | Self::DeleteManifest { repo, .. }
            | Self::DeleteBlob { repo, .. }
            | Self::SetVisibility { repo, .. } => Touches {
                repos: vec![repo],
                ..Touches::default()
            },
            Self::GrantRepoAccess { repo, account, .. } => Touches {
                repos: vec![repo],
                accounts: vec![account],
                ..Touches::default()
            },
            Self::CreateNamespace { org, by } => Touches {
                orgs: vec![org],
                accounts: vec![&by.account],
                ..Touches::default()
            },
            Self::GrantOrgAccess { org, account, .. } => Touches {
                orgs: vec![org],
                accounts: vec![account],
                ..Touches::default()
            },
            Self::CreateAccount { account, .. }
            | Self::CreateUser { account, .. }
            | Self::CreateAccessKey { account, .. }
            | Self::SetAccessKeyEnabled { account, .. }
            | Self::DeleteAccessKey { account, .. }
            | Self::IssueTemporaryLogin { account, .. }
            | Self::RecordDenial { account, .. }
            | Self::ChangePassword { account, .. }
            | Self::SetUserEnabled { account, .. } => Touches {
                accounts: vec![account],
                ..Touches::default()
            },
        }
    }
}

/// Values the decision may need that a pure function cannot make itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// Id for an organization created by this command.
    pub org_id: Uuid,
    /// Id for a repository created by this command.
    pub repo_id: Uuid,
    /// Id for an account created by this command.
    pub account_id: Uuid,
    /// Id for a user created by this command.
    pub user_id: Uuid,
}
