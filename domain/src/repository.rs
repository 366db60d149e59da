//! The repository aggregate: one incarnation of `<org>/<name>` with its
//! linked blobs, manifests, tags, visibility and per-repository grants. A
//! first push creates it (and its organization when that is free).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::attributes::{Category, Deadline, Description, ShareNote};
use crate::command::{Fresh, Owner};
use crate::digest::Digest;
use crate::error::DomainError;
use crate::event::{Event, ShareEnd};
use crate::loaded::Loaded;
use crate::manifest::ParsedManifest;
use crate::names::{AccountName, RepoPath, TagName, UserName};
use crate::organization;
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
    /// Users' grants on this repository alone.
    pub grants: HashSet<(AccountName, UserName)>,
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
            grants: HashSet::new(),
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
            let mut grants: Vec<_> = current.grants.iter().collect();
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
            if !current.grants.contains(&(account.clone(), user.clone())) {
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
            ..
        } => {
            r.manifests.insert(
                digest.clone(),
                ManifestMeta {
                    media_type: media_type.clone(),
                    total_size: size + content_size,
                    subject: subject.clone(),
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
        Event::RepoAccessGranted { account, user, .. } => {
            r.grants.insert((account.clone(), user.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::manifest::OCI_MANIFEST;
    use crate::policy::DENIED_MESSAGE;
    use crate::testing::*;

    fn created(path: &str) -> [Event; 2] {
        [
            Event::OrgCreated {
                org_id: FRESH.org_id,
                org: repo(path).org().clone(),
                auto: true,
            },
            Event::RepositoryCreated {
                repo_id: FRESH.repo_id,
                org_id: FRESH.org_id,
                repo: repo(path),
            },
        ]
    }

    fn uploaded(path: &str, d: Digest, size: u64) -> Event {
        Event::BlobUploaded {
            repo_id: FRESH.repo_id,
            repo: repo(path),
            digest: d,
            size,
        }
    }

    fn with_blob(path: &str, d: Digest, size: u64) -> Vec<Event> {
        let mut history = created(path).to_vec();
        history.push(uploaded(path, d, size));
        history
    }

    fn manifest(blobs: Vec<Digest>) -> ParsedManifest {
        ParsedManifest {
            media_type: OCI_MANIFEST.into(),
            blobs,
            manifests: vec![],
            subject: None,
            artifact_type: None,
            annotations: Default::default(),
        }
    }

    fn cmd(c: RepoCommand) -> Command {
        Command::Repo(c)
    }

    fn push(path: &str, t: &str, d: Digest, blobs: Vec<Digest>) -> Command {
        cmd(RepoCommand::PushManifest {
            by: None,
            repo: repo(path),
            tag: Some(tag(t)),
            digest: d,
            size: 10,
            manifest: manifest(blobs),
        })
    }

    fn link(path: &str, by: Option<Owner>) -> Command {
        cmd(RepoCommand::LinkUploadedBlob {
            by,
            repo: repo(path),
            digest: dg('a'),
            size: 5,
        })
    }

    #[test]
    fn first_upload_creates_org_and_repository() {
        let events = given([]).when(link("acme/web", None)).unwrap();
        assert_eq!(events, with_blob("acme/web", dg('a'), 5));
    }

    #[test]
    fn relinking_a_linked_blob_changes_nothing() {
        let events = given(with_blob("acme/web", dg('a'), 5))
            .when(link("acme/web", None))
            .unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn a_push_creates_an_owned_organization_within_the_quota() {
        let events = given(acme())
            .when(link("team/web", Some(owner("acme", "root", 1))))
            .unwrap();
        assert!(matches!(
            &events[0],
            Event::NamespaceCreated { auto: true, account, .. } if account.as_str() == "acme"
        ));
        let mut history = acme().to_vec();
        history.extend(events);
        let full = given(history);
        assert_eq!(
            full.when(link("second/web", Some(owner("acme", "root", 1)))),
            Err(DomainError::Denied(DENIED_MESSAGE.into())),
            "beyond the quota"
        );
        assert!(
            full.when(link("team/api", Some(owner("acme", "root", 1))))
                .is_ok(),
            "an existing org needs no quota"
        );
    }

    #[test]
    fn manifest_needs_its_blobs_in_the_repository() {
        let err = given(created("acme/web"))
            .when(push("acme/web", "v1", dg('d'), vec![dg('a')]))
            .unwrap_err();
        assert_eq!(err, DomainError::ManifestBlobUnknown(dg('a')));
    }

    #[test]
    fn push_stores_manifest_and_points_tag_with_image_size() {
        let events = given(with_blob("acme/web", dg('a'), 5))
            .when(push("acme/web", "v1", dg('d'), vec![dg('a')]))
            .unwrap();
        assert!(matches!(
            events.as_slice(),
            [
                Event::ManifestPushed {
                    content_size: 5,
                    ..
                },
                Event::TagPointed {
                    size: 15,
                    previous: None,
                    ..
                }
            ]
        ));
    }

    #[test]
    fn retag_records_previous_and_same_tag_is_a_no_op() {
        let mut history = with_blob("acme/web", dg('a'), 5);
        let first = given(history.clone())
            .when(push("acme/web", "v1", dg('d'), vec![dg('a')]))
            .unwrap();
        history.extend(first);
        let g = given(history);
        assert!(g
            .when(push("acme/web", "v1", dg('d'), vec![dg('a')]))
            .unwrap()
            .is_empty());
        let retag = g
            .when(push("acme/web", "v1", dg('e'), vec![dg('a')]))
            .unwrap();
        assert!(matches!(
            retag.last(),
            Some(Event::TagPointed { previous: Some(p), .. }) if *p == dg('d')
        ));
    }

    #[test]
    fn deleting_a_manifest_deletes_its_tags_first() {
        let mut history = with_blob("acme/web", dg('a'), 5);
        for t in ["v1", "v2"] {
            let e = given(history.clone())
                .when(push("acme/web", t, dg('d'), vec![dg('a')]))
                .unwrap();
            history.extend(e);
        }
        let events = given(history)
            .when(cmd(RepoCommand::DeleteManifest {
                repo: repo("acme/web"),
                digest: dg('d'),
            }))
            .unwrap();
        let kinds: Vec<_> = events.iter().map(Event::kind).collect();
        assert_eq!(kinds, ["TagDeleted", "TagDeleted", "ManifestDeleted"]);
    }

    #[test]
    fn deletes_in_unknown_places_are_refused() {
        let g = given(created("acme/web"));
        assert_eq!(
            g.when(cmd(RepoCommand::DeleteTags {
                repo: repo("acme/web"),
                tags: vec![tag("nope")]
            })),
            Err(DomainError::ManifestUnknown("nope".into()))
        );
        assert_eq!(
            g.when(cmd(RepoCommand::DeleteBlob {
                repo: repo("acme/web"),
                digest: dg('f')
            })),
            Err(DomainError::BlobUnknown(dg('f')))
        );
        assert_eq!(
            g.when(cmd(RepoCommand::DeleteTags {
                repo: repo("acme/other"),
                tags: vec![tag("v1")]
            })),
            Err(DomainError::RepositoryUnknown(repo("acme/other")))
        );
    }

    #[test]
    fn mount_needs_the_blob_in_the_source() {
        let g = given(with_blob("acme/web", dg('a'), 7));
        let mount = |d| {
            cmd(RepoCommand::MountBlob {
                by: None,
                repo: repo("acme/api"),
                digest: d,
                from: repo("acme/web"),
            })
        };
        assert!(matches!(
            g.when(mount(dg('a'))).unwrap().as_slice(),
            [
                Event::RepositoryCreated { .. },
                Event::BlobMounted { size: 7, .. }
            ]
        ));
        assert_eq!(
            g.when(mount(dg('b'))),
            Err(DomainError::BlobUnknown(dg('b')))
        );
    }

    #[test]
    fn visibility_changes_only_when_it_differs() {
        let g = given(created("acme/web"));
        let public = |p| {
            cmd(RepoCommand::SetAttributes {
                repo: repo("acme/web"),
                attributes: Attributes {
                    public: Some(p),
                    ..Attributes::default()
                },
            })
        };
        assert!(g.when(public(false)).unwrap().is_empty());
        assert!(matches!(
            g.when(public(true)).unwrap().as_slice(),
            [Event::RepositoryVisibilityChanged { public: true, .. }]
        ));
    }

    #[test]
    fn a_repository_grant_list_is_all_or_nothing() {
        let mut history = acme().to_vec();
        history.push(user_created("acme", "alice"));
        let e = given(history.clone())
            .when(link("team/web", Some(owner("acme", "root", 5))))
            .unwrap();
        history.extend(e);
        let grant = |users: &[&str]| {
            cmd(RepoCommand::Grant {
                repo: repo("team/web"),
                account: account("acme"),
                grants: users.iter().map(|u| (user(u), Level::Edit)).collect(),
            })
        };
        let g = given(history);
        assert_eq!(g.when(grant(&["alice"])).unwrap().len(), 1);
        assert_eq!(
            g.when(grant(&["alice", "nosuch"])),
            Err(DomainError::UserUnknown {
                account: account("acme"),
                user: user("nosuch")
            })
        );
    }

    fn owned_repo() -> Vec<Event> {
        let mut history = acme().to_vec();
        history.push(Event::AccountCreated {
            account_id: uuid::Uuid::from_u128(50),
            account: account("beta"),
        });
        let e = given(history.clone())
            .when(link("team/web", Some(owner("acme", "root", 5))))
            .unwrap();
        history.extend(e);
        history
    }

    fn share(with: &str) -> Command {
        cmd(RepoCommand::Share {
            repo: repo("team/web"),
            owner: account("acme"),
            with: account(with),
            deadline: Deadline::Forever,
            description: ShareNote::default(),
        })
    }

    #[test]
    fn only_private_repositories_are_shared_once_with_another_existing_account() {
        let mut history = owned_repo();
        let granted = given(history.clone()).when(share("beta")).unwrap();
        assert!(matches!(granted.as_slice(), [Event::ShareGranted { .. }]));
        assert!(matches!(
            given(history.clone()).when(share("acme")),
            Err(DomainError::ShareInvalid(_))
        ));
        assert_eq!(
            given(history.clone()).when(share("gamma")),
            Err(DomainError::AccountUnknown(account("gamma")))
        );
        history.extend(granted);
        assert_eq!(
            given(history.clone()).when(share("beta")),
            Err(DomainError::ShareExists(account("beta")))
        );
        let public = cmd(RepoCommand::SetAttributes {
            repo: repo("team/web"),
            attributes: Attributes {
                public: Some(true),
                ..Attributes::default()
            },
        });
        let made_public = given(history.clone()).when(public).unwrap();
        assert!(matches!(
            made_public.as_slice(),
            [
                Event::RepositoryVisibilityChanged { public: true, .. },
                Event::ShareEnded {
                    reason: ShareEnd::MadePublic,
                    ..
                }
            ]
        ));
        history.extend(made_public);
        assert!(matches!(
            given(history).when(share("beta")),
            Err(DomainError::ShareInvalid(_))
        ));
    }

    #[test]
    fn deleting_a_repository_removes_everything_it_holds_first() {
        let mut history = owned_repo();
        let pushed = given(history.clone())
            .when(push("team/web", "v1", dg('d'), vec![dg('a')]))
            .unwrap();
        history.extend(pushed);
        history.extend(given(history.clone()).when(share("beta")).unwrap());
        let events = given(history.clone())
            .when(cmd(RepoCommand::Delete {
                repo: repo("team/web"),
            }))
            .unwrap();
        let kinds: Vec<_> = events.iter().map(Event::kind).collect();
        assert_eq!(
            kinds,
            [
                "TagDeleted",
                "ManifestDeleted",
                "BlobDeleted",
                "ShareEnded",
                "RepositoryDeleted"
            ]
        );
        history.extend(events);
        let g = given(history);
        assert_eq!(
            g.when(cmd(RepoCommand::Delete {
                repo: repo("team/web")
            })),
            Err(DomainError::RepositoryUnknown(repo("team/web")))
        );
        assert!(
            g.when(link("team/web", Some(owner("acme", "root", 5))))
                .is_ok(),
            "the name is free for a new incarnation"
        );
    }

    #[test]
    fn retag_needs_override_to_move_an_existing_tag() {
        let mut history = with_blob("acme/web", dg('a'), 5);
        for (t, d) in [("v1", 'd'), ("v2", 'e')] {
            let e = given(history.clone())
                .when(push("acme/web", t, dg(d), vec![dg('a')]))
                .unwrap();
            history.extend(e);
        }
        let retag = |source: &str, destination: &str, overwrite| {
            cmd(RepoCommand::Retag {
                repo: repo("acme/web"),
                source: tag(source),
                destination: tag(destination),
                overwrite,
            })
        };
        let g = given(history);
        assert!(matches!(
            g.when(retag("v1", "stable", false)).unwrap().as_slice(),
            [Event::TagPointed {
                size: 15,
                previous: None,
                ..
            }]
        ));
        assert_eq!(
            g.when(retag("v1", "v2", false)),
            Err(DomainError::TagExists(tag("v2")))
        );
        assert!(g.when(retag("v1", "v2", true)).is_ok());
        assert_eq!(
            g.when(retag("nope", "v3", false)),
            Err(DomainError::ManifestUnknown("nope".into()))
        );
    }

    #[test]
    fn events_for_a_repository_never_loaded_invent_nothing() {
        let mut state = Loaded::default();
        state.evolve(&uploaded("acme/web", dg('a'), 1));
        assert!(state.repos.is_empty());
    }
}
