//! What an event is about, as an auditor looks it up: the organization and
//! the repository it touched, by name.

use crate::event::Event;
use crate::names::{OrgName, RepoPath};

impl Event {
    /// The repository the event touched, if any.
    pub fn repository(&self) -> Option<&RepoPath> {
        match self {
            Self::RepositoryCreated { repo, .. }
            | Self::BlobUploaded { repo, .. }
            | Self::BlobMounted { repo, .. }
            | Self::ManifestPushed { repo, .. }
            | Self::TagPointed { repo, .. }
            | Self::TagDeleted { repo, .. }
            | Self::ManifestDeleted { repo, .. }
            | Self::BlobDeleted { repo, .. }
            | Self::RepositoryVisibilityChanged { repo, .. }
            | Self::RepoAccessGranted { repo, .. }
            | Self::RepositoryAttributesChanged { repo, .. }
            | Self::RepositoryDeleted { repo, .. }
            | Self::RepoAccessRevoked { repo, .. }
            | Self::ShareGranted { repo, .. }
            | Self::ShareChanged { repo, .. }
            | Self::ShareEnded { repo, .. }
            | Self::PullsCounted { repo, .. } => Some(repo),
            _ => None,
        }
    }

    /// The organization the event touched: its own, or its repository's.
    pub fn organization(&self) -> Option<&OrgName> {
        match self {
            Self::OrgCreated { org, .. }
            | Self::NamespaceCreated { org, .. }
            | Self::OrgAccessGranted { org, .. }
            | Self::OrgAccessRevoked { org, .. }
            | Self::OrganizationDeleted { org, .. } => Some(org),
            other => other.repository().map(RepoPath::org),
        }
    }
}
