//! The account aggregate: a tenant and its users, with each user's access
//! keys, temporary logins, password and enabled flag. Every command on an
//! existing user goes through one lookup ([`UserCommand`]), so a missing
//! user is refused the same way whatever was asked.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{LoginFailure, Pushed, Surface};
use crate::command::Fresh;
use crate::credentials::PasswordHash;
use crate::error::DomainError;
use crate::event::Event;
use crate::limits::MAX_ACCESS_KEYS;
use crate::loaded::Loaded;
use crate::names::{AccountName, RepoPath, UserName};

/// A user as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stream id.
    pub id: Uuid,
    /// Access keys and whether each is enabled.
    pub keys: HashMap<String, bool>,
    /// Whether the user is disabled.
    pub disabled: bool,
}

/// An account and its users as decisions see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stream id.
    pub id: Uuid,
    /// Users by name.
    pub users: HashMap<UserName, User>,
    /// Organizations the account owns (for the quota).
    pub orgs: usize,
}

/// What may be asked of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// Create an account with its first (admin) user.
    Create {
        /// The new account's name.
        account: AccountName,
        /// Its first user, who administers it.
        admin_user: UserName,
        /// Verifier of that user's password.
        admin_password: PasswordHash,
    },
    /// Add a user to an existing account.
    CreateUser {
        /// The account.
        account: AccountName,
        /// The new user's name.
        user: UserName,
        /// Whether the user administers the account.
        admin: bool,
        /// Verifier of the user's password.
        password: PasswordHash,
    },
    /// Change something about an existing user.
    User {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// What changes.
        change: UserCommand,
    },
}

/// A change to an existing user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Record a new access key.
    CreateAccessKey {
        /// The key id.
        ak: String,
        /// SHA-256 (hex) of the login password the key yields.
        verifier: String,
    },
    /// Enable or disable an access key.
    SetAccessKeyEnabled {
        /// The key id.
        ak: String,
        /// Whether it works.
        enabled: bool,
    },
    /// Delete an access key.
    DeleteAccessKey {
        /// The key id.
        ak: String,
    },
    /// Record a temporary docker login.
    IssueTemporaryLogin {
        /// The login id.
        login_id: String,
        /// SHA-256 (hex) of its secret.
        verifier: String,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// Record that the user was refused.
    RecordDenial {
        /// What they tried.
        action: String,
        /// On what.
        resource: String,
    },
    /// Record that the user logged in.
    RecordLogin {
        /// Where.
        surface: Surface,
    },
    /// Record that a login with the user's name failed.
    RecordLoginFailure {
        /// Where the credentials were sent.
        surface: Surface,
        /// Why they were refused.
        reason: LoginFailure,
    },
    /// Record that a push of the user's was refused for its content.
    RecordPushRejection {
        /// The repository pushed to.
        repo: RepoPath,
        /// What was refused.
        object: Pushed,
        /// The tag or digest it was pushed under.
        reference: String,
        /// The registry error code.
        code: String,
        /// The message the client got.
        message: String,
    },
    /// Replace the password and/or disable or re-enable the user, as one
    /// change: both happen or neither does.
    Update {
        /// Verifier of the new password.
        password: Option<PasswordHash>,
        /// Whether they may log in.
        enabled: Option<bool>,
    },
}

impl AccountCommand {
    /// The account the command is about.
    pub fn account(&self) -> &AccountName {
        match self {
            Self::Create { account, .. }
            | Self::CreateUser { account, .. }
            | Self::User { account, .. } => account,
        }
    }
}

/// Decides an account command.
pub fn decide(
    state: &Loaded,
    cmd: &AccountCommand,
    fresh: Fresh,
) -> Result<Vec<Event>, DomainError> {
    match cmd {
        AccountCommand::Create {
            account,
            admin_user,
            admin_password,
        } => {
            if state.accounts.contains_key(account) {
                return Err(DomainError::AccountExists(account.clone()));
            }
            Ok(vec![
                Event::AccountCreated {
                    account_id: fresh.account_id,
                    account: account.clone(),
                },
                Event::UserCreated {
                    user_id: fresh.user_id,
                    account_id: fresh.account_id,
                    account: account.clone(),
                    user: admin_user.clone(),
                    admin: true,
                    password: admin_password.clone(),
                },
            ])
        }
        AccountCommand::CreateUser {
            account,
            user,
            admin,
            password,
        } => {
            let current = state
                .accounts
                .get(account)
                .ok_or_else(|| DomainError::AccountUnknown(account.clone()))?;
            if current.users.contains_key(user) {
                return Err(DomainError::UserExists {
                    account: account.clone(),
                    user: user.clone(),
                });
            }
            Ok(vec![Event::UserCreated {
                user_id: fresh.user_id,
                account_id: current.id,
                account: account.clone(),
                user: user.clone(),
                admin: *admin,
                password: password.clone(),
            }])
        }
        AccountCommand::User {
            account,
            user,
            change,
        } => decide_user(state.user(account, user)?, account, user, change),
    }
}

