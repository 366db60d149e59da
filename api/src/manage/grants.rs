//! Grant lists, the same for an organization and for one repository: the
//! body, its checks (each entry's fields named), and its submission as one
//! command.

use berth_domain::{AccountName, Command, DomainError, Level, UserName};
use berth_store::{Content, StoreError};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{field, Answer, Member, Refusal, Reply};
use crate::error::ApiError;
use crate::state::AppState;

/// The account whose users may be granted access: the owner. An
/// organization from before accounts has none, and no members.
pub(super) fn grantable(owner: Option<AccountName>) -> Result<AccountName, Refusal> {
    owner.ok_or_else(|| {
        Refusal(ApiError::Domain(DomainError::Denied(
            "this organization predates accounts and has no members".into(),
        )))
    })
}

/// One grantee.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Grantee {
    user_name: String,
    auth: u64,
}

/// `{"users":[{"user_name","auth"}]}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Grants {
    users: Vec<Grantee>,
}

impl Grants {
    /// How many grantees the request names.
    pub(super) fn len(&self) -> usize {
        self.users.len()
    }

    /// The users and levels, each checked with the field at fault named. A
    /// level above the caller's own is not theirs to give.
    pub(super) fn parse(&self, own: Level) -> Result<Vec<(UserName, Level)>, Refusal> {
        self.users
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let user = field(
                    &format!("users[{i}].user_name"),
                    &g.user_name,
                    UserName::parse,
                )?;
                let invalid = |message: String| {
                    Refusal(ApiError::Invalid {
                        field: format!("users[{i}].auth"),
                        message,
                    })
                };
                let level = Level::from_code(g.auth).ok_or_else(|| {
                    invalid("auth must be 1 (read), 3 (edit) or 7 (manage)".into())
                })?;
                if level > own {
                    return Err(invalid(format!(
                        "auth {} is above your own level here ({})",
                        level.code(),
                        own.code()
                    )));
                }
                Ok((user, level))
            })
            .collect()
    }

    /// Submits the grant command: it commits whole or not at all, and a
    /// grantee who does not exist is named with the field at fault.
    pub(super) async fn submit(
        &self,
        app: &AppState,
        member: &Member,
        command: Command,
        reply: Reply,
    ) -> Answer {
        match member.commit(app, command, Content::new(), reply).await {
            Ok(done) => Ok(done.answer),
            Err(StoreError::Rejected(DomainError::UserUnknown { account, user })) => {
                let i = self
                    .users
                    .iter()
                    .position(|g| g.user_name == user.as_str())
                    .unwrap_or_default();
                Err(Refusal(ApiError::Unknown {
                    field: format!("users[{i}].user_name"),
                    message: format!(
                        "user {user} is not known in account {account}; no grant of this request was made"
                    ),
                }))
            }
            Err(e) => Err(e.into()),
        }
    }
}
