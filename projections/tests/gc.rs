//! Garbage collection against the real writer, read models, blob tree and
//! upload area, one test per interleaving the protocol names
//! (docs/operations.md): a push step ordered before the mark, between the
//! mark and the sweep, or after the sweep. Each asserts what a client
//! would see: the blob's bytes still there, or the push refused.

// Test code: an unwrap that fails is a test that fails, with its line.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use berth_domain::manifest::{ParsedManifest, OCI_MANIFEST};
use berth_domain::{
    Actor, Algorithm, Command, Digest, DomainError, Event, RepoCommand, RepoPath, TagName,
};
use berth_projections::ReadModels;
use berth_store::gc::{self, Collector, Pins, Policy, Report};
use berth_store::{
    BlobStore, Content, Engine, EventLog, LocalBlobs, LocalUploads, RequestMeta, StoreError,
    UploadStore,
};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

fn meta() -> RequestMeta {
    RequestMeta {
        actor: Actor::system(),
        request_id: Uuid::new_v4(),
    }
}

fn repo(path: &str) -> RepoPath {
    RepoPath::parse(path).unwrap()
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::from_bytes(Algorithm::Sha256, &Sha256::digest(bytes)).unwrap()
}

/// A registry's storage without HTTP: what the handlers drive.
struct World {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    engine: Engine,
    log: EventLog,
    blobs: Arc<LocalBlobs>,
    uploads: Arc<LocalUploads>,
    pins: Arc<Pins>,
    gc: Collector,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    let log = EventLog::open(&root.join("db")).unwrap();
    let models = Arc::new(ReadModels::open(&log).unwrap());
    let (engine, _writer) =
        berth_store::start(log.clone(), models.clone(), models.clone()).unwrap();
    let blobs = Arc::new(LocalBlobs::open(root.join("blobs")).unwrap());
    let uploads = Arc::new(
        LocalUploads::open(
            root.join("uploads"),
            blobs.clone(),
            u64::MAX,
            Duration::from_secs(3600),
        )
        .unwrap(),
    );
    let pins = Arc::new(Pins::default());
    let gc = Collector::new(
        gc::Parts {
            blobs: blobs.clone(),
            uploads: uploads.clone(),
            log: log.clone(),
            references: models,
            engine: engine.clone(),
            pins: pins.clone(),
        },
        Policy {
            grace: Duration::ZERO,
            upload_max_idle: Duration::ZERO,
        },
    );
    World {
        _tmp: tmp,
        root,
        engine,
        log,
        blobs,
        uploads,
        pins,
        gc,
    }
}

impl World {
    /// Moves bytes into the blob tree, as a finished upload does.
    fn store(&self, bytes: &[u8]) -> Digest {
        let digest = digest_of(bytes);
        let file = self.root.join(format!("incoming-{}", Uuid::new_v4()));
        std::fs::write(&file, bytes).unwrap();
        self.blobs.ingest(&file, &digest).unwrap();
        digest
    }

    fn present(&self, digest: &Digest) -> bool {
        self.blobs.stat(digest).unwrap().is_some()
    }

    async fn submit(&self, command: RepoCommand) -> Result<Vec<Event>, StoreError> {
        let recorded = self.engine.submit(Command::Repo(command), meta()).await?;
        Ok(recorded.into_iter().map(|r| r.event).collect())
    }

    async fn link(&self, path: &str, digest: &Digest) -> Result<Vec<Event>, StoreError> {
        self.submit(RepoCommand::LinkUploadedBlob {
            by: None,
            repo: repo(path),
            digest: digest.clone(),
            size: 1,
        })
        .await
    }

    async fn unlink(&self, path: &str, digest: &Digest) {
        self.submit(RepoCommand::DeleteBlob {
            repo: repo(path),
            digest: digest.clone(),
        })
        .await
        .unwrap();
    }

