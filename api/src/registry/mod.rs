//! Registry V2 / OCI distribution routes. One entry point parses the path
//! into an [`Endpoint`], checks access, and hands the request to the
//! handler module for that kind of resource.

mod blobs;
mod listing;
mod manifests;
mod uploads;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::{Pushed, RepoPath};
use berth_store::RequestMeta;

use crate::access;
use crate::auth::{self, Caller};
use crate::endpoint::{self, Endpoint};
use crate::error::ApiError;
use crate::request::{query_map, Origin};
use crate::state::AppState;

/// Everything a handler gets: the shared state, who is asking, and the
/// request's pieces.
pub(crate) struct Call {
    pub app: AppState,
    pub caller: Caller,
    pub meta: RequestMeta,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    pub body: Body,
}

/// Serves every registry route.
pub async fn dispatch(State(app): State<AppState>, req: Request) -> Response {
    match route(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(app: AppState, req: Request) -> Result<Response, ApiError> {
    let endpoint = endpoint::parse(req.uri().path())?.ok_or(ApiError::NotFound)?;
    let origin = Origin::of(req.extensions(), req.headers());
    let needs = access::needs(&endpoint, req.method());
    let caller = access::caller(&app, origin, req.headers(), &needs).await?;
    access::admit(&app, req.headers(), &caller, &needs).await?;
    let meta = caller.meta();
    let query = query_map(req.uri().query());
    let (parts, body) = req.into_parts();
    let call = Call {
        app,
        caller,
        meta,
        method: parts.method,
        headers: parts.headers,
        query,
        body,
    };
    let pushed = pushed(&endpoint, &call.method, &call.query);
    let caller = pushed
        .as_ref()
        .map(|_| (call.app.clone(), call.caller.clone()));
    let result = serve(endpoint, call).await;
    let refusal = match &result {
        Err(e) if e.rejects_content() => Some((e.code(), e.to_string())),
        _ => None,
    };
    if let (Some((code, message)), Some((object, repo, reference)), Some((app, caller))) =
        (refusal, pushed, caller)
    {
        let rejection = auth::Rejection {
            repo,
            object,
            reference,
            code,
            message,
        };
        auth::record_push_rejection(&app, &caller, rejection).await;
    }
    result
}

/// What a request pushes, for the audit record of a refusal: a finished
/// upload (by the digest it claims) or a manifest (by its reference).
fn pushed(
    endpoint: &Endpoint,
    method: &Method,
    query: &HashMap<String, String>,
) -> Option<(Pushed, RepoPath, String)> {
    match (endpoint, method) {
        (Endpoint::Manifest { repo, reference }, &Method::PUT) => {
            Some((Pushed::Manifest, repo.clone(), reference.to_string()))
        }
        (Endpoint::Upload { repo, .. }, &Method::PUT)
        | (Endpoint::UploadStart { repo }, &Method::POST) => query
            .get("digest")
            .map(|d| (Pushed::Blob, repo.clone(), d.clone())),
        _ => None,
    }
}

async fn serve(endpoint: Endpoint, call: Call) -> Result<Response, ApiError> {
    let m = call.method.clone();
    match (endpoint, m) {
        (Endpoint::Base, Method::GET | Method::HEAD) => Ok(base()),
        (Endpoint::Catalog, Method::GET) => listing::catalog(call).await,
        (Endpoint::Tags { repo }, Method::GET) => listing::tags(call, repo).await,
        (Endpoint::Referrers { repo, digest }, Method::GET) => {
            listing::referrers(call, repo, digest).await
        }
        (Endpoint::Manifest { repo, reference }, Method::GET | Method::HEAD) => {
            manifests::get(call, repo, reference).await
        }
        (Endpoint::Manifest { repo, reference }, Method::PUT) => {
            manifests::put(call, repo, reference).await
        }
        (Endpoint::Manifest { repo, reference }, Method::DELETE) => {
            manifests::delete(call, repo, reference).await
        }
        (Endpoint::Blob { repo, digest }, Method::GET | Method::HEAD) => {
            blobs::get(call, repo, digest).await
        }
        (Endpoint::Blob { repo, digest }, Method::DELETE) => {
            blobs::delete(call, repo, digest).await
        }
        (Endpoint::UploadStart { repo }, Method::POST) => uploads::start(call, repo).await,
        (Endpoint::Upload { repo, id }, method) => {
            let id = id.ok_or(ApiError::Store(berth_store::StoreError::UploadUnknown))?;
            match method {
                Method::GET => uploads::status(call, repo, id).await,
                Method::PATCH => uploads::patch(call, repo, id).await,
                Method::PUT => uploads::finish(call, repo, id).await,
                Method::DELETE => uploads::cancel(call, repo, id).await,
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

impl Call {
    /// The owner of an organization this call's push would create.
    pub fn owner(&self) -> Option<berth_domain::Owner> {
        self.caller.owner(self.app.settings.org_quota)
    }
}

fn base() -> Response {
    let mut r = (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response();
    r.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

/// Sets a header from a string known to be a valid header value (digests,
/// generated locations, numbers).
pub(crate) fn set(headers: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}
