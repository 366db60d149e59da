//! Integrity for auditors: the chain head signed with the registry's
//! Ed25519 key, and the public key to check it with, offline and later.

use axum::extract::{Request, State};
use axum::response::IntoResponse;
use berth_domain::policy::may_audit;
use berth_domain::{AccountName, DomainError, Event, Loaded, OrgName, RepoName, RepoPath};
use berth_projections::Resource;
use berth_store::{Recorded, StoreError};
use serde_json::{json, Value};

use super::openapi::ErrorBody;
use super::{deny, field, Answer, Member, Query, Refusal};
use crate::error::ApiError;
use crate::state::{AppState, Parts};

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

/// The account whose administrators may audit an organization: its owner
/// now, or, once it is deleted, the account named where it was created.
/// `None` when no event ever touched it; `Some(None)` for an organization
/// from before accounts (only the operator audits those).
fn audited_owner(p: &Parts, org: &OrgName) -> Result<Option<Option<AccountName>>, StoreError> {
    if let Some(row) = p.models.orgs.get(org)? {
        return Ok(Some(row.owner));
    }
    let first = p.models.audit.seqs(&Resource::Org(org.clone()), 0, 1)?;
    let Some(seq) = first.first() else {
        return Ok(None);
    };
    Ok(Some(match p.log.get(*seq)?.map(|r| r.event) {
        Some(Event::NamespaceCreated { account, .. }) => Some(account),
        _ => None,
    }))
}

/// Holds a member to auditing an organization: unknown ones are 404,
/// others' are refused and recorded.
async fn require_audit(
    app: &AppState,
    member: &Member,
    org: &OrgName,
    owner: Option<Option<AccountName>>,
) -> Result<(), Refusal> {
    let Some(owner) = owner else {
        return Err(Refusal(ApiError::Domain(DomainError::OrgUnknown(
            org.clone(),
        ))));
    };
    if !may_audit(&member.principal, owner.as_ref()) {
        return Err(deny(app, member, "audit", org.as_str()).await);
    }
    Ok(())
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
    let limit = q.limit(TIMELINE_PAGE)?;
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
            let Some(owner) = audited_owner(p, &lookup)? else {
                return Ok((None, Vec::new(), false));
            };
            let mut seqs = p.models.audit.seqs(&resource, after, limit + 1)?;
            let more = seqs.len() > limit;
            seqs.truncate(limit);
            let mut events = Vec::with_capacity(seqs.len());
            for seq in seqs {
                if let Some(r) = p.log.get(seq)? {
                    events.push(r.to_json());
                }
            }
            Ok((Some(owner), events, more))
        })
        .await?;
    require_audit(&app, &member, &org, owner).await?;
    let next = more
        .then(|| events.last().and_then(|e: &Value| e["seq"].as_u64()))
        .flatten();
    let mut body = json!({ "next_cursor": next });
    body["events"] = Value::Array(events);
    Ok(axum::Json(body).into_response())
}

/// Folds a resource's events up to `at` with the aggregates' own `evolve`:
/// the same code the writer decides with, so there is no second
/// implementation of what a state is.
fn fold(p: &Parts, resource: &Resource, at: u64) -> Result<Loaded, StoreError> {
    const STEP: usize = 4096;
    let mut state = Loaded::default();
    let mut after = 0;
    loop {
        let mut seqs = p.models.audit.seqs(resource, after, STEP)?;
        let full = seqs.len() == STEP;
        let last = seqs.last().copied();
        seqs.retain(|seq| *seq <= at);
        // Reading and decoding are the cost; two threads share them, and
        // the fold itself stays in order.
        let (front, back) = seqs.split_at(seqs.len() / 2);
        let read = |seqs: &[u64]| -> Result<Vec<Recorded>, StoreError> {
            let mut out = Vec::with_capacity(seqs.len());
            for seq in seqs {
                out.extend(p.log.get(*seq)?);
            }
            Ok(out)
        };
        let (front, back) = std::thread::scope(|scope| {
            let helper = scope.spawn(|| read(back));
            let front = read(front);
            let back = helper
                .join()
                .unwrap_or_else(|_| Err(StoreError::Task("an as-of reader panicked".into())));
            (front, back)
        });
        for r in front?.iter().chain(back?.iter()) {
            state.evolve(&r.event);
        }
        match last {
            Some(last) if full && last <= at => after = last,
            _ => return Ok(state),
        }
    }
}

fn members<'a>(
    grants: impl Iterator<
        Item = (
            &'a (AccountName, berth_domain::UserName),
            &'a berth_domain::Level,
        ),
    >,
) -> Vec<Value> {
    let mut out: Vec<Value> = grants
        .map(|((account, user), level)| {
            json!({"account": account.as_str(), "user_name": user.as_str(), "auth": level.code()})
        })
        .collect();
    out.sort_by_key(ToString::to_string);
    out
}

