//! Commands: what a caller asks the registry to change.

use uuid::Uuid;

use crate::digest::Digest;
use crate::manifest::ParsedManifest;
use crate::names::{RepoPath, TagName};

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
}

impl Command {
    /// The repositories whose state the decision needs; the engine loads
    /// exactly these (and their organizations) before deciding.
    pub fn touches(&self) -> Vec<&RepoPath> {
        match self {
            Self::MountBlob { repo, from, .. } => vec![repo, from],
            Self::LinkUploadedBlob { repo, .. }
            | Self::PushManifest { repo, .. }
            | Self::DeleteTag { repo, .. }
            | Self::DeleteManifest { repo, .. }
            | Self::DeleteBlob { repo, .. } => vec![repo],
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
}
