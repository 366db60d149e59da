//! Credential verifiers as the domain sees them: opaque, already-derived
//! strings. Deriving them (argon2, HMAC) happens at the edge; the domain only
//! records that a verifier changed, and never holds a secret.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A password hash in PHC string form (argon2id). Its `Debug` output is
/// redacted so it never reaches a log line.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by the password hasher.
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}
