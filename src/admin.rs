//! The admin socket: `<data>/admin.sock`, a Unix socket only the data
//! directory's owner may open (mode 0600), through which a maintenance
//! command reaches the server that holds the database open. One JSON line
//! in, one JSON line out. `berth backup` uses it to take its snapshot
//! inside the running server, and `berth gc` to collect through the
//! server's writer; with no server, each opens the data directory itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use berth_api::collector::collect;
use berth_api::AppState;
use berth_domain::Actor;
use berth_store::gc::Report;
use berth_store::RequestMeta;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::backup::{self, Manifest};
use crate::error::CliError;

/// What a command asks the server.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Take a backup into this new directory.
    Backup {
        /// The target directory.
        to: PathBuf,
    },
    /// Run garbage collection, with the server's policy.
    Gc {
        /// Only list what would go.
        dry_run: bool,
    },
}

/// What the server answers.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The backup was taken.
    Backup(Manifest),
    /// Garbage collection ran.
    Gc(Report),
    /// It could not be done, and why.
    Failed(String),
}

fn socket(data: &Path) -> PathBuf {
    data.join("admin.sock")
}

/// Listens on the data directory's admin socket until the task is aborted.
pub fn serve(data: &Path, app: AppState) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let path = socket(data);
    // A socket file left by a crash: nothing listens on it any more.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let data = data.to_owned();
    Ok(tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "admin socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (data, app) = (data.clone(), app.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if tokio::io::BufReader::new(read)
                    .read_line(&mut line)
                    .await
                    .is_err()
                {
                    return;
                }
                let reply = match serde_json::from_str::<Request>(&line) {
                    Ok(Request::Backup { to }) => {
                        tracing::info!(to = %to.display(), "backup requested on the admin socket");
                        let log = app.log.clone();
                        let taken =
                            tokio::task::spawn_blocking(move || backup::backup(&log, &data, &to))
                                .await;
                        match taken {
                            Ok(Ok(manifest)) => Reply::Backup(manifest),
                            Ok(Err(e)) => Reply::Failed(e.to_string()),
                            Err(e) => Reply::Failed(e.to_string()),
                        }
                    }
                    Ok(Request::Gc { dry_run }) => {
                        tracing::info!(dry_run, "garbage collection requested on the admin socket");
                        match collect(&app, dry_run, system_meta()).await {
                            Ok(report) => Reply::Gc(report),
                            Err(e) => Reply::Failed(e.to_string()),
                        }
                    }
                    Err(e) => Reply::Failed(format!("not a request: {e}")),
                };
                let mut text = serde_json::to_string(&reply).unwrap_or_default();
                text.push('\n');
                let _ = write.write_all(text.as_bytes()).await;
            });
        }
    }))
}

/// The server acting for the operator at its console: the admin socket
/// is open only to the data directory's owner.
pub fn system_meta() -> RequestMeta {
    RequestMeta {
        actor: Actor::system(),
        request_id: Uuid::new_v4(),
    }
}

/// Asks the server running on `data` when one listens there, or does the
/// work offline; `pick` takes the answer out of the server's reply.
pub fn online_or_offline<T>(
    data: &Path,
    request: &Request,
    pick: impl FnOnce(Reply) -> Option<T>,
    offline: impl FnOnce() -> Result<T, CliError>,
) -> Result<T, CliError> {
    match ask(data, request) {
        None => offline(),
        Some(Err(e)) => Err(e),
        Some(Ok(Reply::Failed(reason))) => Err(CliError::Server(std::io::Error::other(format!(
            "the running server could not do it: {reason}"
        )))),
        Some(Ok(reply)) => pick(reply).ok_or_else(|| {
            CliError::Server(std::io::Error::other("the server answered another request"))
        }),
    }
}

/// Asks the server running on `data`; `None` when no server listens there.
fn ask(data: &Path, request: &Request) -> Option<Result<Reply, CliError>> {
    let mut stream = UnixStream::connect(socket(data)).ok()?;
    let mut exchange = || -> std::io::Result<Reply> {
        let mut text = serde_json::to_string(request).map_err(std::io::Error::other)?;
        text.push('\n');
        stream.write_all(text.as_bytes())?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        serde_json::from_str(&line).map_err(std::io::Error::other)
    };
    Some(exchange().map_err(CliError::Server))
}