    /// Pushes a manifest naming `blobs`, its bytes stored with its events.
    async fn push(&self, path: &str, blobs: &[Digest]) -> Result<Digest, StoreError> {
        let names: Vec<String> = blobs.iter().map(Digest::to_string).collect();
        let bytes = format!("{{\"layers\":{names:?}}}");
        let digest = digest_of(bytes.as_bytes());
        let command = Command::Repo(RepoCommand::PushManifest {
            by: None,
            repo: repo(path),
            tag: Some(TagName::parse("v1").unwrap()),
            digest: digest.clone(),
            size: bytes.len() as u64,
            manifest: ParsedManifest {
                media_type: OCI_MANIFEST.into(),
                blobs: blobs.to_vec(),
                manifests: vec![],
                subject: None,
                artifact_type: None,
                annotations: Default::default(),
            },
        });
        let content = Content::logged([(digest.clone(), Bytes::from(bytes))]);
        self.engine.submit_with(command, content, meta()).await?;
        Ok(digest)
    }

    async fn collect(&self) -> Report {
        self.gc.run(false, meta()).await.unwrap()
    }
}

fn ids(items: &[gc::Item]) -> Vec<String> {
    items.iter().map(|i| i.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_goes_and_a_linked_blob_stays_with_the_run_recorded() {
    let w = world();
    let kept = w.store(b"linked layer");
    w.link("acme/web", &kept).await.unwrap();
    let orphan = w.store(b"never linked (a refused push)");
    let report = w.collect().await;
    assert_eq!(ids(&report.blobs), [orphan.to_string()]);
    assert_eq!(report.bytes, 29);
    assert!(!w.present(&orphan));
    assert!(w.present(&kept));
    let recorded = w.log.get(report.events[0]).unwrap().unwrap();
    assert!(matches!(
        &recorded.event,
        Event::GarbageCollected { blobs, bytes: 29, .. } if blobs == &[(orphan, 29)]
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_and_removes_and_records_nothing() {
    let w = world();
    let orphan = w.store(b"orphan");
    let head = w.log.head().unwrap();
    let report = w.gc.run(true, meta()).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(ids(&report.blobs), [orphan.to_string()]);
    assert!(report.events.is_empty());
    assert!(w.present(&orphan));
    assert_eq!(w.log.head().unwrap(), head);
}

/// An upload pins its digest before its bytes move in, and keeps the pin
/// until its link is decided: a sweep in between leaves the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_pinned_before_the_sweep_keeps_its_bytes() {
    let w = world();
    let digest = digest_of(b"layer in flight");
    let pin = w.pins.pin(&digest).await.unwrap();
    w.store(b"layer in flight");
    let report = w.collect().await;
    assert!(report.blobs.is_empty());
    assert_eq!(
        report.events.len(),
        1,
        "a run that removed nothing is recorded"
    );
    w.link("acme/web", &digest).await.unwrap();
    drop(pin);
    assert!(w.collect().await.blobs.is_empty());
    assert!(w.present(&digest));
}

/// The sweep removed an orphan of the same digest first: the upload that
/// pins afterwards finds no file and moves its own in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_after_the_sweep_moves_its_own_bytes_in() {
    let w = world();
    let digest = w.store(b"same bytes");
    assert_eq!(ids(&w.collect().await.blobs), [digest.to_string()]);
    assert!(!w.present(&digest));
    let pin = w.pins.pin(&digest).await.unwrap();
    w.store(b"same bytes");
    w.link("acme/web", &digest).await.unwrap();
    drop(pin);
    w.collect().await;
    assert!(w.present(&digest));
}

/// Marked as unreferenced, then linked (an upload of bytes already present,
/// or a mount) before the sweep: the sweep checks again on the writer and
/// keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_between_mark_and_sweep_keeps_the_blob() {
    let w = world();
    let digest = w.store(b"shared base layer");
    w.link("acme/base", &digest).await.unwrap();
    w.unlink("acme/base", &digest).await;
    let candidates = w.gc.mark(false).await.unwrap();
    w.link("acme/app", &digest).await.unwrap();
    let report = w.gc.sweep(candidates, meta()).await.unwrap();
    assert!(report.blobs.is_empty(), "{report:?}");
    assert!(w.present(&digest));
}

/// A mount names a source that no longer links the blob, whether the
/// sweep has run yet or not: the mount is refused (the client uploads
/// instead), never acknowledged over missing bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_from_a_source_that_let_go_is_refused_before_and_after_the_sweep() {
    let w = world();
    let digest = w.store(b"layer");
    w.link("acme/base", &digest).await.unwrap();
    w.unlink("acme/base", &digest).await;
    let mount = || RepoCommand::MountBlob {
        by: None,
        repo: repo("acme/app"),
        digest: digest.clone(),
        from: repo("acme/base"),
    };
    let candidates = w.gc.mark(false).await.unwrap();
    let before = w.submit(mount()).await.unwrap_err();
    assert!(matches!(
        before,
        StoreError::Rejected(DomainError::BlobUnknown(_))
    ));
    w.gc.sweep(candidates, meta()).await.unwrap();
    assert!(!w.present(&digest));
    let after = w.submit(mount()).await.unwrap_err();
    assert!(matches!(
        after,
        StoreError::Rejected(DomainError::BlobUnknown(_))
    ));
}

/// The shape of distribution#4939: a manifest pushed while GC runs names a
/// blob the mark found unreferenced. Here the manifest needs the blob
/// linked in its repository at the moment the writer decides it, so either
/// the blob is linked (and the sweep keeps it) or the manifest is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_naming_a_marked_blob_is_refused_or_keeps_it() {
    let w = world();
    let digest = w.store(b"config");
    w.link("acme/web", &digest).await.unwrap();
    w.unlink("acme/web", &digest).await;
    let candidates = w.gc.mark(false).await.unwrap();
    let refused = w
        .push("acme/web", std::slice::from_ref(&digest))
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        StoreError::Rejected(DomainError::ManifestBlobUnknown(_))
    ));
    w.gc.sweep(candidates, meta()).await.unwrap();
    assert!(!w.present(&digest));

    // The client's retry uploads the blob again, and the push then holds.
    let again = w.store(b"config");
    w.link("acme/web", &again).await.unwrap();
    let candidates = w.gc.mark(false).await.unwrap();
    let manifest = w
        .push("acme/web", std::slice::from_ref(&again))
        .await
        .unwrap();
    w.gc.sweep(candidates, meta()).await.unwrap();
    assert!(w.present(&again));
    assert!(w.log.content(&manifest).unwrap().is_some());
}

