//! `POST /v2/manage/session`: an account password opens a session, returned
//! as a bearer token and set as an HttpOnly, SameSite=Strict cookie.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi::ErrorBody;
use super::{json_body, Answer, Member, Refusal};
use crate::auth::token::{sign, Claims, SESSION_AUDIENCE};
use crate::auth::{self, AuthError, Credentials, Surface, SESSION_COOKIE};
use crate::error::ApiError;
use crate::request::Origin;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Login {
    account: String,
    user: String,
    password: String,
}
#[utoipa::path(
    post,
    path = "/v2/manage/session",
    operation_id = "session_login",
    tag = "session",
    summary = "Open a console/API session with an account password.",
    request_body = Login,
    responses(
        (status = 200, description = "session token (also set as an HttpOnly cookie)"),
        (status = 401, description = "wrong account, user or password", body = ErrorBody),
        (status = 429, description = "too many failed logins", body = ErrorBody),
    ),
)]

pub(super) async fn login(State(app): State<AppState>, req: Request) -> Answer {
    let origin = Origin::of(req.extensions(), req.headers());
    let body: Login = json_body(req).await?;
    let credentials = Credentials::Password {
        login: format!("{}/{}", body.account, body.user),
        password: body.password,
    };
    let caller = auth::login(&app, origin, credentials)
        .await
        .map_err(|e| match e {
            AuthError::Wrong => Refusal(ApiError::Unauthorized {
                message: "wrong account, user or password".into(),
                challenge: None,
            }),
            other => Refusal::from(other),
        })?;
    let Some(principal) = caller.principal.clone() else {
        return Err(Refusal::from(AuthError::Wrong));
    };
    auth::record_login(&app, &caller, Surface::Manage).await;
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

#[utoipa::path(
    get,
    path = "/v2/manage/session",
    operation_id = "session_whoami",
    tag = "session",
    summary = "Who the caller is: account, user, and whether they administer their account or the registry.",
    responses(
        (status = 200, description = "{\"account\",\"user\",\"admin\",\"operator\"}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/session`: the caller, as the console shows them and
/// decides which pages to offer.
pub(super) async fn whoami(member: Member) -> Answer {
    let p = &member.principal;
    Ok(axum::Json(json!({
        "account": p.account.as_str(),
        "user": p.user.as_str(),
        "admin": p.account_admin,
        "operator": p.is_operator(),
    }))
    .into_response())
}
