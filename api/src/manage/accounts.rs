//! Accounts (created by the operator) and their users (created by the
//! account's administrators).

use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use berth_domain::policy::{manages_account, may_update_user};
use berth_domain::{AccountCommand, AccountName, Command, UserCommand, UserName};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::openapi::ErrorBody;
use super::{commit, deny, field, json_body, Answer, Member, Refusal, Reply};
use crate::auth::passwords::hash_password_off_thread;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    name: String,
    admin_user: String,
    admin_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

/// Shortest password accepted.
const MIN_PASSWORD: usize = 8;

fn password_field(name: &str, value: &str) -> Result<(), super::Refusal> {
    if value.chars().count() < MIN_PASSWORD {
        return Err(super::Refusal(crate::error::ApiError::Invalid {
            field: name.to_owned(),
            message: format!("password must be at least {MIN_PASSWORD} characters"),
        }));
    }
    Ok(())
}

async fn hash(password: String) -> Result<berth_domain::PasswordHash, super::Refusal> {
    Ok(hash_password_off_thread(password).await?)
}

#[utoipa::path(
    post,
    path = "/v2/manage/accounts",
    operation_id = "accounts_create_account",
    tag = "accounts",
    summary = "Create an account with its first admin (operator only).",
    request_body = NewAccount,
    responses(
        (status = 201, description = "created"),
        (status = 403, description = "not the operator", body = ErrorBody),
        (status = 409, description = "the account exists", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST /v2/manage/accounts` (operator only).
pub(super) async fn create_account(
    State(app): State<AppState>,
    member: Member,
    req: Request,
) -> Answer {
    if !member.principal.is_operator() {
        return Err(deny(&app, &member, "create-account", "accounts").await);
    }
    let body: NewAccount = json_body(req).await?;
    let account = field("name", &body.name, AccountName::parse)?;
    let admin_user = field("admin_user", &body.admin_user, UserName::parse)?;
    password_field("admin_password", &body.admin_password)?;
    let command = Command::Account(AccountCommand::Create {
        account: account.clone(),
        admin_user,
        admin_password: hash(body.admin_password).await?,
    });
    let reply = Reply::created(json!({ "name": account.as_str() }));
    commit(&app, &member, command, reply).await
}

#[utoipa::path(
    post,
    path = "/v2/manage/accounts/{account}/users",
    operation_id = "accounts_create_user",
    tag = "accounts",
    summary = "Add a user to an account (its admins, the operator).",
    request_body = NewUser,
    params(
        ("account" = String, Path, description = "account"),
    ),
    responses(
        (status = 201, description = "created"),
        (status = 403, description = "not an admin of this account", body = ErrorBody),
        (status = 409, description = "the user exists", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST /v2/manage/accounts/{account}/users` (that account's admins, or the operator).
pub(super) async fn create_user(
    State(app): State<AppState>,
    Path(account): Path<String>,
    member: Member,
    req: Request,
) -> Answer {
    let account = administered(&app, &member, &account, "create-user").await?;
    let body: NewUser = json_body(req).await?;
    let user = field("name", &body.name, UserName::parse)?;
    password_field("password", &body.password)?;
    let command = Command::Account(AccountCommand::CreateUser {
        account: account.clone(),
        user: user.clone(),
        admin: body.admin,
        password: hash(body.password).await?,
    });
    let reply = Reply::created(
        json!({ "account": account.as_str(), "name": user.as_str(), "admin": body.admin }),
    );
    commit(&app, &member, command, reply).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserUpdate {
    password: Option<String>,
    enabled: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/v2/manage/accounts/{account}/users/{user}",
    operation_id = "accounts_update_user",
    tag = "accounts",
    summary = "Change a password and/or enable or disable a user, as one change.",
    request_body = UserUpdate,
    params(
        ("account" = String, Path, description = "account"),
        ("user" = String, Path, description = "user"),
    ),
    responses(
        (status = 200, description = "changed"),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `PATCH /v2/manage/accounts/{account}/users/{user}` `{"password"?,"enabled"?}`:
/// users change their own password; the account's admins (and the operator)
/// change anyone's and disable or re-enable users, but not themselves. Both
/// changes are one command: both happen or neither does.
pub(super) async fn update_user(
    State(app): State<AppState>,
    Path((account, user)): Path<(String, String)>,
    member: Member,
    req: Request,
) -> Answer {
    let account = field("account", &account, AccountName::parse)?;
    let user = field("user", &user, UserName::parse)?;
    let body: UserUpdate = json_body(req).await?;
    let allowed = may_update_user(
        &member.principal,
        &account,
        &user,
        body.password.is_some(),
        body.enabled.is_some(),
    );
    if !allowed {
        let resource = format!("accounts/{account}/users/{user}");
        return Err(deny(&app, &member, "update-user", &resource).await);
    }
    let password = match body.password {
        Some(password) => {
            password_field("password", &password)?;
            Some(hash(password).await?)
        }
        None => None,
    };
    let command = Command::Account(AccountCommand::User {
        account: account.clone(),
        user: user.clone(),
        change: UserCommand::Update {
            password,
            enabled: body.enabled,
        },
    });
    let reply = Reply::ok(
        json!({ "account": account.as_str(), "name": user.as_str(), "enabled": body.enabled }),
    );
    commit(&app, &member, command, reply).await
}

#[utoipa::path(
    get,
    path = "/v2/manage/accounts/{account}/users",
    operation_id = "accounts_list_users",
    tag = "accounts",
    summary = "An account's users, with whether each administers it and is enabled (its admins, the operator).",
    params(("account" = String, Path, description = "account")),
    responses(
        (status = 200, description = "{\"users\":[{\"name\",\"admin\",\"enabled\",\"created_at\"}]}"),
        (status = 403, description = "not an admin of the account", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/accounts/{account}/users` (its admins, the operator).
pub(super) async fn list_users(
    State(app): State<AppState>,
    Path(account): Path<String>,
    member: Member,
) -> Answer {
    let account = administered(&app, &member, &account, "list-users").await?;
    let users = app
        .read(move |p| p.models.accounts.users_of(&account))
        .await?;
    let users: Vec<_> = users
        .into_iter()
        .map(|(name, row, enabled)| {
            json!({
                "name": name.as_str(),
                "admin": row.admin,
                "enabled": enabled,
                "created_at": row.created_at.to_rfc3339(),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "users": users })).into_response())
}

/// The account a route names, which the caller must administer (the
/// operator administers every one); refused and recorded otherwise.
pub(super) async fn administered(
    app: &AppState,
    member: &Member,
    account: &str,
    action: &str,
) -> Result<AccountName, Refusal> {
    let account = field("account", account, AccountName::parse)?;
    if !manages_account(&member.principal, &account) {
        return Err(deny(app, member, action, &format!("accounts/{account}")).await);
    }
    Ok(account)
}
