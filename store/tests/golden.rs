//! Old events must decode forever. Every event variant has a stored value
//! (hash ‖ envelope) under `fixtures/events/v<schema>/`, written once when
//! the variant was introduced and never rewritten; this test decodes each and
//! checks it is exactly the event it was. `BERTH_BLESS=1` writes only files
//! that do not exist yet (a new variant), never an existing one.

// Test code: an unwrap that fails is a test that fails, with its line.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_domain::{
    AccountName, Actor, Category, CredentialKind, Deadline, Description, Digest, Event, Level,
    LoginFailure, OrgName, PasswordHash, Pushed, RepoPath, ShareEnd, ShareNote, Surface, TagName,
    UserName,
};
use berth_store::envelope::{encode_payload, open, seal, Envelope, Keyed, GENESIS, SCHEMA_VERSION};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

fn digest(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn account() -> AccountName {
    AccountName::parse("acme-corp").unwrap()
}

fn alice() -> UserName {
    UserName::parse("alice").unwrap()
}

fn repo() -> RepoPath {
    RepoPath::parse("acme/web").unwrap()
}

const ORG: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
const ACCOUNT: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
const USER: Uuid = Uuid::from_u128(0x9999_aaaa_bbbb_cccc_dddd_eeee_ffff_0000);
const REPO: Uuid = Uuid::from_u128(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210);

/// Each variant's position. The match is exhaustive, so a new variant does
/// not compile until it is numbered here; the test then fails until it has a
/// sample and golden bytes.
fn variant(e: &Event) -> usize {
    match e {
        Event::OrgCreated { .. } => 0,
        Event::RepositoryCreated { .. } => 1,
        Event::BlobUploaded { .. } => 2,
        Event::BlobMounted { .. } => 3,
        Event::ManifestPushed { .. } => 4,
        Event::TagPointed { .. } => 5,
        Event::TagDeleted { .. } => 6,
        Event::ManifestDeleted { .. } => 7,
        Event::BlobDeleted { .. } => 8,
        Event::AccountCreated { .. } => 9,
        Event::UserCreated { .. } => 10,
        Event::NamespaceCreated { .. } => 11,
        Event::RepositoryVisibilityChanged { .. } => 12,
        Event::OrgAccessGranted { .. } => 13,
        Event::AccessKeyCreated { .. } => 14,
        Event::AccessKeyEnabledChanged { .. } => 15,
        Event::AccessKeyDeleted { .. } => 16,
        Event::TemporaryLoginIssued { .. } => 17,
        Event::AccessDenied { .. } => 18,
        Event::UserPasswordChanged { .. } => 19,
        Event::UserDisabled { .. } => 20,
        Event::UserEnabled { .. } => 21,
        Event::RepoAccessGranted { .. } => 22,
        Event::RepositoryAttributesChanged { .. } => 23,
        Event::RepositoryDeleted { .. } => 24,
        Event::OrgAccessRevoked { .. } => 25,
        Event::RepoAccessRevoked { .. } => 26,
        Event::OrganizationDeleted { .. } => 27,
        Event::ShareGranted { .. } => 28,
        Event::ShareChanged { .. } => 29,
        Event::ShareEnded { .. } => 30,
        Event::PullsCounted { .. } => 31,
        Event::CheckpointRecorded { .. } => 32,
        Event::LoginFailed { .. } => 33,
        Event::PushRejected { .. } => 34,
        Event::FailuresCounted { .. } => 35,
        Event::LoggedIn { .. } => 36,
        Event::GarbageCollected { .. } => 37,
    }
}
const VARIANTS: usize = 38;

/// How many variants (the first ones) existed when each schema was
/// current: an older schema's files exist for those only.
fn variants_in(schema: u16) -> usize {
    match schema {
        1 => 32,
        2 => 38,
        _ => VARIANTS,
    }
}

/// One sample of every variant.
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
        Event::AccountCreated {
            account_id: ACCOUNT,
            account: AccountName::parse("acme-corp").unwrap(),
        },
        Event::UserCreated {
            user_id: USER,
            account_id: ACCOUNT,
            account: AccountName::parse("acme-corp").unwrap(),
            user: UserName::parse("alice").unwrap(),
            admin: true,
            password: PasswordHash::new(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            ),
        },
        Event::NamespaceCreated {
            org_id: ORG,
            org: OrgName::parse("acme").unwrap(),
            account_id: ACCOUNT,
            account: account(),
            user: alice(),
            auto: false,
        },
        Event::RepositoryVisibilityChanged {
            repo_id: REPO,
            repo: repo(),
            public: true,
        },
        Event::OrgAccessGranted {
            org_id: ORG,
            org: OrgName::parse("acme").unwrap(),
            account: account(),
            user: alice(),
            level: Level::Edit,
        },
        Event::AccessKeyCreated {
            user_id: USER,
            account: account(),
            user: alice(),
            ak: "AKEXAMPLE00000000001".into(),
            verifier: "ab".repeat(32),
        },
        Event::AccessKeyEnabledChanged {
            user_id: USER,
            account: account(),
            user: alice(),
            ak: "AKEXAMPLE00000000001".into(),
            enabled: false,
        },
        Event::AccessKeyDeleted {
            user_id: USER,
            account: account(),
            user: alice(),
            ak: "AKEXAMPLE00000000001".into(),
        },
        Event::TemporaryLoginIssued {
            user_id: USER,
            account: account(),
            user: alice(),
            login_id: "texample".into(),
            verifier: "cd".repeat(32),
            expires_at: Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap(),
        },
        Event::AccessDenied {
            user_id: USER,
            account: account(),
            user: alice(),
            action: "push".into(),
            resource: "other/web".into(),
        },
        Event::UserPasswordChanged {
            user_id: USER,
            account: account(),
            user: alice(),
            password: PasswordHash::new(
                "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdHM$bmV3aGFzaG5ld2hhc2g".into(),
            ),
        },
        Event::UserDisabled {
            user_id: USER,
            account: account(),
            user: alice(),
        },
        Event::UserEnabled {
            user_id: USER,
            account: account(),
            user: alice(),
        },
        Event::RepoAccessGranted {
            repo_id: REPO,
            repo: repo(),
            account: account(),
            user: alice(),
            level: Level::Read,
        },
        Event::RepositoryAttributesChanged {
            repo_id: REPO,
            repo: repo(),
            category: Category::Database,
            description: Description::parse("PostgreSQL 15 with 镜像 notes").unwrap(),
        },
        Event::RepositoryDeleted {
            repo_id: REPO,
            repo: repo(),
        },
        Event::OrgAccessRevoked {
            org_id: ORG,
            org: OrgName::parse("acme").unwrap(),
            account: account(),
            user: alice(),
        },
        Event::RepoAccessRevoked {
            repo_id: REPO,
            repo: repo(),
            account: account(),
            user: alice(),
        },
        Event::OrganizationDeleted {
            org_id: ORG,
            org: OrgName::parse("acme").unwrap(),
            owner: Some(account()),
        },
        Event::ShareGranted {
            repo_id: REPO,
            repo: repo(),
            owner: account(),
            with: AccountName::parse("partner").unwrap(),
            deadline: Deadline::parse("2027-06-30").unwrap(),
            description: ShareNote::parse("for the integration tests").unwrap(),
        },
        Event::ShareChanged {
            repo_id: REPO,
            repo: repo(),
            with: AccountName::parse("partner").unwrap(),
            deadline: Deadline::Forever,
            description: ShareNote::parse("kept").unwrap(),
        },
        Event::ShareEnded {
            repo_id: REPO,
            repo: repo(),
            with: AccountName::parse("partner").unwrap(),
            reason: ShareEnd::MadePublic,
        },
        Event::PullsCounted {
            repo_id: REPO,
            repo: repo(),
            pulls: 1234,
        },
        Event::CheckpointRecorded {
            seq: 1_000_000,
            hash: "ab".repeat(32),
            time: "2026-11-29T12:00:00.000000Z".into(),
            signature: "cd".repeat(64),
        },
        Event::LoginFailed {
            user_id: USER,
            account: account(),
            user: alice(),
            surface: Surface::TokenService,
            reason: LoginFailure::KeyDisabled,
        },
        Event::PushRejected {
            user_id: USER,
            account: account(),
            user: alice(),
            repo: repo(),
            object: Pushed::Manifest,
            reference: "v1".into(),
            code: "MANIFEST_BLOB_UNKNOWN".into(),
            message: format!("manifest references {}", digest('e')),
        },
        Event::FailuresCounted {
            client_addr: "192.0.2.7".into(),
            window_start: Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap(),
            window_seconds: 60,
            count: 42,
            reasons: BTreeMap::from([("unknown-user".into(), 40), ("token-invalid".into(), 2)]),
            names: vec!["local@AKNOPE".into(), "ghost/admin".into()],
        },
        Event::LoggedIn {
            user_id: USER,
            account: account(),
            user: alice(),
            surface: Surface::Manage,
        },
        Event::GarbageCollected {
            run: Uuid::from_u128(0x6763_0000_0000_4000_8000_0000_0000_0001),
            blobs: vec![(digest('1'), 2_048), (digest('2'), 31)],
            manifests: vec![(digest('3'), 529)],
            uploads: 1,
            bytes: 2_048 + 31 + 529 + 4_096,
        },
    ];
    all
}

