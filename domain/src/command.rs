//! Commands: what a caller asks the registry to change, routed to the
//! aggregate that decides them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::account::{self, AccountCommand};
use crate::digest::Digest;
use crate::error::DomainError;
use crate::event::Event;
use crate::loaded::Loaded;
use crate::names::{AccountName, OrgName, RepoPath, UserName};
use crate::organization::{self, OrgCommand};
use crate::repository::{self, RepoCommand};

/// A request to change the registry, decided by [`decide`].
// A command is built once and moved once, into the writer's queue; boxing
// the large repository variant would only add an allocation per push.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// About an organization.
    Org(OrgCommand),
    /// About a repository.
    Repo(RepoCommand),
    /// About an account or one of its users.
    Account(AccountCommand),
    /// Record a signed checkpoint of the chain head in the log itself.
    RecordCheckpoint {
        /// The head's sequence number.
        seq: u64,
        /// The chain hash there, hex.
        hash: String,
        /// When it was signed.
        time: String,
        /// The signature, hex.
        signature: String,
    },
    /// Several commands decided as one: each sees the state the ones
    /// before it leave, and when any is refused none takes effect (a web
    /// upload's blobs, manifests and tags).
    All(Vec<Command>),
    /// Record the failures of anonymous callers and unknown users from one
    /// client address in one window.
    RecordFailures {
        /// The client address.
        client_addr: String,
        /// Start of the window.
        window_start: DateTime<Utc>,
        /// Length of the window in seconds.
        window_seconds: u32,
        /// Failures in the window.
        count: u64,
        /// Failures by reason.
        reasons: BTreeMap<String, u64>,
        /// The first few login names tried.
        names: Vec<String>,
    },
    /// Record what one step of a garbage-collection run removed (the
    /// removal itself is the store's; this only writes it down).
    RecordCollection {
        /// The run.
        run: Uuid,
        /// Blob files removed, with their sizes.
        blobs: Vec<(Digest, u64)>,
        /// Stored manifests removed, with their sizes.
        manifests: Vec<(Digest, u64)>,
        /// Abandoned upload sessions removed.
        uploads: u64,
        /// Bytes freed.
        bytes: u64,
    },
}

/// The user on whose behalf an organization may be created, with the quota
/// that applies to their account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The account that will own it.
    pub account: AccountName,
    /// The user who creates it.
    pub user: UserName,
    /// Most organizations the account may own.
    pub org_quota: usize,
}

/// The names whose state a decision reads; the engine loads exactly these.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touches<'a> {
    /// Repositories (and, with each, its organization).
    pub repos: Vec<&'a RepoPath>,
    /// Accounts (with their users).
    pub accounts: Vec<&'a AccountName>,
    /// Organizations on their own.
    pub orgs: Vec<&'a OrgName>,
}

impl Command {
    /// The names whose state the decision needs.
    pub fn touches(&self) -> Touches<'_> {
        match self {
            Self::Org(c) => Touches {
                orgs: vec![c.org()],
                accounts: vec![c.account()],
                ..Touches::default()
            },
            Self::Repo(c) => Touches {
                repos: std::iter::once(c.repo()).chain(c.source()).collect(),
                accounts: c.account().into_iter().collect(),
                ..Touches::default()
            },
            Self::Account(c) => Touches {
                accounts: vec![c.account()],
                ..Touches::default()
            },
            Self::All(commands) => {
                let mut all = Touches::default();
                for t in commands.iter().map(Command::touches) {
                    all.repos.extend(t.repos);
                    all.accounts.extend(t.accounts);
                    all.orgs.extend(t.orgs);
                }
                all
            }
            Self::RecordCheckpoint { .. }
            | Self::RecordFailures { .. }
            | Self::RecordCollection { .. } => Touches::default(),
        }
    }
}

/// Values the decision may need that a pure function cannot make itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// Id for an organization created by this command.
    pub org_id: Uuid,
    /// Id for a repository created by this command.
    pub repo_id: Uuid,
    /// Id for an account created by this command.
    pub account_id: Uuid,
    /// Id for a user created by this command.
    pub user_id: Uuid,
}

impl Fresh {
    /// The ids for the `n`th command of several decided as one: distinct
    /// from every other command's, still random (only the low bits, away
    /// from the version and variant bits, differ).
    #[must_use]
    pub fn nth(self, n: usize) -> Self {
        let vary = |id: Uuid| Uuid::from_u128(id.as_u128() ^ n as u128);
        Self {
            org_id: vary(self.org_id),
            repo_id: vary(self.repo_id),
            account_id: vary(self.account_id),
            user_id: vary(self.user_id),
        }
    }
}

/// Decides which events follow from `cmd` given the loaded aggregates, or
/// why none may. Pure: the new ids come in `fresh`.
pub fn decide(state: &Loaded, cmd: &Command, fresh: Fresh) -> Result<Vec<Event>, DomainError> {
    match cmd {
        Command::Org(c) => organization::decide(state, c, fresh),
        Command::Repo(c) => repository::decide(state, c, fresh),
        Command::Account(c) => account::decide(state, c, fresh),
        Command::All(commands) => {
            let mut after = state.only(&cmd.touches());
            let mut events = Vec::new();
            for (n, command) in commands.iter().enumerate() {
                let decided = decide(&after, command, fresh.nth(n))?;
                for event in &decided {
                    after.evolve(event);
                }
                events.extend(decided);
            }
            Ok(events)
        }
        Command::RecordCheckpoint {
            seq,
            hash,
            time,
            signature,
        } => Ok(vec![Event::CheckpointRecorded {
            seq: *seq,
            hash: hash.clone(),
            time: time.clone(),
            signature: signature.clone(),
        }]),
        Command::RecordFailures {
            client_addr,
            window_start,
            window_seconds,
            count,
            reasons,
            names,
        } => Ok(vec![Event::FailuresCounted {
            client_addr: client_addr.clone(),
            window_start: *window_start,
            window_seconds: *window_seconds,
            count: *count,
            reasons: reasons.clone(),
            names: names.clone(),
        }]),
        Command::RecordCollection {
            run,
            blobs,
            manifests,
            uploads,
            bytes,
        } => Ok(vec![Event::GarbageCollected {
            run: *run,
            blobs: blobs.clone(),
            manifests: manifests.clone(),
            uploads: *uploads,
            bytes: *bytes,
        }]),
    }
}
