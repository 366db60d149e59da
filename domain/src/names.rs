//! Validated names: organizations, repositories and tags.
//!
//! Every name that enters Berth is parsed here once; the rest of the code
//! holds these newtypes and so cannot hold a name the registry would refuse.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::limits::{MAX_IDENTITY_NAME, MAX_ORG_NAME, MAX_REPO_NAME, MAX_TAG_NAME};

/// Checks the shared component grammar: runs of `[a-z0-9]` joined by one
/// separator (`.`, `_`, `__` or a run of `-`), never leading or trailing.
fn components_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The name as the client wrote it (already validated).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, DomainError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, DomainError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

/// The organization name no one may take: its registry paths would collide
/// with the management API under `/v2/manage`.
pub const RESERVED_ORG: &str = "manage";

/// An organization (namespace) name: a lowercase letter first, 1–64 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgName(String);

impl OrgName {
    /// Validates an organization name.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s == RESERVED_ORG {
            return Err(DomainError::NameInvalid(format!(
                "organization name {s:?} is reserved: /v2/{s}/ is the management API"
            )));
        }
        letter_first_name("organization", s, MAX_ORG_NAME).map(Self)
    }
}
string_newtype!(OrgName);

/// Validates the grammar shared by organization, account and user names: a
/// lowercase letter first, then `[a-z0-9]` runs joined by separators.
fn letter_first_name(kind: &str, s: &str, max: usize) -> Result<String, DomainError> {
    let first_ok = s.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
    if s.len() > max || !first_ok || !components_valid(s) {
        return Err(DomainError::NameInvalid(format!(
            "{kind} name {s:?} must start with a lowercase letter, contain only [a-z0-9] \
             separated by '.', '_', '__' or '-', and be 1-{max} characters"
        )));
    }
    Ok(s.to_owned())
}

/// The platform operator's account, created on first start.
pub const OPERATOR_ACCOUNT: &str = "system";
/// The platform operator's user inside [`OPERATOR_ACCOUNT`].
pub const OPERATOR_USER: &str = "admin";

/// An account (tenant) name, unique across the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountName(String);

impl AccountName {
    /// Validates an account name.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        letter_first_name("account", s, MAX_IDENTITY_NAME).map(Self)
    }
}
string_newtype!(AccountName);

/// A user name, unique inside its account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    /// Validates a user name.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        letter_first_name("user", s, MAX_IDENTITY_NAME).map(Self)
    }
}
string_newtype!(UserName);

/// A repository name inside an organization: may start with a digit, 1–128 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

impl RepoName {
    /// Validates a repository name (the part after the organization).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.len() > MAX_REPO_NAME || !components_valid(s) {
            return Err(DomainError::NameInvalid(format!(
                "repository name {s:?} must contain only [a-z0-9] separated by '.', '_', '__' \
                 or '-', and be 1-{MAX_REPO_NAME} characters"
            )));
        }
        Ok(Self(s.to_owned()))
    }
}
string_newtype!(RepoName);

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagName(String);

impl TagName {
    /// Validates a tag.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let rest_ok = b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || b.len() > MAX_TAG_NAME {
            return Err(DomainError::TagInvalid(format!(
                "tag {s:?} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
            )));
        }
        Ok(Self(s.to_owned()))
    }
}
string_newtype!(TagName);

/// A repository's full name, exactly `<org>/<name>`: Berth keeps two levels
/// so that every repository belongs to exactly one organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoPath {
    org: OrgName,
    name: RepoName,
}

impl RepoPath {
    /// Joins already-validated parts.
    pub fn new(org: OrgName, name: RepoName) -> Self {
        Self { org, name }
    }

    /// Parses `<org>/<name>`; any other shape is `NAME_INVALID`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(org), Some(name), None) => Ok(Self {
                org: OrgName::parse(org)?,
                name: RepoName::parse(name)?,
            }),
            _ => Err(DomainError::NameInvalid(format!(
                "repository {s:?} must be exactly <organization>/<name>"
            ))),
        }
    }

    /// The owning organization.
    pub fn org(&self) -> &OrgName {
        &self.org
    }

    /// The name inside the organization.
    pub fn name(&self) -> &RepoName {
        &self.name
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.org, self.name)
    }
}

impl TryFrom<String> for RepoPath {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<RepoPath> for String {
    fn from(p: RepoPath) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names() {
        for ok in ["a", "acme", "a1", "a.b", "a_b", "a__b", "a---b", "a-b.c_d"] {
            assert!(OrgName::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "", "manage", "1acme", "Acme", "a_", "a___b", "a..b", "a.-b", "-a", "a/b", "a b",
            "%2e", "..", &long,
        ] {
            assert!(OrgName::parse(bad).is_err(), "{bad}");
        }
        assert!(OrgName::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn repo_names() {
        for ok in ["2048-demo", "web", "a.b", "x__y"] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2048-demo/test", "Web", "a-", ".a", "%2e%2e"] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert!(RepoName::parse(&"a".repeat(128)).is_ok());
        assert!(RepoName::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn paths_have_exactly_two_levels() {
        assert_eq!(
            RepoPath::parse("acme/2048-demo").unwrap().to_string(),
            "acme/2048-demo"
        );
        for bad in [
            "acme",
            "acme/2048-demo/test",
            "/acme/web",
            "acme/",
            "acme//web",
        ] {
            assert!(RepoPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0.0", "_x", "A-b_c.d", &"t".repeat(128)] {
            assert!(TagName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"t".repeat(129)] {
            assert!(TagName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn account_and_user_names() {
        assert!(AccountName::parse("acme-corp").is_ok());
        assert!(UserName::parse("alice").is_ok());
        for bad in ["", "1acme", "Acme", "a b", "a/b", &"a".repeat(65)] {
            assert!(AccountName::parse(bad).is_err(), "{bad}");
            assert!(UserName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_validates_on_decode() {
        let err = serde_json::from_str::<OrgName>("\"Bad\"");
        assert!(err.is_err());
        let p: RepoPath = serde_json::from_str("\"acme/web\"").unwrap();
        assert_eq!(p.org().as_str(), "acme");
    }
}
