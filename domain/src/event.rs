//! The events of the registry: immutable facts, named in the past tense.
//!
//! Each carries what a reader of the audit trail needs without joining other
//! data. Variants are only ever appended: their position is part of the
//! encoded log, and golden bytes in `fixtures/` pin every one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::attributes::{Category, Deadline, Description, ShareNote};
use crate::audit::{LoginFailure, Pushed, Surface};
use crate::credentials::PasswordHash;
use crate::digest::Digest;
use crate::names::{AccountName, OrgName, RepoPath, TagName, UserName};
use crate::policy::Level;

/// A fact that happened in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// An organization (namespace) came into being.
    OrgCreated {
        /// Stream of the organization.
        org_id: Uuid,
        /// Its globally unique name.
        org: OrgName,
        /// Created implicitly by a push rather than by an explicit request.
        auto: bool,
    },
    /// A repository incarnation came into being.
    RepositoryCreated {
        /// Stream of this incarnation.
        repo_id: Uuid,
        /// Stream of the owning organization.
        org_id: Uuid,
        /// Its name.
        repo: RepoPath,
    },
    /// A blob upload completed and was linked to the repository.
    BlobUploaded {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// Verified digest.
        digest: Digest,
        /// Size in bytes.
        size: u64,
    },
    /// A blob already in another repository was linked without upload.
    BlobMounted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// The blob.
        digest: Digest,
        /// Size in bytes.
        size: u64,
        /// Where it was mounted from.
        from: RepoPath,
    },
    /// A manifest was stored in the repository.
    ManifestPushed {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// Digest of the manifest bytes.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// Size of the manifest in bytes.
        size: u64,
        /// Total size of the config and layers it references.
        content_size: u64,
        /// Config and layer blobs it references.
        blobs: Vec<Digest>,
        /// Child manifests (for an index).
        manifests: Vec<Digest>,
        /// Manifest it refers to, for the referrers API.
        subject: Option<Digest>,
        /// Artifact type shown by the referrers API.
        artifact_type: Option<String>,
        /// Manifest annotations shown by the referrers API.
        annotations: BTreeMap<String, String>,
    },
    /// A tag was made to point at a manifest.
    TagPointed {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// The tag.
        tag: TagName,
        /// The manifest it now points at.
        digest: Digest,
        /// Media type of that manifest.
        media_type: String,
        /// Size of the image: the manifest plus the content it references.
        size: u64,
        /// What it pointed at before, if anything.
        previous: Option<Digest>,
    },
    /// A tag was removed.
    TagDeleted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// The tag.
        tag: TagName,
        /// The manifest it pointed at.
        digest: Digest,
    },
    /// A manifest was removed from the repository.
    ManifestDeleted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// The manifest.
        digest: Digest,
        /// Its subject, so the referrers view can drop it.
        subject: Option<Digest>,
    },
    /// A blob was unlinked from the repository.
    BlobDeleted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// The blob.
        digest: Digest,
    },
    /// An account (tenant) came into being.
    AccountCreated {
        /// Stream of the account.
        account_id: Uuid,
        /// Its unique name.
        account: AccountName,
    },
    /// A user was added to an account.
    UserCreated {
        /// Stream of the user.
        user_id: Uuid,
        /// Stream of the account.
        account_id: Uuid,
        /// Account name at the time.
        account: AccountName,
        /// The user's name inside the account.
        user: UserName,
        /// Whether the user administers the account.
        admin: bool,
        /// Verifier of the user's password (never the password).
        password: PasswordHash,
    },
    /// An organization came into being, owned by an account. (`OrgCreated`
    /// is the shape written before accounts existed: no owner.)
    NamespaceCreated {
        /// Stream of the organization.
        org_id: Uuid,
        /// Its globally unique name.
        org: OrgName,
        /// Owning account's stream.
        account_id: Uuid,
        /// Owning account.
        account: AccountName,
        /// The user who created it (who holds manage on it).
        user: UserName,
        /// Created implicitly by a push.
        auto: bool,
    },
    /// A repository became public or private.
    RepositoryVisibilityChanged {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// Whether it is now public.
        public: bool,
    },
    /// A user was given a permission level on an organization.
    OrgAccessGranted {
        /// Stream of the organization.
        org_id: Uuid,
        /// The organization.
        org: OrgName,
        /// The grantee's account.
        account: AccountName,
        /// The grantee.
        user: UserName,
        /// The level granted (replaces any earlier grant).
        level: Level,
    },
    /// A user created an access key for long-term docker login.
    AccessKeyCreated {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The access key id (public).
        ak: String,
        /// SHA-256 of the login password the key yields, hex: enough to
        /// verify a login, useless to derive the secret key.
        verifier: String,
    },
    /// An access key was enabled or disabled.
    AccessKeyEnabledChanged {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The access key id.
        ak: String,
        /// Whether it now works.
        enabled: bool,
    },
    /// An access key was deleted.
    AccessKeyDeleted {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The access key id.
        ak: String,
    },
    /// A temporary docker login was issued (the secret is not recorded).
    TemporaryLoginIssued {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The login id (the docker user name after the region).
        login_id: String,
        /// SHA-256 of the secret, hex.
        verifier: String,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// An authenticated user was refused an action.
    AccessDenied {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// What they tried (`pull`, `push`, `delete`, or a management action).
        action: String,
        /// On what (a repository or organization name, or a path).
        resource: String,
    },
    /// A user's password was replaced.
    UserPasswordChanged {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// Verifier of the new password.
        password: PasswordHash,
    },
    /// A user can no longer log in or use any credential.
    UserDisabled {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
    },
    /// A disabled user may log in again.
    UserEnabled {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
    },
    /// A user was given a level on one repository (adds to org grants).
    RepoAccessGranted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// The repository.
        repo: RepoPath,
        /// The grantee's account.
        account: AccountName,
        /// The grantee.
        user: UserName,
        /// The level granted (replaces an earlier repository grant).
        level: Level,
    },
    /// A repository's category and description were set (both, as they now
    /// are).
    RepositoryAttributesChanged {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Repository name at the time.
        repo: RepoPath,
        /// The category.
        category: Category,
        /// The description.
        description: Description,
    },
    /// A repository incarnation ended. Its tags, manifests, blob links and
    /// shares were each removed by their own events just before.
    RepositoryDeleted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// Its name, now free.
        repo: RepoPath,
    },
    /// A user's grant on an organization was taken away.
    OrgAccessRevoked {
        /// Stream of the organization.
        org_id: Uuid,
        /// The organization.
        org: OrgName,
        /// The grantee's account.
        account: AccountName,
        /// The grantee.
        user: UserName,
    },
    /// A user's grant on one repository was taken away.
    RepoAccessRevoked {
        /// Stream of the repository.
        repo_id: Uuid,
        /// The repository.
        repo: RepoPath,
        /// The grantee's account.
        account: AccountName,
        /// The grantee.
        user: UserName,
    },
    /// An empty organization was deleted; its name is free again.
    OrganizationDeleted {
        /// Stream of the organization.
        org_id: Uuid,
        /// The organization.
        org: OrgName,
        /// The account that owned it.
        owner: Option<AccountName>,
    },
    /// A private repository was shared, pull only, with another account.
    ShareGranted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// The repository.
        repo: RepoPath,
        /// The sharing account (the organization's owner).
        owner: AccountName,
        /// The account it is shared with.
        with: AccountName,
        /// Until when.
        deadline: Deadline,
        /// The sharer's note.
        description: ShareNote,
    },
    /// A share's deadline or note changed.
    ShareChanged {
        /// Stream of the repository.
        repo_id: Uuid,
        /// The repository.
        repo: RepoPath,
        /// The account it is shared with.
        with: AccountName,
        /// Until when, now.
        deadline: Deadline,
        /// The note, now.
        description: ShareNote,
    },
    /// A share ended.
    ShareEnded {
        /// Stream of the repository.
        repo_id: Uuid,
        /// The repository.
        repo: RepoPath,
        /// The account it was shared with.
        with: AccountName,
        /// Why.
        reason: ShareEnd,
    },
    /// Manifest pulls of a repository since the last count (pulls are
    /// counted in memory and recorded in aggregate, not one event each).
    PullsCounted {
        /// Stream of the repository.
        repo_id: Uuid,
        /// The repository.
        repo: RepoPath,
        /// Pulls in this interval.
        pulls: u64,
    },
    /// A signed checkpoint of the chain head, written on a schedule so the
    /// log itself holds a trail of them.
    CheckpointRecorded {
        /// The head's sequence number when it was signed.
        seq: u64,
        /// The chain hash there, lowercase hex.
        hash: String,
        /// When it was signed (RFC 3339).
        time: String,
        /// The Ed25519 signature, lowercase hex.
        signature: String,
    },
    /// A login with a known user's name failed. (Failures under unknown
    /// names are counted per client address in `FailuresCounted`.) The
    /// credential kind and id tried are in the envelope's actor.
    LoginFailed {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// Where the credentials were sent.
        surface: Surface,
        /// Why they were refused.
        reason: LoginFailure,
    },
    /// A push was refused for its content (a digest that does not match,
    /// a manifest that is invalid or names missing blobs). Nothing else
    /// changed.
    PushRejected {
        /// Stream of the user who pushed.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The repository pushed to.
        repo: RepoPath,
        /// What was refused.
        object: Pushed,
        /// The tag or digest it was pushed under.
        reference: String,
        /// The registry error code the client got.
        code: String,
        /// The message the client got.
        message: String,
    },
    /// Failed requests of anonymous callers and unknown users from one
    /// client address in one window, counted rather than recorded one by
    /// one, so nobody can flood the log.
    FailuresCounted {
        /// The client address.
        client_addr: String,
        /// Start of the window.
        window_start: DateTime<Utc>,
        /// Length of the window in seconds.
        window_seconds: u32,
        /// Failures in the window.
        count: u64,
        /// Failures by reason (`unknown-user`, `token-invalid`, ...).
        reasons: BTreeMap<String, u64>,
        /// The first few login names tried, for spotting a guessing run.
        names: Vec<String>,
    },
    /// A user logged in: opened a management session, or had a docker
    /// client check its credentials (`docker login`: a token request
    /// without a scope). The tokens clients fetch for each push and pull
    /// are not logins and are not recorded.
    LoggedIn {
        /// Stream of the user.
        user_id: Uuid,
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// Where.
        surface: Surface,
    },
    /// One step of a garbage-collection run removed bytes that nothing
    /// referenced any more. A run that found nothing records one step with
    /// empty lists, so the trail shows every run.
    GarbageCollected {
        /// The run this step belongs to.
        run: Uuid,
        /// Blob files removed, with their sizes.
        blobs: Vec<(Digest, u64)>,
        /// Stored manifests removed, with their sizes.
        manifests: Vec<(Digest, u64)>,
        /// Abandoned upload sessions removed.
        uploads: u64,
        /// Bytes freed by the step: blobs, manifests and sessions.
        bytes: u64,
    },
}

/// Why a share ended. Variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareEnd {
    /// Its owner revoked it.
    Revoked,
    /// The repository became public, so a share means nothing.
    MadePublic,
    /// The repository was deleted.
    RepositoryDeleted,
}

impl ShareEnd {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::MadePublic => "made-public",
            Self::RepositoryDeleted => "repository-deleted",
        }
    }
}
