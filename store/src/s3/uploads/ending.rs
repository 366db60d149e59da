//! How an upload's session and chunks go: ended with a row that says so,
//! retired off the request path once the blob is in place, and swept when
//! a crash left objects without a session.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path as Key;
use object_store::ObjectStore;
use uuid::Uuid;

use super::SharedUploads;
use crate::error::StoreError;
use crate::s3::failed;
use crate::uploads::Session;

impl SharedUploads {
    /// Ends a session (its row says so from now on, see
    /// [`PgSessions::end`]), then removes its chunk objects off the request
    /// path: the client's answer does not wait for them, and what a crash
    /// leaves behind is removed by [`SharedUploads::sweep`].
    pub(super) async fn forget(&self, session: &Session) -> Result<(), StoreError> {
        let id = session.id;
        self.sessions.end(id, &session.repo.to_string()).await?;
        tokio::spawn(delete_chunks(
            self.s3.store.clone(),
            id,
            self.chunks(session).unwrap_or_default(),
        ));
        Ok(())
    }

    /// [`SharedUploads::forget`] for a session whose blob is in place: its
    /// row, if it was ever written, ends off the request path too. A row
    /// left open by a crash or a failure is removed as idle.
    pub(super) fn retire(&self, session: &Session) {
        if !session.durable {
            return;
        }
        let (id, chunks) = (session.id, self.chunks(session).unwrap_or_default());
        let (sessions, store) = (self.sessions.clone(), self.s3.store.clone());
        tokio::spawn(async move {
            match sessions.retire(id).await {
                Ok(()) => delete_chunks(store, id, chunks).await,
                Err(e) => {
                    tracing::warn!(upload = %id, error = %e, "a finished upload's session stays until it is idle");
                }
            }
        });
    }

    /// Removes upload objects older than `max_idle` whose session is gone:
    /// chunks of sessions removed as idle, and what a crash left between a
    /// session's removal and its chunks'.
    pub(super) async fn sweep(&self, max_idle: Duration) -> Result<usize, StoreError> {
        let sessions = self.sessions.clone();
        let live = tokio::task::spawn_blocking(move || sessions.ids()).await??;
        let prefix = self.s3.key("uploads");
        let cutoff = chrono::Utc::now() - max_idle;
        let mut listing = self.s3.store.list(Some(&prefix));
        let mut removed = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| failed("listing upload objects", e))?;
            let parts: Vec<_> = meta.location.parts().collect();
            let session = parts
                .len()
                .checked_sub(2)
                .and_then(|at| parts.get(at))
                .and_then(|part| part.as_ref().parse::<Uuid>().ok());
            let leftover = session.is_none_or(|id| !live.contains(&id));
            if leftover && meta.last_modified < cutoff {
                self.s3
                    .store
                    .delete(&meta.location)
                    .await
                    .map_err(|e| failed("removing a left-over upload object", e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Deletes a finished session's chunk objects; one that stays is removed
/// by the next sweep.
pub(super) async fn delete_chunks(store: Arc<AmazonS3>, id: Uuid, chunks: Vec<Key>) {
    for key in chunks {
        if let Err(e) = store.delete(&key).await {
            tracing::warn!(upload = %id, error = %e, "a finished upload's chunk stays until the next sweep");
        }
    }
}
