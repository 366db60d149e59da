//! Organizations (namespaces): explicit creation, access grants, and
//! repository attributes.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use berth_domain::policy::allows;
use berth_domain::{
    AccountName, Command, DomainError, Level, OrgCommand, OrgName, RepoCommand, RepoName, RepoPath,
    UserName,
};
use serde::Deserialize;
use serde_json::json;

use super::{deny, field, json_body, Answer, Member, Refusal};
use crate::auth::{self, levels};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewNamespace {
    namespace: String,
}

/// `POST /v2/manage/namespaces` `{"namespace"}`.
pub(super) async fn create(State(app): State<AppState>, member: Member, req: Request) -> Answer {
    let body: NewNamespace = json_body(req).await?;
    let org = field("namespace", &body.namespace, OrgName::parse)?;
    let command = Command::Org(OrgCommand::Create {
        org: org.clone(),
        by: berth_domain::Owner {
            account: member.principal.account.clone(),
            user: member.principal.user.clone(),
            org_quota: app.settings.org_quota,
        },
    });
    app.engine.submit(command, member.meta()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "namespace": org.as_str() })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Grantee {
    user_name: String,
    auth: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Grants {
    users: Vec<Grantee>,
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

/// Submits a grant list as one command, so it commits whole or not at all;
/// a grantee who does not exist is named with the field at fault.
async fn submit_grants(
    app: &AppState,
    member: &Member,
    command: Command,
    body: &Grants,
) -> Result<(), Refusal> {
    match app.engine.submit(command, member.meta()).await {
        Ok(_) => Ok(()),
        Err(berth_store::StoreError::Rejected(DomainError::UserUnknown { account, user })) => {
            let i = body
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

/// `POST /v2/manage/namespaces/{ns}/access` `{"users":[{"user_name","auth"}]}`
/// (manage on the organization).
pub(super) async fn grant(
    State(app): State<AppState>,
    Path(ns): Path<String>,
    member: Member,
    req: Request,
) -> Answer {
    let org = field("namespace", &ns, OrgName::parse)?;
    let (principal, lookup) = (member.principal.clone(), org.clone());
    let (level, owner) = app
        .read(move |p| {
            let owner = p.models.orgs.get(&lookup)?.and_then(|r| r.owner);
            Ok((levels::org_level(&p.models, &principal, &lookup)?, owner))
        })
        .await?;
    let Some(owner) = owner.filter(|_| allows(level, Level::Manage)) else {
        return Err(deny(&app, &member, "grant", org.as_str()).await);
    };
    let body: Grants = json_body(req).await?;
    let command = Command::Org(OrgCommand::Grant {
        org: org.clone(),
        account: owner,
        grants: grantees(&body)?,
    });
    submit_grants(&app, &member, command, &body).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "namespace": org.as_str(), "granted": body.users.len() })),
    )
        .into_response())
}

/// The repository named by a route, the caller's level on it, and the
/// account owning its organization.
async fn repo_access(
    app: &AppState,
    member: &Member,
    ns: &str,
    name: &str,
) -> Result<(RepoPath, Option<Level>, Option<AccountName>), Refusal> {
    let org = field("namespace", ns, OrgName::parse)?;
    let name = field("repo", name, RepoName::parse)?;
    let repo = RepoPath::new(org, name);
    let level = auth::repo_level(app, &member.caller, &repo).await?;
    let lookup = repo.clone();
    let owner = app
        .read(move |p| Ok(p.models.orgs.get(lookup.org())?.and_then(|r| r.owner)))
        .await?;
    Ok((repo, level, owner))
}

/// `POST /v2/manage/namespaces/{ns}/repos/{repo}/access`
/// `{"users":[{"user_name","auth"}]}` (manage on the repository). Repository
/// grants add to organization grants, never remove.
pub(super) async fn grant_repo(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    member: Member,
    req: Request,
) -> Answer {
    let (repo, level, owner) = repo_access(&app, &member, &ns, &name).await?;
    let Some(owner) = owner.filter(|_| allows(level, Level::Manage)) else {
        return Err(deny(&app, &member, "grant", &repo.to_string()).await);
    };
    let body: Grants = json_body(req).await?;
    let command = Command::Repo(RepoCommand::Grant {
        repo: repo.clone(),
        account: owner,
        grants: grantees(&body)?,
    });
    submit_grants(&app, &member, command, &body).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "namespace": repo.org().as_str(), "repo": repo.name().as_str(), "granted": body.users.len() })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RepoUpdate {
    is_public: Option<bool>,
}

/// `PATCH /v2/manage/namespaces/{ns}/repos/{repo}` `{"is_public":bool}` (edit).
pub(super) async fn update_repo(
    State(app): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    member: Member,
    req: Request,
) -> Answer {
    let (repo, level, _) = repo_access(&app, &member, &ns, &name).await?;
    if !allows(level, Level::Edit) {
        return Err(deny(&app, &member, "edit", &repo.to_string()).await);
    }
    let body: RepoUpdate = json_body(req).await?;
    if let Some(public) = body.is_public {
        let command = Command::Repo(RepoCommand::SetVisibility {
            repo: repo.clone(),
            public,
        });
        app.engine.submit(command, member.meta()).await?;
    }
    Ok(axum::Json(json!({ "namespace": repo.org().as_str(), "repo": repo.name().as_str(), "is_public": body.is_public })).into_response())
}
