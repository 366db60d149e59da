//! The audit query: records filtered by time, account, user, organization,
//! repository, action, result and client address, newest first with a
//! cursor, or a whole filtered range exported as NDJSON or CSV, streamed
//! from the log as it is read.

use std::convert::Infallible;
use std::ops::ControlFlow;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::policy::{audit_scope, AuditScope};
use berth_projections::{record_json, AuditOrder, Export, ExportFormat, Filter, FILTER_PARAMS};
use bytes::Bytes;
use serde_json::json;

use super::openapi::ErrorBody;
use super::{deny, Answer, Member, Query, Refusal};
use crate::error::ApiError;
use crate::state::AppState;

/// Records on a page when `limit` is not given.
const PAGE: usize = 100;

/// How the answer is written: an export format, or `None` for one JSON
/// page with a cursor. `format=` wins; else the `Accept` header; else a
/// page.
fn export_format(q: &Query, headers: &HeaderMap) -> Result<Option<ExportFormat>, Refusal> {
    if let Some(f) = q.parsed(
        "format",
        |f| match f {
            "json" => Some(None),
            "ndjson" => Some(Some(ExportFormat::Ndjson)),
            "csv" => Some(Some(ExportFormat::Csv)),
            _ => None,
        },
        "json, ndjson or csv",
    )? {
        return Ok(f);
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or_default();
    Ok(if accept.contains("application/x-ndjson") {
        Some(ExportFormat::Ndjson)
    } else if accept.contains("text/csv") {
        Some(ExportFormat::Csv)
    } else {
        None
    })
}

#[utoipa::path(
    get,
    path = "/v2/manage/audit/events",
    operation_id = "audit_events",
    tag = "audit",
    summary = "Audit records: every event of the log with its actor, credential, client address, request id, action, resource and result, refusals and failures included. Newest first with a cursor, or the whole filtered range as NDJSON or CSV (`format=` or `Accept`), streamed. The operator reads all; an account's administrators read the records about their account; others none.",
    params(
        ("from" = Option<String>, Query, description = "records at or after this RFC 3339 time"),
        ("to" = Option<String>, Query, description = "records at or before this RFC 3339 time"),
        ("account" = Option<String>, Query, description = "records about this account: its users' actions, its organizations, shares with it"),
        ("user" = Option<String>, Query, description = "records of or about this user, `account/user`"),
        ("namespace" = Option<String>, Query, description = "records about this organization or its repositories"),
        ("repo" = Option<String>, Query, description = "records about this repository of `namespace`"),
        ("action" = Option<String>, Query, description = "an event type: TagPointed, LoginFailed, PushRejected, AccessDenied, ..."),
        ("result" = Option<String>, Query, description = "ok, denied or failed"),
        ("client_addr" = Option<String>, Query, description = "records of requests from this IP address"),
        ("order" = Option<String>, Query, description = "newest (default) or oldest first"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100 (pages only)"),
        ("cursor" = Option<u64>, Query, description = "next_cursor of the previous page"),
        ("format" = Option<String>, Query, description = "json (a page, default), ndjson or csv (the whole range, streamed)"),
    ),
    responses(
        (status = 200, description = "{\"events\":[record...],\"next_cursor\"}; or NDJSON / CSV records"),
        (status = 400, description = "a bad parameter, named in field", body = ErrorBody),
        (status = 403, description = "not the operator or an account administrator", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/audit/events`.
pub(super) async fn events(State(app): State<AppState>, member: Member, req: Request) -> Answer {
    let known: Vec<&str> = FILTER_PARAMS
        .into_iter()
        .chain(["order", "limit", "cursor", "format"])
        .collect();
    let q = Query::parse(req.uri().query(), &known)?;
    let filter = Filter::parse(|name| q.get(name)).map_err(|e| {
        Refusal(ApiError::Invalid {
            field: e.field.into(),
            message: format!("{} {}", e.field, e.message),
        })
    })?;
    let format = export_format(&q, req.headers())?;
    let order = q
        .parsed(
            "order",
            |o| match o {
                "newest" => Some(AuditOrder::NewestFirst),
                "oldest" => Some(AuditOrder::OldestFirst),
                _ => None,
            },
            "newest or oldest",
        )?
        .unwrap_or(AuditOrder::NewestFirst);
    let cursor = q.parsed(
        "cursor",
        |c| c.parse::<u64>().ok(),
        "a cursor this route returned",
    )?;
    if format.is_some() && q.get("limit").is_some() {
        return Err(Refusal(ApiError::Invalid {
            field: "limit".into(),
            message: "an export holds the whole filtered range; limit applies to pages only".into(),
        }));
    }
    let limit = q.limit(PAGE)?;
    let Some(scope) = audit_scope(&member.principal) else {
        return Err(deny(&app, &member, "audit", "/v2/manage/audit/events").await);
    };
    match format {
        None => page(&app, filter, scope, order, cursor, limit).await,
        Some(format) => {
            let job = Export {
                filter,
                scope,
                order,
                cursor,
                limit: usize::MAX,
                format,
            };
            Ok(export(&app, job))
        }
    }
}

async fn page(
    app: &AppState,
    filter: Filter,
    scope: AuditScope,
    order: AuditOrder,
    cursor: Option<u64>,
    limit: usize,
) -> Answer {
    let (records, next) = app
        .read(move |p| {
            let mut records = Vec::with_capacity(limit);
            let mut next = None;
            p.models
                .audit
                .query(&p.log, &filter, &scope, order, cursor, |rec| {
                    if records.len() == limit {
                        next = records
                            .last()
                            .and_then(|r: &serde_json::Value| r["seq"].as_u64());
                        return Ok(ControlFlow::Break(()));
                    }
                    records.push(record_json(&rec));
                    Ok(ControlFlow::Continue(()))
                })?;
            Ok((records, next))
        })
        .await?;
    let mut body = json!({ "next_cursor": next });
    body["events"] = serde_json::Value::Array(records);
    Ok(axum::Json(body).into_response())
}

/// Streams every selected record: the log is read on storage threads
/// that hand the body on in chunks and stop when the client goes away. A
/// failure half-way ends the body early (the status is already sent) and
/// is logged.
fn export(app: &AppState, export: Export) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let app = app.clone();
    let content_type = match export.format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::Ndjson => "application/x-ndjson",
    };
    tokio::task::spawn_blocking(move || {
        let sent = app.models.audit.export(&app.log, &export, |chunk| {
            tx.blocking_send(Bytes::from(chunk)).is_ok()
        });
        if let Err(e) = sent {
            tracing::error!(error = %e, "audit export ended early");
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
