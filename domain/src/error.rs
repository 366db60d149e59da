//! What the registry's rules refuse. Each variant maps to exactly one
//! registry error code in the API layer; none of them is a bug.

use thiserror::Error;

use crate::digest::Digest;
use crate::names::{AccountName, OrgName, RepoPath, TagName, UserName};

/// A refusal decided by the domain: the request was understood and is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// An organization, repository or repository path that breaks the naming rules.
    #[error("{0}")]
    NameInvalid(String),
    /// A tag that breaks the tag grammar.
    #[error("{0}")]
    TagInvalid(String),
    /// A digest that is malformed, of an unsupported algorithm, or does not match the content.
    #[error("{0}")]
    DigestInvalid(String),
    /// A manifest that cannot be parsed or breaks the image spec.
    #[error("{0}")]
    ManifestInvalid(String),
    /// The repository does not exist.
    #[error("repository {0} is not known to the registry")]
    RepositoryUnknown(RepoPath),
    /// The blob is not linked to the repository.
    #[error("blob {0} is not known to the repository")]
    BlobUnknown(Digest),
    /// The manifest or tag does not exist in the repository.
    #[error("manifest {0} is not known to the repository")]
    ManifestUnknown(String),
    /// An account of that name already exists.
    #[error("account {0} already exists")]
    AccountExists(AccountName),
    /// The account does not exist.
    #[error("account {0} is not known")]
    AccountUnknown(AccountName),
    /// A user of that name already exists in the account.
    #[error("user {user} already exists in account {account}")]
    UserExists {
        /// The account.
        account: AccountName,
        /// The user.
        user: UserName,
    },
    /// An organization of that name exists (in any account).
    #[error("organization already exists: {0}")]
    OrgExists(OrgName),
    /// The organization does not exist.
    #[error("organization {0} is not known")]
    OrgUnknown(OrgName),
    /// The user does not exist in the account.
    #[error("user {user} is not known in account {account}")]
    UserUnknown {
        /// The account.
        account: AccountName,
        /// The user.
        user: UserName,
    },
    /// The access key does not exist.
    #[error("access key {0} is not known")]
    AccessKeyUnknown(String),
    /// The action is not allowed (quota, limit, or permission).
    #[error("{0}")]
    Denied(String),
    /// A repository of that name exists.
    #[error("repository {0} already exists")]
    RepositoryExists(RepoPath),
    /// An attribute (category, description, deadline, note) out of range.
    #[error("{0}")]
    AttributeInvalid(String),
    /// The organization still holds repositories.
    #[error("organization {org} still holds {count} repositories ({}); delete them first", .sample.join(", "))]
    OrgNotEmpty {
        /// The organization.
        org: OrgName,
        /// How many repositories it holds.
        count: usize,
        /// Up to ten of their names.
        sample: Vec<String>,
    },
    /// An uploaded archive that is not a well-formed `docker save` archive,
    /// or that names an image the registry refuses.
    #[error("{0}")]
    ArchiveInvalid(String),
    /// An uploaded archive over a limit, counted on the bytes read and
    /// inflated.
    #[error("{0}")]
    ArchiveTooLarge(String),
    /// The account owns as many organizations as its quota allows.
    #[error("your account may own at most {0} organizations; delete one first")]
    QuotaExceeded(usize),
    /// A share of this repository with that account already exists.
    #[error("the repository is already shared with account {0}")]
    ShareExists(AccountName),
    /// No share of this repository with that account exists.
    #[error("the repository is not shared with account {0}")]
    ShareUnknown(AccountName),
    /// A share that the rules do not allow (public repository, own account).
    #[error("{0}")]
    ShareInvalid(String),
    /// The user holds no grant to revoke here.
    #[error("user {user} of account {account} holds no grant here")]
    GrantUnknown {
        /// The account.
        account: AccountName,
        /// The user.
        user: UserName,
    },
    /// A tag that a retag without override would overwrite.
    #[error("tag {0} already exists; set override to move it")]
    TagExists(TagName),
    /// A manifest refers to a blob or child manifest the repository does not hold.
    #[error("manifest references {0}, which is not in the repository")]
    ManifestBlobUnknown(Digest),
    /// A blob or child manifest that a manifest of the repository still
    /// references cannot be deleted from it.
    #[error(
        "{target} is referenced by manifest {by} in this repository; delete that manifest first"
    )]
    StillReferenced {
        /// What was to be deleted.
        target: Digest,
        /// A manifest that references it.
        by: Digest,
    },
}
