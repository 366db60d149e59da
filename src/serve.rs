//! `berth serve`: opens the data directory, verifies the log, starts the
//! writer and the HTTP server, and shuts down cleanly on SIGTERM or Ctrl-C
//! (in-flight requests finish, the writer drains its queue).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;
use berth_api::auth::limiter::LoginLimiter;
use berth_api::auth::passwords::hash_password_off_thread;
use berth_api::auth::token::SigningKey;
use berth_api::auth::Settings;
use berth_api::clock::Clock;
use berth_api::failures::{self, FailureCounter};
use berth_api::health::{self, Health, Probe, Status, WriterWatch};
use berth_api::metrics::{self, Metrics};
use berth_api::pulls::{self, PullCounter};
use berth_api::{checkpointer, collector};
use berth_api::{router, AppState, Parts};
use berth_domain::names::{OPERATOR_ACCOUNT, OPERATOR_USER};
use berth_domain::{AccountCommand, AccountName, Actor, Command, DomainError, UserName};
use berth_projections::ReadModels;
use berth_store::archive::Limits;
use berth_store::gc::{self, Collector, Pins, SharedPins};
use berth_store::imports::Imports;
use berth_store::lease::{self, Leases};
use berth_store::postgres::{spawn_tail, PgLog, PgSessions};
use berth_store::space::Space;
use berth_store::{CheckpointKey, EventLog, RequestMeta, SharedLog, StoreError};
use uuid::Uuid;

use crate::cli::{db_dir, ServeArgs};
use crate::cluster::{LogProbe, Opening, StoreProbe};
use crate::error::{AtPath, CliError};
use crate::tls::Tls;

