//! Integrity for auditors: the chain head signed with the registry's
//! Ed25519 key, and the public key to check it with, offline and later.

use axum::extract::{Request, State};
use axum::response::IntoResponse;
use berth_domain::policy::may_audit;
use berth_domain::{DomainError, Event, OrgName, RepoName, RepoPath};
use berth_projections::Resource;
use serde_json::{json, Value};

use super::openapi::ErrorBody;
use super::{deny, field, Answer, Member, Query, Refusal};
use crate::error::ApiError;
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

/// Most events on one timeline page.
const TIMELINE_PAGE: usize = 1000;

#[utoipa::path(
    get,
    path = "/v2/manage/audit/timeline",
    operation_id = "audit_timeline",
    tag = "audit",
    summary = "Every event that touched an organization (and its repositories) or one repository, by name and across deletions, oldest first. The operator, and the administrators of the owning account.",
    params(
        ("namespace" = String, Query, description = "organization"),
        ("repo" = Option<String>, Query, description = "one repository of it"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 1000"),
        ("cursor" = Option<u64>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "{\"events\":[...],\"next_cursor\"}"),
        (status = 403, description = "not an administrator of the owning account", body = ErrorBody),
        (status = 404, description = "no event ever touched it", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/audit/timeline?namespace=…[&repo=…]`.
pub(super) async fn timeline(State(app): State<AppState>, member: Member, req: Request) -> Answer {
    let q = Query::parse(req.uri().query(), &["namespace", "repo", "limit", "cursor"])?;
    let org = field(
        "namespace",
        q.get("namespace").unwrap_or_default(),
        OrgName::parse,
    )?;
    let resource = match q.get("repo") {
        Some(name) => Resource::Repo(RepoPath::new(
            org.clone(),
            field("repo", name, RepoName::parse)?,
        )),
        None => Resource::Org(org.clone()),
    };
    let limit = q
        .parsed(
            "limit",
            |l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=TIMELINE_PAGE).contains(n))
            },
            "a number from 1 to 1000",
        )?
        .unwrap_or(TIMELINE_PAGE);
    let after = q
        .parsed(
            "cursor",
            |c| c.parse::<u64>().ok(),
            "a cursor this route returned",
        )?
        .unwrap_or(0);
    let lookup = org.clone();
    let (owner, events, more) = app
        .read(move |p| {
            // The owner of a deleted organization is still its creator's
            // account, named in the event that created it.
            let owner = match p.models.orgs.get(&lookup)? {
                Some(row) => row.owner,
                None => {
                    let first = p
                        .models
                        .timeline
                        .seqs(&Resource::Org(lookup.clone()), 0, 1)?;
                    match first
                        .first()
                        .map(|seq| p.log.get(*seq))
                        .transpose()?
                        .flatten()
                    {
                        Some(r) => match r.event {
                            Event::NamespaceCreated { account, .. } => Some(account),
                            _ => None,
                        },
                        None => return Ok((None, Vec::new(), false)),
                    }
                }
            };
            let mut seqs = p.models.timeline.seqs(&resource, after, limit + 1)?;
            let more = seqs.len() > limit;
            seqs.truncate(limit);
            let mut events = Vec::with_capacity(seqs.len());
            for seq in seqs {
                if let Some(r) = p.log.get(seq)? {
                    events.push(r.to_json());
                }
            }
            Ok((owner.map(Some), events, more))
        })
        .await?;
    let Some(owner) = owner else {
        return Err(Refusal(ApiError::Domain(DomainError::OrgUnknown(org))));
    };
    if !may_audit(&member.principal, owner.as_ref()) {
        return Err(deny(&app, &member, "audit", org.as_str()).await);
    }
    let next = more
        .then(|| events.last().and_then(|e: &Value| e["seq"].as_u64()))
        .flatten();
    Ok(axum::Json(json!({ "events": events, "next_cursor": next })).into_response())
}
