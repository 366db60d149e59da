//! The engine over a real fjall database and the real read models: many
//! concurrent commands all become durable in one contiguous chain, decisions
//! after a reopen see the state before it, and a rewritten event is named.

// Test code: an unwrap that fails is a test that fails, with its line.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use berth_domain::{Actor, Command, Digest, DomainError, RepoCommand, RepoPath};
use berth_projections::ReadModels;
use berth_store::{ChainPoint, Engine, EventLog, RequestMeta, StoreError};
use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use uuid::Uuid;

fn meta() -> RequestMeta {
    RequestMeta {
        actor: Actor::system(),
        request_id: Uuid::new_v4(),
    }
}

fn blob(i: u64) -> Digest {
    Digest::parse(&format!("sha256:{i:064x}")).unwrap()
}

fn open(dir: &std::path::Path) -> (Engine, std::thread::JoinHandle<()>, ReadModels) {
    let log = EventLog::open(dir).unwrap();
    let models = ReadModels::open(&log).unwrap();
    let shared = Arc::new(models.clone());
    let (engine, writer) = berth_store::start(log, shared.clone(), shared).unwrap();
    (engine, writer, models)
}

fn link(repo: &str, i: u64) -> Command {
    Command::Repo(RepoCommand::LinkUploadedBlob {
        by: None,
        repo: RepoPath::parse(repo).unwrap(),
        digest: blob(i),
        size: i,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_form_one_durable_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, writer, _) = open(tmp.path());
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .submit(link(&format!("org{}/repo", i % 4), i), meta())
                .await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap().unwrap().into_iter().map(|r| r.seq));
    }
    seqs.sort();
    // 4 organizations and 4 repositories created once, 200 blobs linked.
    assert_eq!(seqs, (1..=208).collect::<Vec<_>>());
    drop(engine);
    writer.join().unwrap();

    let (engine, writer, models) = open(tmp.path());
    let again = engine.submit(link("org1/repo", 1), meta()).await.unwrap();
    assert!(
        again.is_empty(),
        "the reopened engine knows blob 1 is linked"
    );
    let row = models
        .repos
        .get(&RepoPath::parse("org1/repo").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(models.blob_links.get(row.id, &blob(5)).unwrap(), Some(5));
    let refused = engine
        .submit(
            Command::Repo(RepoCommand::DeleteBlob {
                repo: RepoPath::parse("org1/repo").unwrap(),
                digest: blob(999),
            }),
            meta(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Rejected(DomainError::BlobUnknown(_)))
    ));
    drop((engine, models));
    writer.join().unwrap();
    let log = EventLog::open(tmp.path()).unwrap();
    assert_eq!(log.verify_from(ChainPoint::START).unwrap().seq, 208);
}

#[tokio::test]
async fn a_rewritten_event_is_named_even_with_valid_storage_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, writer, _) = open(tmp.path());
    for i in 0..5 {
        engine.submit(link("acme/web", i), meta()).await.unwrap();
    }
    drop(engine);
    writer.join().unwrap();

    // Rewrite event 4 through the database itself: storage checksums are
    // fresh, only the hash chain can tell.
    {
        let db = Database::builder(tmp.path()).open().unwrap();
        let events = db.keyspace("log", KeyspaceCreateOptions::default).unwrap();
        let mut value = events.get(4u64.to_be_bytes()).unwrap().unwrap().to_vec();
        let last = value.len() - 1;
        value[last] ^= 0x01;
        events.insert(4u64.to_be_bytes(), value).unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
    }
    let log = EventLog::open(tmp.path()).unwrap();
    match log.verify_from(ChainPoint::START) {
        Err(StoreError::Corrupt { seq, reason }) => {
            assert_eq!(seq, 4, "{reason}");
        }
        other => panic!("expected the rewrite to be found, got {other:?}"),
    }
    let models = ReadModels::open(&log).unwrap();
    let shared = Arc::new(models);
    let startup = berth_store::start(log, shared.clone(), shared);
    assert!(
        matches!(startup, Err(StoreError::Corrupt { seq: 4, .. })),
        "startup refuses a damaged log"
    );
}
