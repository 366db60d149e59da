//! Commands: what a caller asks the registry to change.

use uuid::Uuid;

use crate::credentials::PasswordHash;
use crate::digest::Digest;
use crate::manifest::ParsedManifest;
use crate::names::{AccountName, RepoPath, TagName, UserName};

/// A request to change the registry, decided by [`crate::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Link a blob whose bytes were just verified and stored.
    LinkUploadedBlob {
        /// Target repository.
        repo: RepoPath,
        /// Verified digest.
        digest: Digest,
        /// Size in bytes.
        size: u64,
    },
    /// Link a blob that another repository already holds.
    MountBlob {
        /// Target repository.
        repo: RepoPath,
        /// The blob.
        digest: Digest,
        /// Source repository.
        from: RepoPath,
    },
    /// Store a manifest, optionally pointing a tag at it.
    PushManifest {
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

/// The names whose state a decision reads; the engine loads exactly these.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touches<'a> {
    /// Repositories (and, with each, its organization).
    pub repos: Vec<&'a RepoPath>,
    /// Accounts (with their users).
    pub accounts: Vec<&'a AccountName>,
}

impl Command {
    /// The names whose state the decision needs.
    pub fn touches(&self) -> Touches<'_> {
        match self {
            Self::MountBlob { repo, from, .. } => Touches {
                repos: vec![repo, from],
                ..Touches::default()
            },
            Self::LinkUploadedBlob { repo, .. }
            | Self::PushManifest { repo, .. }
            | Self::DeleteTag { repo, .. }
            | Self::DeleteManifest { repo, .. }
            | Self::DeleteBlob { repo, .. } => Touches {
                repos: vec![repo],
                ..Touches::default()
            },
            Self::CreateAccount { account, .. } | Self::CreateUser { account, .. } => Touches {
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
