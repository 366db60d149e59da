//! Shares (`access-domains`): a private image made pullable by another
//! account until a date or forever, and the two views of them, "shared by
//! me" and "shared with me".

use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use berth_domain::{AccountName, Command, Deadline, Level, RepoCommand, ShareNote};
use berth_projections::ShareRow;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::openapi::{ErrorBody, RepoAt};
use super::repos::held;
use super::{commit, done, field, json_body, registry_host, Answer, Member, Query, Refusal, Reply};
use crate::error::ApiError;
use crate::state::AppState;

/// A share as the API shows it, with its status at `now`.
fn share(host: &str, row: &ShareRow, now: DateTime<Utc>) -> Value {
    json!({
        "namespace": row.repo.org().as_str(),
        "repo": row.repo.name().as_str(),
        "path": format!("{host}/{}", row.repo),
        "sharer": row.owner.as_str(),
        "access_domain": row.with.as_str(),
        "permit": "read",
        "deadline": row.deadline.label(),
        "status": if row.deadline.holds_at(now) { "valid" } else { "expired" },
        "description": row.description.as_str(),
        "created_at": row.created_at.to_rfc3339(),
        "updated_at": row.updated_at.to_rfc3339(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewShare {
    access_domain: String,
    #[serde(default = "read")]
    permit: String,
    deadline: String,
    #[serde(default)]
    description: String,
}

fn read() -> String {
    "read".into()
}

#[utoipa::path(
    post,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/access-domains",
    operation_id = "shares_create",
    tag = "shares",
    summary = "Share a private image with another account, pull only, until a date (end of that day, UTC) or forever (manage).",
    request_body = NewShare,
    params(
        RepoAt,
    ),
    responses(
        (status = 201, description = "shared"),
        (status = 400, description = "public image, own account or a bad field", body = ErrorBody),
        (status = 404, description = "unknown account", body = ErrorBody),
        (status = 409, description = "already shared with that account", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST …/repos/{repo}/access-domains`
/// `{"access_domain","permit":"read","deadline":"YYYY-MM-DD"|"forever","description"?}`
/// (manage): a pull-only share with another account.
pub(super) async fn create(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    req: Request,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Manage, "share").await?;
    let body: NewShare = json_body(req).await?;
    let with = field("access_domain", &body.access_domain, AccountName::parse)?;
    if body.permit != "read" {
        return Err(Refusal(ApiError::Invalid {
            field: "permit".into(),
            message: "a share is pull only: permit must be \"read\"".into(),
        }));
    }
    let deadline = field("deadline", &body.deadline, Deadline::parse)?;
    let description = field("description", &body.description, ShareNote::parse)?;
    let owner = target
        .owner
        .clone()
        .ok_or_else(|| Refusal(target.missing()))?;
    let command = Command::Repo(RepoCommand::Share {
        repo: target.repo.clone(),
        owner,
        with: with.clone(),
        deadline,
        description,
    });
    let reply = Reply::created(json!({
        "namespace": target.repo.org().as_str(),
        "repo": target.repo.name().as_str(),
        "access_domain": with.as_str(),
        "permit": "read",
        "deadline": deadline.label(),
    }));
    commit(&app, &member, command, reply).await
}

#[utoipa::path(
    get,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/access-domains",
    operation_id = "shares_list",
    tag = "shares",
    summary = "The image's shares with their status (manage).",
    params(
        RepoAt,
    ),
    responses(
        (status = 200, description = "{\"access_domains\":[...]}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET …/repos/{repo}/access-domains` (manage): the image's shares.
pub(super) async fn list(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    req: Request,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Manage, "list-shares").await?;
    let host = registry_host(&app, req.headers());
    let repo = target.repo.clone();
    let rows = app
        .read(move |p| match p.models.repos.get(&repo)? {
            Some(row) => p.models.shares.of_repo(row.id),
            None => Ok(Vec::new()),
        })
        .await?;
    let now = app.settings.clock.now();
    let shares: Vec<Value> = rows.iter().map(|r| share(&host, r, now)).collect();
    Ok(axum::Json(json!({ "access_domains": shares })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ShareUpdate {
    deadline: Option<String>,
    description: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/access-domains/{account}",
    operation_id = "shares_update",
    tag = "shares",
    summary = "Change a share's deadline or description (manage).",
    request_body = ShareUpdate,
    params(
        RepoAt,
        ("account" = String, Path, description = "the account it is shared with"),
    ),
    responses(
        (status = 200, description = "changed"),
        (status = 404, description = "no such share", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `PATCH …/repos/{repo}/access-domains/{account}` `{"deadline"?,"description"?}`
/// (manage).
pub(super) async fn update(
    State(app): State<AppState>,
    Path((ns, name, account)): Path<(String, String, String)>,
    member: Member,
    req: Request,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Manage, "share").await?;
    let with = field("access_domain", &account, AccountName::parse)?;
    let body: ShareUpdate = json_body(req).await?;
    let command = Command::Repo(RepoCommand::ChangeShare {
        repo: target.repo,
        with: with.clone(),
        deadline: body
            .deadline
            .map(|d| field("deadline", &d, Deadline::parse))
            .transpose()?,
        description: body
            .description
            .map(|d| field("description", &d, ShareNote::parse))
            .transpose()?,
    });
    let reply = Reply::ok(json!({ "access_domain": with.as_str() }));
    commit(&app, &member, command, reply).await
}

#[utoipa::path(
    delete,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/access-domains/{account}",
    operation_id = "shares_revoke",
    tag = "shares",
    summary = "End a share at once (manage).",
    params(
        RepoAt,
        ("account" = String, Path, description = "the account it is shared with"),
    ),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no such share", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE …/repos/{repo}/access-domains/{account}` (manage): ends the
/// share at once.
pub(super) async fn revoke(
    State(app): State<AppState>,
    Path((ns, name, account)): Path<(String, String, String)>,
    member: Member,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Manage, "share").await?;
    let with = field("access_domain", &account, AccountName::parse)?;
    let command = Command::Repo(RepoCommand::Unshare {
        repo: target.repo,
        with,
    });
    done(&app, &member, command).await
}

#[utoipa::path(
    get,
    path = "/v2/manage/shared-repositories",
    operation_id = "shares_shared_repositories",
    tag = "shares",
    summary = "What the caller's account shared (center=self, the default) or what was shared with it (center=thirdparty).",
    params(
        ("center" = Option<String>, Query, description = "self or thirdparty"),
    ),
    responses(
        (status = 200, description = "{\"repositories\":[...]}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/shared-repositories?center=self|thirdparty`: what the
/// caller's account shared (`self`, the default) or what was shared with
/// it (`thirdparty`), each with its status.
pub(super) async fn shared_repositories(
    State(app): State<AppState>,
    member: Member,
    req: Request,
) -> Answer {
    let q = Query::parse(req.uri().query(), &["center"])?;
    let by_me = q
        .parsed(
            "center",
            |c| match c {
                "self" => Some(true),
                "thirdparty" => Some(false),
                _ => None,
            },
            "self or thirdparty",
        )?
        .unwrap_or(true);
    let host = registry_host(&app, req.headers());
    let account = member.principal.account.clone();
    let rows = app
        .read(move |p| {
            if by_me {
                p.models.shares.shared_by(&account)
            } else {
                p.models.shares.shared_with(&account)
            }
        })
        .await?;
    let now = app.settings.clock.now();
    let repos: Vec<Value> = rows.iter().map(|r| share(&host, r, now)).collect();
    Ok(axum::Json(json!({ "repositories": repos })).into_response())
}
