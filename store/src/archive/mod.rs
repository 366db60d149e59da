//! Staging of an uploaded `docker save` archive. The archive streams
//! through once, in whatever order its members come: each small JSON
//! member the layouts name (`manifest.json`, `repositories`, `index.json`,
//! `oci-layout`) is kept in memory under a small cap, every other member
//! is written to its own file in the upload area while its SHA-256 is
//! computed (and, for a gzip member, the SHA-256 of what it inflates to).
//! Nothing reaches the blob store here; [`plan`] then reads what the
//! archive means, and a caller that accepts the plan ingests its files.
//! `stage` holds the streaming, `plan` the reading of the layouts.

mod plan;
mod stage;

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_domain::{Algorithm, Digest, DomainError};
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

pub use plan::{plan, Image};
pub use stage::stage;

/// What an archive may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes read from the upload, and most bytes of tar it inflates
    /// to: both are counted as they come, whatever the headers declare.
    pub max_bytes: u64,
    /// Most bytes one gzip layer inflates to when its diff id is computed.
    pub max_layer: u64,
}

/// A staged member: a file in the upload area, with its digests.
#[derive(Debug, Clone)]
pub struct Member {
    /// Where its bytes are.
    pub file: PathBuf,
    /// SHA-256 of its bytes.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// SHA-256 of its uncompressed content: the digest itself unless it is
    /// gzip.
    pub diff_id: Digest,
    /// Whether it is gzip.
    pub gzip: bool,
}

/// An archive read to its end.
#[derive(Debug, Default)]
pub struct Staged {
    /// The files, by member name.
    pub members: BTreeMap<String, Member>,
    /// The metadata members' bytes, by name.
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// Bytes read from the upload.
    pub bytes_read: u64,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(DomainError::ArchiveInvalid(message.into()))
}

fn too_large(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(DomainError::ArchiveTooLarge(message.into()))
}

/// The digest a finished hash makes.
fn sha256(hasher: Sha256) -> Result<Digest, StoreError> {
    Ok(Digest::from_bytes(Algorithm::Sha256, &hasher.finalize())?)
}
