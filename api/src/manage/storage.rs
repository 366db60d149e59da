//! Storage usage: per repository and per organization in their details,
//! and per account here. See docs/operations.md for what the three figures
//! mean with shared layers.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use berth_domain::{OrgName, RepoPath};
use berth_projections::ReadModels;
use berth_store::StoreError;
use serde_json::json;

use super::openapi::ErrorBody;
use super::{Answer, Member};
use crate::state::AppState;

/// Every repository of an organization.
pub(super) fn org_repos(models: &ReadModels, org: &OrgName) -> Result<Vec<RepoPath>, StoreError> {
    let (names, _) = models.orgs.repositories(org, usize::MAX)?;
    Ok(names
        .into_iter()
        .map(|n| RepoPath::new(org.clone(), n))
        .collect())
}

#[utoipa::path(
    get,
    path = "/v2/manage/accounts/{account}/storage",
    operation_id = "accounts_storage",
    tag = "accounts",
    summary = "What an account's organizations store: logical, stored and unique bytes, in all and per organization (its admins, the operator).",
    params(("account" = String, Path, description = "account")),
    responses(
        (status = 200, description = "{\"account\",\"logical_bytes\",\"stored_bytes\",\"unique_bytes\",\"namespaces\":[...]}"),
        (status = 403, description = "not an admin of this account", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/accounts/{account}/storage`
pub(super) async fn account(
    State(app): State<AppState>,
    Path(account): Path<String>,
    member: Member,
) -> Answer {
    let account = super::accounts::administered(&app, &member, &account, "read-storage").await?;
    let lookup = account.clone();
    let (total, per_org) = app
        .read(move |p| {
            let mut all = Vec::new();
            let mut per_org = Vec::new();
            for org in p.models.orgs.owned_by(&lookup)? {
                let repos = org_repos(&p.models, &org)?;
                per_org.push(json!({
                    "namespace": org.as_str(),
                    "storage": p.models.storage(&repos)?,
                }));
                all.extend(repos);
            }
            Ok((p.models.storage(&all)?, per_org))
        })
        .await?;
    let mut body = json!({ "account": account.as_str(), "namespaces": per_org });
    body["logical_bytes"] = json!(total.logical_bytes);
    body["stored_bytes"] = json!(total.stored_bytes);
    body["unique_bytes"] = json!(total.unique_bytes);
    Ok(axum::Json(body).into_response())
}
