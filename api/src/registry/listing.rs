//! Content discovery: the catalog, tag lists (both paginated with `n`,
//! `last` and a `Link` header) and the referrers API.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::policy::allows;
use berth_domain::{manifest::OCI_INDEX, Digest, Level, RepoPath};
use serde_json::json;

use super::{set, Call};
use crate::auth;
use crate::error::ApiError;

/// Largest page served, whatever `n` asks for.
const MAX_PAGE: usize = 10_000;
/// Names read per step while filtering the catalog.
const CATALOG_SCAN: usize = 512;

/// The requested page size and start.
struct Page {
    n: usize,
    last: Option<String>,
}

fn page(call: &Call) -> Result<Page, ApiError> {
    let n = match call.query.get("n") {
        None => MAX_PAGE,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::PaginationInvalid(format!("n={v:?} is not a number")))?
            .min(MAX_PAGE),
    };
    Ok(Page {
        n,
        last: call.query.get("last").cloned(),
    })
}

/// Cuts a fetched `n + 1` items down to `n` and adds the `Link` to the next
/// page when there was more.
fn paginate(mut items: Vec<String>, page: &Page, path: &str, key: &str) -> Response {
    let more = items.len() > page.n;
    items.truncate(page.n);
    let body = match key {
        "repositories" => json!({ "repositories": items }),
        name => json!({ "name": name, "tags": items }),
    };
    let mut response = axum::Json(body).into_response();
    if more {
        if let Some(last) = items.last() {
            let link = format!("<{path}?n={}&last={last}>; rel=\"next\"", page.n);
            set(response.headers_mut(), header::LINK, &link);
        }
    }
    response
}

/// `GET /v2/_catalog`: only the repositories the caller may pull, paged
/// over that filtered list.
pub(crate) async fn catalog(call: Call) -> Result<Response, ApiError> {
    let page = page(&call)?;
    let (last, n) = (page.last.clone(), page.n);
    let caller = call.caller.principal.clone();
    let names = call
        .app
        .read(move |p| {
            let mut out = Vec::new();
            let mut after = last;
            loop {
                let batch = p.models.repos.names(after.as_deref(), CATALOG_SCAN)?;
                let exhausted = batch.len() < CATALOG_SCAN;
                for name in batch {
                    after = Some(name.clone());
                    let Ok(repo) = RepoPath::parse(&name) else {
                        continue;
                    };
                    let level =
                        auth::levels::repo_level(&p.models, &p.settings, caller.as_ref(), &repo)?;
                    if allows(level, Level::Read) {
                        out.push(name);
                        if out.len() > n {
                            return Ok(out);
                        }
                    }
                }
                if exhausted {
                    return Ok(out);
                }
            }
        })
        .await?;
    Ok(paginate(names, &page, "/v2/_catalog", "repositories"))
}

/// `GET /v2/<name>/tags/list`
pub(crate) async fn tags(call: Call, repo: RepoPath) -> Result<Response, ApiError> {
    let page = page(&call)?;
    let (last, n) = (page.last.clone(), page.n);
    let lookup = repo.clone();
    let names = call
        .app
        .read(move |p| {
            let row = p.models.live_repo(&lookup)?;
            p.models.tags.names(row.id, last.as_deref(), n + 1)
        })
        .await?;
    Ok(paginate(
        names,
        &page,
        &format!("/v2/{repo}/tags/list"),
        &repo.to_string(),
    ))
}

/// `GET /v2/<name>/referrers/<digest>`, optionally filtered by `artifactType`.
pub(crate) async fn referrers(
    call: Call,
    repo: RepoPath,
    subject: Digest,
) -> Result<Response, ApiError> {
    let filter = call.query.get("artifactType").cloned();
    let rows = call
        .app
        .read(move |p| {
            let row = p.models.live_repo(&repo)?;
            p.models.manifests.referrers(row.id, &subject)
        })
        .await?;
    let manifests: Vec<_> = rows
        .into_iter()
        .filter(|r| filter.is_none() || r.artifact_type == filter)
        .map(|r| {
            let mut d = json!({
                "mediaType": r.media_type,
                "digest": r.digest.to_string(),
                "size": r.size,
            });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = json!(t);
            }
            if !r.annotations.is_empty() {
                d["annotations"] = json!(r.annotations);
            }
            d
        })
        .collect();
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    set(headers, header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        set(headers, "OCI-Filters-Applied", "artifactType");
    }
    Ok(response)
}
