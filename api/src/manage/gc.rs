//! `POST /v2/manage/gc`: the operator runs garbage collection now, or asks
//! what it would remove.

use axum::extract::{Request, State};
use axum::response::IntoResponse;

use super::openapi::ErrorBody;
use super::{deny, Answer, Member, Query};
use crate::collector::collect;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/v2/manage/gc",
    operation_id = "gc_run",
    tag = "operations",
    summary = "Run garbage collection now: remove blob files, stored manifests and abandoned upload sessions nothing references (the operator). Waits for a run already in progress.",
    params(("dry_run" = Option<bool>, Query, description = "true: list what would go, remove nothing, record nothing")),
    responses(
        (status = 200, description = "{\"run\",\"dry_run\",\"blobs\":[{\"id\",\"bytes\"}],\"manifests\":[...],\"uploads\":[...],\"bytes\",\"seconds\",\"events\":[seq]}"),
        (status = 400, description = "dry_run is not true or false", body = ErrorBody),
        (status = 403, description = "not the operator", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST /v2/manage/gc[?dry_run=true]` (operator only).
pub(super) async fn run(State(app): State<AppState>, member: Member, req: Request) -> Answer {
    let q = Query::parse(req.uri().query(), &["dry_run"])?;
    let dry_run = q
        .parsed("dry_run", |v| v.parse::<bool>().ok(), "true or false")?
        .unwrap_or(false);
    if !member.principal.is_operator() {
        return Err(deny(&app, &member, "gc", "registry").await);
    }
    let report = collect(&app, dry_run, member.meta()).await?;
    Ok(axum::Json(report).into_response())
}
