//! Berth's storage: the hash-chained event log in fjall, the single-writer
//! engine that decides and appends with group commit, and the
//! content-addressed blob store with streaming uploads.

pub mod archive;
pub mod blobs;
pub mod checkpoint;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod gc;
pub mod imports;
pub mod lease;
pub mod log;
pub mod postgres;
pub mod resumable;
pub mod s3;
pub mod space;
pub mod table;
pub mod uploads;

pub use blobs::{BlobStore, ByteStream, LocalBlobs, StoredBlob};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointKey};
pub use engine::{
    catch_up, start, start_observed, startup_check, AloneWork, Content, Engine, KeyScope, Outcome,
    Projector, RequestMeta, Sealed, SharedLog, StateLoader, WeakEngine, WriterObserver,
};
pub use envelope::{Envelope, Keyed, Recorded, KEY_MEMORY, SCHEMA_VERSION};
pub use error::StoreError;
pub use log::{ChainPoint, EventLog, DEFAULT_CACHE_BYTES};
pub use table::{Batch, Row, Rows, Table};
pub use uploads::{BoxError, Chunks, Finished, LocalUploads, Session, SessionGuard, UploadStore};
