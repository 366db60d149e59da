//! Deriving and checking credential verifiers. Argon2id (memory-hard) for
//! passwords, so a stolen database does not yield passwords cheaply. Hashing
//! is deliberately slow: call these from a blocking thread.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use berth_domain::PasswordHash;
use berth_store::StoreError;

/// Derives the stored verifier of a password.
pub fn hash_password(password: &str) -> PasswordHash {
    let salt = SaltString::generate(&mut OsRng);
    let phc = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters and a generated salt always hashes")
        .to_string();
    PasswordHash::new(phc)
}

/// [`hash_password`] on a blocking thread: argon2 takes tens of
/// milliseconds and must not hold up the async workers.
pub async fn hash_password_off_thread(password: String) -> Result<PasswordHash, StoreError> {
    Ok(tokio::task::spawn_blocking(move || hash_password(&password)).await?)
}

/// Checks a password against a stored verifier, in constant time with
/// respect to the password (the comparison is argon2's own).
pub fn verify_password(password: &str, stored: &PasswordHash) -> bool {
    argon2::password_hash::PasswordHash::new(stored.as_str()).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let stored = hash_password("correct horse");
        assert!(stored.as_str().starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("correct horsE", &stored));
        assert!(!verify_password(
            "correct horse",
            &PasswordHash::new("garbage".into())
        ));
        assert_ne!(
            hash_password("correct horse"),
            stored,
            "every hash has its own salt"
        );
    }
}
