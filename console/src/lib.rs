//! Berth's admin console at `/console/`: pages rendered on the server from
//! compile-time-checked templates, in English and Simplified Chinese. Every
//! page reads, and every form calls, the management API in-process (see
//! [`call`]); the console adds words, not rules.

pub mod assets;
pub mod call;
pub mod csrf;
pub mod i18n;
mod pages;

use askama::Template;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use serde_json::Value;

use call::{Failure, Visitor};
use i18n::{Lang, Words};

/// The console's state: the management API it calls.
#[derive(Clone)]
pub struct Console {
    api: Router,
}

/// The console's routes, under `/console`.
pub fn router(state: AppState) -> Router {
    let console = Console {
        api: berth_api::management(state),
    };
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::home))
        .route("/console/assets/{name}", get(assets::serve))
        .route("/console/lang", get(pages::session::switch_language))
        .route(
            "/console/signin",
            get(pages::session::signin_page).post(pages::session::signin),
        )
        .route("/console/signout", post(pages::session::signout))
        .route("/console/images", get(pages::images::list))
        .route("/console/images/login", post(pages::images::client_login))
        .route("/console/images/{ns}/{repo}", get(pages::image::detail))
        .route("/console/images/{ns}/{repo}/edit", post(pages::image::edit))
        .route(
            "/console/images/{ns}/{repo}/delete",
            post(pages::image::remove),
        )
        .route(
            "/console/images/{ns}/{repo}/tags/delete",
            post(pages::image::delete_tags),
        )
        .route(
            "/console/images/{ns}/{repo}/shares",
            post(pages::image::share),
        )
        .route(
            "/console/images/{ns}/{repo}/shares/{account}/revoke",
            post(pages::image::unshare),
        )
        .route(
            "/console/images/{ns}/{repo}/grants",
            post(pages::image::grant),
        )
        .route(
            "/console/images/{ns}/{repo}/grants/{user}/revoke",
            post(pages::image::revoke),
        )
        .route(
            "/console/orgs",
            get(pages::orgs::list).post(pages::orgs::create),
        )
        .route("/console/orgs/{ns}", get(pages::orgs::detail))
        .route(
            "/console/keys",
            get(pages::account::keys).post(pages::account::create_key),
        )
        .route(
            "/console/keys/temporary",
            post(pages::account::temporary_login),
        )
        .route("/console/keys/{ak}/enabled", post(pages::account::set_key))
        .route(
            "/console/keys/{ak}/delete",
            post(pages::account::delete_key),
        )
        .route(
            "/console/users",
            get(pages::account::users).post(pages::account::create_user),
        )
        .route(
            "/console/users/{user}/enabled",
            post(pages::account::set_user),
        )
        .route("/console/storage", get(pages::account::storage))
        .route("/console/audit", get(pages::audit::audit))
        .route("/console/uploads/{ns}", post(pages::uploads::upload))
        .route("/console/orgs/{ns}/delete", post(pages::orgs::remove))
        .layer(axum::middleware::from_fn(server_timing))
        .with_state(console)
}