/// Runs the registry until a shutdown signal.
pub fn serve(args: ServeArgs) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-io")
        .build()
        .map_err(CliError::Server)?;
    let health = Arc::new(Health::default());
    // The port is bound first: while the log is verified and the read
    // models catch up (minutes, after a layout change), it answers 503 with
    // the cause instead of refusing connections.
    let bound = std::net::TcpListener::bind(args.listen).map_err(|source| CliError::Listen {
        addr: args.listen,
        source,
    })?;
    bound.set_nonblocking(true).map_err(CliError::Server)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::load(cert.clone(), key.clone())?),
        (None, None) => None,
        _ => {
            return Err(CliError::Tls(
                "--tls-cert and --tls-key go together: give both, or neither for plain HTTP".into(),
            ))
        }
    };
    let (stop_starting, starting) = {
        let early = bound.try_clone().map_err(CliError::Server)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = health::starting_router(health.clone());
        let tls = tls.clone();
        let server = runtime.spawn(async move {
            serve_until(early, app, tls.as_ref(), async {
                let _ = stopped.await;
            })
            .await
        });
        (stop, server)
    };
    let data = &args.data.data_dir;
    std::fs::create_dir_all(data).at(data)?;
    health.set(Status::Starting(
        "verifying the event log and catching the read models up".into(),
    ));
    let db = db_dir(data);
    let log = EventLog::open_with_cache(&db, args.cache_mb.saturating_mul(1024 * 1024)).at(&db)?;
    let models = Arc::new(ReadModels::open(&log)?);
    let space = Space::new(data, args.min_free_space);
    log.guard_space(space.clone());
    health.watch_space(space.clone());
    let metrics = Arc::new(Metrics::default());
    let watch = Arc::new(WriterWatch {
        metrics: metrics.clone(),
        health: health.clone(),
    });
    let mut token_key = key_file(data, "secret.key")?;
    let mut checkpoint_seed = key_file(data, "checkpoint.key")?;
    let mut upload_key = None;
    let shared = match &args.shared.log_url {
        Some(url) => {
            health.set(Status::Starting(
                "connecting to the shared event log (PostgreSQL)".into(),
            ));
            let mut pg = PgLog::connect(url)?;
            // Every node signs and checks tokens, and signs checkpoints,
            // with the same keys: the first node to start stores its own.
            token_key = pg.shared_secret("secret.key", token_key)?;
            checkpoint_seed = pg.shared_secret("checkpoint.key", checkpoint_seed)?;
            upload_key = Some(pg.shared_secret("upload.key", fresh_key())?);
            Some(Box::new(pg) as Box<dyn SharedLog>)
        }
        None => None,
    };
    let (engine, writer) =
        berth_store::start_observed(log.clone(), models.clone(), models.clone(), watch, shared)?;
    let tail = match &args.shared.log_url {
        Some(url) => Some(spawn_tail(url.clone(), engine.downgrade()).map_err(CliError::Server)?),
        None => None,
    };
    let stores = args.blob_store.open(Opening {
        data,
        max_blob: args.max_blob_size,
        max_idle: Duration::from_secs(args.upload_max_idle_hours * 3600),
        space: space.clone(),
        cluster: args.shared.log_url.as_deref().zip(upload_key),
        runtime: runtime.handle().clone(),
    })?;
    let mut probes: Vec<Arc<dyn Probe>> = Vec::new();
    let (leases, shared_pins): (Arc<dyn Leases>, Option<Arc<dyn SharedPins>>) =
        match &args.shared.log_url {
            Some(url) => {
                let sessions = Arc::new(PgSessions::new(url)?);
                probes.push(Arc::new(LogProbe(sessions.clone())));
                (sessions.clone(), Some(sessions))
            }
            None => (Arc::new(lease::Alone), None),
        };
    if let Some(s3) = &stores.s3 {
        runtime.block_on(s3.check())?;
        probes.push(Arc::new(StoreProbe(s3.clone())));
    }
    health.watch_dependencies(probes);
    let (blobs, uploads) = (stores.blobs, stores.uploads);
    let pins = Arc::new(Pins::new(shared_pins));
    let gc = Arc::new(Collector::new(
        gc::Parts {
            blobs: blobs.clone(),
            uploads: uploads.clone(),
            log: log.clone(),
            references: models.clone(),
            engine: engine.clone(),
            pins: pins.clone(),
        },
        args.gc.grace.policy(args.upload_max_idle_hours),
    ));
    let import_dir = data.join("imports");
    let (imports, interrupted) = Imports::open(import_dir.clone()).at(&import_dir)?;
    berth_api::settle_uploads(&imports, &models, interrupted)?;
    let settings = Settings {
        region: args.region.clone(),
        external_url: args
            .external_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned()),
        anonymous_pull: args.anonymous_pull,
        org_quota: args.org_quota,
        token_ttl: Duration::from_secs(args.token_seconds),
        temporary_login_ttl: Duration::from_secs(args.temporary_login_seconds),
        clock: Clock::new(args.clock_offset_file.clone()),
        tls: tls.is_some(),
        blob_redirect: args.blob_store.redirect(),
        ..Settings::default()
    };
    let state = AppState::new(Parts {
        engine,
        log: log.clone(),
        models: ReadModels::clone(&models),
        blobs,
        uploads,
        pins,
        gc,
        imports: Arc::new(imports),
        archive_limits: Limits {
            max_bytes: args.upload_max_file_size,
            max_layer: args.max_blob_size,
        },
        settings,
        key: SigningKey(token_key),
        checkpoints: CheckpointKey::from_seed(checkpoint_seed),
        limiter: LoginLimiter::default(),
        pulls: PullCounter::default(),
        failures: FailureCounter::new(args.failure_window_seconds),
        leases,
        health: health.clone(),
        metrics,
        space,
    });
    let after = health.clone();
    runtime.block_on(async move {
        let signal = shutdown_signal().map_err(CliError::Server)?;
        let stopping = health.clone();
        let shutdown = async move {
            tokio::select! {
                () = signal => stopping.set(Status::Stopping),
                () = stopping.failure() => {
                    tracing::error!("the event log's storage failed: stopping, for the supervisor to restart the node");
                }
            }
        };
        // A node of a cluster serves only once it holds what the shared
        // log held when it started.
        state.engine.sync().await?;
        bootstrap_operator(&state).await?;
        let _ = stop_starting.send(());
        starting
            .await
            .map_err(|e| CliError::Server(std::io::Error::other(e)))?
            .map_err(CliError::Server)?;
        health.set(Status::Ready);
        let addr = bound.local_addr().map_err(CliError::Server)?;
        let reloader = match &tls {
            Some(t) => Some(t.spawn_reloader().map_err(CliError::Server)?),
            None => None,
        };
        tracing::info!(%addr, data_dir = %data.display(), "berth is serving");
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("berth listening on {scheme}://{addr}");
        let flusher = pulls::spawn_flusher(
            state.clone(),
            Duration::from_secs(args.pull_count_seconds.max(1)),
        );
        let failure_flusher = failures::spawn_flusher(state.clone());
        let checkpointer = (args.checkpoint_interval > 0).then(|| {
            checkpointer::spawn(state.clone(), Duration::from_secs(args.checkpoint_interval))
        });
        let blob_counter = metrics::spawn_blob_counter(state.clone(), Duration::from_secs(300));
        let collector = (args.gc.interval > 0)
            .then(|| collector::spawn(state.clone(), Duration::from_secs(args.gc.interval)));
        let admin_socket = crate::admin::serve(data, state.clone()).map_err(CliError::Server)?;
        let metrics_server = match args.metrics_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| CliError::Listen { addr, source })?;
                tracing::info!(%addr, "metrics served on their own listener");
                let app = metrics::router(state.clone());
                Some(tokio::spawn(
                    async move { axum::serve(listener, app).await },
                ))
            }
            None => None,
        };
        let app = router(state.clone(), berth_console::router(state.clone()));
        let app = match metrics_server {
            Some(_) => app,
            None => app.merge(metrics::router(state.clone())),
        };
        serve_until(bound, app, tls.as_ref(), shutdown)
            .await
            .map_err(CliError::Server)?;
        if let Some(r) = reloader {
            r.abort();
        }
        flusher.abort();
        failure_flusher.abort();
        blob_counter.abort();
        admin_socket.abort();
        let _ = std::fs::remove_file(data.join("admin.sock"));
        if let Some(m) = metrics_server {
            m.abort();
        }
        for task in [checkpointer, collector].into_iter().flatten() {
            task.abort();
        }
        pulls::flush(&state).await;
        failures::flush(&state, true).await;
        // A node of a cluster that stops cleanly leaves its mirror and read
        // models at the shared log's head.
        if let Err(e) = state.engine.sync().await {
            tracing::warn!(error = %e, "could not catch up from the shared log before stopping");
        }
        Ok::<_, CliError>(())
    })?;
    drop(runtime);
    let _ = writer.join();
    if let Some(tail) = tail {
        let _ = tail.join();
    }
    if let Status::Failed(cause) = after.status() {
        return Err(CliError::LogFailed(cause));
    }
    log.flush()?;
    tracing::info!("berth stopped");
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` completes, then lets
/// in-flight requests finish: over TLS when it is configured. Responses go
/// out as soon as they are written (`TCP_NODELAY`): without it, a small
/// response written in two parts waits on the client's delayed ACK
/// (Nagle), about 40 ms per request on a kept-alive connection.
async fn serve_until(
    listener: std::net::TcpListener,
    app: axum::Router,
    tls: Option<&Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!(error = %e, "could not set TCP_NODELAY");
                }
            });
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopping.graceful_shutdown(None);
            });
            let acceptor = RustlsAcceptor::new(tls.config.clone()).acceptor(NoDelayAcceptor::new());
            axum_server::from_tcp(listener)?
                .acceptor(acceptor)
                .handle(handle)
                .serve(service)
                .await
        }
    }
}

/// A 32-byte secret in `<data>/<name>`, created (mode 0600) from the
/// system's random source on first start: the token key (`secret.key`;
/// replacing it invalidates every token and session) and the checkpoint
/// signing seed (`checkpoint.key`; replacing it makes earlier checkpoints
/// unverifiable with the new public key).
fn key_file(data: &Path, name: &str) -> Result<[u8; 32], CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data.join(name);
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes.try_into().map_err(|_| CliError::BadKey(path));
    }
    let key = fresh_key();
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&key)?;
        f.sync_all()
    };
    write().at(&path)?;
    Ok(key)
}

/// 32 bytes from the system's random source (as v4 UUIDs take them).
fn fresh_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    key
}

/// Creates the platform operator (user `admin` of account `system`) the
/// first time a data directory is served, with `BERTH_ADMIN_PASSWORD` or a
/// random password printed once.
async fn bootstrap_operator(state: &AppState) -> Result<(), StoreError> {
    let account = AccountName::parse(OPERATOR_ACCOUNT)?;
    if state.models.accounts.get(&account)?.is_some() {
        return Ok(());
    }
    let given = std::env::var("BERTH_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let password = given
        .clone()
        .unwrap_or_else(|| format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()));
    let hash = hash_password_off_thread(password.clone()).await?;
    let command = Command::Account(AccountCommand::Create {
        account,
        admin_user: UserName::parse(OPERATOR_USER)?,
        admin_password: hash,
    });
    let meta = RequestMeta {
        actor: Actor::system(),
        request_id: Uuid::new_v4(),
    };
    match state.engine.submit(command, meta).await {
        Ok(_) => {}
        // Another node of the cluster created it first.
        Err(StoreError::Rejected(DomainError::AccountExists(_))) if state.engine.is_shared() => {
            return Ok(())
        }
        Err(e) => return Err(e),
    }
    if given.is_none() {
        eprintln!(
            "berth: created the platform operator: account {OPERATOR_ACCOUNT}, user {OPERATOR_USER}, \
             password {password} (shown once; set BERTH_ADMIN_PASSWORD to choose it)"
        );
    }
    tracing::info!("platform operator created");
    Ok(())
}

/// Registers SIGTERM and SIGINT (Ctrl-C) at once, before the server says
/// it is listening, so a signal that arrives early still shuts down cleanly.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    })
}
