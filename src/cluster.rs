//! What a node needs to run beside others: the flags of the shared event
//! log (PostgreSQL) and of the shared blob store (S3), and the stores they
//! open. Without them a node keeps everything in its data directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_api::health::Probe;
use berth_store::postgres::PgSessions;
use berth_store::s3::{S3Blobs, S3Config, SharedBlobs, SharedUploads, UploadIds};
use berth_store::space::Space;
use berth_store::{BlobStore, LocalBlobs, LocalUploads, UploadStore};
use clap::Args;
use futures_util::future::BoxFuture;

use crate::error::{AtPath, CliError};

/// The event log of record when several nodes share one.
#[derive(Args, Clone)]
pub struct SharedLogArg {
    /// Keep the event log in PostgreSQL (`postgres://user:pass@host:port/db`)
    /// instead of the data directory, so several nodes can share it: the
    /// data directory then holds this node's mirror of it and its read
    /// models (docs/cluster.md).
    #[arg(long = "log", env = "BERTH_LOG_URL")]
    pub log_url: Option<String>,
}

/// Where blob bytes live.
#[derive(Args, Clone)]
pub struct BlobStoreArgs {
    /// Keep blobs in S3-compatible object storage (`s3://bucket/prefix`)
    /// instead of `<data>/blobs`.
    #[arg(long = "blob-store", env = "BERTH_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// The object store's endpoint (`http://127.0.0.1:3900`); AWS's when
    /// absent.
    #[arg(long = "s3-endpoint", env = "BERTH_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// The object store's region.
    #[arg(
        long = "s3-region",
        env = "BERTH_S3_REGION",
        default_value = "us-east-1"
    )]
    pub s3_region: String,
    /// The access key id (else `AWS_ACCESS_KEY_ID`).
    #[arg(long = "s3-access-key-id", env = "BERTH_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// The secret access key (else `AWS_SECRET_ACCESS_KEY`).
    #[arg(
        long = "s3-secret-access-key",
        env = "BERTH_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// Path-style addresses (`endpoint/bucket/key`), as Garage and MinIO
    /// want.
    #[arg(long = "s3-path-style", env = "BERTH_S3_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_path_style: bool,
    /// Sign each request's body (its SHA-256) as well as its headers: for
    /// a store reached over plain HTTP on a network that is not trusted.
    /// Off, bodies are sent as `UNSIGNED-PAYLOAD`, as AWS's SDKs send them
    /// over HTTPS, and the node hashes each byte once instead of twice.
    #[arg(long = "s3-sign-payload", env = "BERTH_S3_SIGN_PAYLOAD", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_sign_payload: bool,
    /// Answer blob downloads with a 307 redirect to a signed address of the
    /// object store, valid this many seconds, for clients that can reach
    /// it; 0 serves the bytes through the registry.
    #[arg(
        long = "blob-redirect-seconds",
        env = "BERTH_BLOB_REDIRECT_SECONDS",
        default_value_t = 0
    )]
    pub blob_redirect_seconds: u64,
}

/// The blob store and upload sessions a node serves from.
pub struct Stores {
    /// Verified blob bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Upload sessions between a client's requests.
    pub uploads: Arc<dyn UploadStore>,
    /// The object store, when blobs live in one: for readiness.
    pub s3: Option<S3Blobs>,
}

/// What `serve` knows when it opens the stores.
pub struct Opening<'a> {
    /// The data directory.
    pub data: &'a Path,
    /// The largest blob accepted.
    pub max_blob: u64,
    /// How long an upload session may idle.
    pub max_idle: Duration,
    /// The free-space guard of the data directory.
    pub space: Space,
    /// The shared log's address, and the key every node signs upload ids
    /// with, in a cluster.
    pub cluster: Option<(&'a str, [u8; 32])>,
    /// Where blocking object-store calls run.
    pub runtime: tokio::runtime::Handle,
}

impl BlobStoreArgs {
    /// Opens the blob store the flags name, and the upload sessions that go
    /// with it: local files; or S3 with sessions staged in the data
    /// directory (one node); or S3 with sessions in the shared log's
    /// database (a cluster, where a client's next request may reach
    /// another node).
    pub fn open(&self, at: Opening<'_>) -> Result<Stores, CliError> {
        let Some(url) = &self.blob_store else {
            let dir = at.data.join("blobs");
            let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobs::open(dir.clone()).at(&dir)?);
            let uploads = staged(&at, blobs.clone())?;
            return Ok(Stores {
                blobs,
                uploads,
                s3: None,
            });
        };
        let s3 = S3Blobs::open(
            &S3Config {
                url: url.clone(),
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
                path_style: self.s3_path_style,
                sign_payload: self.s3_sign_payload,
            },
            at.runtime.clone(),
        )?;
        let (blobs, uploads): (Arc<dyn BlobStore>, Arc<dyn UploadStore>) = match at.cluster {
            Some((log, key)) => {
                let db = Arc::new(PgSessions::new(log)?);
                let ids = UploadIds::new(key);
                (
                    Arc::new(SharedBlobs::new(s3.clone(), db.clone())),
                    Arc::new(SharedUploads::new(s3.clone(), db, ids, at.max_blob)),
                )
            }
            None => {
                let blobs: Arc<dyn BlobStore> = Arc::new(s3.clone());
                (blobs.clone(), staged(&at, blobs)?)
            }
        };
        Ok(Stores {
            blobs,
            uploads,
            s3: Some(s3),
        })
    }

    /// The redirect lifetime for blob downloads, when redirects are on.
    pub fn redirect(&self) -> Option<Duration> {
        (self.blob_store.is_some() && self.blob_redirect_seconds > 0)
            .then(|| Duration::from_secs(self.blob_redirect_seconds))
    }
}

/// Readiness of the shared log: its database answers.
pub struct LogProbe(pub Arc<PgSessions>);

impl Probe for LogProbe {
    fn name(&self) -> &'static str {
        "log (PostgreSQL)"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let sessions = self.0.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || sessions.ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// Readiness of the object store: its bucket answers a listing.
pub struct StoreProbe(pub S3Blobs);

impl Probe for StoreProbe {
    fn name(&self) -> &'static str {
        "object store (S3)"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.check().await.map_err(|e| e.to_string()) })
    }
}

/// Upload sessions staged as files in the data directory, handed to
/// `blobs` when complete.
fn staged(at: &Opening<'_>, blobs: Arc<dyn BlobStore>) -> Result<Arc<dyn UploadStore>, CliError> {
    let dir = at.data.join("uploads");
    let uploads = LocalUploads::open(dir.clone(), blobs, at.max_blob, at.max_idle)
        .at(&dir)?
        .with_space(at.space.clone());
    Ok(Arc::new(uploads))
}