/// A manifest deleted, then pushed again between mark and sweep: its
/// stored bytes stay. Deleted and left alone: they go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_pushed_again_between_mark_and_sweep_keeps_its_bytes() {
    let w = world();
    let layer = w.store(b"layer");
    w.link("acme/web", &layer).await.unwrap();
    let manifest = w
        .push("acme/web", std::slice::from_ref(&layer))
        .await
        .unwrap();
    let delete = || RepoCommand::DeleteManifest {
        repo: repo("acme/web"),
        digest: manifest.clone(),
    };
    w.submit(delete()).await.unwrap();
    let candidates = w.gc.mark(false).await.unwrap();
    w.push("acme/web", std::slice::from_ref(&layer))
        .await
        .unwrap();
    let report = w.gc.sweep(candidates, meta()).await.unwrap();
    assert!(report.manifests.is_empty());
    assert!(w.log.content(&manifest).unwrap().is_some());

    w.submit(delete()).await.unwrap();
    let report = w.collect().await;
    assert_eq!(ids(&report.manifests), [manifest.to_string()]);
    assert!(w.log.content(&manifest).unwrap().is_none());
    assert!(w.present(&layer), "the layer is still linked");
}

/// An abandoned session goes; one in a request stays whatever its age,
/// and a request that was waiting for a session that went finds it unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_session_in_a_request_is_not_abandoned() {
    let w = world();
    let path = repo("acme/web");
    let busy = w.uploads.create(&path).await.unwrap();
    let idle = w.uploads.create(&path).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let held = w.uploads.acquire(busy, &path).await.unwrap();
    let report = w.collect().await;
    assert_eq!(ids(&report.uploads), [idle.to_string()]);
    assert!(matches!(
        w.uploads.acquire(idle, &path).await,
        Err(StoreError::UploadUnknown)
    ));
    drop(held);
    let report = w.collect().await;
    assert_eq!(ids(&report.uploads), [busy.to_string()]);
    assert_eq!(w.uploads.open_sessions().unwrap(), 0);
}
