//! One image: its versions (tags), description, sharing, permissions and
//! pull/push guide, and the forms that change them. Each form calls one
//! management route; a refusal is shown on the tab it came from.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::format::{bytes, time};
use super::images::CATEGORIES;
use super::json::{each, text};
use super::me;
use crate::call::Visitor;
use crate::{encode, render, Chrome, Console, Posted, Problem};

/// The longest description, as the API counts it.
const MAX_DESCRIPTION: usize = 30_000;
/// The longest share note.
const MAX_NOTE: usize = 1_000;

/// One version.
pub struct Version {
    tag: String,
    size: String,
    updated: String,
    digest: String,
    pull: String,
}

/// One share of this image.
pub struct ShareRow {
    with: String,
    deadline: String,
    forever: bool,
    expired: bool,
    description: String,
}

/// One grant on this image alone.
pub struct Grant {
    user: String,
    level: u64,
}

#[derive(Template)]
#[template(path = "image.html")]
struct ImagePage {
    c: Chrome,
    tab: &'static str,
    ns: String,
    name: String,
    base: String,
    public: bool,
    category: String,
    description: String,
    size: String,
    versions_count: u64,
    updated: String,
    downloads: u64,
    level: u64,
    shared_with_me: bool,
    guide: Vec<(&'static str, String)>,
    versions: Vec<Version>,
    shares: Vec<ShareRow>,
    grants: Vec<Grant>,
    categories: [&'static str; 8],
    max_description: usize,
    max_note: usize,
    /// Tags chosen for deletion, awaiting confirmation.
    confirm_tags: Vec<String>,
    problem: Option<Problem>,
}

impl ImagePage {
    fn tab_href(&self, tab: &str) -> String {
        format!("{}?tab={tab}", self.base)
    }
}

/// The query of the image page.
#[derive(Deserialize, Default)]
pub struct Tab {
    #[serde(default)]
    tab: String,
}

fn tab_of(tab: &str) -> &'static str {
    match tab {
        "description" => "description",
        "sharing" => "sharing",
        "permissions" => "permissions",
        "guide" => "guide",
        "edit" => "edit",
        _ => "versions",
    }
}

/// What a page shows beyond the image itself: the tab, tags awaiting a
/// confirmed delete, and a refusal.
struct Shown {
    tab: &'static str,
    confirm_tags: Vec<String>,
    problem: Option<Problem>,
    status: StatusCode,
}

async fn page(
    console: &Console,
    visitor: &Visitor,
    ns: &str,
    name: &str,
    shown: Shown,
) -> Response {
    let me = match me(console, visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let path = format!("/namespaces/{}/repos/{}", encode(ns), encode(name));
    let v = match console.get(visitor, &path).await {
        Ok(v) => v,
        Err(e) if e.signed_out() => return crate::to_signin(visitor),
        Err(e) => {
            let problem = Problem::of(&e, &visitor.words, "image.detail");
            let page = super::NotFound {
                c: Chrome::new(visitor, Some(me), "images"),
                text: problem.text,
            };
            return render(visitor, StatusCode::NOT_FOUND, &page);
        }
    };
    let level = v["auth"].as_u64().unwrap_or_default();
    let words = visitor.words;
    let mut problem = shown.problem;
    let versions = match console
        .get(visitor, &format!("{path}/tags?limit=1000"))
        .await
    {
        Ok(t) => each(&t, "tags")
            .map(|t| Version {
                tag: text(t, "tag"),
                size: bytes(t["size"].as_u64().unwrap_or_default()),
                updated: time(&text(t, "updated_at")),
                digest: text(t, "digest"),
                pull: text(t, "pull"),
            })
            .collect(),
        Err(e) => {
            problem.get_or_insert_with(|| Problem::of(&e, &words, "image.versions"));
            Vec::new()
        }
    };
    let shares = if level >= 7 && shown.tab == "sharing" {
        match console
            .get(visitor, &format!("{path}/access-domains"))
            .await
        {
            Ok(s) => each(&s, "access_domains")
                .map(|s| {
                    let deadline = text(s, "deadline");
                    ShareRow {
                        with: text(s, "access_domain"),
                        forever: deadline == "forever",
                        deadline,
                        expired: s["status"] == "expired",
                        description: text(s, "description"),
                    }
                })
                .collect(),
            Err(e) => {
                problem.get_or_insert_with(|| Problem::of(&e, &words, "image.sharing"));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let grants = each(&v, "members")
        .map(|m| Grant {
            user: text(m, "user_name"),
            level: m["auth"].as_u64().unwrap_or_default(),
        })
        .collect();
    let g = &v["guide"];
    let guide = vec![
        ("guide.login_temporary", text(g, "temporary_login")),
        ("guide.login_long_term", text(g, "long_term_login")),
        ("guide.tag", text(g, "tag")),
        ("guide.push", text(g, "push")),
        ("guide.pull", text(g, "pull")),
    ];
    let page = ImagePage {
        c: Chrome::new(visitor, Some(me), "images"),
        tab: shown.tab,
        base: format!("/console/images/{ns}/{name}"),
        ns: ns.to_owned(),
        name: name.to_owned(),
        public: v["is_public"].as_bool().unwrap_or_default(),
        category: text(&v, "category"),
        description: text(&v, "description"),
        size: bytes(v["size"].as_u64().unwrap_or_default()),
        versions_count: v["num_images"].as_u64().unwrap_or_default(),
        updated: time(&text(&v, "updated_at")),
        downloads: v["num_download"].as_u64().unwrap_or_default(),
        level,
        shared_with_me: v["shared"].as_bool().unwrap_or_default(),
        guide,
        versions,
        shares,
        grants,
        categories: CATEGORIES,
        max_description: MAX_DESCRIPTION,
        max_note: MAX_NOTE,
        confirm_tags: shown.confirm_tags,
        problem,
    };
    render(visitor, shown.status, &page)
}

/// `GET /console/images/{ns}/{repo}?tab=…`
pub async fn detail(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<Tab>,
) -> Response {
    let shown = Shown {
        tab: tab_of(&q.tab),
        confirm_tags: Vec::new(),
        problem: None,
        status: StatusCode::OK,
    };
    page(&console, &visitor, &ns, &name, shown).await
}

/// A change one form of this image asks of the API.
struct Change {
    method: Method,
    /// The route under the image's own.
    route: String,
    body: Option<Value>,
    /// The tab that shows the result, or the refusal.
    tab: &'static str,
    /// The action, for the refusal's words and the notice (its last part).
    action: &'static str,
    /// Where to go instead of the tab, when the image is gone.
    after: Option<String>,
}

impl Change {
    fn new(
        method: Method,
        route: impl Into<String>,
        tab: &'static str,
        action: &'static str,
    ) -> Self {
        Self {
            method,
            route: route.into(),
            body: None,
            tab,
            action,
            after: None,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

impl Shown {
    /// The tab again, with a refusal.
    fn refused(tab: &'static str, problem: Problem, status: StatusCode) -> Self {
        Self {
            tab,
            confirm_tags: Vec::new(),
            problem: Some(problem),
            status,
        }
    }
}

/// Calls the API for a form of this image; on success goes to the change's
/// tab with `done`, on a refusal shows the tab again with the refusal.
async fn act(
    console: &Console,
    visitor: &Visitor,
    (ns, name): (&str, &str),
    form: &Posted,
    change: Change,
) -> Response {
    let path = format!(
        "/namespaces/{}/repos/{}{}",
        encode(ns),
        encode(name),
        change.route
    );
    let done = change.action.rsplit('.').next().unwrap_or(change.action);
    match console
        .send(visitor, change.method, &path, change.body, form.key())
        .await
    {
        Ok(_) => Redirect::to(&change.after.unwrap_or_else(|| {
            format!("/console/images/{ns}/{name}?tab={}&done={done}", change.tab)
        }))
        .into_response(),
        Err(e) => {
            let problem = Problem::of(&e, &visitor.words, change.action);
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            page(
                console,
                visitor,
                ns,
                name,
                Shown::refused(change.tab, problem, status),
            )
            .await
        }
    }
}

/// `POST /console/images/{ns}/{repo}/edit`: public or private, category
/// and description, as one change.
pub async fn edit(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let body = json!({
        "is_public": form.get("visibility") == "public",
        "category": form.get("category"),
        "description": form.get("description"),
    });
    let change = Change::new(Method::PATCH, "", "description", "image.edited").body(body);
    act(&console, &visitor, (&ns, &name), &form, change).await
}

/// `POST /console/images/{ns}/{repo}/tags/delete` `tag…`: asks first, then,
/// with `confirmed=yes`, deletes every chosen tag or none.
pub async fn delete_tags(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let tags: Vec<String> = form.all("tag").into_iter().map(str::to_owned).collect();
    if tags.is_empty() {
        let problem = Problem {
            field: Some("tag".into()),
            text: visitor.words.t("image.tags.none_chosen").to_owned(),
        };
        let shown = Shown::refused("versions", problem, StatusCode::BAD_REQUEST);
        return page(&console, &visitor, &ns, &name, shown).await;
    }
    if form.get("confirmed") != "yes" {
        let shown = Shown {
            tab: "versions",
            confirm_tags: tags,
            problem: None,
            status: StatusCode::OK,
        };
        return page(&console, &visitor, &ns, &name, shown).await;
    }
    let body = json!({ "tags": tags });
    let change = Change::new(Method::DELETE, "/tags", "versions", "image.tags_deleted").body(body);
    act(&console, &visitor, (&ns, &name), &form, change).await
}

/// `POST /console/images/{ns}/{repo}/shares`: shares with another account,
/// until a date or permanently.
pub async fn share(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let deadline = if form.get("until") == "forever" {
        "forever".to_owned()
    } else {
        form.get("date").to_owned()
    };
    let body = json!({
        "access_domain": form.get("account").trim(),
        "permit": "read",
        "deadline": deadline,
        "description": form.get("description"),
    });
    let change = Change::new(Method::POST, "/access-domains", "sharing", "image.shared").body(body);
    act(&console, &visitor, (&ns, &name), &form, change).await
}

/// `POST /console/images/{ns}/{repo}/shares/{account}/revoke`
pub async fn unshare(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name, account)): Path<(String, String, String)>,
    form: Posted,
) -> Response {
    let route = format!("/access-domains/{}", encode(&account));
    let change = Change::new(Method::DELETE, route, "sharing", "image.unshared");
    act(&console, &visitor, (&ns, &name), &form, change).await
}

/// `POST /console/images/{ns}/{repo}/grants`: grants or changes a level.
pub async fn grant(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let level: u64 = form.get("auth").parse().unwrap_or_default();
    let body = json!({ "users": [{ "user_name": form.get("user").trim(), "auth": level }] });
    let change = Change::new(Method::POST, "/access", "permissions", "image.granted").body(body);
    act(&console, &visitor, (&ns, &name), &form, change).await
}

/// `POST /console/images/{ns}/{repo}/grants/{user}/revoke`
pub async fn revoke(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name, user)): Path<(String, String, String)>,
    form: Posted,
) -> Response {
    let route = format!("/access/{}", encode(&user));
    let change = Change::new(Method::DELETE, route, "permissions", "image.revoked");
    act(&console, &visitor, (&ns, &name), &form, change).await
}

/// `POST /console/images/{ns}/{repo}/delete` `confirm`: deletes the image
/// with every version, grant and share, once its name is typed.
pub async fn remove(
    State(console): State<Console>,
    visitor: Visitor,
    Path((ns, name)): Path<(String, String)>,
    form: Posted,
) -> Response {
    if form.get("confirm") != name {
        let problem = Problem {
            field: Some("confirm".into()),
            text: visitor.words.t("image.delete.mismatch").to_owned(),
        };
        let shown = Shown::refused("versions", problem, StatusCode::BAD_REQUEST);
        return page(&console, &visitor, &ns, &name, shown).await;
    }
    let mut change = Change::new(Method::DELETE, "", "versions", "image.delete");
    change.after = Some(format!("/console/orgs/{ns}?done=image_deleted"));
    act(&console, &visitor, (&ns, &name), &form, change).await
}