/// Tells how long the server took to make each page (`Server-Timing:
/// page;dur=<ms>`): the browser's developer tools show it, and the
/// console benchmark reads it.
async fn server_timing(req: Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(v) = HeaderValue::from_str(&format!("page;dur={ms:.3}")) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

/// Who is signed in, from `GET /v2/manage/session`.
#[derive(Debug, Clone)]
pub struct Me {
    /// Their account.
    pub account: String,
    /// Their user name.
    pub user: String,
    /// Whether they administer their account.
    pub admin: bool,
}

impl Me {
    fn from_json(v: &Value) -> Self {
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Self {
            account: text("account"),
            user: text("user"),
            admin: v["admin"].as_bool().unwrap_or_default(),
        }
    }
}

/// What every page shows around its content: the navigation, the visitor,
/// the language switch and the form token.
pub struct Chrome {
    /// The visitor's words.
    pub w: Words,
    /// The form token every form carries.
    pub csrf: String,
    /// Who is signed in, if anyone.
    pub me: Option<Me>,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    /// The address of this page in the other language.
    pub switch_href: String,
    /// The other language's name, in itself.
    pub switch_label: &'static str,
    /// The other language's tag.
    pub switch_lang: &'static str,
    /// The stylesheet's address.
    pub css: String,
    /// The script's address.
    pub js: String,
    /// What the last form did (`?done=created` after a redirect), in words.
    pub notice: Option<String>,
}

impl Chrome {
    fn new(visitor: &Visitor, me: Option<Me>, section: &'static str) -> Self {
        let other = visitor.words.lang.other();
        Self {
            w: visitor.words,
            csrf: visitor.csrf.clone(),
            me,
            section,
            switch_href: format!(
                "/console/lang?to={}&back={}",
                other.tag(),
                encode(&visitor.here)
            ),
            switch_label: match other {
                Lang::En => "English",
                Lang::Zh => "简体中文",
            },
            switch_lang: other.tag(),
            css: assets::href("console.css"),
            js: assets::href("console.js"),
            notice: done_of(&visitor.here)
                .map(|done| format!("done.{section}.{done}"))
                .filter(|key| visitor.words.has(key))
                .map(|key| visitor.words.t(&key).to_owned()),
        }
    }

    /// The visitor's language tag, for `<html lang>`.
    pub fn lang(&self) -> &'static str {
        self.w.lang.tag()
    }

    /// A new `Idempotency-Key` for a form: sent twice, it changes things
    /// once.
    pub fn key(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// The `done` parameter of a page's query.
fn done_of(here: &str) -> Option<&str> {
    here.split_once('?')?
        .1
        .split('&')
        .find_map(|p| p.strip_prefix("done="))
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A refusal shown on a page: the words, and the field they belong beside.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    /// The form field at fault, if the API named one.
    pub field: Option<String>,
    /// The refusal in the visitor's words.
    pub text: String,
}

impl Problem {
    /// An API refusal of `action`, in the visitor's words.
    pub fn of(failure: &Failure, words: &Words, action: &str) -> Self {
        Self {
            field: failure.field.clone(),
            text: failure.in_words(words, action),
        }
    }

    /// Whether it belongs beside `field`.
    pub fn at(&self, field: &str) -> bool {
        self.field.as_deref() == Some(field)
    }
}

/// Renders a page for a visitor: HTML, never cached, with the form token's
/// cookie when it is new.
pub fn render(visitor: &Visitor, status: StatusCode, page: &impl Template) -> Response {
    let html = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "a console page did not render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        html,
    )
        .into_response();
    if visitor.new_csrf {
        if let Some(cookie) = csrf::cookie(&visitor.csrf) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// Sends a visitor who is not signed in to the sign-in page, and back here
/// afterwards.
pub fn to_signin(visitor: &Visitor) -> Response {
    Redirect::to(&format!("/console/signin?next={}", encode(&visitor.here))).into_response()
}

/// A posted form, its token checked against the browser's.
pub struct Posted {
    pairs: Vec<(String, String)>,
}

impl Posted {
    /// A field's value, or empty.
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a repeated field (checked boxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The form's `Idempotency-Key`.
    pub fn key(&self) -> &str {
        self.get("_key")
    }
}

impl FromRequest<Console> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Console) -> Result<Self, Response> {
        let cookie = csrf::of(req.headers());
        let words = Words {
            lang: Lang::negotiate(req.headers()),
        };
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, e.body_text()).into_response())?;
        let posted = Self { pairs };
        match cookie {
            Some(expected) if csrf::matches(&expected, posted.get(csrf::FIELD)) => Ok(posted),
            _ => Err((
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                words.t("error.csrf").to_owned(),
            )
                .into_response()),
        }
    }
}
