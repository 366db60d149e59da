//! Images (repositories): creation of an empty one, listings with filters,
//! sorting and cursors, detail with the pull and push guide, attributes,
//! deletion, and per-repository grants.

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_domain::repository::Attributes;
use berth_domain::{
    AccountName, Category, Command, Description, DomainError, Level, OrgName, RepoCommand,
    RepoName, RepoPath, UserName,
};
use berth_projections::ImageRow;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::grants::{grantable, Grants};
use super::listing::{run, Listing};
use super::openapi::{ErrorBody, NsAt, RepoAt};
use super::{
    commit, done, field, json_body, registry_host, require, Answer, Held, Member, Refusal, Reply,
};
use crate::auth::levels;
use crate::error::ApiError;
use crate::state::AppState;

/// A repository named by a route, the caller's level on it, and the
/// account owning its organization.
pub(super) struct Target {
    pub repo: RepoPath,
    /// Whether the repository exists.
    pub exists: bool,
    pub level: Option<Level>,
    pub owner: Option<AccountName>,
}

impl Target {
    /// The answer for a repository the caller may not see: the same as for
    /// one that does not exist.
    pub fn missing(&self) -> ApiError {
        ApiError::Domain(DomainError::RepositoryUnknown(self.repo.clone()))
    }

    /// Holds the caller to `needed` on this repository.
    pub async fn require(
        &self,
        app: &AppState,
        member: &Member,
        needed: Level,
        action: &str,
    ) -> Result<(), Refusal> {
        let resource = self.repo.to_string();
        let held = if self.exists {
            Held::Present(self.level)
        } else {
            Held::Absent
        };
        require(app, member, held, needed, action, &resource, || {
            self.missing()
        })
        .await
    }
}

/// Resolves `{ns}/{repo}` for the caller.
pub(super) async fn target(
    app: &AppState,
    member: &Member,
    ns: &str,
    name: &str,
) -> Result<Target, Refusal> {
    let org = field("namespace", ns, OrgName::parse)?;
    let name = field("repo", name, RepoName::parse)?;
    let repo = RepoPath::new(org, name);
    let (principal, lookup) = (member.principal.clone(), repo.clone());
    let (exists, level, owner) = app
        .read(move |p| {
            let owner = p.models.orgs.get(lookup.org())?.and_then(|r| r.owner);
            // A repository that does not exist yet has no level to hold,
            // whatever the caller could create by pushing.
            Ok(match p.models.repos.get(&lookup)? {
                Some(_) => (
                    true,
                    levels::repo_level(&p.models, &p.settings, Some(&principal), &lookup)?,
                    owner,
                ),
                None => (false, None, owner),
            })
        })
        .await?;
    Ok(Target {
        repo,
        exists,
        level,
        owner,
    })
}

/// Resolves `{ns}/{repo}` and holds the caller to `needed` there.
pub(super) async fn held(
    app: &AppState,
    member: &Member,
    ns: &str,
    name: &str,
    needed: Level,
    action: &str,
) -> Result<Target, Refusal> {
    let target = target(app, member, ns, name).await?;
    target.require(app, member, needed, action).await?;
    Ok(target)
}

/// The lines a user needs to log in, tag, push and pull this image.
fn guide(host: &str, region: &str, repo: &RepoPath) -> Value {
    json!({
        "registry": host,
        "temporary_login": format!("POST /v2/manage/utils/secret, then run the docker login command it returns"),
        "long_term_login": format!("docker login -u {region}@<AK> -p <lowercase hex of HMAC-SHA256(key=SK, message=AK)> {host}"),
        "tag": format!("docker tag <local image>:<tag> {host}/{repo}:<tag>"),
        "push": format!("docker push {host}/{repo}:<tag>"),
        "pull": format!("docker pull {host}/{repo}:<tag>"),
    })
}

