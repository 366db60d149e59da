//! Completing an upload from its chunks: the digest from the carried hash
//! state (or the chunks read back), then the blob object from a single
//! chunk's copy or the chunks joined.

use object_store::path::Path as Key;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest as _, Sha256, Sha512};

use berth_domain::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::StreamExt;

use super::SharedUploads;
use crate::error::StoreError;
use crate::s3::{failed, PART, PARTS_IN_FLIGHT};
use crate::uploads::{Session, SessionGuard};

impl SharedUploads {
    /// Finishes a session that was taken as new, unread, for a body that
    /// turned out not to be the whole blob: the client sent chunks before
    /// it, to the session's row, which is read (and pins the digest) now.
    /// Without one, the body was the whole upload, and the wrong one.
    pub(super) async fn finish_after_chunks(
        &self,
        unread: &Session,
        last: Bytes,
        digest: &Digest,
        actual: Digest,
    ) -> Result<u64, StoreError> {
        let (id, repo) = (unread.id, &unread.repo);
        let row = self
            .sessions
            .load_pinned(id, &repo.to_string(), digest)
            .await?
            .filter(|row| row.offset > 0);
        let Some(row) = row else {
            self.forget(unread).await?;
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        };
        let mut session = self.guard(id, repo, Some(row)).await?;
        let body = futures_util::stream::once(async move { Ok(last) }).boxed();
        self.append_body(&mut session, body, None, None).await?;
        self.complete_session(session, digest).await
    }

    /// The digest of the session's bytes: from the carried state for
    /// SHA-256, else by reading the chunks back.
    pub(super) async fn digest_of(
        &self,
        session: &mut Session,
        chunks: &[Key],
        alg: Algorithm,
    ) -> Result<Digest, StoreError> {
        if let (Algorithm::Sha256, Some(state)) = (alg, session.hasher.take()) {
            return Ok(Digest::from_bytes(alg, &state.finish())?);
        }
        let mut sha256 = Sha256::new();
        let mut sha512 = Sha512::new();
        for key in chunks {
            let mut stream = self
                .s3
                .store
                .get(key)
                .await
                .map_err(|e| failed("reading a chunk back", e))?
                .into_stream();
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(|e| failed("reading a chunk back", e))?;
                match alg {
                    Algorithm::Sha256 => sha256.update(&bytes),
                    Algorithm::Sha512 => sha512.update(&bytes),
                }
            }
        }
        let hash = match alg {
            Algorithm::Sha256 => sha256.finalize().to_vec(),
            Algorithm::Sha512 => sha512.finalize().to_vec(),
        };
        Ok(Digest::from_bytes(alg, &hash)?)
    }

    pub(super) async fn complete_session(
        &self,
        mut session: SessionGuard,
        expected: &Digest,
    ) -> Result<u64, StoreError> {
        let chunks = self.chunks(&session)?;
        let actual = self
            .digest_of(&mut session, &chunks, expected.algorithm())
            .await?;
        if &actual != expected {
            self.forget(&session).await?;
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        match chunks.as_slice() {
            [one] => self.s3.adopt(one, expected).await?,
            several => self.join(several, expected).await?,
        }
        self.retire(&session);
        Ok(session.offset)
    }

    /// Writes the blob object from several verified chunks, streamed
    /// through this node (an empty blob is an empty list).
    pub(super) async fn join(&self, chunks: &[Key], digest: &Digest) -> Result<(), StoreError> {
        let target = self.s3.blob_key(digest);
        if chunks.is_empty() {
            return self
                .s3
                .store
                .put(&target, object_store::PutPayload::default())
                .await
                .map(drop)
                .map_err(|e| failed("storing the blob", e));
        }
        let upload = self
            .s3
            .store
            .put_multipart(&target)
            .await
            .map_err(|e| failed("starting the blob upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        for key in chunks {
            let got = match self.s3.store.get(key).await {
                Ok(got) => got,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(failed("reading a chunk back", e));
                }
            };
            let mut stream = got.into_stream();
            while let Some(bytes) = stream.next().await {
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(failed("reading a chunk back", e));
                    }
                };
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| failed("storing the blob", e))?;
                writer.put(bytes);
            }
        }
        writer
            .finish()
            .await
            .map(drop)
            .map_err(|e| failed("storing the blob", e))
    }
}
