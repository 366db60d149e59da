//! Blobs on S3-compatible object storage (AWS S3, Ceph RGW, MinIO, Garage),
//! through the `object_store` crate: one object per blob under
//! `<prefix>/blobs/<alg>/<hex>`, written only once its bytes are verified,
//! so a present object is always complete and correct, as a local blob file
//! is. `uploads` holds the upload sessions several nodes share.

mod hashing;
mod ids;
mod shared;
mod uploads;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_domain::Digest;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

use crate::blobs::{BlobStore, ByteStream, StoredBlob};
use crate::error::StoreError;

pub use ids::UploadIds;
pub use shared::SharedBlobs;
pub use uploads::SharedUploads;

/// Bytes per multipart part: S3 wants at least 5 MiB per part but the
/// last, and larger parts mean fewer requests for a large layer.
pub(crate) const PART: usize = 16 << 20;
/// Parts in flight at once per upload: the network and the store both
/// stay busy while memory stays bounded (`PART` times this, per upload).
pub(crate) const PARTS_IN_FLIGHT: usize = 4;

/// Where the blobs live and how to reach the store.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `s3://bucket/prefix`.
    pub url: String,
    /// The endpoint (`http://127.0.0.1:3900`); the AWS one when absent.
    pub endpoint: Option<String>,
    /// The region (`garage`, `us-east-1`).
    pub region: String,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which Garage and
    /// MinIO want; virtual-hosted style otherwise.
    pub path_style: bool,
    /// Whether each request's signature covers its body's SHA-256. Off,
    /// the signature names `UNSIGNED-PAYLOAD` (as AWS's SDKs do over
    /// HTTPS): the node hashes every byte once, for its digest, instead
    /// of twice. On, for a store reached over plain HTTP on a network
    /// that is not trusted.
    pub sign_payload: bool,
}

/// The blob store on S3.
#[derive(Clone)]
pub struct S3Blobs {
    pub(crate) store: Arc<AmazonS3>,
    prefix: String,
    runtime: Handle,
}

pub(crate) fn failed(what: &str, e: object_store::Error) -> StoreError {
    StoreError::ObjectStore(format!("{what}: {e}"))
}

impl S3Blobs {
    /// Connects (lazily: the first request opens the connection) to the
    /// bucket `config.url` names. Blocking calls run on `runtime`.
    pub fn open(config: &S3Config, runtime: Handle) -> Result<Self, StoreError> {
        let rest = config.url.strip_prefix("s3://").ok_or_else(|| {
            StoreError::ObjectStore(format!(
                "{:?} is not an s3://bucket/prefix address",
                config.url
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::ObjectStore(format!(
                "{:?} names no bucket",
                config.url
            )));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_unsigned_payload(!config.sign_payload);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(|e| failed("configuration", e))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_owned(),
            runtime,
        })
    }

    /// An object's key under the configured prefix.
    pub(crate) fn key(&self, rest: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rest)
        } else {
            Key::from(format!("{}/{rest}", self.prefix))
        }
    }

    pub(crate) fn blob_key(&self, digest: &Digest) -> Key {
        self.key(&format!(
            "blobs/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    /// Runs a request to the store from blocking code (the trait's
    /// methods block, as the local store's do).
    pub(crate) fn wait<F: Future>(&self, work: F) -> F::Output {
        match Handle::try_current() {
            Ok(handle) => tokio::task::block_in_place(|| handle.block_on(work)),
            Err(_) => self.runtime.block_on(work),
        }
    }

    /// Checks that the bucket answers, for start-up and readiness: a
    /// listing under a prefix that holds nothing. It is cheap whatever the
    /// bucket holds (a listing of the blobs costs the store a page of
    /// keys, and every node asks twice a second), and unlike a HEAD it
    /// fails when the bucket does not exist.
    pub async fn check(&self) -> Result<(), StoreError> {
        let probe = self.key("berth-readiness-probe");
        let mut listing = self.store.list(Some(&probe));
        match listing.next().await {
            Some(Err(e)) => Err(failed("the bucket does not answer", e)),
            _ => Ok(()),
        }
    }

    /// Streams a file into the object `key` in parts.
    pub(crate) async fn put_file(&self, file: &Path, key: &Key) -> Result<(), StoreError> {
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| failed("starting an upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut source = tokio::fs::File::open(file).await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match source.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                return Err(failed("uploading a part", e));
            }
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| failed("finishing an upload", e))
    }

    /// Makes a verified object the blob `digest`: a copy inside the store,
    /// with no bytes through this node. A blob already there is copied over
    /// with the same bytes (cheaper than asking first).
    pub(crate) async fn adopt(&self, from: &Key, digest: &Digest) -> Result<(), StoreError> {
        self.store
            .copy(from, &self.blob_key(digest))
            .await
            .map_err(|e| failed("storing the verified blob", e))
    }
}

impl BlobStore for S3Blobs {
    fn ingest(&self, file: &Path, digest: &Digest) -> Result<(), StoreError> {
        let key = self.blob_key(digest);
        self.wait(async {
            if self.store.head(&key).await.is_err() {
                self.put_file(file, &key).await?;
            }
            tokio::fs::remove_file(file).await?;
            Ok(())
        })
    }

    /// The request is made when the stream is first polled, so this does
    /// not block; a failure then ends the stream with its error.
    fn open_range(&self, digest: &Digest, start: u64, len: u64) -> Result<ByteStream, StoreError> {
        if len == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let store = self.store.clone();
        let key = self.blob_key(digest);
        let get = async move {
            let options = GetOptions {
                range: Some(GetRange::Bounded(start..start + len)),
                ..GetOptions::default()
            };
            store
                .get_opts(&key, options)
                .await
                .map(|got| got.into_stream().map_err(std::io::Error::other))
                .map_err(std::io::Error::other)
        };
        Ok(Box::pin(futures_util::stream::once(get).try_flatten()))
    }

    fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let key = self.blob_key(digest);
        match self.wait(self.store.head(&key)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failed("reading a blob's size", e)),
        }
    }

    fn delete(&self, digest: &Digest) -> Result<bool, StoreError> {
        let key = self.blob_key(digest);
        self.wait(async {
            match self.store.head(&key).await {
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(failed("deleting a blob", e)),
                Ok(_) => self
                    .store
                    .delete(&key)
                    .await
                    .map(|()| true)
                    .map_err(|e| failed("deleting a blob", e)),
            }
        })
    }

    fn list(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let prefix = self.key("blobs");
        let mut out: Vec<StoredBlob> = self.wait(async {
            let mut listing = self.store.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| failed("listing blobs", e))?;
                let mut parts = meta.location.parts().collect::<Vec<_>>().into_iter().rev();
                let (Some(hex), Some(alg)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if let Ok(digest) = Digest::parse(&format!("{}:{}", alg.as_ref(), hex.as_ref())) {
                    out.push(StoredBlob {
                        digest,
                        size: meta.size,
                        stored_at: meta.last_modified.into(),
                    });
                }
            }
            Ok::<_, StoreError>(out)
        })?;
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    fn presign(
        &self,
        digest: &Digest,
        _size: u64,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        let key = self.blob_key(digest);
        self.wait(self.store.signed_url(http::Method::GET, &key, ttl))
            .map(|url| Some(url.to_string()))
            .map_err(|e| failed("signing a download address", e))
    }
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