/// The envelope each golden file holds: schema 1 had no credential id or
/// user agent in the actor, and schemas before 3 no request key, so they
/// read back as `None`.
fn envelope(event: &Event, schema: u16) -> Envelope {
    let later = |v: &str| (schema >= 2).then(|| v.to_owned());
    Envelope {
        schema,
        event_type: event.kind().to_owned(),
        stream: event.stream_id(),
        stream_version: 7,
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
        actor: Actor {
            account: Some("acme-corp".into()),
            user: Some("alice".into()),
            credential: CredentialKind::AccessKey,
            client_addr: Some("192.0.2.10".into()),
            credential_id: later("BERTHEXAMPLEKEY00001"),
            user_agent: later("docker/28.2.2 go/go1.24.3"),
        },
        request_id: Uuid::from_u128(42),
        prev_hash: GENESIS,
        payload: encode_payload(event).unwrap(),
        keyed: (schema >= 3).then(|| Keyed {
            key: "0b4f6c1e-8d2a-4c7b-9e1f-3a5d7c9b2e40".into(),
            fingerprint: [7; 32],
            answer: br#"{"status":201,"body":{"namespace":"acme"}}"#.to_vec(),
        }),
    }
}

fn golden_dir(schema: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/events")
        .join(format!("v{schema}"))
}

#[test]
fn every_variant_has_a_sample() {
    let covered: Vec<usize> = samples().iter().map(variant).collect();
    assert_eq!(covered, (0..VARIANTS).collect::<Vec<_>>());
    let kinds: Vec<&str> = samples().iter().map(Event::kind).collect();
    assert_eq!(kinds, Event::KINDS, "the list of event types is complete");
}

/// Every schema's files decode, older ones upcast to the current shape.
/// Only the current schema's missing files are ever written.
#[test]
fn every_golden_event_decodes_to_what_it_was() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    for schema in 1..=SCHEMA_VERSION {
        check_schema(schema, bless && schema == SCHEMA_VERSION);
    }
}

fn check_schema(schema: u16, bless: bool) {
    std::fs::create_dir_all(golden_dir(schema)).unwrap();
    for event in samples().into_iter().take(variants_in(schema)) {
        let path = golden_dir(schema).join(format!("{}.bin", event.kind()));
        if bless && !path.exists() {
            let (value, _) = seal(1, &envelope(&event, schema)).unwrap();
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
        assert_eq!(
            recorded.envelope,
            envelope(&event, schema),
            "{}",
            path.display()
        );
    }
}
