//! Organizations (namespaces): explicit creation, access grants, and
//! repository attributes.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_domain::policy::allows;
use berth_domain::{AccountName, Action, Command, Level, OrgName, RepoName, RepoPath, UserName};
use serde::Deserialize;
use serde_json::json;

use super::{deny, field, json_body, Answer, Caller, Refusal};
use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct NewNamespace {
    namespace: String,
}

/// `POST /v2/manage/namespaces` `{"namespace"}`.
pub(super) async fn create(State(app): State<AppState>, caller: Caller, req: Request) -> Answer {
    let body: NewNamespace = json_body(req).await?;
    let org = field("namespace", &body.namespace, OrgName::parse)?;
    let command = Command::CreateNamespace {
        org: org.clone(),
        by: berth_domain::Owner {
            account: caller.principal.account.clone(),
            user: caller.principal.user.clone(),
            org_quota: app.settings.org_quota,
        },
    };
    app.engine.submit(command, caller.meta).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "namespace": org.as_str() })),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct Grantee {
    user_name: String,
    auth: u64,
}

#[derive(Deserialize)]
pub(super) struct Grants {
    users: Vec<Grantee>,
}

/// `POST /v2/manage/namespaces/{ns}/access` `{"users":[{"user_name","auth"}]}`
/// (manage on the organization).
pub(super) async fn grant(
    State(app): State<AppState>,
    Path(ns): Path<String>,
    caller: Caller,
    req: Request,
) -> Answer {
    let org = field("namespace", &ns, OrgName::parse)?;
    let (principal, lookup) = (caller.principal.clone(), org.clone());
    let (level, owner) = app
        .read(move |p| {
            let owner = p.models.orgs.get(&lookup)?.and_then(|r| r.owner);
            Ok((auth::org_level(&p.models, &principal, &lookup)?, owner))
        })
        .await?;
    let Some(owner) = owner.filter(|_| level == Some(Level::Manage)) else {
        return Err(deny(&app, &caller, "grant", org.as_str()).await);
    };
    let body: Grants = json_body(req).await?;
    let commands: Vec<Command> = grantees(&body)?
        .into_iter()
        .map(|(user, level)| Command::GrantOrgAccess {
            org: org.clone(),
            account: owner.clone(),
            user,
            level,
        })
        .collect();
    for command in commands {
        app.engine.submit(command, caller.meta.clone()).await?;
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "namespace": org.as_str(), "granted": body.users.len() })),
    )
        .into_response())
}

/// The users and levels of a grant request, each checked with the field
/// at fault named.
fn grantees(body: &Grants) -> Result<Vec<(UserName, Level)>, Refusal> {
    body.users
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let user = field(
                &format!("users[{i}].user_name"),
                &g.user_name,
                UserName::parse,
            )?;
            let level = Level::from_code(g.auth).ok_or_else(|| {
                Refusal(ApiError::Invalid {
                    field: format!("users[{i}].auth"),
                    message: "auth must be 1 (read), 3 (edit) or 7 (manage)".into(),
                })
            })?;
            Ok((user, level))
        })
        .collect()
}

/// The repository named by a route, the caller's level on it, and the
/// account owning its organization.
async fn repo_access(
    app: &AppState,
    caller: &Caller,
    ns: &str,
    name: &str,
) -> Result<(RepoPath, Option<Level>, Option<AccountName>), Refusal> {
    let org = field("namespace", ns, OrgName::parse)?;
    let name = field("repo", name, RepoName::parse)?;
    let repo = RepoPath::new(org, name);
    let (principal, lookup) = (caller.principal.clone(), repo.clone());
    let (level, owner) = app
        .read(move |p| {
            let owner = p.models.orgs.get(lookup.org())?.and_then(|r| r.owner);
            let level = auth::repo_level(&p.models, &p.settings, Some(&principal), &lookup)?;
            Ok((level, owner))
        })
        .await?;
    Ok((repo, level, owner))
}

/// `POST /v2/manage/namespaces/{ns}/repos/{repo}/access`
/// `{"users":[{"user_name","auth"}]}` (manage on the repository). Repository
/// grants add to organization grants, never remove.
pub(super) async fn grant_repo(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    caller: Caller,
    req: Request,
) -> Answer {
    let (repo, level, owner) = repo_access(&app, &caller, &ns, &name).await?;
    let Some(owner) = owner.filter(|_| allows(level, Action::Delete)) else {
        return Err(deny(&app, &caller, "grant", &repo.to_string()).await);
    };
    let body: Grants = json_body(req).await?;
    for (user, level) in grantees(&body)? {
        let command = Command::GrantRepoAccess {
            repo: repo.clone(),
            account: owner.clone(),
            user,
            level,
        };
        app.engine.submit(command, caller.meta.clone()).await?;
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "namespace": repo.org().as_str(), "repo": repo.name().as_str(), "granted": body.users.len() })),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct RepoUpdate {
    is_public: Option<bool>,
}

/// `PATCH /v2/manage/namespaces/{ns}/repos/{repo}` `{"is_public":bool}` (edit).
pub(super) async fn update_repo(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    caller: Caller,
    req: Request,
) -> Answer {
    let (repo, level, _) = repo_access(&app, &caller, &ns, &name).await?;
    if !allows(level, Action::Push) {
        return Err(deny(&app, &caller, "edit", &repo.to_string()).await);
    }
    let body: RepoUpdate = json_body(req).await?;
    if let Some(public) = body.is_public {
        app.engine
            .submit(
                Command::SetVisibility {
                    repo: repo.clone(),
                    public,
                },
                caller.meta,
            )
            .await?;
    }
    Ok(axum::Json(json!({ "namespace": repo.org().as_str(), "repo": repo.name().as_str(), "is_public": body.is_public })).into_response())
}
