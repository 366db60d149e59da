//! A user's own docker credentials: access keys (long-term) and temporary
//! logins. Secrets are returned once and only their verifiers are stored.

use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use berth_domain::{AccountCommand, Command, UserCommand};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::openapi::ErrorBody;
use super::{commit, done, json_body, Answer, Member, Reply};
use crate::auth::secrets::{login_password, random_string, verifier, AK_ALPHABET, SK_ALPHABET};
use crate::state::AppState;

/// A change to the calling user's own credentials.
fn own(member: &Member, change: UserCommand) -> Command {
    Command::Account(AccountCommand::User {
        account: member.principal.account.clone(),
        user: member.principal.user.clone(),
        change,
    })
}

#[utoipa::path(
    post,
    path = "/v2/manage/access-keys",
    operation_id = "access_keys_create",
    tag = "credentials",
    summary = "Create an access key; the secret key is shown only in this reply.",
    responses(
        (status = 201, description = "{\"ak\",\"sk\"}"),
        (status = 403, description = "already two keys", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST /v2/manage/access-keys` → `{"ak","sk"}`; the SK is never shown again.
pub(super) async fn create(State(app): State<AppState>, member: Member) -> Answer {
    let ak = random_string(20, AK_ALPHABET);
    let sk = random_string(40, SK_ALPHABET);
    let command = own(
        &member,
        UserCommand::CreateAccessKey {
            ak: ak.clone(),
            verifier: verifier(&login_password(&ak, &sk)),
        },
    );
    let reply = Reply::created(json!({ "ak": ak, "sk": sk })).replayed_as(json!({
        "ak": ak,
        "sk": null,
        "message": "the secret key was shown once, in the answer to the first request; if that answer was lost, delete this key and create another",
    }));
    commit(&app, &member, command, reply).await
}

#[utoipa::path(
    get,
    path = "/v2/manage/access-keys",
    operation_id = "access_keys_list",
    tag = "credentials",
    summary = "The caller's access keys, without secrets.",
    responses(
        (status = 200, description = "{\"access_keys\":[...]}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/access-keys`: the caller's keys, without secrets.
pub(super) async fn list(State(app): State<AppState>, member: Member) -> Answer {
    let (account, user) = (
        member.principal.account.clone(),
        member.principal.user.clone(),
    );
    let keys = app
        .read(move |p| p.models.accounts.keys_of(&account, &user))
        .await?;
    let keys: Vec<_> = keys
        .into_iter()
        .map(|(ak, row, enabled)| json!({ "ak": ak, "enabled": enabled, "created_at": row.created_at.to_rfc3339() }))
        .collect();
    Ok(axum::Json(json!({ "access_keys": keys })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Update {
    enabled: bool,
}

#[utoipa::path(
    patch,
    path = "/v2/manage/access-keys/{ak}",
    operation_id = "access_keys_update",
    tag = "credentials",
    summary = "Enable or disable one of the caller's access keys.",
    request_body = Update,
    params(
        ("ak" = String, Path, description = "access key id"),
    ),
    responses(
        (status = 200, description = "changed"),
        (status = 404, description = "no such key", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `PATCH /v2/manage/access-keys/{ak}` `{"enabled":false}`.
pub(super) async fn update(
    State(app): State<AppState>,
    Path(ak): Path<String>,
    member: Member,
    req: Request,
) -> Answer {
    let body: Update = json_body(req).await?;
    let command = own(
        &member,
        UserCommand::SetAccessKeyEnabled {
            ak: ak.clone(),
            enabled: body.enabled,
        },
    );
    let reply = Reply::ok(json!({ "ak": ak, "enabled": body.enabled }));
    commit(&app, &member, command, reply).await
}

#[utoipa::path(
    delete,
    path = "/v2/manage/access-keys/{ak}",
    operation_id = "access_keys_delete",
    tag = "credentials",
    summary = "Delete one of the caller's access keys.",
    params(
        ("ak" = String, Path, description = "access key id"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such key", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE /v2/manage/access-keys/{ak}`.
pub(super) async fn delete(
    State(app): State<AppState>,
    Path(ak): Path<String>,
    member: Member,
) -> Answer {
    let command = own(&member, UserCommand::DeleteAccessKey { ak });
    done(&app, &member, command).await
}

#[utoipa::path(
    post,
    path = "/v2/manage/utils/secret",
    operation_id = "access_keys_temporary_login",
    tag = "credentials",
    summary = "A temporary docker login (24 h) in the docker config shape.",
    responses(
        (status = 201, description = "{\"auths\",\"command\",\"expires_at\"}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST /v2/manage/utils/secret`: a temporary docker login, in the docker
/// config shape, with the ready `docker login` command and its expiry.
pub(super) async fn temporary_login(
    State(app): State<AppState>,
    member: Member,
    req: Request,
) -> Answer {
    let host = super::registry_host(&app, req.headers());
    let login_id = format!(
        "t{}",
        random_string(31, b"abcdefghijklmnopqrstuvwxyz0123456789")
    );
    let secret = random_string(48, SK_ALPHABET);
    let expires_at = Utc::now()
        + Duration::from_std(app.settings.temporary_login_ttl).unwrap_or(Duration::hours(24));
    let command = own(
        &member,
        UserCommand::IssueTemporaryLogin {
            login_id: login_id.clone(),
            verifier: verifier(&secret),
            expires_at,
        },
    );
    let user = format!("{}@{login_id}", app.settings.region);
    let auth = STANDARD.encode(format!("{user}:{secret}"));
    let reply = Reply::created(json!({
        "auths": { host.clone(): { "auth": auth } },
        "command": format!("docker login -u {user} -p {secret} {host}"),
        "expires_at": expires_at.to_rfc3339(),
    }))
    .replayed_as(json!({
        "auths": null,
        "command": null,
        "username": user,
        "expires_at": expires_at.to_rfc3339(),
        "message": "the password of this temporary login was shown once, in the answer to the first request; if that answer was lost, request another temporary login",
    }));
    commit(&app, &member, command, reply).await
}