fn decide_user(
    u: &User,
    account: &AccountName,
    user: &UserName,
    change: &UserCommand,
) -> Result<Vec<Event>, DomainError> {
    let (user_id, account, user) = (u.id, account.clone(), user.clone());
    let known_key = |ak: &String| {
        u.keys
            .get(ak)
            .copied()
            .ok_or_else(|| DomainError::AccessKeyUnknown(ak.clone()))
    };
    let events = match change {
        UserCommand::CreateAccessKey { ak, verifier } => {
            if u.keys.len() >= MAX_ACCESS_KEYS {
                return Err(DomainError::Denied(format!(
                    "a user holds at most {MAX_ACCESS_KEYS} access keys; delete one first"
                )));
            }
            vec![Event::AccessKeyCreated {
                user_id,
                account,
                user,
                ak: ak.clone(),
                verifier: verifier.clone(),
            }]
        }
        UserCommand::SetAccessKeyEnabled { ak, enabled } => {
            if known_key(ak)? == *enabled {
                vec![]
            } else {
                vec![Event::AccessKeyEnabledChanged {
                    user_id,
                    account,
                    user,
                    ak: ak.clone(),
                    enabled: *enabled,
                }]
            }
        }
        UserCommand::DeleteAccessKey { ak } => {
            known_key(ak)?;
            vec![Event::AccessKeyDeleted {
                user_id,
                account,
                user,
                ak: ak.clone(),
            }]
        }
        UserCommand::IssueTemporaryLogin {
            login_id,
            verifier,
            expires_at,
        } => vec![Event::TemporaryLoginIssued {
            user_id,
            account,
            user,
            login_id: login_id.clone(),
            verifier: verifier.clone(),
            expires_at: *expires_at,
        }],
        UserCommand::RecordDenial { action, resource } => vec![Event::AccessDenied {
            user_id,
            account,
            user,
            action: action.clone(),
            resource: resource.clone(),
        }],
        UserCommand::RecordLogin { surface } => vec![Event::LoggedIn {
            user_id,
            account,
            user,
            surface: *surface,
        }],
        UserCommand::RecordLoginFailure { surface, reason } => vec![Event::LoginFailed {
            user_id,
            account,
            user,
            surface: *surface,
            reason: *reason,
        }],
        UserCommand::RecordPushRejection {
            repo,
            object,
            reference,
            code,
            message,
        } => vec![Event::PushRejected {
            user_id,
            account,
            user,
            repo: repo.clone(),
            object: *object,
            reference: reference.clone(),
            code: code.clone(),
            message: message.clone(),
        }],
        UserCommand::Update { password, enabled } => {
            let mut events = Vec::new();
            if let Some(password) = password {
                events.push(Event::UserPasswordChanged {
                    user_id,
                    account: account.clone(),
                    user: user.clone(),
                    password: password.clone(),
                });
            }
            match (u.disabled, enabled) {
                (false, Some(false)) => events.push(Event::UserDisabled {
                    user_id,
                    account,
                    user,
                }),
                (true, Some(true)) => events.push(Event::UserEnabled {
                    user_id,
                    account,
                    user,
                }),
                _ => {}
            }
            events
        }
    };
    Ok(events)
}

