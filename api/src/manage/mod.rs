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
use berth_domain::Principal;
use serde::de::DeserializeOwned;

use crate::auth::{self, Caller, Surface};
use crate::error::ApiError;
use crate::request::Origin;
use crate::state::AppState;

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

/// The caller of a management route, who must be signed in.
pub struct Member {
    /// Who (always authenticated).
    pub principal: Principal,
    /// The whole caller, for the events the request causes.
    pub caller: Caller,
}

impl Member {
    /// The request metadata for the engine.
    pub fn meta(&self) -> berth_store::RequestMeta {
        self.caller.meta()
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut RequestParts, app: &AppState) -> Result<Self, Refusal> {
        let origin = Origin::of_parts(parts);
        let caller = auth::authenticate(app, origin, &parts.headers, Surface::Manage).await?;
        let principal = caller
            .principal
            .clone()
            .ok_or_else(|| ApiError::Unauthorized {
                message: "log in first: POST /v2/manage/session".into(),
                challenge: None,
            })?;
        Ok(Self { principal, caller })
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
pub async fn deny(app: &AppState, member: &Member, action: &str, resource: &str) -> Refusal {
    auth::record_denial(app, &member.caller, action, resource).await;
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
