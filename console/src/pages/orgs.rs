//! Organizations: the list, creating one, one's images and members, and
//! deleting an empty one after its name is typed.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Value};

use super::format::{bytes, time};
use super::json::{each, text};
use super::me;
use crate::call::Visitor;
use crate::{encode, render, Chrome, Console, Posted, Problem};

/// One organization in the list.
pub struct Org {
    name: String,
    owner: String,
    creator: String,
    created: String,
    level: u64,
    repos: u64,
}

fn org(v: &Value) -> Org {
    Org {
        name: text(v, "name"),
        owner: text(v, "owner"),
        creator: text(v, "creator"),
        created: time(&text(v, "created_at")),
        level: v["auth"].as_u64().unwrap_or_default(),
        repos: v["num_repos"].as_u64().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    c: Chrome,
    orgs: Vec<Org>,
    typed: String,
    problem: Option<Problem>,
}

async fn list_page(
    console: &Console,
    visitor: &Visitor,
    typed: String,
    problem: Option<Problem>,
    status: StatusCode,
) -> Response {
    let me = match me(console, visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let (orgs, problem) = match console.get(visitor, "/namespaces").await {
        Ok(v) => (each(&v, "namespaces").map(org).collect(), problem),
        Err(e) => (
            Vec::new(),
            Some(Problem::of(&e, &visitor.words, "orgs.list")),
        ),
    };
    let page = OrgsPage {
        c: Chrome::new(visitor, Some(me), "orgs"),
        orgs,
        typed,
        problem,
    };
    render(visitor, status, &page)
}

/// `GET /console/orgs`
pub async fn list(State(console): State<Console>, visitor: Visitor) -> Response {
    list_page(&console, &visitor, String::new(), None, StatusCode::OK).await
}

/// `POST /console/orgs` `namespace`: creates one, or shows why not beside
/// the name.
pub async fn create(State(console): State<Console>, visitor: Visitor, form: Posted) -> Response {
    let name = form.get("namespace").trim().to_owned();
    let body = json!({ "namespace": name });
    match console
        .send(
            &visitor,
            Method::POST,
            "/namespaces",
            Some(body),
            form.key(),
        )
        .await
    {
        Ok(_) => {
            Redirect::to(&format!("/console/orgs/{}?done=created", encode(&name))).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut problem = Problem::of(&e, &visitor.words, "orgs.create");
            problem.field.get_or_insert_with(|| "namespace".into());
            list_page(&console, &visitor, name, Some(problem), status).await
        }
    }
}

/// A member of an organization.
pub struct Member {
    account: String,
    user: String,
    level: u64,
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage {
    c: Chrome,
    name: String,
    owner: String,
    creator: String,
    created: String,
    level: u64,
    members: Vec<Member>,
    repos: Vec<String>,
    stored: String,
    logical: String,
    problem: Option<Problem>,
}

async fn detail_page(
    console: &Console,
    visitor: &Visitor,
    ns: &str,
    problem: Option<Problem>,
    status: StatusCode,
) -> Response {
    let me = match me(console, visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let v = match console
        .get(visitor, &format!("/namespaces/{}", encode(ns)))
        .await
    {
        Ok(v) => v,
        Err(e) if e.signed_out() => return crate::to_signin(visitor),
        Err(e) => {
            let problem = Problem::of(&e, &visitor.words, "orgs.detail");
            return list_page(
                console,
                visitor,
                String::new(),
                Some(problem),
                StatusCode::NOT_FOUND,
            )
            .await;
        }
    };
    let page = OrgPage {
        c: Chrome::new(visitor, Some(me), "orgs"),
        name: text(&v, "name"),
        owner: text(&v, "owner"),
        creator: text(&v, "creator"),
        created: time(&text(&v, "created_at")),
        level: v["auth"].as_u64().unwrap_or_default(),
        members: each(&v, "members")
            .map(|m| Member {
                account: text(m, "account"),
                user: text(m, "user_name"),
                level: m["auth"].as_u64().unwrap_or_default(),
            })
            .collect(),
        repos: each(&v, "repos")
            .filter_map(|r| r.as_str())
            .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
            .collect(),
        stored: bytes(v["storage"]["stored_bytes"].as_u64().unwrap_or_default()),
        logical: bytes(v["storage"]["logical_bytes"].as_u64().unwrap_or_default()),
        problem,
    };
    render(visitor, status, &page)
}

/// `GET /console/orgs/{ns}`
pub async fn detail(
    State(console): State<Console>,
    visitor: Visitor,
    Path(ns): Path<String>,
) -> Response {
    detail_page(&console, &visitor, &ns, None, StatusCode::OK).await
}

/// `POST /console/orgs/{ns}/delete` `confirm`: deletes it once the name is
/// typed; the API refuses while it holds images, and the page says which.
pub async fn remove(
    State(console): State<Console>,
    visitor: Visitor,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let words = visitor.words;
    if form.get("confirm") != ns {
        let problem = Problem {
            field: Some("confirm".into()),
            text: words.t("orgs.delete.confirm_mismatch").to_owned(),
        };
        return detail_page(
            &console,
            &visitor,
            &ns,
            Some(problem),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    match console
        .send(
            &visitor,
            Method::DELETE,
            &format!("/namespaces/{}", encode(&ns)),
            None,
            form.key(),
        )
        .await
    {
        Ok(_) => Redirect::to("/console/orgs?done=deleted").into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::CONFLICT);
            let mut problem = Problem::of(&e, &words, "orgs.delete");
            problem.field = Some("confirm".into());
            detail_page(&console, &visitor, &ns, Some(problem), status).await
        }
    }
}
