//! Decisions: a command and the current state in, events or a refusal out.
//! Pure: the time and new ids come in [`Fresh`], never from the environment.

use crate::command::{Command, Fresh};
use crate::error::DomainError;
use crate::event::Event;
use crate::names::RepoPath;
use crate::state::{Registry, RepoState};

/// Decides which events follow from `cmd` in `state`.
pub fn decide(state: &Registry, cmd: &Command, fresh: Fresh) -> Result<Vec<Event>, DomainError> {
    let mut events = Vec::new();
    match cmd {
        Command::LinkUploadedBlob { repo, digest, size } => {
            let repo_id = ensure_repo(state, repo, fresh, &mut events);
            let linked = existing(state, repo).is_some_and(|r| r.blobs.contains_key(digest));
            if !linked {
                events.push(Event::BlobUploaded {
                    repo_id,
                    repo: repo.clone(),
                    digest: digest.clone(),
                    size: *size,
                });
            }
        }
        Command::MountBlob { repo, digest, from } => {
            let size = existing(state, from)
                .and_then(|r| r.blobs.get(digest))
                .copied()
                .ok_or_else(|| DomainError::BlobUnknown(digest.clone()))?;
            let repo_id = ensure_repo(state, repo, fresh, &mut events);
            let linked = existing(state, repo).is_some_and(|r| r.blobs.contains_key(digest));
            if !linked {
                events.push(Event::BlobMounted {
                    repo_id,
                    repo: repo.clone(),
                    digest: digest.clone(),
                    size,
                    from: from.clone(),
                });
            }
        }
        Command::PushManifest {
            repo,
            tag,
            digest,
            size,
            manifest,
        } => {
            let current = existing(state, repo);
            let mut content_size = 0u64;
            for blob in &manifest.blobs {
                let blob_size = current
                    .and_then(|r| r.blobs.get(blob))
                    .ok_or_else(|| DomainError::ManifestBlobUnknown(blob.clone()))?;
                content_size += blob_size;
            }
            for child in &manifest.manifests {
                let meta = current
                    .and_then(|r| r.manifests.get(child))
                    .ok_or_else(|| DomainError::ManifestBlobUnknown(child.clone()))?;
                content_size += meta.total_size;
            }
            let repo_id = ensure_repo(state, repo, fresh, &mut events);
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
        Command::DeleteTag { repo, tag } => {
            let current = required(state, repo)?;
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
        Command::DeleteManifest { repo, digest } => {
            let current = required(state, repo)?;
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
        Command::DeleteBlob { repo, digest } => {
            let current = required(state, repo)?;
            if !current.blobs.contains_key(digest) {
                return Err(DomainError::BlobUnknown(digest.clone()));
            }
            events.push(Event::BlobDeleted {
                repo_id: current.id,
                repo: repo.clone(),
                digest: digest.clone(),
            });
        }
        Command::CreateAccount {
            account,
            admin_user,
            admin_password,
        } => {
            if state.accounts.contains_key(account) {
                return Err(DomainError::AccountExists(account.clone()));
            }
            events.push(Event::AccountCreated {
                account_id: fresh.account_id,
                account: account.clone(),
            });
            events.push(Event::UserCreated {
                user_id: fresh.user_id,
                account_id: fresh.account_id,
                account: account.clone(),
                user: admin_user.clone(),
                admin: true,
                password: admin_password.clone(),
            });
        }
        Command::CreateUser {
            account,
            user,
            admin,
            password,
        } => {
            let current = state
                .accounts
                .get(account)
                .ok_or_else(|| DomainError::AccountUnknown(account.clone()))?;
            if current.users.contains_key(user) {
                return Err(DomainError::UserExists {
                    account: account.clone(),
                    user: user.clone(),
                });
            }
            events.push(Event::UserCreated {
                user_id: fresh.user_id,
                account_id: current.id,
                account: account.clone(),
                user: user.clone(),
                admin: *admin,
                password: password.clone(),
            });
        }
    }
    Ok(events)
}

fn existing<'a>(state: &'a Registry, repo: &RepoPath) -> Option<&'a RepoState> {
    state.repos.get(repo)
}

fn required<'a>(state: &'a Registry, repo: &RepoPath) -> Result<&'a RepoState, DomainError> {
    existing(state, repo).ok_or_else(|| DomainError::RepositoryUnknown(repo.clone()))
}

