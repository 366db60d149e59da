//! Integrity for auditors: the chain head signed with the registry's
//! Ed25519 key, and the public key to check it with, offline and later.

use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

use super::openapi::ErrorBody;
use super::{Answer, Member};
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/v2/manage/audit/checkpoint",
    operation_id = "audit_checkpoint",
    tag = "audit",
    summary = "The chain head (sequence number and hash) now, signed with the registry's Ed25519 key. Keep it outside the system; `berth log verify --checkpoint` later proves the log still extends it.",
    responses(
        (status = 200, description = "{\"seq\",\"hash\",\"time\",\"signature\"}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/audit/checkpoint`: any signed-in user.
pub(super) async fn checkpoint(State(app): State<AppState>, _member: Member) -> Answer {
    let head = app.read(|p| p.log.head()).await?;
    let signed = app.checkpoints.sign(head, chrono::Utc::now());
    Ok(axum::Json(signed).into_response())
}

#[utoipa::path(
    get,
    path = "/v2/manage/audit/public-key",
    operation_id = "audit_public_key",
    tag = "audit",
    summary = "The Ed25519 public key checkpoints are signed with, to anyone.",
    security(()),
    responses((status = 200, description = "{\"algorithm\":\"Ed25519\",\"public_key\"}")),
)]
/// `GET /v2/manage/audit/public-key`.
pub(super) async fn public_key(State(app): State<AppState>) -> Answer {
    Ok(axum::Json(json!({
        "algorithm": "Ed25519",
        "public_key": app.checkpoints.public_hex(),
    }))
    .into_response())
}
