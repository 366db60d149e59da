//! The flags of `berth serve` (and the garbage-collection flags `berth gc`
//! shares). Every one also reads an environment variable, so containers and
//! service units can configure it either way.

use std::net::SocketAddr;
use std::path::PathBuf;

use berth_domain::limits::{DEFAULT_MAX_BLOB_BYTES, DEFAULT_MAX_UPLOAD_FILE_BYTES};
use clap::Args;

use super::DataDir;
use crate::cluster::{BlobStoreArgs, SharedLogArg};

fn parse_reserve(text: &str) -> Result<berth_store::space::Reserve, String> {
    if text == "default" {
        return Ok(berth_store::space::Reserve::Default);
    }
    berth_store::space::Reserve::parse(text)
}

/// Garbage collection's schedule and grace period.
#[derive(Args)]
pub struct GcArgs {
    /// Seconds between garbage-collection runs while serving; 0 runs none
    /// (`berth gc` and `POST /v2/manage/gc` still do).
    #[arg(long = "gc-interval", env = "BERTH_GC_INTERVAL", default_value_t = 6 * 3600)]
    pub interval: u64,
    #[command(flatten)]
    pub grace: GraceArg,
}

/// How long garbage collection keeps an unreferenced blob file: `serve`
/// and an offline `berth gc` take the same flag.
#[derive(Args)]
pub struct GraceArg {
    /// Seconds an unreferenced blob file is kept before garbage collection
    /// may remove it: a margin on top of the protocol, which is safe
    /// without it (docs/operations.md). A running server's applies to
    /// `berth gc` sent to it.
    #[arg(long = "gc-grace", env = "BERTH_GC_GRACE", default_value_t = 3600)]
    pub grace: u64,
}

impl GraceArg {
    /// The collector's policy, with the upload sessions' idle limit.
    pub fn policy(&self, upload_max_idle_hours: u64) -> berth_store::gc::Policy {
        berth_store::gc::Policy {
            grace: std::time::Duration::from_secs(self.grace),
            upload_max_idle: std::time::Duration::from_secs(upload_max_idle_hours * 3600),
        }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BERTH_LISTEN", default_value = "0.0.0.0:5000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub data: DataDir,
    #[command(flatten)]
    pub shared: SharedLogArg,
    #[command(flatten)]
    pub blob_store: BlobStoreArgs,
    /// Largest blob (layer) accepted, in bytes.
    #[arg(long, env = "BERTH_MAX_BLOB_SIZE", default_value_t = DEFAULT_MAX_BLOB_BYTES)]
    pub max_blob_size: u64,
    /// Largest file of a web upload, in bytes, counted both as read and as
    /// inflated (a `.tar.gz` may not inflate past it either).
    #[arg(long, env = "BERTH_UPLOAD_MAX_FILE_SIZE", default_value_t = DEFAULT_MAX_UPLOAD_FILE_BYTES)]
    pub upload_max_file_size: u64,
    /// Serve HTTPS with this PEM certificate chain (with `--tls-key`);
    /// reloaded on SIGHUP or when the file changes.
    #[arg(long, env = "BERTH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "BERTH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve `/metrics` on this address instead of the main listener (for
    /// example `127.0.0.1:9100`, to keep them off the public port).
    #[arg(long, env = "BERTH_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Upload sessions idle longer than this many hours are abandoned:
    /// removed at startup and by garbage collection.
    #[arg(long, env = "BERTH_UPLOAD_MAX_IDLE_HOURS", default_value_t = 24)]
    pub upload_max_idle_hours: u64,
    #[command(flatten)]
    pub gc: GcArgs,
    /// Free space uploads must leave on the data directory's file system:
    /// a size (`1GiB`, `512MiB`) or a share (`5%`); by default the smaller
    /// of 1 GiB and 5 %. Event writes keep a quarter of it, so deletes
    /// still work when uploads are refused.
    #[arg(long, env = "BERTH_MIN_FREE_SPACE", default_value = "default", value_parser = parse_reserve)]
    pub min_free_space: berth_store::space::Reserve,
    /// Let anyone pull public repositories without credentials.
    #[arg(long, env = "BERTH_ANONYMOUS_PULL", default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous_pull: bool,
    /// Organizations one account may own.
    #[arg(long, env = "BERTH_ORG_QUOTA", default_value_t = berth_domain::limits::DEFAULT_ORG_QUOTA)]
    pub org_quota: usize,
    /// Region prefix of docker login names (`<region>@<access key>`).
    #[arg(long, env = "BERTH_REGION", default_value = "local")]
    pub region: String,
    /// Public base URL (scheme and host) for the token realm; by default
    /// derived from each request's Host header.
    #[arg(long, env = "BERTH_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Lifetime of temporary docker logins, in seconds.
    #[arg(long, env = "BERTH_TEMPORARY_LOGIN_SECONDS", default_value_t = 24 * 3600)]
    pub temporary_login_seconds: u64,
    /// Lifetime of registry bearer tokens, in seconds.
    #[arg(long, env = "BERTH_TOKEN_SECONDS", default_value_t = 300)]
    pub token_seconds: u64,
    /// Seconds between records of counted manifest pulls (a crash loses at
    /// most this many seconds of counts).
    #[arg(long, env = "BERTH_PULL_COUNT_SECONDS", default_value_t = 10)]
    pub pull_count_seconds: u64,
    /// Seconds per window in which the failures of anonymous callers and
    /// unknown users from one client address become one audit record.
    #[arg(long, env = "BERTH_FAILURE_WINDOW_SECONDS", default_value_t = 60)]
    pub failure_window_seconds: u32,
    /// Block cache of the database, in MiB: index and filter blocks of the
    /// log and read models, and recently read events. Give it a fair share
    /// of memory on a large registry (fjall suggests 20-25 %).
    #[arg(long, env = "BERTH_CACHE_MB", default_value_t = berth_store::DEFAULT_CACHE_BYTES / (1024 * 1024))]
    pub cache_mb: u64,
    /// Seconds between signed checkpoints of the chain head written into
    /// the log (0: none).
    #[arg(long, env = "BERTH_CHECKPOINT_INTERVAL", default_value_t = 3600)]
    pub checkpoint_interval: u64,
    /// A file holding a number of seconds to shift the clock that share
    /// deadlines are checked against (for tests and drills).
    #[arg(long, env = "BERTH_CLOCK_OFFSET_FILE", hide = true)]
    pub clock_offset_file: Option<PathBuf>,
}
