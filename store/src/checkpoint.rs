//! Signed checkpoints: the chain head (sequence number and hash) at a
//! time, signed with the registry's Ed25519 key. An auditor keeps them
//! outside the system; later, anyone with the public key checks a
//! checkpoint offline, and `berth log verify --checkpoint` proves the log
//! still extends it unchanged.

use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::log::ChainPoint;

/// What a checkpoint signs, so a signature means exactly this and nothing
/// else: a version tag, then the fields one per line.
fn message(seq: u64, hash_hex: &str, time: &str) -> Vec<u8> {
    format!("berth-checkpoint-v1\n{seq}\n{hash_hex}\n{time}\n").into_bytes()
}

/// A signed chain head, in the JSON form it is served and stored in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The head's sequence number.
    pub seq: u64,
    /// The chain hash there, lowercase hex.
    pub hash: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// Ed25519 signature over the message, lowercase hex.
    pub signature: String,
}

/// Why a checkpoint is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// A field or the key is not in its expected form.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The signature is not this key's over these fields.
    #[error("the signature does not match this public key and these fields")]
    BadSignature,
}

/// The registry's checkpoint signing key.
#[derive(Clone)]
pub struct CheckpointKey(SigningKey);

impl CheckpointKey {
    /// The key from its 32-byte seed (kept in the data directory).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The public key, lowercase hex, as served to auditors.
    pub fn public_hex(&self) -> String {
        berth_domain::hex::encode(self.0.verifying_key().as_bytes())
    }

    /// Signs a chain head at a time.
    pub fn sign(&self, head: ChainPoint, at: DateTime<Utc>) -> Checkpoint {
        let hash = berth_domain::hex::encode(&head.hash);
        let time = at.to_rfc3339_opts(SecondsFormat::Micros, true);
        let signature = self.0.sign(&message(head.seq, &hash, &time));
        Checkpoint {
            seq: head.seq,
            hash,
            time,
            signature: berth_domain::hex::encode(&signature.to_bytes()),
        }
    }
}

impl Checkpoint {
    /// Checks the signature with a public key given in hex.
    pub fn verify(&self, public_hex: &str) -> Result<(), CheckpointError> {
        let key: [u8; 32] = berth_domain::hex::decode(public_hex.trim())
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::Malformed("public key: 32 bytes of hex"))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| CheckpointError::Malformed("public key: not an Ed25519 point"))?;
        let signature: [u8; 64] = berth_domain::hex::decode(&self.signature)
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::Malformed("signature: 64 bytes of hex"))?;
        key.verify(
            &message(self.seq, &self.hash, &self.time),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| CheckpointError::BadSignature)
    }

    /// The chain hash as bytes.
    pub fn hash_bytes(&self) -> Option<crate::envelope::Hash> {
        berth_domain::hex::decode(&self.hash).and_then(|b| b.try_into().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> ChainPoint {
        ChainPoint {
            seq: 42,
            hash: [7; 32],
        }
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_only() {
        let key = CheckpointKey::from_seed([1; 32]);
        let cp = key.sign(head(), Utc::now());
        assert_eq!(cp.verify(&key.public_hex()), Ok(()));
        let other = CheckpointKey::from_seed([2; 32]);
        assert_eq!(
            cp.verify(&other.public_hex()),
            Err(CheckpointError::BadSignature)
        );
        let mut moved = cp.clone();
        moved.seq = 43;
        assert_eq!(
            moved.verify(&key.public_hex()),
            Err(CheckpointError::BadSignature),
            "a field changed under the signature"
        );
        assert!(matches!(
            cp.verify("nothex"),
            Err(CheckpointError::Malformed(_))
        ));
        assert_eq!(cp.hash_bytes(), Some([7; 32]));
    }
}
