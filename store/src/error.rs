//! What the disk, the log or the store's own rules refuse.

use berth_domain::{Digest, DomainError};
use thiserror::Error;

/// Errors of the store layer. `Rejected` carries a domain refusal through the
/// engine unchanged; everything else is about storage.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The command was decided and refused by the domain rules.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// A filesystem operation failed.
    #[error("filesystem: {0}")]
    Io(std::io::Error),
    /// The disk is (nearly) full: nothing was written, and a retry once
    /// space is freed will do.
    #[error("{0}")]
    NoSpace(String),
    /// The log's storage failed and the node takes no more writes until it
    /// restarts; nothing of this request was written.
    #[error("the event log cannot be written: {0}; nothing was changed, retry on another node or after the restart")]
    Unwritable(String),
    /// The log's storage failed while this request's batch was being made
    /// durable: it may or may not have been.
    #[error("the event log cannot be written: {0}; the outcome of this request is unknown: retry it with the same Idempotency-Key (registry writes are safe to retry as they are)")]
    OutcomeUnknown(String),
    /// The shared event log (PostgreSQL) cannot be reached or refused the
    /// write: nothing of this request was written, and a retry once it is
    /// back will do; the node recovers by itself.
    #[error("the event log (PostgreSQL) is unavailable: {0}; nothing was changed, retry shortly")]
    LogUnavailable(String),
    /// The object store (S3) refused or failed a request: nothing of this
    /// request was recorded.
    #[error("the object store failed: {0}; nothing was recorded, retry shortly")]
    ObjectStore(String),
    /// A log import found its target holding events already.
    #[error("the target log is not empty: import only into a new database or data directory")]
    NotEmpty,
    /// The embedded database failed.
    #[error("database: {0}")]
    Database(#[from] fjall::Error),
    /// The log holds something that does not decode or breaks the chain.
    #[error("event log is damaged at sequence {seq}: {reason}")]
    Corrupt {
        /// First sequence number found bad.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The upload session does not exist (or belongs to another repository).
    #[error("upload session is not known")]
    UploadUnknown,
    /// The uploaded content would exceed the configured blob size limit.
    #[error("blob exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client's body stream broke off; nothing of it was kept.
    #[error("request body ended early: {0}")]
    BodyAborted(String),
    /// A chunk's length differs from what its `Content-Range` announced.
    #[error("chunk has {received} bytes but its range announced {expected}")]
    LengthMismatch {
        /// Announced length.
        expected: u64,
        /// Received length.
        received: u64,
    },
    /// The uploaded bytes do not hash to the digest the client named.
    #[error("content digest is {actual}, not {expected}")]
    DigestMismatch {
        /// What the client said.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The engine has stopped and takes no more commands.
    #[error("the engine has stopped")]
    Closed,
    /// An event or envelope could not be encoded.
    #[error("encoding: {0}")]
    Encoding(#[from] postcard::Error),
    /// A read-model row does not decode: the read models are damaged.
    #[error("a read-model row does not decode ({0}); run `berth projections rebuild`")]
    RowDamaged(String),
    /// A blocking task the store ran did not finish (it panicked or was
    /// cancelled).
    #[error("a storage task failed: {0}")]
    Task(String),
    /// The request's `Idempotency-Key` was used, in the last 24 hours, by
    /// this caller for a request with another method, path or body.
    #[error("Idempotency-Key {key:?} was used in the last 24 hours for a different request; use a new key for a new request")]
    KeyReused {
        /// The key.
        key: String,
    },
    /// The batch this command was part of could not be committed; nothing
    /// of it is durable.
    #[error("the batch was not committed: {0}")]
    CommitFailed(String),
}

impl From<std::io::Error> for StoreError {
    /// A full disk is told apart from other failures everywhere it can
    /// surface, so that it is answered 503, not 500.
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => Self::NoSpace(format!(
                "no space left on the registry's disk ({e}); retry once space is freed"
            )),
            _ => Self::Io(e),
        }
    }
}

impl StoreError {
    /// One shared-log failure, for each of the waiters it answers (a
    /// catch-up's, a run of removals'): the log's unavailability as it was,
    /// anything else as the reason it is unavailable to them.
    pub(crate) fn told_again(&self) -> Self {
        match self {
            Self::LogUnavailable(cause) => Self::LogUnavailable(cause.clone()),
            other => Self::LogUnavailable(other.to_string()),
        }
    }

    /// Whether the node cannot take this write now (a full disk, a failed
    /// log) rather than refusing the write itself: answered 503.
    pub fn unavailable(&self) -> bool {
        matches!(
            self,
            Self::NoSpace(_)
                | Self::Unwritable(_)
                | Self::OutcomeUnknown(_)
                | Self::LogUnavailable(_)
                | Self::ObjectStore(_)
        )
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e.to_string())
    }
}
