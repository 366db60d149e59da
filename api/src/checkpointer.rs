//! Signed checkpoints written into the log on a schedule, so the log
//! carries its own trail of signed heads beside the ones auditors fetch.

use std::time::Duration;

use berth_domain::{Actor, Command};
use berth_store::RequestMeta;
use uuid::Uuid;

use crate::state::{AppState, Singleton};

/// Signs the head and records it every `every`, skipping a tick when
/// nothing but the previous checkpoint was appended since.
pub fn spawn(app: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let mut last_recorded = None;
        // One node of a cluster records checkpoints on schedule.
        let mut checkpoints = Singleton::new("checkpoint");
        loop {
            tick.tick().await;
            if !checkpoints.mine(&app).await {
                continue;
            }
            let head = match app.read(|p| p.log.head()).await {
                Ok(head) => head,
                Err(e) => {
                    tracing::warn!(error = %e, "no checkpoint: the head cannot be read");
                    continue;
                }
            };
            if head.seq == 0 || Some(head.seq) == last_recorded {
                continue;
            }
            let signed = app.checkpoints.sign(head, chrono::Utc::now());
            let command = Command::RecordCheckpoint {
                seq: signed.seq,
                hash: signed.hash,
                time: signed.time,
                signature: signed.signature,
            };
            let meta = RequestMeta {
                actor: Actor::system(),
                request_id: Uuid::new_v4(),
            };
            match app.engine.submit(command, meta).await {
                Ok(recorded) => last_recorded = recorded.last().map(|r| r.seq),
                Err(e) => tracing::warn!(error = %e, "checkpoint not recorded"),
            }
        }
    })
}