/// An image as the API shows it.
pub(super) fn image(host: &str, repo: &RepoPath, row: &ImageRow, shared: bool) -> Value {
    json!({
        "name": repo.name().as_str(),
        "namespace": repo.org().as_str(),
        "owner": row.owner.as_ref().map(berth_domain::AccountName::as_str),
        "category": row.category.as_str(),
        "description": row.description.as_str(),
        "size": row.size,
        "is_public": row.public,
        "num_images": row.num_images,
        "num_download": row.num_download,
        "created_at": row.created_at.to_rfc3339(),
        "updated_at": row.updated_at.to_rfc3339(),
        "path": format!("{host}/{repo}"),
        "shared": shared,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRepo {
    repository: String,
    #[serde(default)]
    is_public: bool,
    category: Option<String>,
    description: Option<String>,
}

/// The attribute fields of a body, checked with the field at fault named.
fn attributes(
    public: Option<bool>,
    category: Option<&str>,
    description: Option<&str>,
) -> Result<Attributes, Refusal> {
    Ok(Attributes {
        public,
        category: category
            .map(|c| field("category", c, Category::parse))
            .transpose()?,
        description: description
            .map(|d| field("description", d, Description::parse))
            .transpose()?,
    })
}

#[utoipa::path(
    post,
    path = "/v2/manage/namespaces/{ns}/repos",
    operation_id = "repos_create",
    tag = "images",
    summary = "Create an empty image (edit on the organization).",
    request_body = NewRepo,
    params(
        NsAt,
    ),
    responses(
        (status = 201, description = "created"),
        (status = 400, description = "a bad attribute, named in field", body = ErrorBody),
        (status = 409, description = "the image exists", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST /v2/manage/namespaces/{ns}/repos`
/// `{"repository","is_public"?,"category"?,"description"?}` (edit on the
/// organization): an empty image.
pub(super) async fn create(
    State(app): State<AppState>,
    Path(NsAt { ns }): Path<NsAt>,
    member: Member,
    req: Request,
) -> Answer {
    let org = field("namespace", &ns, OrgName::parse)?;
    let (p, lookup) = (member.principal.clone(), org.clone());
    let held = app
        .read(move |parts| {
            Ok(match parts.models.orgs.get(&lookup)? {
                Some(_) => Held::Present(levels::org_level(&parts.models, &p, &lookup)?),
                None => Held::Absent,
            })
        })
        .await?;
    let missing = || ApiError::Domain(DomainError::OrgUnknown(org.clone()));
    require(
        &app,
        &member,
        held,
        Level::Edit,
        "create-repo",
        org.as_str(),
        missing,
    )
    .await?;
    let body: NewRepo = json_body(req).await?;
    let name = field("repository", &body.repository, RepoName::parse)?;
    let repo = RepoPath::new(org, name);
    let attributes = attributes(
        Some(body.is_public),
        body.category.as_deref(),
        body.description.as_deref(),
    )?;
    let command = Command::Repo(RepoCommand::Create {
        repo: repo.clone(),
        attributes,
    });
    let reply = Reply::created(
        json!({ "namespace": repo.org().as_str(), "repository": repo.name().as_str() }),
    );
    commit(&app, &member, command, reply).await
}

async fn respond(app: AppState, member: Member, headers: &HeaderMap, listing: Listing) -> Answer {
    let host = registry_host(&app, headers);
    let p = member.principal.clone();
    let namespace = listing.namespace.clone();
    let (page, more, org_level) = app
        .read(move |parts| {
            let (page, more) = run(parts, &p, &listing)?;
            let org_level = match &listing.namespace {
                Some(org) => levels::org_level(&parts.models, &p, org)?,
                None => None,
            };
            Ok((page, more, org_level))
        })
        .await?;
    // An organization the caller holds nothing on, and sees nothing in,
    // looks exactly like one that does not exist.
    if let (Some(org), None, true) = (namespace, org_level, page.is_empty()) {
        return Err(Refusal(ApiError::Domain(DomainError::OrgUnknown(org))));
    }
    let next = more
        .then(|| page.last().map(|l| URL_SAFE_NO_PAD.encode(&l.key)))
        .flatten();
    let repos: Vec<Value> = page
        .iter()
        .map(|l| image(&host, &l.repo, &l.row, l.shared))
        .collect();
    Ok(axum::Json(json!({ "repos": repos, "next_cursor": next })).into_response())
}

#[utoipa::path(
    get,
    path = "/v2/manage/repos",
    operation_id = "repos_list",
    tag = "images",
    summary = "The caller's images across organizations and those shared with their account, filtered, sorted and paged by cursor.",
    params(
        ("namespace" = Option<String>, Query, description = "organization"),
        ("shared" = Option<bool>, Query, description = "true: only images shared with the caller's account; false: none of them (default: both)"),
        ("name" = Option<String>, Query, description = "name contains"),
        ("is_public" = Option<bool>, Query, description = "public or private"),
        ("category" = Option<String>, Query, description = "category"),
        ("sort" = Option<String>, Query, description = "updated_at (default) or name"),
        ("order" = Option<String>, Query, description = "asc or desc"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "{\"repos\":[...],\"next_cursor\"}"),
        (status = 400, description = "a bad parameter, named in field", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/repos`: the caller's images across organizations, and
/// those shared with their account, with `namespace`, `name` (contains),
/// `is_public`, `category`, `sort` (`updated_at`|`name`), `order`
/// (`asc`|`desc`), `limit` (1–1000, default 100) and `cursor`.
pub(super) async fn list(State(app): State<AppState>, member: Member, req: Request) -> Answer {
    let listing = Listing::parse(req.uri().query(), None)?;
    respond(app, member, req.headers(), listing).await
}

#[utoipa::path(
    get,
    path = "/v2/manage/namespaces/{ns}/repos",
    operation_id = "repos_list_in",
    tag = "images",
    summary = "The same within one organization.",
    params(
        NsAt,
        ("name" = Option<String>, Query, description = "name contains"),
        ("is_public" = Option<bool>, Query, description = "public or private"),
        ("category" = Option<String>, Query, description = "category"),
        ("sort" = Option<String>, Query, description = "updated_at (default) or name"),
        ("order" = Option<String>, Query, description = "asc or desc"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "{\"repos\":[...],\"next_cursor\"}"),
        (status = 404, description = "unknown organization", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/namespaces/{ns}/repos`: the same within one
/// organization.
pub(super) async fn list_in(
    State(app): State<AppState>,
    Path(NsAt { ns }): Path<NsAt>,
    member: Member,
    req: Request,
) -> Answer {
    let org = field("namespace", &ns, OrgName::parse)?;
    let listing = Listing::parse(req.uri().query(), Some(org))?;
    respond(app, member, req.headers(), listing).await
}

#[utoipa::path(
    get,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}",
    operation_id = "repos_detail",
    tag = "images",
    summary = "The image with its attributes, counts, times, the pull and push guide, and the grants on it alone (read).",
    params(
        RepoAt,
    ),
    responses(
        (status = 200, description = "the image"),
        (status = 404, description = "unknown, or another account's private image", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/namespaces/{ns}/repos/{repo}` (read): the image with its
/// pull and push guide.
pub(super) async fn detail(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    headers: HeaderMap,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Read, "pull").await?;
    let (lookup, account) = (target.repo.clone(), member.principal.account.clone());
    let (row, storage, members) = app
        .read(move |p| {
            let storage = p.models.storage(std::slice::from_ref(&lookup))?;
            let members = match p.models.repos.get(&lookup)? {
                Some(repo) => p.models.repos.grants_on(repo.id)?,
                None => Vec::new(),
            };
            Ok(p.models
                .images
                .get(&lookup)?
                .map(|row| (row, storage, members)))
        })
        .await?
        .ok_or_else(|| Refusal(target.missing()))?;
    let host = registry_host(&app, &headers);
    let shared = target.owner.as_ref() != Some(&account);
    let mut body = image(&host, &target.repo, &row, shared);
    body["auth"] = json!(target.level.map(Level::code));
    body["guide"] = guide(&host, &app.settings.region, &target.repo);
    body["storage"] = json!(storage);
    body["members"] = members
        .iter()
        .map(|m| json!({"account": m.account.as_str(), "user_name": m.user.as_str(), "auth": m.level.code()}))
        .collect();
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RepoUpdate {
    is_public: Option<bool>,
    category: Option<String>,
    description: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}",
    operation_id = "repos_update",
    tag = "images",
    summary = "Change is_public, category and description as one change (edit).",
    request_body = RepoUpdate,
    params(
        RepoAt,
    ),
    responses(
        (status = 200, description = "{\"namespace\",\"name\",\"is_public\",\"category\",\"description\"}: the attributes as the change left them"),
        (status = 400, description = "a bad attribute, named in field", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `PATCH /v2/manage/namespaces/{ns}/repos/{repo}`
/// `{"is_public"?,"category"?,"description"?}` (edit), as one change.
pub(super) async fn update(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    req: Request,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Edit, "edit").await?;
    let body: RepoUpdate = json_body(req).await?;
    let attributes = attributes(
        body.is_public,
        body.category.as_deref(),
        body.description.as_deref(),
    )?;
    let lookup = target.repo.clone();
    let row = app
        .read(move |p| p.models.images.get(&lookup))
        .await?
        .ok_or_else(|| Refusal(target.missing()))?;
    let reply = Reply::ok(json!({
        "namespace": target.repo.org().as_str(),
        "name": target.repo.name().as_str(),
        "is_public": attributes.public.unwrap_or(row.public),
        "category": attributes.category.unwrap_or(row.category).as_str(),
        "description": attributes.description.as_ref().unwrap_or(&row.description).as_str(),
    }));
    let command = Command::Repo(RepoCommand::SetAttributes {
        repo: target.repo,
        attributes,
    });
    commit(&app, &member, command, reply).await
}

#[utoipa::path(
    delete,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}",
    operation_id = "repos_remove",
    tag = "images",
    summary = "Delete the image with all its tags, manifests, grants and shares (manage).",
    params(
        RepoAt,
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE /v2/manage/namespaces/{ns}/repos/{repo}` (manage): the image
/// with all its tags, manifests, grants and shares.
pub(super) async fn remove(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
) -> Answer {
    let target = held(&app, &member, &ns, &name, Level::Manage, "delete").await?;
    let command = Command::Repo(RepoCommand::Delete { repo: target.repo });
    done(&app, &member, command).await
}

/// The repository of a grant route, its owner, and that the caller manages
/// it.
async fn managed(
    app: &AppState,
    member: &Member,
    ns: &str,
    name: &str,
) -> Result<(RepoPath, AccountName), Refusal> {
    let target = held(app, member, ns, name, Level::Manage, "grant").await?;
    let owner = grantable(target.owner)?;
    Ok((target.repo, owner))
}

#[utoipa::path(
    post,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/access",
    operation_id = "repos_grant",
    tag = "images",
    summary = "Grant or change levels on this image alone, all or none (manage); adds to organization grants.",
    request_body = Grants,
    params(
        RepoAt,
    ),
    responses(
        (status = 201, description = "granted"),
        (status = 404, description = "an unknown grantee, named in field", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `POST` (or `PATCH`) `/v2/manage/namespaces/{ns}/repos/{repo}/access`
/// `{"users":[{"user_name","auth"}]}` (manage). Repository grants add to
/// organization grants, never remove.
pub(super) async fn grant(
    State(app): State<AppState>,
    Path(RepoAt { ns, repo: name }): Path<RepoAt>,
    member: Member,
    req: Request,
) -> Answer {
    let (repo, owner) = managed(&app, &member, &ns, &name).await?;
    let body: Grants = json_body(req).await?;
    let command = Command::Repo(RepoCommand::Grant {
        repo: repo.clone(),
        account: owner,
        grants: body.parse(Level::Manage)?,
    });
    let reply = Reply::created(
        json!({ "namespace": repo.org().as_str(), "repo": repo.name().as_str(), "granted": body.len() }),
    );
    body.submit(&app, &member, command, reply).await
}

#[utoipa::path(
    delete,
    path = "/v2/manage/namespaces/{ns}/repos/{repo}/access/{user}",
    operation_id = "repos_revoke",
    tag = "images",
    summary = "Revoke a grant on this image (manage).",
    params(
        RepoAt,
        ("user" = String, Path, description = "user"),
    ),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no such grant", body = ErrorBody),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `DELETE /v2/manage/namespaces/{ns}/repos/{repo}/access/{user}` (manage).
pub(super) async fn revoke(
    State(app): State<AppState>,
    Path((ns, name, user)): Path<(String, String, String)>,
    member: Member,
) -> Answer {
    let (repo, owner) = managed(&app, &member, &ns, &name).await?;
    let user = field("user", &user, UserName::parse)?;
    let command = Command::Repo(RepoCommand::Revoke {
        repo,
        account: owner,
        user,
    });
    done(&app, &member, command).await
}
