//! The running SHA-256 of an upload's body, computed on the node that
//! receives the bytes: inline while the body is small, on a blocking
//! thread once it is not.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::PARTS_IN_FLIGHT;
use crate::error::StoreError;
use crate::resumable::Resumable;

/// Bytes hashed on the request's own task before a blocking thread takes
/// over: starting a thread costs more than hashing a small blob.
const INLINE_HASH: usize = 64 << 10;

/// The running SHA-256 of a body: on the request's task while the body is
/// small, then on a blocking thread, where hashing does not hold up the
/// async workers.
pub(super) struct Hashing {
    state: Option<Resumable>,
    inline: usize,
    thread: Option<(mpsc::Sender<Bytes>, JoinHandle<Option<Resumable>>)>,
}

impl Hashing {
    pub(super) fn new(state: Option<Resumable>) -> Self {
        Self {
            state,
            inline: 0,
            thread: None,
        }
    }

    pub(super) async fn feed(&mut self, chunk: &Bytes) -> Result<(), StoreError> {
        if self.thread.is_none() && self.inline + chunk.len() <= INLINE_HASH {
            self.inline += chunk.len();
            if let Some(h) = self.state.as_mut() {
                h.update(chunk);
            }
            return Ok(());
        }
        let (tx, _) = self.thread.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::channel::<Bytes>(PARTS_IN_FLIGHT);
            let mut running = self.state.take();
            let thread = tokio::task::spawn_blocking(move || {
                while let Some(chunk) = rx.blocking_recv() {
                    if let Some(h) = running.as_mut() {
                        h.update(&chunk);
                    }
                }
                running
            });
            (tx, thread)
        });
        tx.send(chunk.clone())
            .await
            .map_err(|_| StoreError::Task("the hashing thread stopped".into()))
    }

    /// The state after every byte fed.
    pub(super) async fn finish(self) -> Result<Option<Resumable>, StoreError> {
        match self.thread {
            None => Ok(self.state),
            Some((tx, thread)) => {
                drop(tx);
                Ok(thread.await?)
            }
        }
    }
}
