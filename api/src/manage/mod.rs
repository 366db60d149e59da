//! The management REST API under `/v2/manage`: JSON in, JSON out, errors as
//! `{"code","message","field"}`. Handlers parse and check the request, turn
//! it into a command, and submit it; the rules live in the domain.

mod access_keys;
mod accounts;
mod namespaces;
mod session;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts as RequestParts;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::Router;
use berth_domain::{Actor, CredentialKind, Principal};
use berth_store::RequestMeta;
use chrono::Utc;
use serde::de::DeserializeOwned;

use crate::auth::token::{verify, SESSION_AUDIENCE};
use crate::auth::{self, presented, AuthError, Presented};
use crate::error::ApiError;
use crate::state::AppState;
use crate::RequestId;

/// The management routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", post(session::login))
        .route("/accounts", post(accounts::create_account))
        .route("/accounts/{account}/users", post(accounts::create_user))
        .route(
            "/accounts/{account}/users/{user}",
            patch(accounts::update_user),
        )
        .route(
            "/access-keys",
            post(access_keys::create).get(access_keys::list),
        )
        .route(
            "/access-keys/{ak}",
            patch(access_keys::update).delete(access_keys::delete),
        )
        .route("/utils/secret", post(access_keys::temporary_login))
        .route("/namespaces", post(namespaces::create))
        .route("/namespaces/{ns}/access", post(namespaces::grant))
        .route(
            "/namespaces/{ns}/repos/{repo}/access",
            post(namespaces::grant_repo),
        )
        .route(
            "/namespaces/{ns}/repos/{repo}",
            patch(namespaces::update_repo),
        )
}

/// A management error, rendered in the management shape.
pub struct Refusal(pub ApiError);

impl<E: Into<ApiError>> From<E> for Refusal {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.0.into_manage_response()
    }
}

/// Result of a management handler.
pub type Answer = Result<Response, Refusal>;

/// The authenticated caller of a management route, with the request's
/// metadata for the events it causes.
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// Request id and actor.
    pub meta: RequestMeta,
}

fn client_of(parts: &RequestParts) -> String {
    crate::client_addr(&parts.extensions).unwrap_or_default()
}

fn meta_for(
    parts: &RequestParts,
    principal: &Principal,
    kind: CredentialKind,
    client: &str,
) -> RequestMeta {
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0)
        .unwrap_or_else(uuid::Uuid::new_v4);
    let actor = Actor::user(
        &principal.account,
        &principal.user,
        kind,
        Some(client.to_owned()),
    );
    RequestMeta { actor, request_id }
}

fn unauthorized(message: &str) -> Refusal {
    Refusal(ApiError::Unauthorized {
        message: message.to_owned(),
        challenge: None,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut RequestParts, app: &AppState) -> Result<Self, Refusal> {
        let client = client_of(parts);
        let (principal, kind) =
            match presented(&parts.headers)
                .map_err(|_| unauthorized("malformed Authorization header"))?
            {
                Presented::Nothing => {
                    return Err(unauthorized("log in first: POST /v2/manage/session"))
                }
                Presented::Bearer(token) => {
                    let claims = verify(&app.key, &token, SESSION_AUDIENCE, Utc::now().timestamp())
                        .map_err(|_| unauthorized("invalid or expired session"))?;
                    let sub = claims.sub.clone();
                    let principal = app
                        .read(move |p| auth::subject_principal(&p.models, &sub))
                        .await?
                        .ok_or_else(|| unauthorized("invalid or expired session"))?;
                    (principal, CredentialKind::Password)
                }
                Presented::Basic { user, password } => {
                    if let Err(wait) = app.limiter.check(&user, &client) {
                        return Err(Refusal(ApiError::TooManyRequests(wait.as_secs().max(1))));
                    }
                    let login = user.clone();
                    let result = app
                        .read(move |p| {
                            if login.contains('/') {
                                Ok(auth::check_password(&p.models, &login, &password)?
                                    .map(|p| (p, CredentialKind::Password))
                                    .ok_or(AuthError::Invalid))
                            } else {
                                Ok(auth::check_docker_login(
                                    &p.models,
                                    &p.settings,
                                    &login,
                                    &password,
                                )?
                                .map(|a| (a.principal, a.kind)))
                            }
                        })
                        .await?;
                    match result {
                        Ok(found) => {
                            app.limiter.succeeded(&user, &client);
                            found
                        }
                        Err(_) => {
                            app.limiter.failed(&user, &client);
                            return Err(unauthorized("wrong user name or password"));
                        }
                    }
                }
            };
        let meta = meta_for(parts, &principal, kind, &client);
        Ok(Self { principal, meta })
    }
}

/// Reads a JSON body, answering a parse failure with the field at fault
/// when serde names one.
pub async fn json_body<T: DeserializeOwned>(req: Request) -> Result<T, Refusal> {
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::Invalid {
            field: String::new(),
            message: "request body is missing or larger than 64 KiB".into(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let text = e.to_string();
        let field = text.split('`').nth(1).unwrap_or_default().to_owned();
        Refusal(ApiError::Invalid {
            field,
            message: format!("request body is not what this route takes: {text}"),
        })
    })
}

/// Refuses an authenticated caller, recording the attempt.
pub async fn deny(app: &AppState, caller: &Caller, action: &str, resource: &str) -> Refusal {
    crate::access::record_denial(app, &caller.principal, action, resource, &caller.meta).await;
    Refusal(ApiError::Denied(
        berth_domain::policy::DENIED_MESSAGE.into(),
    ))
}

/// Parses a name field, naming the field when it is wrong.
pub fn field<T>(
    name: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, berth_domain::DomainError>,
) -> Result<T, Refusal> {
    parse(value).map_err(|e| {
        Refusal(ApiError::Invalid {
            field: name.to_owned(),
            message: e.to_string(),
        })
    })
}
