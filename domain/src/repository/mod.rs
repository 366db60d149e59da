//! The repository aggregate: one incarnation of `<org>/<name>` with its
//! linked blobs, manifests, tags, attributes, per-repository grants and
//! shares. A first push creates it (and its organization when that is
//! free). Its state, commands and `evolve` are here; `decide` is in
//! `decide.rs`, the given/when/then tests in `tests.rs`.

mod decide;
#[cfg(test)]
mod tests;

pub use decide::decide;

use std::collections::HashMap;

use uuid::Uuid;

use crate::attributes::{Category, Deadline, Description, ShareNote};
use crate::command::Owner;
use crate::digest::Digest;
use crate::event::Event;
use crate::manifest::ParsedManifest;
use crate::names::{AccountName, RepoPath, TagName, UserName};
use crate::policy::Level;

/// A manifest as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestMeta {
    /// Media type.
    pub media_type: String,
    /// Manifest size plus the size of the content it references.
    pub total_size: u64,
    /// Its subject, if it is a referrer.
    pub subject: Option<Digest>,
    /// The blobs and child manifests it references: while it stays, they
    /// may not be deleted from the repository (nor their bytes collected).
    pub references: Vec<Digest>,
}

/// A repository incarnation as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Stream id.
    pub id: Uuid,
    /// Linked blobs and their sizes.
    pub blobs: HashMap<Digest, u64>,
    /// Stored manifests.
    pub manifests: HashMap<Digest, ManifestMeta>,
    /// Tags and the manifest each points at.
    pub tags: HashMap<TagName, Digest>,
    /// Whether the repository is public.
    pub public: bool,
    /// Its category.
    pub category: Category,
    /// Its description.
    pub description: Description,
    /// Users' grants on this repository alone, with their levels.
    pub grants: HashMap<(AccountName, UserName), Level>,
    /// Accounts it is shared with, and the share's terms.
    pub shares: HashMap<AccountName, (Deadline, ShareNote)>,
}

impl Repository {
    /// A new, empty incarnation.
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            blobs: HashMap::new(),
            manifests: HashMap::new(),
            tags: HashMap::new(),
            public: false,
            category: Category::Other,
            description: Description::default(),
            grants: HashMap::new(),
            shares: HashMap::new(),
        }
    }
}

/// New attribute values; `None` leaves one as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// Public or private.
    pub public: Option<bool>,
    /// The category.
    pub category: Option<Category>,
    /// The description.
    pub description: Option<Description>,
}

/// What may be asked of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoCommand {
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
    /// Remove tags, all or none.
    DeleteTags {
        /// Repository.
        repo: RepoPath,
        /// The tags.
        tags: Vec<TagName>,
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
    /// Create an empty repository in an existing organization.
    Create {
        /// The repository.
        repo: RepoPath,
        /// Its first attributes.
        attributes: Attributes,
    },
    /// Change attributes, as one change.
    SetAttributes {
        /// The repository.
        repo: RepoPath,
        /// What changes.
        attributes: Attributes,
    },
    /// Delete the repository with all its tags, manifests, blob links,
    /// grants and shares.
    Delete {
        /// The repository.
        repo: RepoPath,
    },
    /// Give users of the owning account levels on this repository, all or
    /// none.
    Grant {
        /// The repository.
        repo: RepoPath,
        /// The grantees' account (the organization's owner).
        account: AccountName,
        /// Each grantee and the level they get.
        grants: Vec<(UserName, Level)>,
    },
    /// Take a user's repository grant away.
    Revoke {
        /// The repository.
        repo: RepoPath,
        /// The grantee's account.
        account: AccountName,
        /// The grantee.
        user: UserName,
    },
    /// Point a tag at the manifest another tag points at.
    Retag {
        /// The repository.
        repo: RepoPath,
        /// The tag whose manifest is taken.
        source: TagName,
        /// The tag that is pointed.
        destination: TagName,
        /// Whether an existing destination may be moved.
        overwrite: bool,
    },
    /// Share the (private) repository, pull only, with another account.
    Share {
        /// The repository.
        repo: RepoPath,
        /// The sharing account (the organization's owner).
        owner: AccountName,
        /// The account it is shared with.
        with: AccountName,
        /// Until when.
        deadline: Deadline,
        /// The note.
        description: ShareNote,
    },
    /// Change a share's deadline or note.
    ChangeShare {
        /// The repository.
        repo: RepoPath,
        /// The account it is shared with.
        with: AccountName,
        /// A new deadline.
        deadline: Option<Deadline>,
        /// A new note.
        description: Option<ShareNote>,
    },
    /// End a share.
    Unshare {
        /// The repository.
        repo: RepoPath,
        /// The account it is shared with.
        with: AccountName,
    },
    /// Record pulls counted since the last record.
    CountPulls {
        /// The repository.
        repo: RepoPath,
        /// How many.
        pulls: u64,
    },
}

