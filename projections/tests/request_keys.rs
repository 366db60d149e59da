//! `Idempotency-Key`s through the real writer and read models: a keyed
//! command is decided once however often and however concurrently it is
//! sent, a key sent with another request is refused, and the first answer
//! comes back from the log after a reopen.

// Test code: an unwrap that fails is a test that fails, with its line.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use berth_domain::{Actor, Command, CredentialKind, Digest, RepoCommand, RepoPath};
use berth_projections::ReadModels;
use berth_store::{Content, Engine, EventLog, Keyed, Outcome, RequestMeta, StoreError};
use uuid::Uuid;

fn caller(user: &str) -> RequestMeta {
    RequestMeta {
        actor: Actor {
            account: Some("acme-corp".into()),
            user: Some(user.into()),
            credential: CredentialKind::Password,
            client_addr: None,
            credential_id: None,
            user_agent: None,
        },
        request_id: Uuid::new_v4(),
    }
}

fn keyed(key: &str, fingerprint: u8) -> Keyed {
    Keyed {
        key: key.into(),
        fingerprint: [fingerprint; 32],
        answer: format!("answer {fingerprint}").into_bytes(),
    }
}

fn link(i: u64) -> Command {
    Command::Repo(RepoCommand::LinkUploadedBlob {
        by: None,
        repo: RepoPath::parse("acme/web").unwrap(),
        digest: Digest::parse(&format!("sha256:{i:064x}")).unwrap(),
        size: i,
    })
}

fn open(dir: &std::path::Path) -> (Engine, std::thread::JoinHandle<()>, EventLog) {
    let log = EventLog::open(dir).unwrap();
    let models = Arc::new(ReadModels::open(&log).unwrap());
    let (engine, writer) = berth_store::start(log.clone(), models.clone(), models).unwrap();
    (engine, writer, log)
}

async fn send(engine: &Engine, command: Command, user: &str, keyed: Keyed) -> Outcome {
    engine
        .submit_keyed(command, Content::new(), caller(user), keyed)
        .await
        .unwrap()
}

/// The events that carry a key, by sequence number.
fn keyed_events(log: &EventLog) -> Vec<(u64, String)> {
    let mut found = Vec::new();
    log.scan(log.point_at(0).unwrap(), |r| {
        if let Some(k) = &r.envelope.keyed {
            found.push((r.seq, k.key.clone()));
        }
        Ok(std::ops::ControlFlow::Continue(()))
    })
    .unwrap();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_retries_are_decided_once_and_answered_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, writer, log) = open(tmp.path());
    // Each retry names a different blob: were any decided, it would add
    // an event; the key alone makes them the same request.
    let tasks: Vec<_> = (0..40u64)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { send(&engine, link(i), "alice", keyed("k-1", 1)).await })
        })
        .collect();
    let (mut recorded, mut replayed) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Outcome::Recorded(events) => {
                assert!(!events.is_empty());
                recorded += 1;
            }
            Outcome::Replayed(answer) => {
                assert_eq!(answer, b"answer 1");
                replayed += 1;
            }
        }
    }
    assert_eq!((recorded, replayed), (1, 39));
    // The org, the repository and one blob link: the key on the first.
    assert_eq!(log.head().unwrap().seq, 3);
    assert_eq!(keyed_events(&log), vec![(1, "k-1".to_owned())]);
    drop(engine);
    writer.join().unwrap();
}

#[tokio::test]
async fn a_key_is_one_callers_and_refused_for_another_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, writer, log) = open(tmp.path());
    assert!(matches!(
        send(&engine, link(1), "alice", keyed("k", 1)).await,
        Outcome::Recorded(_)
    ));
    let head = log.head().unwrap().seq;
    let other = engine
        .submit_keyed(link(2), Content::new(), caller("alice"), keyed("k", 2))
        .await;
    assert!(
        matches!(&other, Err(StoreError::KeyReused { key }) if key == "k"),
        "{other:?}"
    );
    assert_eq!(
        log.head().unwrap().seq,
        head,
        "a refused key writes nothing"
    );
    // Another user's same key is another key.
    assert!(matches!(
        send(&engine, link(2), "bob", keyed("k", 2)).await,
        Outcome::Recorded(_)
    ));
    drop((engine, log));
    writer.join().unwrap();

    let (engine, writer, _log) = open(tmp.path());
    match send(&engine, link(3), "alice", keyed("k", 1)).await {
        Outcome::Replayed(answer) => assert_eq!(answer, b"answer 1"),
        other => panic!("the reopened engine replays from the log, got {other:?}"),
    }
    drop(engine);
    writer.join().unwrap();
}

#[tokio::test]
async fn a_refused_keyed_command_is_decided_again_on_retry() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, writer, log) = open(tmp.path());
    let delete = || {
        Command::Repo(RepoCommand::DeleteBlob {
            repo: RepoPath::parse("acme/web").unwrap(),
            digest: Digest::parse(&format!("sha256:{:064x}", 7)).unwrap(),
        })
    };
    for _ in 0..2 {
        let refused = engine
            .submit_keyed(delete(), Content::new(), caller("alice"), keyed("d", 1))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Rejected(_))),
            "{refused:?}"
        );
    }
    send(&engine, link(7), "alice", keyed("l", 3)).await;
    assert!(matches!(
        send(&engine, delete(), "alice", keyed("d", 1)).await,
        Outcome::Recorded(events) if events.len() == 1
    ));
    assert_eq!(keyed_events(&log).len(), 2);
    drop(engine);
    writer.join().unwrap();
}
