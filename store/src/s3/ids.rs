//! Upload ids that prove where they came from. A cluster's upload session
//! has no row until it holds bytes: the `POST` that starts it writes
//! nothing, and a blob sent whole in the next request never needs one.
//! Another node must still tell such a session from an id a client made
//! up, so the id carries a MAC of itself and its repository under a key
//! every node shares.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Issues and checks upload ids: 8 random bytes, then the first 8 bytes of
/// HMAC-SHA256(key, random bytes ‖ repository).
pub struct UploadIds {
    key: [u8; 32],
}

impl UploadIds {
    /// Ids under `key`, which every node of the cluster must share.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, nonce: &[u8], repo: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(nonce);
        mac.update(repo.as_bytes());
        mac
    }

    /// A new id for an upload to `repo`.
    pub fn issue(&self, repo: &str) -> Uuid {
        let random = Uuid::new_v4();
        let nonce = &random.as_bytes()[..8];
        let tag = self.mac(nonce, repo).finalize().into_bytes();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(nonce);
        id[8..].copy_from_slice(&tag[..8]);
        Uuid::from_bytes(id)
    }

    /// Whether `id` was issued for an upload to `repo` (in constant time).
    pub fn issued(&self, id: Uuid, repo: &str) -> bool {
        let (nonce, tag) = id.as_bytes().split_at(8);
        self.mac(nonce, repo).verify_truncated_left(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_issued_for_one_repository_under_one_key() {
        let ids = UploadIds::new([7; 32]);
        let id = ids.issue("team/app");
        assert!(ids.issued(id, "team/app"));
        assert!(!ids.issued(id, "team/other"), "another repository");
        assert!(
            !UploadIds::new([8; 32]).issued(id, "team/app"),
            "another key"
        );
        assert!(!ids.issued(Uuid::new_v4(), "team/app"), "a made-up id");
        assert_ne!(ids.issue("team/app"), id, "each id is new");
    }
}
