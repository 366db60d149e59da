//! Tags of an image: the list (with size, time, platforms and the pull
//! line), deletion of one or many at once, and retagging.

use axum::extract::{Path, Request, State};
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_domain::manifest::platforms;
use berth_domain::{Command, Level, RepoCommand, TagName};
use berth_projections::TagRow;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::listing::Paging;
use super::openapi::{ErrorBody, RepoAt};
use super::repos::held;
use super::{commit, done, field, json_body, registry_host, Answer, Member, Query, Refusal, Reply};
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/tags",
    operation_id = "tags_list",
    tag = "tags",
    summary = "Tags with digest, media type, size, update time, platforms and the pull line (read).",
    params(
        RepoAt,
        ("sort" = Option<String>, Query, description = "updated_at (default) or name"),
        ("order" = Option<String>, Query, description = "asc or desc"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "{\"tags\":[...],\"next_cursor\"}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET …/repos/{repo}/tags` (read), with `sort` (`updated_at`|`name`),
/// `order`, `limit` (1–1000, default 100) and `cursor` (the last tag of the
/// previous page).
pub(super) async fn list(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    req: Request,
) -> Answer {
    let q = Query::parse(req.uri().query(), &["sort", "order", "limit", "cursor"])?;
    let Paging {
        by_name,
        descending,
        limit,
    } = Paging::parse(&q)?;
    let cursor = q.parsed(
        "cursor",
        |c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| TagName::parse(&t).ok())
        },
        "a cursor this route returned",
    )?;
    let target = held(&app, &member, &ns, &name, Level::Read, "pull").await?;
    let host = registry_host(&app, req.headers());
    let repo = target.repo.clone();
    let (tags, more) = app
        .read(move |p| {
            let Some(row) = p.models.repos.get(&repo)? else {
                return Ok((Vec::new(), false));
            };
            let mut all = p.models.tags.all(row.id)?;
            all.sort_by(|(ta, ra), (tb, rb)| {
                let ord = if by_name {
                    ta.cmp(tb)
                } else {
                    (ra.updated_at, ta).cmp(&(rb.updated_at, tb))
                };
                if descending {
                    ord.reverse()
                } else {
                    ord
                }
            });
            let start = match &cursor {
                Some(c) => all.iter().position(|(t, _)| t == c).map_or(0, |i| i + 1),
                None => 0,
            };
            let more = all.len() > start + limit;
            let page: Vec<(TagName, TagRow)> = all.into_iter().skip(start).take(limit).collect();
            let mut out = Vec::new();
            for (tag, t) in page {
                let mut entry = json!({
                    "tag": tag.as_str(),
                    "digest": t.digest.to_string(),
                    "media_type": t.media_type,
                    "size": t.size,
                    "updated_at": t.updated_at.to_rfc3339(),
                    "pull": format!("docker pull {host}/{repo}:{tag}"),
                });
                let body = p.log.content(&t.digest)?.unwrap_or_default();
                let mut listed = Vec::new();
                for platform in platforms(&body) {
                    let size = p
                        .models
                        .manifests
                        .get(row.id, &platform.digest)?
                        .map(|m| m.size + m.content_size);
                    listed.push(json!({
                        "digest": platform.digest.to_string(),
                        "os": platform.os,
                        "architecture": platform.architecture,
                        "variant": platform.variant,
                        "size": size,
                    }));
                }
                if !listed.is_empty() {
                    entry["platforms"] = Value::Array(listed);
                }
                out.push((tag, entry));
            }
            Ok((out, more))
        })
        .await?;
    let next = more
        .then(|| tags.last().map(|(t, _)| URL_SAFE_NO_PAD.encode(t.as_str())))
        .flatten();
    let tags: Vec<Value> = tags.into_iter().map(|(_, v)| v).collect();
    Ok(axum::Json(json!({ "tags": tags, "next_cursor": next })).into_response())
}

/// Deletes tags as one command: all of them or, if one is unknown, none.
async fn delete_tags(
    app: &AppState,
    member: &Member,
    ns: &str,
    name: &str,
    tags: Vec<TagName>,
) -> Answer {
    let target = held(app, member, ns, name, Level::Manage, "delete").await?;
    let command = Command::Repo(RepoCommand::DeleteTags {
        repo: target.repo,
        tags,
    });
    done(app, member, command).await
}

#[utoipa::path(
    delete,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/tags/{tag}",
    operation_id = "tags_remove_one",
    tag = "tags",
    summary = "Delete one tag (manage).",
    params(
        RepoAt,
        ("tag" = String, Path, description = "tag"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "unknown tag", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE …/repos/{repo}/tags/{tag}` (manage).
pub(super) async fn remove_one(
    State(app): State<AppState>,
    Path((ns, name, tag)): Path<(String, String, String)>,
    member: Member,
) -> Answer {
    let tag = field("tag", &tag, TagName::parse)?;
    delete_tags(&app, &member, &ns, &name, vec![tag]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TagList {
    tags: Vec<String>,
}

#[utoipa::path(
    delete,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/tags",
    operation_id = "tags_remove_many",
    tag = "tags",
    summary = "Delete several tags, all or none (manage).",
    request_body = TagList,
    params(
        RepoAt,
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "an unknown tag, named", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE …/repos/{repo}/tags` `{"tags":[...]}` (manage), atomically.
pub(super) async fn remove_many(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    req: Request,
) -> Answer {
    let body: TagList = json_body(req).await?;
    if body.tags.is_empty() {
        return Err(Refusal(ApiError::Invalid {
            field: "tags".into(),
            message: "name at least one tag".into(),
        }));
    }
    let tags = body
        .tags
        .iter()
        .enumerate()
        .map(|(i, t)| field(&format!("tags[{i}]"), t, TagName::parse))
        .collect::<Result<Vec<_>, _>>()?;
    delete_tags(&app, &member, &ns, &name, tags).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Retag {
    source_tag: String,
    destination_tag: String,
    #[serde(default, rename = "override")]
    overwrite: bool,
}

#[utoipa::path(
    post,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/tags",
    operation_id = "tags_retag",
    tag = "tags",
    summary = "Point destination_tag at source_tag's manifest (edit).",
    request_body = Retag,
    params(
        RepoAt,
    ),
    responses(
        (status = 201, description = "pointed"),
        (status = 404, description = "unknown source tag", body = ErrorBody),
        (status = 409, description = "destination exists and override is false", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST …/repos/{repo}/tags` `{"source_tag","destination_tag","override"?}`
/// (edit): points the destination at the source's manifest.
pub(super) async fn retag(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    req: Request,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Edit, "push").await?;
    let body: Retag = json_body(req).await?;
    let source = field("source_tag", &body.source_tag, TagName::parse)?;
    let destination = field("destination_tag", &body.destination_tag, TagName::parse)?;
    let command = Command::Repo(RepoCommand::Retag {
        repo: target.repo,
        source,
        destination: destination.clone(),
        overwrite: body.overwrite,
    });
    let reply = Reply::created(json!({ "tag": destination.as_str() }));
    commit(&app, &member, command, reply).await
}
