//! Registry V2 / OCI distribution routes. One entry point parses the path
//! into an [`Endpoint`], checks access, and hands the request to the
//! handler module for that kind of resource.

mod blobs;
mod listing;
mod manifests;
mod uploads;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_store::RequestMeta;
use std::collections::HashMap;

use crate::access::{self, Caller};
use crate::endpoint::{self, Endpoint};
use crate::error::ApiError;
use crate::state::AppState;
use crate::RequestId;

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
    let client_addr = crate::client_addr(req.extensions());
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0)
        .unwrap_or_else(uuid::Uuid::new_v4);
    let needs = access::needs(&endpoint, req.method());
    let (caller, allowed) = access::authorize(&app, req.headers(), &needs).await?;
    let meta = RequestMeta {
        actor: caller.actor(client_addr),
        request_id,
    };
    access::enforce(&app, req.headers(), &caller, allowed, &needs, &meta).await?;
    let query = parse_query(req.uri().query());
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

/// Decodes `a=b&c=d`, percent-decoding values; the first of repeated keys wins.
/// The decoded `key=value` pairs of a query string, in order.
pub(crate) fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
}

/// The query as a map; the first of repeated keys wins.
fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in query_pairs(query) {
        out.entry(k).or_insert(v);
    }
    out
}

/// Decodes `%XX` escapes and `+` (query-string form).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sets a header from a string known to be a valid header value (digests,
/// generated locations, numbers).
pub(crate) fn set(headers: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("n=10&last=a%2Fb&mount=sha256%3Aab&x&n=99"));
        assert_eq!(q["n"], "10");
        assert_eq!(q["last"], "a/b");
        assert_eq!(q["mount"], "sha256:ab");
        assert_eq!(q["x"], "");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
