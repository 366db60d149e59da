//! Secrets and their verifiers: random ids and keys, the long-term docker
//! login password (HMAC-SHA256 of the access key under the secret key), and
//! constant-time comparison.

use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// `n` random characters from `alphabet` (the OS generator behind UUIDv4).
pub fn random_string(n: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in Uuid::new_v4().as_bytes() {
            // Rejection sampling keeps every character equally likely.
            let limit = 256 - (256 % alphabet.len());
            if usize::from(*b) < limit && out.len() < n {
                out.push(alphabet[usize::from(*b) % alphabet.len()] as char);
            }
        }
    }
    out
}

/// Upper-case letters and digits, the access-key id alphabet.
pub const AK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Letters and digits, the secret-key alphabet.
pub const SK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The long-term docker login password of an access key: lowercase hex of
/// HMAC-SHA256 with the secret key as key and the access key as message,
/// exactly what `printf "$AK" | openssl dgst -binary -sha256 -hmac "$SK" |
/// od -An -vtx1 | tr -d ' \n'` prints.
pub fn login_password(ak: &str, sk: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(sk.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(ak.as_bytes());
    berth_domain::hex::encode(&mac.finalize().into_bytes())
}

/// The stored verifier of a login password or temporary secret: these are
/// high-entropy, so one SHA-256 suffices (no dictionary to slow down).
pub fn verifier(secret: &str) -> String {
    berth_domain::hex::encode(&Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_password_matches_the_published_hmac_definition() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            login_password("what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn login_password_matches_the_readme_worked_example() {
        // Computed with the README's openssl pipeline.
        assert_eq!(
            login_password(
                "BERTHEXAMPLEKEY00001",
                "bErThExAmPlEsEcReTkEy0123456789abcdefghij"
            ),
            "221589de16e7ebd487de04abae6b7f86a3c3336093855286051d8fefa60aeb6c"
        );
    }

    #[test]
    fn random_strings_use_the_alphabet() {
        let ak = random_string(20, AK_ALPHABET);
        assert_eq!(ak.len(), 20);
        assert!(ak.bytes().all(|c| AK_ALPHABET.contains(&c)));
        assert_ne!(random_string(20, AK_ALPHABET), ak);
    }

    #[test]
    fn comparison() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
