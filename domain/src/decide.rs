//! Decisions: a command and the current state in, events or a refusal out.
//! Pure: the time and new ids come in [`Fresh`], never from the environment.

use crate::command::{Command, Fresh, Owner};
use crate::error::DomainError;
use crate::event::Event;
use crate::limits::MAX_ACCESS_KEYS;
use crate::names::RepoPath;
use crate::names::{AccountName, OrgName, UserName};
use crate::policy::DENIED_MESSAGE;
use crate::state::UserState;
use crate::state::{Registry, RepoState};

/// Decides which events follow from `cmd` in `state`.
pub fn decide(state: &Registry, cmd: &Command, fresh: Fresh) -> Result<Vec<Event>, DomainError> {
    let mut events = Vec::new();
    match cmd {
        Command::LinkUploadedBlob {
            by,
            repo,
            digest,
            size,
        } => {
            let repo_id = ensure_repo(state, repo, by.as_ref(), fresh, &mut events)?;
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
        Command::MountBlob {
            by,
            repo,
            digest,
            from,
        } => {
            let size = existing(state, from)
                .and_then(|r| r.blobs.get(digest))
                .copied()
                .ok_or_else(|| DomainError::BlobUnknown(digest.clone()))?;
            let repo_id = ensure_repo(state, repo, by.as_ref(), fresh, &mut events)?;
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
            by,
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
            let repo_id = ensure_repo(state, repo, by.as_ref(), fresh, &mut events)?;
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
        Command::CreateNamespace { org, by } => {
            if state.orgs.contains_key(org) {
                return Err(DomainError::OrgExists(org.clone()));
            }
            create_org(state, org, by, false, fresh, &mut events)?;
        }
        Command::SetVisibility { repo, public } => {
            let current = required(state, repo)?;
            if current.public != *public {
                events.push(Event::RepositoryVisibilityChanged {
                    repo_id: current.id,
                    repo: repo.clone(),
                    public: *public,
                });
            }
        }
        Command::GrantOrgAccess {
            org,
            account,
            user,
            level,
        } => {
            let current = state
                .orgs
                .get(org)
                .ok_or_else(|| DomainError::OrgUnknown(org.clone()))?;
            user_state(state, account, user)?;
            if current.owner.as_ref() != Some(account) {
                return Err(DomainError::Denied(format!(
                    "only users of the account owning {org} can be granted access to it"
                )));
            }
            events.push(Event::OrgAccessGranted {
                org_id: current.id,
                org: org.clone(),
                account: account.clone(),
                user: user.clone(),
                level: *level,
            });
        }
        Command::GrantRepoAccess {
            repo,
            account,
            user,
            level,
        } => {
            let current = required(state, repo)?;
            user_state(state, account, user)?;
            let owner = state.orgs.get(repo.org()).and_then(|o| o.owner.as_ref());
            if owner != Some(account) {
                return Err(DomainError::Denied(format!(
                    "only users of the account owning {} can be granted access to it",
                    repo.org()
                )));
            }
            events.push(Event::RepoAccessGranted {
                repo_id: current.id,
                repo: repo.clone(),
                account: account.clone(),
                user: user.clone(),
                level: *level,
            });
        }
        Command::CreateAccessKey {
            account,
            user,
            ak,
            verifier,
        } => {
            let u = user_state(state, account, user)?;
            if u.keys.len() >= MAX_ACCESS_KEYS {
                return Err(DomainError::Denied(format!(
                    "a user holds at most {MAX_ACCESS_KEYS} access keys; delete one first"
                )));
            }
            events.push(Event::AccessKeyCreated {
                user_id: u.id,
                account: account.clone(),
                user: user.clone(),
                ak: ak.clone(),
                verifier: verifier.clone(),
            });
        }
        Command::SetAccessKeyEnabled {
            account,
            user,
            ak,
            enabled,
        } => {
            let u = user_state(state, account, user)?;
            let current = u
                .keys
                .get(ak)
                .ok_or_else(|| DomainError::AccessKeyUnknown(ak.clone()))?;
            if current != enabled {
                events.push(Event::AccessKeyEnabledChanged {
                    user_id: u.id,
                    account: account.clone(),
                    user: user.clone(),
                    ak: ak.clone(),
                    enabled: *enabled,
                });
            }
        }
        Command::DeleteAccessKey { account, user, ak } => {
            let u = user_state(state, account, user)?;
            if !u.keys.contains_key(ak) {
                return Err(DomainError::AccessKeyUnknown(ak.clone()));
            }
            events.push(Event::AccessKeyDeleted {
                user_id: u.id,
                account: account.clone(),
                user: user.clone(),
                ak: ak.clone(),
            });
        }
        Command::IssueTemporaryLogin {
            account,
            user,
            login_id,
            verifier,
            expires_at,
        } => {
            let u = user_state(state, account, user)?;
            events.push(Event::TemporaryLoginIssued {
                user_id: u.id,
                account: account.clone(),
                user: user.clone(),
                login_id: login_id.clone(),
                verifier: verifier.clone(),
                expires_at: *expires_at,
            });
        }
        Command::RecordDenial {
            account,
            user,
            action,
            resource,
        } => {
            let u = user_state(state, account, user)?;
            events.push(Event::AccessDenied {
                user_id: u.id,
                account: account.clone(),
                user: user.clone(),
                action: action.clone(),
                resource: resource.clone(),
            });
        }
        Command::ChangePassword {
            account,
            user,
            password,
        } => {
            let u = user_state(state, account, user)?;
            events.push(Event::UserPasswordChanged {
                user_id: u.id,
                account: account.clone(),
                user: user.clone(),
                password: password.clone(),
            });
        }
        Command::SetUserEnabled {
            account,
            user,
            enabled,
        } => {
            let u = user_state(state, account, user)?;
            let (account, user) = (account.clone(), user.clone());
            match (u.disabled, enabled) {
                (false, false) => events.push(Event::UserDisabled {
                    user_id: u.id,
                    account,
                    user,
                }),
                (true, true) => events.push(Event::UserEnabled {
                    user_id: u.id,
                    account,
                    user,
                }),
                _ => {}
            }
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

fn user_state<'a>(
    state: &'a Registry,
    account: &AccountName,
    user: &UserName,
) -> Result<&'a UserState, DomainError> {
    state
        .accounts
        .get(account)
        .and_then(|a| a.users.get(user))
        .ok_or_else(|| DomainError::UserUnknown {
            account: account.clone(),
            user: user.clone(),
        })
}

/// Creates an organization owned by `by`'s account, within its quota.
fn create_org(
    state: &Registry,
    org: &OrgName,
    by: &Owner,
    auto: bool,
    fresh: Fresh,
    events: &mut Vec<Event>,
) -> Result<(), DomainError> {
    let account = state
        .accounts
        .get(&by.account)
        .ok_or_else(|| DomainError::AccountUnknown(by.account.clone()))?;
    if account.orgs >= by.org_quota {
        return Err(DomainError::Denied(DENIED_MESSAGE.into()));
    }
    events.push(Event::NamespaceCreated {
        org_id: fresh.org_id,
        org: org.clone(),
        account_id: account.id,
        account: by.account.clone(),
        user: by.user.clone(),
        auto,
    });
    Ok(())
}

/// Returns the repository's id, creating the organization and the
/// repository first when they do not exist yet (first push creates both).
/// With a known pusher the organization belongs to their account, within its
/// quota. A command with no pusher (issued by the system itself; every client
/// push is authenticated first) creates an unowned one, the shape organizations
/// had before accounts existed.
fn ensure_repo(
    state: &Registry,
    repo: &RepoPath,
    by: Option<&Owner>,
    fresh: Fresh,
    events: &mut Vec<Event>,
) -> Result<uuid::Uuid, DomainError> {
    if let Some(r) = existing(state, repo) {
        return Ok(r.id);
    }
    let org_id = match (state.orgs.get(repo.org()), by) {
        (Some(org), _) => org.id,
        (None, Some(owner)) => {
            create_org(state, repo.org(), owner, true, fresh, events)?;
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
            by: None,
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
                by: None,
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
                by: None,
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
                by: None,
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
                by: None,
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

    fn owner(quota: usize) -> Owner {
        Owner {
            account: account("acme"),
            user: user("root"),
            org_quota: quota,
        }
    }

    fn acme() -> [Event; 2] {
        [
            Event::AccountCreated {
                account_id: FRESH.account_id,
                account: account("acme"),
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
    }

    fn link_by(path: &str, by: Owner) -> Command {
        Command::LinkUploadedBlob {
            by: Some(by),
            repo: repo(path),
            digest: dg('a'),
            size: 1,
        }
    }

    #[test]
    fn a_push_creates_an_owned_organization_within_the_quota() {
        let g = given(acme());
        let events = g.when(link_by("team/web", owner(1))).unwrap();
        assert!(matches!(
            &events[0],
            Event::NamespaceCreated { auto: true, account, user, .. } if account.as_str() == "acme" && user.as_str() == "root"
        ));
        let mut history = acme().to_vec();
        history.extend(events);
        let full = given(history);
        assert_eq!(
            full.when(link_by("second/web", owner(1))),
            Err(DomainError::Denied(DENIED_MESSAGE.into())),
            "beyond the quota"
        );
        assert!(
            full.when(link_by("team/api", owner(1))).is_ok(),
            "an existing org needs no quota"
        );
        assert_eq!(
            full.when(Command::CreateNamespace {
                org: repo("team/x").org().clone(),
                by: owner(5)
            }),
            Err(DomainError::OrgExists(repo("team/x").org().clone()))
        );
    }

    #[test]
    fn access_keys_are_limited_and_toggle() {
        let mut history = acme().to_vec();
        let create = |ak: &str| Command::CreateAccessKey {
            account: account("acme"),
            user: user("root"),
            ak: ak.into(),
            verifier: "v".into(),
        };
        for ak in ["AK1", "AK2"] {
            let e = given(history.clone()).when(create(ak)).unwrap();
            history.extend(e);
        }
        let g = given(history);
        assert!(matches!(g.when(create("AK3")), Err(DomainError::Denied(_))));
        let disable = Command::SetAccessKeyEnabled {
            account: account("acme"),
            user: user("root"),
            ak: "AK1".into(),
            enabled: false,
        };
        assert!(matches!(
            g.when(disable).unwrap().as_slice(),
            [Event::AccessKeyEnabledChanged { enabled: false, .. }]
        ));
        let delete = Command::DeleteAccessKey {
            account: account("acme"),
            user: user("root"),
            ak: "AK9".into(),
        };
        assert_eq!(
            g.when(delete),
            Err(DomainError::AccessKeyUnknown("AK9".into()))
        );
    }

    #[test]
    fn visibility_changes_only_when_it_differs() {
        let g = given(created("acme/web"));
        let public = |p| Command::SetVisibility {
            repo: repo("acme/web"),
            public: p,
        };
        assert!(g.when(public(false)).unwrap().is_empty());
        assert!(matches!(
            g.when(public(true)).unwrap().as_slice(),
            [Event::RepositoryVisibilityChanged { public: true, .. }]
        ));
    }
}