#[utoipa::path(
    get,
    path = "/v2/manage/audit/as-of",
    operation_id = "audit_as_of",
    tag = "audit",
    summary = "An organization or repository as it was at an instant (RFC 3339 time or sequence number): tags and digests, attributes, members and levels, shares and deadlines; folded from the log with the aggregates' own code.",
    params(
        ("at" = String, Query, description = "RFC 3339 time, or a sequence number"),
        ("namespace" = String, Query, description = "organization"),
        ("repo" = Option<String>, Query, description = "one repository of it"),
    ),
    responses(
        (status = 200, description = "the state then"),
        (status = 400, description = "a bad parameter, named in field", body = ErrorBody),
        (status = 403, description = "not an administrator of the owning account", body = ErrorBody),
        (status = 404, description = "no event ever touched it", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/audit/as-of?at=…&namespace=…[&repo=…]`.
pub(super) async fn as_of(State(app): State<AppState>, member: Member, req: Request) -> Answer {
    let q = Query::parse(req.uri().query(), &["at", "namespace", "repo"])?;
    let org = field(
        "namespace",
        q.get("namespace").unwrap_or_default(),
        OrgName::parse,
    )?;
    let repo = q
        .get("repo")
        .map(|name| field("repo", name, RepoName::parse).map(|n| RepoPath::new(org.clone(), n)))
        .transpose()?;
    enum At {
        Seq(u64),
        Time(chrono::DateTime<chrono::Utc>),
    }
    let at = q
        .parsed(
            "at",
            |a| {
                a.parse::<u64>().map(At::Seq).ok().or_else(|| {
                    chrono::DateTime::parse_from_rfc3339(a)
                        .ok()
                        .map(|t| At::Time(t.with_timezone(&chrono::Utc)))
                })
            },
            "an RFC 3339 time or a sequence number",
        )?
        .ok_or_else(|| {
            Refusal(ApiError::Invalid {
                field: "at".into(),
                message: "at is required: an RFC 3339 time or a sequence number".into(),
            })
        })?;
    let lookup = org.clone();
    let owner = app.read(move |p| audited_owner(p, &lookup)).await?;
    require_audit(&app, &member, &org, owner).await?;
    let body = app
        .read(move |p| {
            let at = match at {
                At::Seq(seq) => seq.min(p.log.head()?.seq),
                At::Time(t) => p.log.seq_at(t)?,
            };
            let resource = match &repo {
                Some(r) => Resource::Repo(r.clone()),
                None => Resource::Org(org.clone()),
            };
            let state = fold(p, &resource, at)?;
            Ok(match &repo {
                Some(path) => match state.repos.get(path) {
                    Some(r) => {
                        let mut tags: Vec<_> = r.tags.iter().collect();
                        tags.sort();
                        let mut shares: Vec<_> = r.shares.iter().collect();
                        shares.sort_by(|a, b| a.0.cmp(b.0));
                        // Large arrays are moved in after the object is
                        // made: `json!` would copy them value by value.
                        let mut body = json!({
                            "namespace": path.org().as_str(),
                            "repo": path.name().as_str(),
                            "at_seq": at,
                            "exists": true,
                            "is_public": r.public,
                            "category": r.category.as_str(),
                            "description": r.description.as_str(),
                        });
                        body["tags"] = tags.iter().map(|(t, d)| json!({"tag": t.as_str(), "digest": d.to_string()})).collect();
                        body["members"] = Value::Array(members(r.grants.iter()));
                        body["shares"] = shares.iter().map(|(with, (deadline, _))| json!({"access_domain": with.as_str(), "deadline": deadline.label()})).collect();
                        body
                    }
                    None => json!({"namespace": path.org().as_str(), "repo": path.name().as_str(), "at_seq": at, "exists": false}),
                },
                None => match state.orgs.get(&org) {
                    Some(o) => {
                        let mut repos: Vec<&str> = state.repos.keys().map(|r| r.name().as_str()).collect();
                        repos.sort_unstable();
                        let mut body = json!({
                            "namespace": org.as_str(),
                            "at_seq": at,
                            "exists": true,
                            "owner": o.owner.as_ref().map(AccountName::as_str),
                            "repos": repos,
                        });
                        body["members"] = Value::Array(members(o.grants.iter()));
                        body
                    }
                    None => json!({"namespace": org.as_str(), "at_seq": at, "exists": false}),
                },
            })
        })
        .await?;
    Ok(axum::Json(body).into_response())
}
