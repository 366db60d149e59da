//! Old events must decode forever. Every event variant has a stored value
//! (hash ‖ envelope) under `fixtures/events/v<schema>/`, written once when
//! the variant was introduced and never rewritten; this test decodes each and
//! checks it is exactly the event it was. `BERTH_BLESS=1` writes only files
//! that do not exist yet (a new variant), never an existing one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_domain::{Actor, CredentialKind, Digest, Event, OrgName, RepoPath, TagName};
use berth_store::envelope::{encode_payload, open, seal, Envelope, GENESIS, SCHEMA_VERSION};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

fn digest(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn repo() -> RepoPath {
    RepoPath::parse("acme/web").unwrap()
}

const ORG: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
const REPO: Uuid = Uuid::from_u128(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210);

/// One sample of every variant. The match makes adding a variant without a
/// golden sample a compile error.
fn samples() -> Vec<Event> {
    let all = vec![
        Event::OrgCreated {
            org_id: ORG,
            org: OrgName::parse("acme").unwrap(),
            auto: true,
        },
        Event::RepositoryCreated {
            repo_id: REPO,
            org_id: ORG,
            repo: repo(),
        },
        Event::BlobUploaded {
            repo_id: REPO,
            repo: repo(),
            digest: digest('a'),
            size: 1234,
        },
        Event::BlobMounted {
            repo_id: REPO,
            repo: repo(),
            digest: digest('b'),
            size: 99,
            from: RepoPath::parse("other/src").unwrap(),
        },
        Event::ManifestPushed {
            repo_id: REPO,
            repo: repo(),
            digest: digest('c'),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 500,
            content_size: 1333,
            blobs: vec![digest('a'), digest('b')],
            manifests: vec![],
            subject: Some(digest('d')),
            artifact_type: Some("application/spdx+json".into()),
            annotations: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
        },
        Event::TagPointed {
            repo_id: REPO,
            repo: repo(),
            tag: TagName::parse("v1.0").unwrap(),
            digest: digest('c'),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1833,
            previous: Some(digest('e')),
        },
        Event::TagDeleted {
            repo_id: REPO,
            repo: repo(),
            tag: TagName::parse("v1.0").unwrap(),
            digest: digest('c'),
        },
        Event::ManifestDeleted {
            repo_id: REPO,
            repo: repo(),
            digest: digest('c'),
            subject: Some(digest('d')),
        },
        Event::BlobDeleted {
            repo_id: REPO,
            repo: repo(),
            digest: digest('a'),
        },
    ];
    for e in &all {
        match e {
            Event::OrgCreated { .. }
            | Event::RepositoryCreated { .. }
            | Event::BlobUploaded { .. }
            | Event::BlobMounted { .. }
            | Event::ManifestPushed { .. }
            | Event::TagPointed { .. }
            | Event::TagDeleted { .. }
            | Event::ManifestDeleted { .. }
            | Event::BlobDeleted { .. } => {}
        }
    }
    all
}

fn envelope(event: &Event) -> Envelope {
    Envelope {
        schema: SCHEMA_VERSION,
        event_type: event.kind().to_owned(),
        stream: event.stream_id(),
        stream_version: 7,
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
        actor: Actor {
            account: Some("acme-corp".into()),
            user: Some("alice".into()),
            credential: CredentialKind::AccessKey,
            client_addr: Some("192.0.2.10".into()),
        },
        request_id: Uuid::from_u128(42),
        prev_hash: GENESIS,
        payload: encode_payload(event).unwrap(),
    }
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/events")
        .join(format!("v{SCHEMA_VERSION}"))
}

#[test]
fn every_golden_event_decodes_to_what_it_was() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    for event in samples() {
        let path = golden_dir().join(format!("{}.bin", event.kind()));
        if bless && !path.exists() {
            let (value, _) = seal(1, &envelope(&event)).unwrap();
            std::fs::write(&path, value).unwrap();
        }
        let stored = std::fs::read(&path).unwrap_or_else(|_| {
            panic!(
                "no golden bytes at {}: a new variant needs BERTH_BLESS=1 once",
                path.display()
            )
        });
        let (recorded, _) = open(1, &stored).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(recorded.event, event, "{}", path.display());
        assert_eq!(recorded.envelope, envelope(&event), "{}", path.display());
    }
}
