//! `berth serve`: opens the data directory, verifies the log, starts the
//! writer and the HTTP server, and shuts down cleanly on SIGTERM or Ctrl-C
//! (in-flight requests finish, the writer drains its queue).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_api::{router, AppState, Parts};
use berth_projections::ReadModels;
use berth_store::{BlobStore, EventLog, StoreError, Uploads};

use crate::cli::{db_dir, ServeArgs};

/// Runs the registry until a shutdown signal.
pub fn serve(args: ServeArgs) -> Result<(), StoreError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-io")
        .build()?;
    let data = &args.data.data_dir;
    std::fs::create_dir_all(data)?;
    let log = EventLog::open(&db_dir(data))?;
    let models = ReadModels::open(&log)?;
    let (engine, writer) = berth_store::start(log.clone(), Arc::new(models.clone()))?;
    let blobs = BlobStore::open(data.join("blobs"))?;
    let uploads = Uploads::open(
        data.join("uploads"),
        blobs.clone(),
        args.max_blob_size,
        Duration::from_secs(args.upload_max_idle_hours * 3600),
    )?;
    let state = AppState::new(Parts {
        engine,
        log: log.clone(),
        models,
        blobs,
        uploads,
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %data.display(), "berth is serving");
        println!("berth listening on http://{addr}");
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        Ok::<_, StoreError>(())
    })?;
    drop(runtime);
    let _ = writer.join();
    log.flush()?;
    tracing::info!("berth stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