/// Folds an event into an account; only a creation makes one exist, and
/// only a user creation makes a user exist.
pub fn evolve(state: Option<Account>, event: &Event) -> Option<Account> {
    if let Event::AccountCreated { account_id, .. } = event {
        return Some(Account {
            id: *account_id,
            users: HashMap::new(),
            orgs: 0,
        });
    }
    let mut a = state?;
    match event {
        Event::NamespaceCreated { .. } => a.orgs += 1,
        Event::OrganizationDeleted { .. } => a.orgs = a.orgs.saturating_sub(1),
        Event::UserCreated { user_id, user, .. } => {
            a.users.insert(
                user.clone(),
                User {
                    id: *user_id,
                    keys: HashMap::new(),
                    disabled: false,
                },
            );
        }
        Event::AccessKeyCreated { user, ak, .. } => {
            if let Some(u) = a.users.get_mut(user) {
                u.keys.insert(ak.clone(), true);
            }
        }
        Event::AccessKeyEnabledChanged {
            user, ak, enabled, ..
        } => {
            if let Some(u) = a.users.get_mut(user) {
                u.keys.insert(ak.clone(), *enabled);
            }
        }
        Event::AccessKeyDeleted { user, ak, .. } => {
            if let Some(u) = a.users.get_mut(user) {
                u.keys.remove(ak);
            }
        }
        Event::UserDisabled { user, .. } | Event::UserEnabled { user, .. } => {
            if let Some(u) = a.users.get_mut(user) {
                u.disabled = matches!(event, Event::UserDisabled { .. });
            }
        }
        _ => {}
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::testing::*;

    fn on_root(change: UserCommand) -> Command {
        Command::Account(AccountCommand::User {
            account: account("acme"),
            user: user("root"),
            change,
        })
    }

    #[test]
    fn an_account_is_created_with_its_admin() {
        let create = |admin: &str| {
            Command::Account(AccountCommand::Create {
                account: account("acme"),
                admin_user: user(admin),
                admin_password: hash("a"),
            })
        };
        let events = given([]).when(create("root")).unwrap();
        assert_eq!(events, acme().to_vec());
        assert_eq!(
            given(events).when(create("other")),
            Err(DomainError::AccountExists(account("acme")))
        );
    }

    #[test]
    fn users_are_unique_inside_an_existing_account() {
        let create = |name: &str| {
            Command::Account(AccountCommand::CreateUser {
                account: account("acme"),
                user: user(name),
                admin: false,
                password: hash("p"),
            })
        };
        assert_eq!(
            given([]).when(create("bob")),
            Err(DomainError::AccountUnknown(account("acme")))
        );
        let g = given(acme());
        assert!(matches!(
            g.when(create("bob")).unwrap().as_slice(),
            [Event::UserCreated { admin: false, .. }]
        ));
        assert_eq!(
            g.when(create("root")),
            Err(DomainError::UserExists {
                account: account("acme"),
                user: user("root")
            })
        );
    }

    #[test]
    fn access_keys_are_limited_and_toggle() {
        let mut history = acme().to_vec();
        let create = |ak: &str| {
            on_root(UserCommand::CreateAccessKey {
                ak: ak.into(),
                verifier: "v".into(),
            })
        };
        for ak in ["AK1", "AK2"] {
            let e = given(history.clone()).when(create(ak)).unwrap();
            history.extend(e);
        }
        let g = given(history);
        assert!(matches!(g.when(create("AK3")), Err(DomainError::Denied(_))));
        let toggle = |enabled| {
            on_root(UserCommand::SetAccessKeyEnabled {
                ak: "AK1".into(),
                enabled,
            })
        };
        assert!(g.when(toggle(true)).unwrap().is_empty());
        assert!(matches!(
            g.when(toggle(false)).unwrap().as_slice(),
            [Event::AccessKeyEnabledChanged { enabled: false, .. }]
        ));
        assert_eq!(
            g.when(on_root(UserCommand::DeleteAccessKey { ak: "AK9".into() })),
            Err(DomainError::AccessKeyUnknown("AK9".into()))
        );
    }

    #[test]
    fn a_user_update_is_one_change() {
        let g = given(acme());
        let update = |password: Option<&str>, enabled| {
            on_root(UserCommand::Update {
                password: password.map(hash),
                enabled,
            })
        };
        let kinds = |c| {
            g.when(c)
                .unwrap()
                .iter()
                .map(Event::kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(update(Some("new"), Some(false))),
            ["UserPasswordChanged", "UserDisabled"]
        );
        assert_eq!(kinds(update(None, Some(true))), Vec::<&str>::new());
        assert_eq!(kinds(update(None, None)), Vec::<&str>::new());
    }

    #[test]
    fn every_change_to_a_missing_user_is_refused_alike() {
        let g = given(acme());
        let unknown = Err(DomainError::UserUnknown {
            account: account("acme"),
            user: user("ghost"),
        });
        for change in [
            UserCommand::DeleteAccessKey { ak: "AK".into() },
            UserCommand::RecordDenial {
                action: "pull".into(),
                resource: "x".into(),
            },
            UserCommand::Update {
                password: None,
                enabled: Some(false),
            },
        ] {
            let cmd = Command::Account(AccountCommand::User {
                account: account("acme"),
                user: user("ghost"),
                change,
            });
            assert_eq!(g.when(cmd), unknown);
        }
    }
}
