//! Key and row encoding shared by the read models. Keys start with the
//! 16-byte repository id, so a repository's rows are one prefix and a
//! deleted incarnation never mixes with a new one of the same name.

use berth_store::StoreError;
use serde::{de::DeserializeOwned, Serialize};
use uuid::Uuid;

/// `repo_id ‖ suffix`.
pub fn repo_key(repo_id: Uuid, suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + suffix.len());
    k.extend_from_slice(repo_id.as_bytes());
    k.extend_from_slice(suffix);
    k
}

/// The part of a key after the repository id.
pub fn suffix(key: &[u8]) -> &[u8] {
    key.get(16..).unwrap_or_default()
}

/// Encodes a row.
pub fn encode<T: Serialize>(row: &T) -> Vec<u8> {
    postcard::to_stdvec(row).expect("rows are plain data and always encode")
}

/// Decodes a row; a row that does not decode means the read models are
/// damaged and must be rebuilt.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::RowDamaged(e.to_string()))
}

/// `digest ‖ 0`: the prefix of the rows that say which repositories hold
/// a blob or a manifest.
pub fn holder_prefix(digest: &berth_domain::Digest) -> Vec<u8> {
    let mut k = digest.to_string().into_bytes();
    k.push(0);
    k
}

/// `digest ‖ 0 ‖ repo_id`: one repository holding a blob or a manifest.
pub fn holder_key(digest: &berth_domain::Digest, repo_id: Uuid) -> Vec<u8> {
    let mut k = holder_prefix(digest);
    k.extend_from_slice(repo_id.as_bytes());
    k
}

/// Whether a holders table names any repository for the digest.
pub fn held(
    holders: &berth_store::Table,
    digest: &berth_domain::Digest,
) -> Result<bool, StoreError> {
    Ok(holders
        .prefix(holder_prefix(digest))
        .next()
        .transpose()?
        .is_some())
}
