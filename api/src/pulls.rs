//! Pull counting. Manifest pulls are frequent and each would be an event
//! in the hash-chained log; instead they are counted in memory and written
//! every interval as one `PullsCounted` event per repository. A crash loses
//! at most one interval's counts; nothing else depends on them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use berth_domain::{Actor, Command, RepoCommand, RepoPath};
use berth_store::RequestMeta;
use uuid::Uuid;

use crate::state::AppState;

/// Pulls counted since the last flush, by repository.
#[derive(Default)]
pub struct PullCounter {
    counts: Mutex<HashMap<RepoPath, u64>>,
}

impl PullCounter {
    /// Counts one manifest pull.
    pub fn count(&self, repo: &RepoPath) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(repo.clone()).or_default() += 1;
    }

    fn take(&self) -> HashMap<RepoPath, u64> {
        std::mem::take(
            &mut *self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Writes the counts gathered so far, one event per repository.
pub async fn flush(app: &AppState) {
    for (repo, pulls) in app.pulls.take() {
        let meta = RequestMeta {
            actor: Actor::system(),
            request_id: Uuid::new_v4(),
        };
        let command = Command::Repo(RepoCommand::CountPulls { repo, pulls });
        if let Err(e) = app.engine.submit(command, meta).await {
            tracing::warn!(error = %e, "pull counts not recorded");
        }
    }
}

/// Flushes the counts every `every` until the process ends.
pub fn spawn_flusher(app: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            flush(&app).await;
        }
    })
}
