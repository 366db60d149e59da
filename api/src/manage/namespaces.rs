//! Organizations (namespaces): creation, the caller's list, detail,
//! deletion when empty, and members.

use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use berth_domain::policy::{self, OrgFacts};
use berth_domain::{Command, DomainError, Level, OrgCommand, OrgName, Principal, UserName};
use berth_projections::{OrgRow, ReadModels};
use berth_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::grants::{grantable, Grants};
use super::openapi::{ErrorBody, NsAt};
use super::{commit, done, field, json_body, require, Answer, Held, Member, Refusal, Reply};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewNamespace {
    namespace: String,
}

#[utoipa::path(
    post,
    path = "/v2/manage/namespaces",
    operation_id = "namespaces_create",
    tag = "namespaces",
    summary = "Create an organization; names are unique across all accounts.",
    request_body = NewNamespace,
    responses(
        (status = 201, description = "created"),
        (status = 403, description = "over the account's quota", body = ErrorBody),
        (status = 409, description = "organization already exists", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
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
    let reply = Reply::created(json!({ "namespace": org.as_str() }));
    commit(&app, &member, command, reply).await
}

/// The caller's level on an organization, from its row.
fn level_of(
    models: &ReadModels,
    p: &Principal,
    org: &OrgName,
    row: &OrgRow,
) -> Result<Option<Level>, StoreError> {
    let facts = OrgFacts {
        owner: row.owner.clone(),
        creator: row.creator.clone(),
        grant: models.orgs.grant(org, &p.account, &p.user)?,
    };
    Ok(policy::org_level(p, &facts))
}

/// An organization and the caller's level on it; `None` when it does not
/// exist or the caller holds nothing on it (the two look the same).
async fn visible(
    app: &AppState,
    member: &Member,
    ns: &str,
    needed: Level,
    action: &str,
) -> Result<(OrgName, OrgRow, Level), Refusal> {
    let org = field("namespace", ns, OrgName::parse)?;
    let (p, lookup) = (member.principal.clone(), org.clone());
    let found = app
        .read(move |parts| {
            let Some(row) = parts.models.orgs.get(&lookup)? else {
                return Ok(None);
            };
            let level = level_of(&parts.models, &p, &lookup, &row)?;
            Ok(Some((row, level)))
        })
        .await?;
    let held = found
        .as_ref()
        .map_or(Held::Absent, |(_, level)| Held::Present(*level));
    let missing = || ApiError::Domain(DomainError::OrgUnknown(org.clone()));
    require(app, member, held, needed, action, org.as_str(), missing).await?;
    match found {
        Some((row, Some(level))) => Ok((org, row, level)),
        _ => Err(Refusal(missing())),
    }
}

fn summary(org: &OrgName, row: &OrgRow, level: Level, repos: usize) -> Value {
    json!({
        "name": org.as_str(),
        "owner": row.owner.as_ref().map(berth_domain::AccountName::as_str),
        "creator": row.creator.as_ref().map(berth_domain::UserName::as_str),
        "created_at": row.created_at.to_rfc3339(),
        "auth": level.code(),
        "num_repos": repos,
    })
}

#[utoipa::path(
    get,
    path = "/v2/manage/namespaces",
    operation_id = "namespaces_list",
    tag = "namespaces",
    summary = "The organizations the caller holds a level on, with that level and their repository count.",
    responses(
        (status = 200, description = "{\"namespaces\":[...]}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/namespaces`: the organizations the caller holds a level
/// on, by name, each with that level and its repository count.
pub(super) async fn list(State(app): State<AppState>, member: Member) -> Answer {
    let p = member.principal.clone();
    let namespaces = app
        .read(move |parts| {
            let models = &parts.models;
            let mut names = models.orgs.owned_by(&p.account)?;
            names.extend(models.orgs.granted_to(&p.account, &p.user)?);
            names.sort();
            names.dedup();
            let mut out = Vec::new();
            for org in names {
                let Some(row) = models.orgs.get(&org)? else {
                    continue;
                };
                if let Some(level) = level_of(models, &p, &org, &row)? {
                    let (_, count) = models.orgs.repositories(&org, 0)?;
                    out.push(summary(&org, &row, level, count));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(axum::Json(json!({ "namespaces": namespaces })).into_response())
}

/// Repository names an organization's detail lists.
const DETAIL_REPOS: usize = 1000;

#[utoipa::path(
    get,
    path = "/v2/manage/namespaces/{ns}",
    operation_id = "namespaces_detail",
    tag = "namespaces",
    summary = "Creator, created time, members with their levels, and repositories.",
    params(
        NsAt,
    ),
    responses(
        (status = 200, description = "the organization"),
        (status = 404, description = "unknown, or another account's", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/namespaces/{ns}`: creator, created time, members with
/// their levels, and repositories (the first 1 000 by name).
pub(super) async fn detail(
    State(app): State<AppState>,
    Path(NsAt { ns }): Path<NsAt>,
    member: Member,
) -> Answer {
    let (org, row, level) = visible(&app, &member, &ns, Level::Read, "read").await?;
    let lookup = org.clone();
    let (members, (repos, count), storage) = app
        .read(move |p| {
            let all = super::storage::org_repos(&p.models, &lookup)?;
            Ok((
                p.models.orgs.members(&lookup)?,
                p.models.orgs.repositories(&lookup, DETAIL_REPOS)?,
                p.models.storage(&all)?,
            ))
        })
        .await?;
    let mut body = summary(&org, &row, level, count);
    body["members"] = members
        .iter()
        .map(|m| json!({"account": m.account.as_str(), "user_name": m.user.as_str(), "auth": m.level.code()}))
        .collect();
    body["repos"] = repos.iter().map(|r| json!(r.as_str())).collect();
    body["storage"] = json!(storage);
    Ok(axum::Json(body).into_response())
}

#[utoipa::path(
    delete,
    path = "/v2/manage/namespaces/{ns}",
    operation_id = "namespaces_remove",
    tag = "namespaces",
    summary = "Delete an organization that holds no repository (manage).",
    params(
        NsAt,
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not manage", body = ErrorBody),
        (status = 404, description = "unknown", body = ErrorBody),
        (status = 409, description = "still holds repositories (up to ten named)", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE /v2/manage/namespaces/{ns}` (manage): only an organization that
/// holds no repository; otherwise 409 naming up to ten of them.
pub(super) async fn remove(
    State(app): State<AppState>,
    Path(NsAt { ns }): Path<NsAt>,
    member: Member,
) -> Answer {
    let (org, _, _) = visible(&app, &member, &ns, Level::Manage, "delete").await?;
    let command = Command::Org(OrgCommand::Delete {
        org,
        account: member.principal.account.clone(),
    });
    done(&app, &member, command).await
}

/// The organization a grant route names, its owner, and that the caller
/// manages it.
async fn managed(
    app: &AppState,
    member: &Member,
    ns: &str,
) -> Result<(OrgName, berth_domain::AccountName), Refusal> {
    let (org, row, _) = visible(app, member, ns, Level::Manage, "grant").await?;
    let owner = grantable(row.owner)?;
    Ok((org, owner))
}

#[utoipa::path(
    post,
    path = "/v2/manage/namespaces/{ns}/access",
    operation_id = "namespaces_grant",
    tag = "namespaces",
    summary = "Grant or change members' levels (1 read, 3 edit, 7 manage), all or none (manage).",
    request_body = Grants,
    params(
        NsAt,
    ),
    responses(
        (status = 201, description = "granted"),
        (status = 400, description = "a bad entry, named in field", body = ErrorBody),
        (status = 404, description = "an unknown grantee, named in field", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST` (or `PATCH`) `/v2/manage/namespaces/{ns}/access`
/// `{"users":[{"user_name","auth"}]}` (manage): grants or changes levels,
/// all or none.
pub(super) async fn grant(
    State(app): State<AppState>,
    Path(NsAt { ns }): Path<NsAt>,
    member: Member,
    req: Request,
) -> Answer {
    let (org, owner) = managed(&app, &member, &ns).await?;
    let body: Grants = json_body(req).await?;
    let command = Command::Org(OrgCommand::Grant {
        org: org.clone(),
        account: owner,
        grants: body.parse(Level::Manage)?,
    });
    let reply = Reply::created(json!({ "namespace": org.as_str(), "granted": body.len() }));
    body.submit(&app, &member, command, reply).await
}

#[utoipa::path(
    delete,
    path = "/v2/manage/namespaces/{ns}/access/{user}",
    operation_id = "namespaces_revoke",
    tag = "namespaces",
    summary = "Revoke a member's grant (manage).",
    params(
        NsAt,
        ("user" = String, Path, description = "user of the owning account"),
    ),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no such grant", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE /v2/manage/namespaces/{ns}/access/{user}` (manage).
pub(super) async fn revoke(
    State(app): State<AppState>,
    Path((ns, user)): Path<(String, String)>,
    member: Member,
) -> Answer {
    let (org, owner) = managed(&app, &member, &ns).await?;
    let user = field("user", &user, UserName::parse)?;
    let command = Command::Org(OrgCommand::Revoke {
        org,
        account: owner,
        user,
    });
    done(&app, &member, command).await
}
