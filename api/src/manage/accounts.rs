//! Accounts (created by the operator) and their users (created by the
//! account's administrators).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_domain::{AccountName, Command, UserName};
use serde::Deserialize;
use serde_json::json;

use super::{deny, field, json_body, Answer, Caller};
use crate::credentials::hash_password_off_thread;
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct NewAccount {
    name: String,
    admin_user: String,
    admin_password: String,
}

#[derive(Deserialize)]
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

/// `POST /v2/manage/accounts` (operator only).
pub(super) async fn create_account(
    State(app): State<AppState>,
    caller: Caller,
    req: Request,
) -> Answer {
    if !caller.principal.is_operator() {
        return Err(deny(&app, &caller, "create-account", "accounts").await);
    }
    let body: NewAccount = json_body(req).await?;
    let account = field("name", &body.name, AccountName::parse)?;
    let admin_user = field("admin_user", &body.admin_user, UserName::parse)?;
    password_field("admin_password", &body.admin_password)?;
    let command = Command::CreateAccount {
        account: account.clone(),
        admin_user,
        admin_password: hash(body.admin_password).await?,
    };
    app.engine.submit(command, caller.meta).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "name": account.as_str() })),
    )
        .into_response())
}

/// `POST /v2/manage/accounts/{account}/users` (that account's admins, or the operator).
pub(super) async fn create_user(
    State(app): State<AppState>,
    Path(account): Path<String>,
    caller: Caller,
    req: Request,
) -> Answer {
    let account = field("account", &account, AccountName::parse)?;
    let p = &caller.principal;
    if !(p.is_operator() || (p.account_admin && p.account == account)) {
        return Err(deny(&app, &caller, "create-user", &format!("accounts/{account}")).await);
    }
    let body: NewUser = json_body(req).await?;
    let user = field("name", &body.name, UserName::parse)?;
    password_field("password", &body.password)?;
    let command = Command::CreateUser {
        account: account.clone(),
        user: user.clone(),
        admin: body.admin,
        password: hash(body.password).await?,
    };
    app.engine.submit(command, caller.meta).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(
            json!({ "account": account.as_str(), "name": user.as_str(), "admin": body.admin }),
        ),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct UserUpdate {
    password: Option<String>,
    enabled: Option<bool>,
}

/// `PATCH /v2/manage/accounts/{account}/users/{user}` `{"password"?,"enabled"?}`:
/// users change their own password; the account's admins (and the operator)
/// change anyone's and disable or re-enable users, but not themselves.
pub(super) async fn update_user(
    State(app): State<AppState>,
    Path((account, user)): Path<(String, String)>,
    caller: Caller,
    req: Request,
) -> Answer {
    let account = field("account", &account, AccountName::parse)?;
    let user = field("user", &user, UserName::parse)?;
    let p = &caller.principal;
    let is_self = p.account == account && p.user == user;
    let admin = p.is_operator() || (p.account_admin && p.account == account);
    let body: UserUpdate = json_body(req).await?;
    let resource = format!("accounts/{account}/users/{user}");
    let may_set_password = is_self || admin;
    let may_set_enabled = admin && !is_self;
    if (body.password.is_some() && !may_set_password)
        || (body.enabled.is_some() && !may_set_enabled)
    {
        return Err(deny(&app, &caller, "update-user", &resource).await);
    }
    if let Some(password) = body.password {
        password_field("password", &password)?;
        let command = Command::ChangePassword {
            account: account.clone(),
            user: user.clone(),
            password: hash(password).await?,
        };
        app.engine.submit(command, caller.meta.clone()).await?;
    }
    if let Some(enabled) = body.enabled {
        let command = Command::SetUserEnabled {
            account: account.clone(),
            user: user.clone(),
            enabled,
        };
        app.engine.submit(command, caller.meta.clone()).await?;
    }
    Ok(axum::Json(
        json!({ "account": account.as_str(), "name": user.as_str(), "enabled": body.enabled }),
    )
    .into_response())
}
