//! Garbage collection as the service runs it: on a schedule
//! (`--gc-interval`) and on the operator's request, with every run counted
//! in the metrics. The protocol itself is `berth_store::gc`.

use std::time::Duration;

use berth_domain::Actor;
use berth_store::gc::Report;
use berth_store::{RequestMeta, StoreError};
use uuid::Uuid;

use crate::state::{AppState, Singleton};

/// Runs garbage collection once on behalf of `meta`'s actor.
pub async fn collect(
    app: &AppState,
    dry_run: bool,
    meta: RequestMeta,
) -> Result<Report, StoreError> {
    let report = app.gc.run(dry_run, meta).await?;
    if !dry_run {
        app.metrics.collected(report.bytes, report.seconds);
    }
    tracing::info!(
        run = %report.run,
        dry_run,
        blobs = report.blobs.len(),
        manifests = report.manifests.len(),
        uploads = report.uploads.len(),
        bytes = report.bytes,
        seconds = report.seconds,
        "garbage collection ran"
    );
    Ok(report)
}

/// Runs garbage collection every `every`, as the system.
pub fn spawn(app: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // One node of a cluster collects on schedule.
        let mut gc = Singleton::new("gc");
        loop {
            tick.tick().await;
            let meta = RequestMeta {
                actor: Actor::system(),
                request_id: Uuid::new_v4(),
            };
            if !gc.mine(&app).await {
                continue;
            }
            if let Err(e) = collect(&app, false, meta).await {
                tracing::warn!(error = %e, "scheduled garbage collection failed");
            }
        }
    })
}
