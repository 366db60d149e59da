//! "My images", "Shared with me" and "Shared by me", with filters.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::format::{bytes, time};
use super::json::{each, text};
use super::me;
use crate::call::Visitor;
use crate::{encode, render, Chrome, Console, Posted, Problem};

/// The categories an image may have, in the order the filter offers them.
pub const CATEGORIES: [&str; 8] = [
    "app-server",
    "linux",
    "windows",
    "arm",
    "framework",
    "database",
    "language",
    "other",
];

/// The listing's query: the tab and its filters.
#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    tab: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    cursor: String,
}

/// One of the account's images.
pub struct Item {
    namespace: String,
    name: String,
    href: String,
    public: bool,
    category: String,
    size: String,
    tags: u64,
    updated: String,
    downloads: u64,
}

/// One share, either way.
pub struct Shared {
    namespace: String,
    name: String,
    href: String,
    sharer: String,
    with: String,
    deadline: String,
    forever: bool,
    expired: bool,
    description: String,
}

#[derive(Template)]
#[template(path = "images.html")]
struct ImagesPage {
    c: Chrome,
    tab: &'static str,
    f: Filters,
    namespaces: Vec<String>,
    categories: [&'static str; 8],
    items: Vec<Item>,
    shared: Vec<Shared>,
    next: Option<String>,
    problem: Option<Problem>,
    login: Login,
}

impl ImagesPage {
    fn tab_href(&self, tab: &str) -> String {
        format!("/console/images?tab={tab}")
    }
}

fn item(v: &Value) -> Item {
    let (namespace, name) = (text(v, "namespace"), text(v, "name"));
    Item {
        href: format!("/console/images/{namespace}/{name}"),
        public: v["is_public"].as_bool().unwrap_or_default(),
        category: text(v, "category"),
        size: bytes(v["size"].as_u64().unwrap_or_default()),
        tags: v["num_images"].as_u64().unwrap_or_default(),
        updated: time(&text(v, "updated_at")),
        downloads: v["num_download"].as_u64().unwrap_or_default(),
        namespace,
        name,
    }
}

fn shared(v: &Value) -> Shared {
    let (namespace, name) = (text(v, "namespace"), text(v, "repo"));
    let deadline = text(v, "deadline");
    Shared {
        href: format!("/console/images/{namespace}/{name}"),
        sharer: text(v, "sharer"),
        with: text(v, "access_domain"),
        forever: deadline == "forever",
        deadline,
        expired: v["status"] == "expired",
        description: text(v, "description"),
        namespace,
        name,
    }
}

/// `GET /console/images?tab=mine|shared|by-me&namespace&name&visibility&category&cursor`
pub async fn list(
    State(console): State<Console>,
    visitor: Visitor,
    Query(f): Query<Filters>,
) -> Response {
    list_page(&console, &visitor, f, Login::default()).await
}

/// The "Client upload" dialog's temporary login, once made: the `docker
/// login` line and its expiry, or why it was not made.
#[derive(Default)]
pub struct Login {
    command: Option<String>,
    expires: String,
    problem: Option<Problem>,
}

impl Login {
    /// Whether the dialog opens with the page.
    fn shown(&self) -> bool {
        self.command.is_some() || self.problem.is_some()
    }
}

/// `POST /console/images/login`: the "Client upload" dialog mints a
/// temporary login and shows its command, with the images behind it.
pub async fn client_login(
    State(console): State<Console>,
    visitor: Visitor,
    form: Posted,
) -> Response {
    let login = match console
        .send(&visitor, Method::POST, "/utils/secret", None, form.key())
        .await
    {
        Ok(v) => Login {
            command: v["command"].as_str().map(str::to_owned),
            expires: time(v["expires_at"].as_str().unwrap_or_default()),
            problem: None,
        },
        Err(e) => Login {
            problem: Some(Problem::of(&e, &visitor.words, "keys.temporary")),
            ..Login::default()
        },
    };
    list_page(&console, &visitor, Filters::default(), login).await
}

async fn list_page(console: &Console, visitor: &Visitor, f: Filters, login: Login) -> Response {
    let me = match me(console, visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let tab = match f.tab.as_str() {
        "shared" => "shared",
        "by-me" => "by-me",
        _ => "mine",
    };
    let namespaces = console
        .get(visitor, "/namespaces")
        .await
        .map(|v| each(&v, "namespaces").map(|n| text(n, "name")).collect())
        .unwrap_or_default();
    let (mut items, mut shares, mut next, mut problem) = (Vec::new(), Vec::new(), None, None);
    let words = visitor.words;
    if tab == "mine" {
        let mut query = String::from("/repos?shared=false&limit=50");
        for (key, value) in [
            ("namespace", f.namespace.as_str()),
            ("name", f.name.as_str()),
            ("category", f.category.as_str()),
            ("cursor", f.cursor.as_str()),
        ] {
            if !value.is_empty() {
                query.push_str(&format!("&{key}={}", encode(value)));
            }
        }
        match f.visibility.as_str() {
            "public" => query.push_str("&is_public=true"),
            "private" => query.push_str("&is_public=false"),
            _ => {}
        }
        match console.get(visitor, &query).await {
            Ok(v) => {
                items = each(&v, "repos").map(item).collect();
                next = v["next_cursor"].as_str().map(|c| {
                    format!(
                        "/console/images?namespace={}&name={}&visibility={}&category={}&cursor={}",
                        encode(&f.namespace),
                        encode(&f.name),
                        encode(&f.visibility),
                        encode(&f.category),
                        encode(c)
                    )
                });
            }
            Err(e) => problem = Some(Problem::of(&e, &words, "images.list")),
        }
    } else {
        let center = if tab == "shared" {
            "thirdparty"
        } else {
            "self"
        };
        match console
            .get(visitor, &format!("/shared-repositories?center={center}"))
            .await
        {
            Ok(v) => {
                shares = each(&v, "repositories")
                    .map(shared)
                    .filter(|s| f.namespace.is_empty() || s.namespace == f.namespace)
                    .filter(|s| s.name.contains(&f.name))
                    .collect();
            }
            Err(e) => problem = Some(Problem::of(&e, &words, "images.list")),
        }
    }
    let page = ImagesPage {
        c: Chrome::new(visitor, Some(me), "images"),
        tab,
        f,
        namespaces,
        categories: CATEGORIES,
        items,
        shared: shares,
        next,
        problem,
        login,
    };
    render(visitor, StatusCode::OK, &page)
}