/// Returns the repository's id, creating the organization and the
/// repository first when they do not exist yet (first push creates both).
fn ensure_repo(
    state: &Registry,
    repo: &RepoPath,
    fresh: Fresh,
    events: &mut Vec<Event>,
) -> uuid::Uuid {
    if let Some(r) = existing(state, repo) {
        return r.id;
    }
    let org_id = match state.orgs.get(repo.org()) {
        Some(org) => org.id,
        None => {
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
    fresh.repo_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::manifest::{ParsedManifest, OCI_MANIFEST};
    use crate::names::TagName;
    use uuid::Uuid;

    const FRESH: Fresh = Fresh {
        org_id: Uuid::from_u128(1),
        repo_id: Uuid::from_u128(2),
        account_id: Uuid::from_u128(3),
        user_id: Uuid::from_u128(4),
    };

    fn repo(s: &str) -> RepoPath {
        RepoPath::parse(s).unwrap()
    }

    fn dg(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn tag(s: &str) -> TagName {
        TagName::parse(s).unwrap()
    }

    struct Given(Registry);

    fn given(events: impl IntoIterator<Item = Event>) -> Given {
        let mut state = Registry::default();
        for e in events {
            state.evolve(&e);
        }
        Given(state)
    }

    impl Given {
        fn when(&self, cmd: Command) -> Result<Vec<Event>, DomainError> {
            decide(&self.0, &cmd, FRESH)
        }
    }

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

    fn push(path: &str, t: &str, d: Digest, blobs: Vec<Digest>) -> Command {
        Command::PushManifest {
            repo: repo(path),
            tag: Some(tag(t)),
            digest: d,
            size: 10,
            manifest: manifest(blobs),
        }
    }

    #[test]
    fn first_upload_creates_org_and_repository() {
        let events = given([])
            .when(Command::LinkUploadedBlob {
                repo: repo("acme/web"),
                digest: dg('a'),
                size: 5,
            })
            .unwrap();
        let mut expected = created("acme/web").to_vec();
        expected.push(uploaded("acme/web", dg('a'), 5));
        assert_eq!(events, expected);
    }

    #[test]
    fn relinking_a_linked_blob_changes_nothing() {
        let mut history = created("acme/web").to_vec();
        history.push(uploaded("acme/web", dg('a'), 5));
        let events = given(history)
            .when(Command::LinkUploadedBlob {
                repo: repo("acme/web"),
                digest: dg('a'),
                size: 5,
            })
            .unwrap();
        assert!(events.is_empty());
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
        let mut history = created("acme/web").to_vec();
        history.push(uploaded("acme/web", dg('a'), 5));
        let events = given(history)
            .when(push("acme/web", "v1", dg('d'), vec![dg('a')]))
            .unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(
            &events[0],
            Event::ManifestPushed {
                content_size: 5,
                ..
            }
        ));
        assert!(matches!(
            &events[1],
            Event::TagPointed {
                size: 15,
                previous: None,
                ..
            }
        ));
    }

    #[test]
    fn retag_records_previous_and_same_tag_is_a_no_op() {
        let mut history = created("acme/web").to_vec();
        history.push(uploaded("acme/web", dg('a'), 5));
        let g = given(history.clone());
        let first = g
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
        let mut history = created("acme/web").to_vec();
        history.push(uploaded("acme/web", dg('a'), 5));
        let g = given(history.clone());
        history.extend(
            g.when(push("acme/web", "v1", dg('d'), vec![dg('a')]))
                .unwrap(),
        );
        history.extend(
            given(history.clone())
                .when(push("acme/web", "v2", dg('d'), vec![dg('a')]))
                .unwrap(),
        );
        let events = given(history)
            .when(Command::DeleteManifest {
                repo: repo("acme/web"),
                digest: dg('d'),
            })
            .unwrap();
        let kinds: Vec<_> = events.iter().map(Event::kind).collect();
        assert_eq!(kinds, ["TagDeleted", "TagDeleted", "ManifestDeleted"]);
    }

    #[test]
    fn deletes_in_unknown_places_are_refused() {
        let g = given(created("acme/web"));
        assert_eq!(
            g.when(Command::DeleteTag {
                repo: repo("acme/web"),
                tag: tag("nope")
            }),
            Err(DomainError::ManifestUnknown("nope".into()))
        );
        assert_eq!(
            g.when(Command::DeleteBlob {
                repo: repo("acme/web"),
                digest: dg('f')
            }),
            Err(DomainError::BlobUnknown(dg('f')))
        );
        assert_eq!(
            g.when(Command::DeleteTag {
                repo: repo("acme/other"),
                tag: tag("v1")
            }),
            Err(DomainError::RepositoryUnknown(repo("acme/other")))
        );
    }

    #[test]
    fn mount_needs_the_blob_in_the_source() {
        let mut history = created("acme/web").to_vec();
        history.push(uploaded("acme/web", dg('a'), 7));
        let g = given(history);
        let events = g
            .when(Command::MountBlob {
                repo: repo("acme/api"),
                digest: dg('a'),
                from: repo("acme/web"),
            })
            .unwrap();
        assert!(matches!(
            events.as_slice(),
            [
                Event::RepositoryCreated { .. },
                Event::BlobMounted { size: 7, .. }
            ]
        ));
        assert_eq!(
            g.when(Command::MountBlob {
                repo: repo("acme/api"),
                digest: dg('b'),
                from: repo("acme/web")
            }),
            Err(DomainError::BlobUnknown(dg('b')))
        );
    }

    fn hash(s: &str) -> crate::PasswordHash {
        crate::PasswordHash::new(format!("$argon2id$test${s}"))
    }

    fn account(s: &str) -> crate::AccountName {
        crate::AccountName::parse(s).unwrap()
    }

    fn user(s: &str) -> crate::UserName {
        crate::UserName::parse(s).unwrap()
    }

    #[test]
    fn an_account_is_created_with_its_admin() {
        let events = given([])
            .when(Command::CreateAccount {
                account: account("acme"),
                admin_user: user("root"),
                admin_password: hash("a"),
            })
            .unwrap();
        assert_eq!(
            events,
            vec![
                Event::AccountCreated {
                    account_id: FRESH.account_id,
                    account: account("acme")
                },
                Event::UserCreated {
                    user_id: FRESH.user_id,
                    account_id: FRESH.account_id,
                    account: account("acme"),
                    user: user("root"),
                    admin: true,
                    password: hash("a"),
                },
            ]
        );
        let again = given(events).when(Command::CreateAccount {
            account: account("acme"),
            admin_user: user("other"),
            admin_password: hash("b"),
        });
        assert_eq!(again, Err(DomainError::AccountExists(account("acme"))));
    }

    #[test]
    fn users_are_unique_inside_an_existing_account() {
        let create = |name: &str| Command::CreateUser {
            account: account("acme"),
            user: user(name),
            admin: false,
            password: hash("p"),
        };
        assert_eq!(
            given([]).when(create("bob")),
            Err(DomainError::AccountUnknown(account("acme")))
        );
        let history = [
            Event::AccountCreated {
                account_id: FRESH.account_id,
                account: account("acme"),
            },
            Event::UserCreated {
                user_id: Uuid::from_u128(9),
                account_id: FRESH.account_id,
                account: account("acme"),
                user: user("root"),
                admin: true,
                password: hash("a"),
            },
        ];
        let g = given(history);
        assert!(matches!(
            g.when(create("bob")).unwrap().as_slice(),
            [Event::UserCreated { admin: false, .. }]
        ));
        assert_eq!(
            g.when(create("root")),
            Err(DomainError::UserExists {
                account: account("acme"),
                user: user("root")
            })
        );
    }
}
