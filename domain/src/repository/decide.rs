//! Decisions on a repository: a command and the loaded state in, events
//! or a refusal out.

use std::collections::HashSet;

use uuid::Uuid;

use super::{Attributes, RepoCommand, Repository};
use crate::command::{Fresh, Owner};
use crate::digest::Digest;
use crate::error::DomainError;
use crate::event::{Event, ShareEnd};
use crate::loaded::Loaded;
use crate::manifest::ParsedManifest;
use crate::names::RepoPath;
use crate::organization;

/// Decides a repository command.
pub fn decide(state: &Loaded, cmd: &RepoCommand, fresh: Fresh) -> Result<Vec<Event>, DomainError> {
    let mut events = Vec::new();
    let current = state.repos.get(cmd.repo());
    match cmd {
        RepoCommand::LinkUploadedBlob {
            by,
            repo,
            digest,
            size,
        } => {
            let repo_id = ensure(state, repo, by.as_ref(), fresh, &mut events)?;
            if !current.is_some_and(|r| r.blobs.contains_key(digest)) {
                events.push(Event::BlobUploaded {
                    repo_id,
                    repo: repo.clone(),
                    digest: digest.clone(),
                    size: *size,
                });
            }
        }
        RepoCommand::MountBlob {
            by,
            repo,
            digest,
            from,
        } => {
            let size = state
                .repos
                .get(from)
                .and_then(|r| r.blobs.get(digest))
                .copied()
                .ok_or_else(|| DomainError::BlobUnknown(digest.clone()))?;
            let repo_id = ensure(state, repo, by.as_ref(), fresh, &mut events)?;
            if !current.is_some_and(|r| r.blobs.contains_key(digest)) {
                events.push(Event::BlobMounted {
                    repo_id,
                    repo: repo.clone(),
                    digest: digest.clone(),
                    size,
                    from: from.clone(),
                });
            }
        }
        RepoCommand::PushManifest {
            by,
            repo,
            tag,
            digest,
            size,
            manifest,
        } => {
            let content_size = referenced_size(current, manifest)?;
            let repo_id = ensure(state, repo, by.as_ref(), fresh, &mut events)?;
            if !current.is_some_and(|r| r.manifests.contains_key(digest)) {
                events.push(Event::ManifestPushed {
                    repo_id,
                    repo: repo.clone(),
                    digest: digest.clone(),
                    media_type: manifest.media_type.clone(),
                    size: *size,
                    content_size,
                    blobs: manifest.blobs.clone(),
                    manifests: manifest.manifests.clone(),
                    subject: manifest.subject.clone(),
                    artifact_type: manifest.artifact_type.clone(),
                    annotations: manifest.annotations.clone(),
                });
            }
            if let Some(tag) = tag {
                let previous = current.and_then(|r| r.tags.get(tag)).cloned();
                if previous.as_ref() != Some(digest) {
                    events.push(Event::TagPointed {
                        repo_id,
                        repo: repo.clone(),
                        tag: tag.clone(),
                        digest: digest.clone(),
                        media_type: manifest.media_type.clone(),
                        size: size + content_size,
                        previous,
                    });
                }
            }
        }
        RepoCommand::DeleteTags { repo, tags } => {
            let current = state.repo(repo)?;
            let mut seen = HashSet::new();
            for tag in tags.iter().filter(|t| seen.insert(*t)) {
                let digest = current
                    .tags
                    .get(tag)
                    .ok_or_else(|| DomainError::ManifestUnknown(tag.to_string()))?;
                events.push(Event::TagDeleted {
                    repo_id: current.id,
                    repo: repo.clone(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                });
            }
        }
        RepoCommand::DeleteManifest { repo, digest } => {
            let current = state.repo(repo)?;
            let meta = current
                .manifests
                .get(digest)
                .ok_or_else(|| DomainError::ManifestUnknown(digest.to_string()))?;
            refuse_if_referenced(current, digest)?;
            let mut tags: Vec<_> = current
                .tags
                .iter()
                .filter(|(_, d)| *d == digest)
                .map(|(t, _)| t.clone())
                .collect();
            tags.sort();
            for tag in tags {
                events.push(Event::TagDeleted {
                    repo_id: current.id,
                    repo: repo.clone(),
                    tag,
                    digest: digest.clone(),
                });
            }
            events.push(Event::ManifestDeleted {
                repo_id: current.id,
                repo: repo.clone(),
                digest: digest.clone(),
                subject: meta.subject.clone(),
            });
        }
        RepoCommand::DeleteBlob { repo, digest } => {
            let current = state.repo(repo)?;
            if !current.blobs.contains_key(digest) {
                return Err(DomainError::BlobUnknown(digest.clone()));
            }
            refuse_if_referenced(current, digest)?;
            events.push(Event::BlobDeleted {
                repo_id: current.id,
                repo: repo.clone(),
                digest: digest.clone(),
            });
        }
        RepoCommand::Create { repo, attributes } => {
            if state.repos.contains_key(repo) {
                return Err(DomainError::RepositoryExists(repo.clone()));
            }
            let org = state
                .orgs
                .get(repo.org())
                .ok_or_else(|| DomainError::OrgUnknown(repo.org().clone()))?;
            events.push(Event::RepositoryCreated {
                repo_id: fresh.repo_id,
                org_id: org.id,
                repo: repo.clone(),
            });
            let empty = Repository::new(fresh.repo_id);
            attribute_events(&empty, repo, attributes, &mut events);
        }
        RepoCommand::SetAttributes { repo, attributes } => {
            attribute_events(state.repo(repo)?, repo, attributes, &mut events);
        }
        RepoCommand::Delete { repo } => {
            let current = state.repo(repo)?;
            let id = current.id;
            let mut tags: Vec<_> = current.tags.iter().collect();
            tags.sort();
            for (tag, digest) in tags {
                events.push(Event::TagDeleted {
                    repo_id: id,
                    repo: repo.clone(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                });
            }
            let mut manifests: Vec<_> = current.manifests.iter().collect();
            manifests.sort_by(|a, b| a.0.cmp(b.0));
            for (digest, meta) in manifests {
                events.push(Event::ManifestDeleted {
                    repo_id: id,
                    repo: repo.clone(),
                    digest: digest.clone(),
                    subject: meta.subject.clone(),
                });
            }
            let mut blobs: Vec<_> = current.blobs.keys().collect();
            blobs.sort();
            for digest in blobs {
                events.push(Event::BlobDeleted {
                    repo_id: id,
                    repo: repo.clone(),
                    digest: digest.clone(),
                });
            }
            let mut grants: Vec<_> = current.grants.keys().collect();
            grants.sort();
            for (account, user) in grants {
                events.push(Event::RepoAccessRevoked {
                    repo_id: id,
                    repo: repo.clone(),
                    account: account.clone(),
                    user: user.clone(),
                });
            }
            end_shares(current, repo, ShareEnd::RepositoryDeleted, &mut events);
            events.push(Event::RepositoryDeleted {
                repo_id: id,
                repo: repo.clone(),
            });
        }
        RepoCommand::Grant {
            repo,
            account,
            grants,
        } => {
            let current = state.repo(repo)?;
            let owner = state.orgs.get(repo.org()).and_then(|o| o.owner.as_ref());
            if owner != Some(account) {
                return Err(DomainError::Denied(format!(
                    "only users of the account owning {} can be granted access to it",
                    repo.org()
                )));
            }
            for (user, level) in grants {
                state.user(account, user)?;
                events.push(Event::RepoAccessGranted {
                    repo_id: current.id,
                    repo: repo.clone(),
                    account: account.clone(),
                    user: user.clone(),
                    level: *level,
                });
            }
        }
        RepoCommand::Revoke {
            repo,
            account,
            user,
        } => {
            let current = state.repo(repo)?;
            if !current
                .grants
                .contains_key(&(account.clone(), user.clone()))
            {
                return Err(DomainError::GrantUnknown {
                    account: account.clone(),
                    user: user.clone(),
                });
            }
            events.push(Event::RepoAccessRevoked {
                repo_id: current.id,
                repo: repo.clone(),
                account: account.clone(),
                user: user.clone(),
            });
        }
        RepoCommand::Retag {
            repo,
            source,
            destination,
            overwrite,
        } => {
            let current = state.repo(repo)?;
            let digest = current
                .tags
                .get(source)
                .ok_or_else(|| DomainError::ManifestUnknown(source.to_string()))?;
            let previous = current.tags.get(destination).cloned();
            let meta = current
                .manifests
                .get(digest)
                .ok_or_else(|| DomainError::ManifestUnknown(digest.to_string()))?;
            if previous.as_ref() != Some(digest) {
                if previous.is_some() && !overwrite {
                    return Err(DomainError::TagExists(destination.clone()));
                }
                events.push(Event::TagPointed {
                    repo_id: current.id,
                    repo: repo.clone(),
                    tag: destination.clone(),
                    digest: digest.clone(),
                    media_type: meta.media_type.clone(),
                    size: meta.total_size,
                    previous,
                });
            }
        }
        RepoCommand::Share {
            repo,
            owner,
            with,
            deadline,
            description,
        } => {
            let current = state.repo(repo)?;
            if current.public {
                return Err(DomainError::ShareInvalid(
                    "a public repository is pullable by everyone; only private ones are shared"
                        .into(),
                ));
            }
            if with == owner {
                return Err(DomainError::ShareInvalid(
                    "an account cannot share with itself".into(),
                ));
            }
            if !state.accounts.contains_key(with) {
                return Err(DomainError::AccountUnknown(with.clone()));
            }
            if current.shares.contains_key(with) {
                return Err(DomainError::ShareExists(with.clone()));
            }
            events.push(Event::ShareGranted {
                repo_id: current.id,
                repo: repo.clone(),
                owner: owner.clone(),
                with: with.clone(),
                deadline: *deadline,
                description: description.clone(),
            });
        }
        RepoCommand::ChangeShare {
            repo,
            with,
            deadline,
            description,
        } => {
            let current = state.repo(repo)?;
            let (old_deadline, old_note) = current
                .shares
                .get(with)
                .ok_or_else(|| DomainError::ShareUnknown(with.clone()))?;
            let deadline = deadline.unwrap_or(*old_deadline);
            let description = description.clone().unwrap_or_else(|| old_note.clone());
            if deadline != *old_deadline || description != *old_note {
                events.push(Event::ShareChanged {
                    repo_id: current.id,
                    repo: repo.clone(),
                    with: with.clone(),
                    deadline,
                    description,
                });
            }
        }
        RepoCommand::Unshare { repo, with } => {
            let current = state.repo(repo)?;
            if !current.shares.contains_key(with) {
                return Err(DomainError::ShareUnknown(with.clone()));
            }
            events.push(Event::ShareEnded {
                repo_id: current.id,
                repo: repo.clone(),
                with: with.clone(),
                reason: ShareEnd::Revoked,
            });
        }
        RepoCommand::CountPulls { repo, pulls } => {
            // Pulls of a repository deleted since they were counted are
            // simply dropped.
            if let (Some(current), true) = (state.repos.get(repo), *pulls > 0) {
                events.push(Event::PullsCounted {
                    repo_id: current.id,
                    repo: repo.clone(),
                    pulls: *pulls,
                });
            }
        }
    }
    Ok(events)
}

/// The events that set new attributes on `current`: only what differs,
/// and a repository made public ends its shares.
fn attribute_events(
    current: &Repository,
    repo: &RepoPath,
    attributes: &Attributes,
    events: &mut Vec<Event>,
) {
    if let Some(public) = attributes.public.filter(|p| *p != current.public) {
        events.push(Event::RepositoryVisibilityChanged {
            repo_id: current.id,
            repo: repo.clone(),
            public,
        });
        if public {
            end_shares(current, repo, ShareEnd::MadePublic, events);
        }
    }
    let category = attributes.category.unwrap_or(current.category);
    let description = attributes
        .description
        .clone()
        .unwrap_or_else(|| current.description.clone());
    if category != current.category || description != current.description {
        events.push(Event::RepositoryAttributesChanged {
            repo_id: current.id,
            repo: repo.clone(),
            category,
            description,
        });
    }
}

/// Ends every share of a repository, in account order.
fn end_shares(current: &Repository, repo: &RepoPath, reason: ShareEnd, events: &mut Vec<Event>) {
    let mut with: Vec<_> = current.shares.keys().collect();
    with.sort();
    for account in with {
        events.push(Event::ShareEnded {
            repo_id: current.id,
            repo: repo.clone(),
            with: account.clone(),
            reason,
        });
    }
}

/// The size of everything a manifest references, all of which must already
/// be in the repository: blobs, and child manifests for an index (the
/// parsed manifest already leaves out non-distributable layers, which never
/// enter a registry).
/// Refuses to take a blob or child manifest out of a repository while one
/// of its manifests still references it: the image would break on pull,
/// and garbage collection would then be free to remove the bytes.
fn refuse_if_referenced(current: &Repository, target: &Digest) -> Result<(), DomainError> {
    let mut by: Vec<_> = current
        .manifests
        .iter()
        .filter(|(_, meta)| meta.references.contains(target))
        .map(|(d, _)| d)
        .collect();
    by.sort();
    match by.first() {
        Some(by) => Err(DomainError::StillReferenced {
            target: target.clone(),
            by: (*by).clone(),
        }),
        None => Ok(()),
    }
}

fn referenced_size(
    current: Option<&Repository>,
    manifest: &ParsedManifest,
) -> Result<u64, DomainError> {
    let mut total = 0u64;
    for blob in &manifest.blobs {
        let size = current
            .and_then(|r| r.blobs.get(blob))
            .ok_or_else(|| DomainError::ManifestBlobUnknown(blob.clone()))?;
        total += size;
    }
    for child in &manifest.manifests {
        let meta = current
            .and_then(|r| r.manifests.get(child))
            .ok_or_else(|| DomainError::ManifestBlobUnknown(child.clone()))?;
        total += meta.total_size;
    }
    Ok(total)
}

/// Returns the repository's id, creating the organization and the
/// repository first when they do not exist yet (first push creates both).
/// With a known pusher the organization belongs to their account, within its
/// quota. A command with no pusher (issued by the system itself; every client
/// push is authenticated first) creates an unowned one, the shape organizations
/// had before accounts existed.
fn ensure(
    state: &Loaded,
    repo: &RepoPath,
    by: Option<&Owner>,
    fresh: Fresh,
    events: &mut Vec<Event>,
) -> Result<Uuid, DomainError> {
    if let Some(r) = state.repos.get(repo) {
        return Ok(r.id);
    }
    let org_id = match (state.orgs.get(repo.org()), by) {
        (Some(org), _) => org.id,
        (None, Some(owner)) => {
            organization::create(state, repo.org(), owner, true, fresh, events)?;
            fresh.org_id
        }
        (None, None) => {
            events.push(Event::OrgCreated {
                org_id: fresh.org_id,
                org: repo.org().clone(),
                auto: true,
            });
            fresh.org_id
        }
    };
    events.push(Event::RepositoryCreated {
        repo_id: fresh.repo_id,
        org_id,
        repo: repo.clone(),
    });
    Ok(fresh.repo_id)
}
