//! The signed-in user's own credentials (access keys, temporary docker
//! logins), and, for account admins, the account's users and storage.

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

/// One access key.
pub struct Key {
    ak: String,
    enabled: bool,
    created: String,
}

/// A secret shown once: a new access key's, or a temporary login's.
pub struct Secret {
    /// The access key id, or the login's user name.
    id: String,
    /// The secret key, or the temporary password's `docker login` line.
    secret: String,
    /// When a temporary login expires.
    expires: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    c: Chrome,
    keys: Vec<Key>,
    new_key: Option<Secret>,
    login: Option<Secret>,
    problem: Option<Problem>,
}

/// What the keys page shows beyond the list.
#[derive(Default)]
struct Shown {
    new_key: Option<Secret>,
    login: Option<Secret>,
    problem: Option<Problem>,
}

async fn keys_page(console: &Console, visitor: &Visitor, shown: Shown) -> Response {
    let me = match me(console, visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let mut problem = shown.problem;
    let keys = match console.get(visitor, "/access-keys").await {
        Ok(v) => each(&v, "access_keys")
            .map(|k| Key {
                ak: text(k, "ak"),
                enabled: k["enabled"].as_bool().unwrap_or_default(),
                created: time(&text(k, "created_at")),
            })
            .collect(),
        Err(e) => {
            problem.get_or_insert_with(|| Problem::of(&e, &visitor.words, "keys.list"));
            Vec::new()
        }
    };
    let page = KeysPage {
        c: Chrome::new(visitor, Some(me), "keys"),
        keys,
        new_key: shown.new_key,
        login: shown.login,
        problem,
    };
    let status = if page.problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(visitor, status, &page)
}

/// `GET /console/keys`
pub async fn keys(State(console): State<Console>, visitor: Visitor) -> Response {
    keys_page(&console, &visitor, Shown::default()).await
}

/// `POST /console/keys`: a new access key, its secret shown this once.
pub async fn create_key(
    State(console): State<Console>,
    visitor: Visitor,
    form: Posted,
) -> Response {
    let shown = match console
        .send(&visitor, Method::POST, "/access-keys", None, form.key())
        .await
    {
        Ok(v) => Shown {
            new_key: Some(Secret {
                id: text(&v, "ak"),
                secret: text(&v, "sk"),
                expires: String::new(),
            }),
            ..Shown::default()
        },
        Err(e) => Shown {
            problem: Some(Problem::of(&e, &visitor.words, "keys.create")),
            ..Shown::default()
        },
    };
    keys_page(&console, &visitor, shown).await
}

/// Calls the API for a form about one key: back to the keys page with
/// `done`, or with the refusal.
async fn on_key(
    console: &Console,
    visitor: &Visitor,
    form: &Posted,
    (method, ak, body): (Method, &str, Option<Value>),
    (done, action): (&str, &str),
) -> Response {
    let path = format!("/access-keys/{}", encode(ak));
    match console.send(visitor, method, &path, body, form.key()).await {
        Ok(_) => Redirect::to(&format!("/console/keys?done={done}")).into_response(),
        Err(e) => {
            let problem = Some(Problem::of(&e, &visitor.words, action));
            keys_page(
                console,
                visitor,
                Shown {
                    problem,
                    ..Shown::default()
                },
            )
            .await
        }
    }
}

/// `POST /console/keys/{ak}/enabled` `enabled=true|false`
pub async fn set_key(
    State(console): State<Console>,
    visitor: Visitor,
    Path(ak): Path<String>,
    form: Posted,
) -> Response {
    let body = json!({ "enabled": form.get("enabled") == "true" });
    let call = (Method::PATCH, ak.as_str(), Some(body));
    on_key(&console, &visitor, &form, call, ("changed", "keys.change")).await
}

/// `POST /console/keys/{ak}/delete`
pub async fn delete_key(
    State(console): State<Console>,
    visitor: Visitor,
    Path(ak): Path<String>,
    form: Posted,
) -> Response {
    let call = (Method::DELETE, ak.as_str(), None);
    on_key(&console, &visitor, &form, call, ("deleted", "keys.delete")).await
}

/// `POST /console/keys/temporary`: a temporary docker login (24 hours),
/// its `docker login` line shown this once.
pub async fn temporary_login(
    State(console): State<Console>,
    visitor: Visitor,
    form: Posted,
) -> Response {
    let shown = match console
        .send(&visitor, Method::POST, "/utils/secret", None, form.key())
        .await
    {
        Ok(v) => Shown {
            login: Some(Secret {
                id: String::new(),
                secret: text(&v, "command"),
                expires: time(&text(&v, "expires_at")),
            }),
            ..Shown::default()
        },
        Err(e) => Shown {
            problem: Some(Problem::of(&e, &visitor.words, "keys.temporary")),
            ..Shown::default()
        },
    };
    keys_page(&console, &visitor, shown).await
}

/// One user of the account.
pub struct User {
    name: String,
    admin: bool,
    enabled: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    account: String,
    users: Vec<User>,
    typed: String,
    problem: Option<Problem>,
}

async fn users_page(
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
    let account = me.account.clone();
    let (users, problem) = match console
        .get(visitor, &format!("/accounts/{}/users", encode(&account)))
        .await
    {
        Ok(v) => (
            each(&v, "users")
                .map(|u| User {
                    name: text(u, "name"),
                    admin: u["admin"].as_bool().unwrap_or_default(),
                    enabled: u["enabled"].as_bool().unwrap_or_default(),
                    created: time(&text(u, "created_at")),
                })
                .collect(),
            problem,
        ),
        Err(e) => (
            Vec::new(),
            Some(Problem::of(&e, &visitor.words, "users.list")),
        ),
    };
    let page = UsersPage {
        c: Chrome::new(visitor, Some(me), "users"),
        account,
        users,
        typed,
        problem,
    };
    render(visitor, status, &page)
}

/// `GET /console/users` (account admins)
pub async fn users(State(console): State<Console>, visitor: Visitor) -> Response {
    users_page(&console, &visitor, String::new(), None, StatusCode::OK).await
}

/// `POST /console/users` `name, password, admin?`
pub async fn create_user(
    State(console): State<Console>,
    visitor: Visitor,
    form: Posted,
) -> Response {
    let me = match me(&console, &visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let body = json!({
        "name": form.get("name").trim(),
        "password": form.get("password"),
        "admin": form.get("admin") == "on",
    });
    let path = format!("/accounts/{}/users", encode(&me.account));
    match console
        .send(&visitor, Method::POST, &path, Some(body), form.key())
        .await
    {
        Ok(_) => Redirect::to("/console/users?done=created").into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let problem = Some(Problem::of(&e, &visitor.words, "users.create"));
            users_page(
                &console,
                &visitor,
                form.get("name").to_owned(),
                problem,
                status,
            )
            .await
        }
    }
}

/// `POST /console/users/{user}/enabled` `enabled=true|false`
pub async fn set_user(
    State(console): State<Console>,
    visitor: Visitor,
    Path(user): Path<String>,
    form: Posted,
) -> Response {
    let me = match me(&console, &visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let body = json!({ "enabled": form.get("enabled") == "true" });
    let path = format!("/accounts/{}/users/{}", encode(&me.account), encode(&user));
    match console
        .send(&visitor, Method::PATCH, &path, Some(body), form.key())
        .await
    {
        Ok(_) => Redirect::to("/console/users?done=changed").into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let problem = Some(Problem::of(&e, &visitor.words, "users.change"));
            users_page(&console, &visitor, String::new(), problem, status).await
        }
    }
}

/// One organization's storage.
pub struct OrgStorage {
    name: String,
    logical: String,
    stored: String,
    unique: String,
}

#[derive(Template)]
#[template(path = "storage.html")]
struct StoragePage {
    c: Chrome,
    logical: String,
    stored: String,
    unique: String,
    orgs: Vec<OrgStorage>,
    problem: Option<Problem>,
}

/// `GET /console/storage` (account admins)
pub async fn storage(State(console): State<Console>, visitor: Visitor) -> Response {
    let me = match me(&console, &visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let size = |v: &Value, k: &str| bytes(v[k].as_u64().unwrap_or_default());
    let answer = console
        .get(
            &visitor,
            &format!("/accounts/{}/storage", encode(&me.account)),
        )
        .await;
    let (v, problem) = match answer {
        Ok(v) => (v, None),
        Err(e) => (
            Value::Null,
            Some(Problem::of(&e, &visitor.words, "storage")),
        ),
    };
    let page = StoragePage {
        c: Chrome::new(&visitor, Some(me), "storage"),
        logical: size(&v, "logical_bytes"),
        stored: size(&v, "stored_bytes"),
        unique: size(&v, "unique_bytes"),
        orgs: each(&v, "namespaces")
            .map(|n| OrgStorage {
                name: text(n, "namespace"),
                logical: size(&n["storage"], "logical_bytes"),
                stored: size(&n["storage"], "stored_bytes"),
                unique: size(&n["storage"], "unique_bytes"),
            })
            .collect(),
        problem,
    };
    render(&visitor, StatusCode::OK, &page)
}
