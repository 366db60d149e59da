//! The upload area over a real directory.

use super::*;
use crate::blobs::{BlobStore, LocalBlobs};
use berth_domain::Algorithm;
use sha2::{Digest as _, Sha256};

fn body(bytes: &[u8]) -> Chunks {
    let chunks: Vec<Result<Bytes, BoxError>> = bytes
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

/// A body of several batches, over two appends, hashes as the bytes do
/// in one go; a wrong digest is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_many_batches_over_two_appends_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = Arc::new(LocalBlobs::open(tmp.path().join("blobs")).unwrap());
    let uploads = LocalUploads::open(
        tmp.path().join("uploads"),
        blobs.clone(),
        u64::MAX,
        Duration::from_secs(60),
    )
    .unwrap();
    let bytes: Vec<u8> = (0..(5u32 << 20))
        .map(|i| (i * 7 + i / 4099) as u8)
        .collect();
    let digest = Digest::from_bytes(Algorithm::Sha256, &Sha256::digest(&bytes)).unwrap();
    let repo = RepoPath::parse("acme/web").unwrap();
    let id = uploads.create(&repo).await.unwrap();
    let mut session = uploads.acquire(id, &repo).await.unwrap();
    let (first, rest) = bytes.split_at(3 << 20);
    for part in [first, rest] {
        uploads
            .append(&mut session, body(part), None)
            .await
            .unwrap();
    }
    let wrong = Digest::from_bytes(Algorithm::Sha256, &Sha256::digest(b"x")).unwrap();
    let other = uploads.create(&repo).await.unwrap();
    let mut second = uploads.acquire(other, &repo).await.unwrap();
    uploads
        .append(&mut second, body(&bytes), None)
        .await
        .unwrap();
    assert!(matches!(
        uploads.complete(second, &wrong).await,
        Err(StoreError::DigestMismatch { .. })
    ));
    assert_eq!(uploads.complete(session, &digest).await.unwrap(), 5 << 20);
    assert_eq!(blobs.stat(&digest).unwrap(), Some(5 << 20));
}
