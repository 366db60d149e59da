//! Given / when / then for the repository aggregate.

use super::*;
use crate::command::Command;
use crate::error::DomainError;
use crate::event::ShareEnd;
use crate::loaded::Loaded;
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

#[test]
fn what_a_manifest_references_stays_until_the_manifest_goes() {
    let mut history = with_blob("acme/web", dg('a'), 5);
    history.push(uploaded("acme/web", dg('b'), 7));
    let pushed = given(history.clone())
        .when(push("acme/web", "v1", dg('d'), vec![dg('a')]))
        .unwrap();
    history.extend(pushed);
    let mut index = manifest(vec![]);
    index.manifests = vec![dg('d')];
    let indexed = given(history.clone())
        .when(cmd(RepoCommand::PushManifest {
            by: None,
            repo: repo("acme/web"),
            tag: Some(tag("multi")),
            digest: dg('e'),
            size: 10,
            manifest: index,
        }))
        .unwrap();
    history.extend(indexed);
    let g = given(history.clone());
    let delete_blob = |d| {
        cmd(RepoCommand::DeleteBlob {
            repo: repo("acme/web"),
            digest: d,
        })
    };
    assert_eq!(
        g.when(delete_blob(dg('a'))).unwrap_err(),
        DomainError::StillReferenced {
            target: dg('a'),
            by: dg('d'),
        }
    );
    assert_eq!(
        g.when(cmd(RepoCommand::DeleteManifest {
            repo: repo("acme/web"),
            digest: dg('d'),
        }))
        .unwrap_err(),
        DomainError::StillReferenced {
            target: dg('d'),
            by: dg('e'),
        }
    );
    assert!(
        matches!(
            g.when(delete_blob(dg('b'))).unwrap().as_slice(),
            [Event::BlobDeleted { .. }]
        ),
        "an unreferenced blob goes"
    );
    // With the index gone, then the manifest, the blob may go too.
    for digest in [dg('e'), dg('d')] {
        let gone = given(history.clone())
            .when(cmd(RepoCommand::DeleteManifest {
                repo: repo("acme/web"),
                digest,
            }))
            .unwrap();
        history.extend(gone);
    }
    assert!(given(history).when(delete_blob(dg('a'))).is_ok());
}
