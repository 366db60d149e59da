//! Signing in and out, and the language switch.

use askama::Template;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::call::Visitor;
use crate::i18n::{Lang, LANG_COOKIE};
use crate::{render, Chrome, Console, Posted, Problem};

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    c: Chrome,
    next: String,
    account: String,
    user: String,
    problem: Option<Problem>,
}

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// Only a console address is followed after signing in: never another
/// site's.
fn safe_next(next: &str) -> String {
    if next.starts_with("/console/") && !next.starts_with("//") {
        next.to_owned()
    } else {
        "/console/images".to_owned()
    }
}

/// `GET /console/signin`
pub async fn signin_page(visitor: Visitor, Query(q): Query<Next>) -> Response {
    let page = SigninPage {
        c: Chrome::new(&visitor, None, "signin"),
        next: safe_next(&q.next),
        account: String::new(),
        user: String::new(),
        problem: None,
    };
    render(&visitor, StatusCode::OK, &page)
}

/// `POST /console/signin`: opens a session through the API, whose cookie
/// the browser then keeps. A refusal (a wrong password, too many failed
/// attempts) is shown as the API gives it.
pub async fn signin(State(console): State<Console>, visitor: Visitor, form: Posted) -> Response {
    let body = json!({
        "account": form.get("account"),
        "user": form.get("user"),
        "password": form.get("password"),
    });
    let answer = console
        .call(
            &visitor,
            Method::POST,
            "/session",
            Body::from(body.to_string()),
            Some("application/json"),
            None,
        )
        .await;
    let cookie = answer.headers.get(header::SET_COOKIE).cloned();
    match answer.into_result() {
        Ok(_) => {
            let mut response = Redirect::to(&safe_next(form.get("next"))).into_response();
            if let Some(cookie) = cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(failure) => {
            let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::UNAUTHORIZED);
            let page = SigninPage {
                c: Chrome::new(&visitor, None, "signin"),
                next: safe_next(form.get("next")),
                account: form.get("account").to_owned(),
                user: form.get("user").to_owned(),
                problem: Some(Problem::of(&failure, &visitor.words, "signin")),
            };
            render(&visitor, status, &page)
        }
    }
}

/// `POST /console/signout`: forgets the session cookie.
pub async fn signout(_form: Posted) -> Response {
    let mut response = Redirect::to("/console/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("berth_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

#[derive(Deserialize)]
pub struct Switch {
    to: String,
    #[serde(default)]
    back: String,
}

/// `GET /console/lang?to=zh-CN&back=/console/images`: keeps the choice in
/// a cookie for a year, and goes back to the page.
pub async fn switch_language(Query(q): Query<Switch>) -> Response {
    let lang = Lang::from_tag(&q.to).unwrap_or(Lang::En);
    let mut response = Redirect::to(&safe_next(&q.back)).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; SameSite=Lax; Path=/console; Max-Age=31536000",
        lang.tag()
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
