//! Berth's pure model: names, digests, events, commands and the decisions
//! that turn one into the other. No IO, no async, no clock: everything here
//! can be replayed and tested as plain data.

pub mod account;
pub mod actor;
pub mod archive;
pub mod attributes;
pub mod audit;
pub mod command;
pub mod credentials;
pub mod digest;
pub mod error;
pub mod event;
pub mod hex;
pub mod limits;
pub mod loaded;
pub mod manifest;
pub mod names;
pub mod organization;
pub mod policy;
pub mod repository;
pub mod stream;
pub mod subject;
#[cfg(test)]
mod testing;

pub use account::{Account, AccountCommand, User, UserCommand};
pub use actor::{Actor, CredentialKind};
pub use attributes::{Category, Deadline, Description, ShareNote};
pub use audit::{Facts, LoginFailure, Outcome, Pushed, Surface};
pub use command::{decide, Command, Fresh, Owner, Touches};
pub use credentials::PasswordHash;
pub use digest::{Algorithm, Digest, Reference};
pub use error::DomainError;
pub use event::{Event, ShareEnd};
pub use loaded::Loaded;
pub use manifest::{parse_manifest, ParsedManifest};
pub use names::{AccountName, OrgName, RepoName, RepoPath, TagName, UserName};
pub use organization::{OrgCommand, Organization};
pub use policy::{Action, Level, Principal};
pub use repository::{ManifestMeta, RepoCommand, Repository};
