//! Accounts (created by the operator) and their users (created by the
//! account's administrators).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_domain::{AccountName, Command, UserName};
use serde::Deserialize;
use serde_json::json;

use super::{deny, field, json_body, Answer, Caller};
use crate::credentials::hash_password;
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
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| {
            super::Refusal(crate::error::ApiError::Store(berth_store::StoreError::Io(
                std::io::Error::other(e),
            )))
        })
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
