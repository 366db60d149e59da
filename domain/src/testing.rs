//! Given / when / then helpers for the aggregates' tests.

use uuid::Uuid;

use crate::command::{decide, Command, Fresh, Owner};
use crate::credentials::PasswordHash;
use crate::digest::Digest;
use crate::error::DomainError;
use crate::event::Event;
use crate::loaded::Loaded;
use crate::names::{AccountName, OrgName, RepoPath, TagName, UserName};

pub const FRESH: Fresh = Fresh {
    org_id: Uuid::from_u128(1),
    repo_id: Uuid::from_u128(2),
    account_id: Uuid::from_u128(3),
    user_id: Uuid::from_u128(4),
};

pub struct Given(Loaded);

/// The state after a history of events.
pub fn given(events: impl IntoIterator<Item = Event>) -> Given {
    let mut state = Loaded::default();
    for e in events {
        state.evolve(&e);
    }
    Given(state)
}

impl Given {
    /// The decision on one command.
    pub fn when(&self, cmd: Command) -> Result<Vec<Event>, DomainError> {
        decide(&self.0, &cmd, FRESH)
    }
}

pub fn repo(s: &str) -> RepoPath {
    RepoPath::parse(s).unwrap()
}

pub fn org_name(s: &str) -> OrgName {
    OrgName::parse(s).unwrap()
}

pub fn tag(s: &str) -> TagName {
    TagName::parse(s).unwrap()
}

pub fn account(s: &str) -> AccountName {
    AccountName::parse(s).unwrap()
}

pub fn user(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

pub fn dg(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

pub fn hash(s: &str) -> PasswordHash {
    PasswordHash::new(format!("$argon2id$test${s}"))
}

pub fn owner(a: &str, u: &str, org_quota: usize) -> Owner {
    Owner {
        account: account(a),
        user: user(u),
        org_quota,
    }
}

/// Account `acme` with its admin `root`.
pub fn acme() -> [Event; 2] {
    [
        Event::AccountCreated {
            account_id: FRESH.account_id,
            account: account("acme"),
        },
        Event::UserCreated {
            user_id: FRESH.user_id,
            account_id: FRESH.account_id,
            account: account("acme"),
            user: user("root"),
            admin: true,
            password: hash("a"),
        },
    ]
}

/// A plain user added to an account.
pub fn user_created(a: &str, u: &str) -> Event {
    Event::UserCreated {
        user_id: Uuid::from_u128(u128::from(u.len() as u64) + 100),
        account_id: FRESH.account_id,
        account: account(a),
        user: user(u),
        admin: false,
        password: hash(u),
    }
}
