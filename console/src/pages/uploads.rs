//! The page upload: the dialog's script posts the chosen files here as one
//! multipart body, with the form token and an `Idempotency-Key` in
//! headers; the body streams on to the management API unread, and the
//! API's answer (the job, or the refusal naming the file) goes back as it
//! is, for the script to show per file.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::call::Visitor;
use crate::{csrf, encode, Console};

/// `POST /console/uploads/{ns}` (multipart `file` parts).
pub async fn upload(
    State(console): State<Console>,
    visitor: Visitor,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if visitor.new_csrf || !csrf::matches(&visitor.csrf, sent) {
        return (
            StatusCode::FORBIDDEN,
            visitor.words.t("error.csrf").to_owned(),
        )
            .into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let answer = console
        .call(
            &visitor,
            Method::POST,
            &format!("/namespaces/{}/uploads", encode(&ns)),
            body,
            content_type,
            key,
        )
        .await;
    (answer.status, Json(answer.body)).into_response()
}
