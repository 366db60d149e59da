//! Rows removed or ended off the request path (a finished upload's
//! session, a released pin), gathered for a moment so that one statement
//! takes a run of them: under load, every push would otherwise end with
//! two statements of its own.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::conn::Pipe;
use crate::error::StoreError;

/// How long a removal waits for others to join it: a removed row outlives
/// its use by that much, which nothing reads as a difference.
const GATHER: Duration = Duration::from_millis(20);

type Waiting = (Uuid, oneshot::Sender<Result<(), StoreError>>);

/// Removals from one table by id, sent by a task of the runtime that asks
/// first.
pub(super) struct Removals {
    /// `DELETE … WHERE <id> = ANY($1)`, or an `UPDATE` of the same shape.
    sql: &'static str,
    pipe: Arc<Pipe>,
    queue: OnceLock<mpsc::UnboundedSender<Waiting>>,
}

impl Removals {
    pub(super) fn new(sql: &'static str, pipe: Arc<Pipe>) -> Self {
        Self {
            sql,
            pipe,
            queue: OnceLock::new(),
        }
    }

    /// Removes the row `id`, with whatever else is removed meanwhile.
    pub(super) async fn remove(&self, id: Uuid) -> Result<(), StoreError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(self.sql, self.pipe.clone(), rx));
            tx
        });
        let (done, outcome) = oneshot::channel();
        queue.send((id, done)).map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(sql: &'static str, pipe: Arc<Pipe>, mut rx: mpsc::UnboundedReceiver<Waiting>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut run = vec![first];
        while let Ok(more) = rx.try_recv() {
            run.push(more);
        }
        let ids: Vec<Uuid> = run.iter().map(|(id, _)| *id).collect();
        let outcome = pipe
            .with(|c| {
                let ids = &ids;
                async move { c.execute(sql, &[ids]).await }
            })
            .await;
        for (_, done) in run {
            let _ = done.send(outcome.as_ref().map(drop).map_err(StoreError::told_again));
        }
    }
}
