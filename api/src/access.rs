//! The authorization seam: what each route needs, and the check that every
//! request passes through before its handler runs. Until identities exist
//! the registry runs open, but the action each route needs is already
//! decided here, and only here.

use axum::http::Method;
use berth_domain::{Actor, RepoPath};

use crate::endpoint::Endpoint;
use crate::error::ApiError;

/// An action on a repository, as token scopes name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read manifests, tags, blobs, referrers.
    Pull,
    /// Upload blobs, push manifests.
    Push,
    /// Remove tags, manifests, blobs.
    Delete,
}

/// What a request needs to be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Nothing (the version check).
    Nothing,
    /// The catalog: answered with what the caller may pull.
    Catalog,
    /// One action on one repository.
    Repo(RepoPath, Action),
}

/// The action a request on an endpoint needs.
pub fn needs(endpoint: &Endpoint, method: &Method) -> Needs {
    let action = match *method {
        Method::DELETE => Action::Delete,
        Method::GET | Method::HEAD => Action::Pull,
        _ => Action::Push,
    };
    match endpoint {
        Endpoint::Base => Needs::Nothing,
        Endpoint::Catalog => Needs::Catalog,
        Endpoint::Tags { repo }
        | Endpoint::Manifest { repo, .. }
        | Endpoint::Blob { repo, .. }
        | Endpoint::Referrers { repo, .. } => Needs::Repo(repo.clone(), action),
        // Cancelling or inspecting one's own upload is part of pushing.
        Endpoint::UploadStart { repo } | Endpoint::Upload { repo, .. } => {
            Needs::Repo(repo.clone(), Action::Push)
        }
    }
}

/// Decides whether `actor` may do what `needs` says. The open policy allows
/// every request; identity and permissions replace it.
pub fn check(_actor: &Actor, _needs: &Needs) -> Result<(), ApiError> {
    Ok(())
}
