//! Berth's pure model: names, digests, events, commands and the decisions
//! that turn one into the other. No IO, no async, no clock: everything here
//! can be replayed and tested as plain data.

pub mod actor;
pub mod command;
pub mod credentials;
pub mod decide;
pub mod digest;
pub mod error;
pub mod event;
pub mod hex;
pub mod limits;
pub mod manifest;
pub mod names;
pub mod policy;
pub mod state;

pub use actor::{Actor, CredentialKind};
pub use command::{Command, Fresh, Owner, Touches};
pub use credentials::PasswordHash;
pub use decide::decide;
pub use digest::{Algorithm, Digest, Reference};
pub use error::DomainError;
pub use event::Event;
pub use manifest::{parse_manifest, ParsedManifest};
pub use names::{AccountName, OrgName, RepoName, RepoPath, TagName, UserName};
pub use policy::{Action, Level, Principal};
pub use state::{AccountState, ManifestMeta, OrgState, Registry, RepoState, UserState};
