//! `POST /v2/manage/session`: an account password opens a session, returned
//! as a bearer token and set as an HttpOnly, SameSite=Strict cookie.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{json_body, unauthorized, Answer, Refusal};
use crate::auth::token::{sign, Claims, SESSION_AUDIENCE};
use crate::auth::{self, SESSION_COOKIE};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct Login {
    account: String,
    user: String,
    password: String,
}

pub(super) async fn login(State(app): State<AppState>, req: Request) -> Answer {
    let client = crate::client_addr(req.extensions()).unwrap_or_default();
    let body: Login = json_body(req).await?;
    let login = format!("{}/{}", body.account, body.user);
    if let Err(wait) = app.limiter.check(&login, &client) {
        return Err(Refusal(ApiError::TooManyRequests(wait.as_secs().max(1))));
    }
    let attempt = login.clone();
    let found = app
        .read(move |p| auth::check_password(&p.models, &attempt, &body.password))
        .await?;
    let Some(principal) = found else {
        app.limiter.failed(&login, &client);
        return Err(unauthorized("wrong account, user or password"));
    };
    app.limiter.succeeded(&login, &client);
    let now = Utc::now();
    let expires = now + Duration::from_std(app.settings.session_ttl).unwrap_or(Duration::hours(12));
    let claims = Claims {
        iss: "berth".into(),
        sub: format!("{}/{}", principal.account, principal.user),
        aud: SESSION_AUDIENCE.into(),
        exp: expires.timestamp(),
        nbf: now.timestamp() - 5,
        iat: now.timestamp(),
        jti: Uuid::new_v4().to_string(),
        access: vec![],
        cred: None,
        kind: None,
    };
    let token = sign(&app.key, &claims);
    let mut response = (
        StatusCode::OK,
        axum::Json(json!({ "token": token, "expires_at": expires.to_rfc3339() })),
    )
        .into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        app.settings.session_ttl.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}