impl RepoCommand {
    /// The repository the command is about.
    pub fn repo(&self) -> &RepoPath {
        match self {
            Self::LinkUploadedBlob { repo, .. }
            | Self::MountBlob { repo, .. }
            | Self::PushManifest { repo, .. }
            | Self::DeleteTags { repo, .. }
            | Self::DeleteManifest { repo, .. }
            | Self::DeleteBlob { repo, .. }
            | Self::Create { repo, .. }
            | Self::SetAttributes { repo, .. }
            | Self::Delete { repo }
            | Self::Grant { repo, .. }
            | Self::Revoke { repo, .. }
            | Self::Retag { repo, .. }
            | Self::Share { repo, .. }
            | Self::ChangeShare { repo, .. }
            | Self::Unshare { repo, .. }
            | Self::CountPulls { repo, .. } => repo,
        }
    }

    /// Another repository the decision reads (a mount's source).
    pub fn source(&self) -> Option<&RepoPath> {
        match self {
            Self::MountBlob { from, .. } => Some(from),
            _ => None,
        }
    }

    /// The account whose state the decision reads: a pusher's (for the
    /// quota of an organization the push may create), the grantees', or the
    /// one a share is for.
    pub fn account(&self) -> Option<&AccountName> {
        match self {
            Self::LinkUploadedBlob { by, .. }
            | Self::MountBlob { by, .. }
            | Self::PushManifest { by, .. } => by.as_ref().map(|o| &o.account),
            Self::Grant { account, .. } => Some(account),
            Self::Share { with, .. } => Some(with),
            _ => None,
        }
    }
}

/// Folds an event into a repository; only a creation makes one exist, and
/// a deletion ends it.
pub fn evolve(state: Option<Repository>, event: &Event) -> Option<Repository> {
    match event {
        Event::RepositoryCreated { repo_id, .. } => return Some(Repository::new(*repo_id)),
        Event::RepositoryDeleted { .. } => return None,
        _ => {}
    }
    let mut r = state?;
    match event {
        Event::BlobUploaded { digest, size, .. } | Event::BlobMounted { digest, size, .. } => {
            r.blobs.insert(digest.clone(), *size);
        }
        Event::ManifestPushed {
            digest,
            media_type,
            size,
            content_size,
            subject,
            blobs,
            manifests,
            ..
        } => {
            r.manifests.insert(
                digest.clone(),
                ManifestMeta {
                    media_type: media_type.clone(),
                    total_size: size + content_size,
                    subject: subject.clone(),
                    references: blobs.iter().chain(manifests).cloned().collect(),
                },
            );
        }
        Event::TagPointed { tag, digest, .. } => {
            r.tags.insert(tag.clone(), digest.clone());
        }
        Event::TagDeleted { tag, .. } => {
            r.tags.remove(tag);
        }
        Event::ManifestDeleted { digest, .. } => {
            r.manifests.remove(digest);
        }
        Event::BlobDeleted { digest, .. } => {
            r.blobs.remove(digest);
        }
        Event::RepositoryVisibilityChanged { public, .. } => r.public = *public,
        Event::RepositoryAttributesChanged {
            category,
            description,
            ..
        } => {
            r.category = *category;
            r.description = description.clone();
        }
        Event::RepoAccessGranted {
            account,
            user,
            level,
            ..
        } => {
            r.grants.insert((account.clone(), user.clone()), *level);
        }
        Event::RepoAccessRevoked { account, user, .. } => {
            r.grants.remove(&(account.clone(), user.clone()));
        }
        Event::ShareGranted {
            with,
            deadline,
            description,
            ..
        }
        | Event::ShareChanged {
            with,
            deadline,
            description,
            ..
        } => {
            r.shares
                .insert(with.clone(), (*deadline, description.clone()));
        }
        Event::ShareEnded { with, .. } => {
            r.shares.remove(with);
        }
        _ => {}
    }
    Some(r)
}
