//! The repository aggregate: one incarnation of `<org>/<name>` with its
//! linked blobs, manifests, tags, visibility and per-repository grants. A
//! first push creates it (and its organization when that is free).

use std::collections::HashMap;

use uuid::Uuid;

use crate::command::{Fresh, Owner};
use crate::digest::Digest;
use crate::error::DomainError;
use crate::event::Event;
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
    /// Make a repository public or private.
    SetVisibility {
        /// The repository.
        repo: RepoPath,
        /// Public or not.
        public: bool,
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
}

impl RepoCommand {
    /// The repository the command is about.
    pub fn repo(&self) -> &RepoPath {
        match self {
            Self::LinkUploadedBlob { repo, .. }
            | Self::MountBlob { repo, .. }
            | Self::PushManifest { repo, .. }
            | Self::DeleteTag { repo, .. }
            | Self::DeleteManifest { repo, .. }
            | Self::DeleteBlob { repo, .. }
            | Self::SetVisibility { repo, .. }
            | Self::Grant { repo, .. } => repo,
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
    /// quota of an organization the push may create) or the grantees'.
    pub fn account(&self) -> Option<&AccountName> {
        match self {
            Self::LinkUploadedBlob { by, .. }
            | Self::MountBlob { by, .. }
            | Self::PushManifest { by, .. } => by.as_ref().map(|o| &o.account),
            Self::Grant { account, .. } => Some(account),
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
        RepoCommand::DeleteTag { repo, tag } => {
            let current = state.repo(repo)?;
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
        RepoCommand::SetVisibility { repo, public } => {
            let current = state.repo(repo)?;
            if current.public != *public {
                events.push(Event::RepositoryVisibilityChanged {
                    repo_id: current.id,
                    repo: repo.clone(),
                    public: *public,
                });
            }
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
    }
    Ok(events)
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

/// Folds an event into a repository; only a creation makes one exist.
pub fn evolve(state: Option<Repository>, event: &Event) -> Option<Repository> {
    if let Event::RepositoryCreated { repo_id, .. } = event {
        return Some(Repository {
            id: *repo_id,
            blobs: HashMap::new(),
            manifests: HashMap::new(),
            tags: HashMap::new(),
            public: false,
        });
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
            g.when(cmd(RepoCommand::DeleteTag {
                repo: repo("acme/web"),
                tag: tag("nope")
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
            g.when(cmd(RepoCommand::DeleteTag {
                repo: repo("acme/other"),
                tag: tag("v1")
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
            cmd(RepoCommand::SetVisibility {
                repo: repo("acme/web"),
                public: p,
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

    #[test]
    fn events_for_a_repository_never_loaded_invent_nothing() {
        let mut state = Loaded::default();
        state.evolve(&uploaded("acme/web", dg('a'), 1));
        assert!(state.repos.is_empty());
    }
}
