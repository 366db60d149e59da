//! The console is a client of the management API, in-process: each page
//! reads through the API's routes and each form calls one, with the
//! browser's own cookie, address and request id. Every rule, every refusal
//! and every audit record is therefore the API's, and nothing here decides
//! who may do what.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use berth_api::RequestId;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::csrf;
use crate::i18n::{Lang, Words};
use crate::Console;

/// The browser request a page answers: what the API calls carry on, and
/// what every page shows (its language, its CSRF token, its own address).
pub struct Visitor {
    /// The visitor's words.
    pub words: Words,
    /// The form token of this browser (see [`csrf`]).
    pub csrf: String,
    /// Whether the token is new and must be set as a cookie.
    pub new_csrf: bool,
    /// The page's path and query, to come back to after a switch of
    /// language or a sign-in.
    pub here: String,
    cookie: Option<HeaderValue>,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    connect: Option<ConnectInfo<SocketAddr>>,
    request_id: Option<RequestId>,
}

impl FromRequestParts<Console> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &Console) -> Result<Self, Self::Rejection> {
        let (csrf, new_csrf) = match csrf::of(&parts.headers) {
            Some(token) => (token, false),
            None => (csrf::fresh(), true),
        };
        Ok(Self {
            words: Words {
                lang: Lang::negotiate(&parts.headers),
            },
            csrf,
            new_csrf,
            here: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/console/".to_owned(), |p| p.as_str().to_owned()),
            cookie: parts.headers.get(header::COOKIE).cloned(),
            host: parts.headers.get(header::HOST).cloned(),
            user_agent: parts.headers.get(header::USER_AGENT).cloned(),
            connect: parts.extensions.get::<ConnectInfo<SocketAddr>>().copied(),
            request_id: parts.extensions.get::<RequestId>().copied(),
        })
    }
}

/// A refusal of the API, as the console shows it: in words, beside the
/// field or the action it concerns.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The HTTP status.
    pub status: u16,
    /// The API's stable code (`CONFLICT`, `INVALID`, ...).
    pub code: String,
    /// The API's own message, in English.
    pub message: String,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// Seconds to wait, when the API asked for a wait.
    pub retry_after: Option<u64>,
}

impl Failure {
    /// Whether the visitor is not signed in (or no longer).
    pub fn signed_out(&self) -> bool {
        self.status == 401
    }

    /// The refusal in the visitor's words. The catalogue may hold a text
    /// for this action and code (`orgs.create.CONFLICT`), else one for the
    /// code. An English page shows the API's own message, which is the most
    /// precise; a Chinese page shows the catalogue's text, with the
    /// API's message after it when there is no text for the action.
    pub fn in_words(&self, words: &Words, action: &str) -> String {
        let specific = format!("{action}.{}", self.code);
        let seconds = self.retry_after.unwrap_or_default().to_string();
        let args = [
            ("seconds", seconds.as_str()),
            ("message", self.message.as_str()),
        ];
        if words.has(&specific) {
            return words.f(&specific, &args);
        }
        match words.lang {
            Lang::En if !self.message.is_empty() => self.message.clone(),
            _ => {
                let general = format!("error.{}", self.code);
                let key = if words.has(&general) {
                    general.as_str()
                } else {
                    "error.OTHER"
                };
                words.f(key, &args)
            }
        }
    }
}

/// An API answer: status, headers and body.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers (a sign-in's `Set-Cookie`).
    pub headers: HeaderMap,
    /// The JSON body, or `Null`.
    pub body: Value,
}

impl Console {
    /// Calls the API as the visitor. `key` is the form's
    /// `Idempotency-Key`: a form sent twice changes things once.
    pub async fn call(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
        key: Option<&str>,
    ) -> Answer {
        let mut req = match Request::builder()
            .method(method)
            .uri(format!("/v2/manage{path}"))
            .body(body)
        {
            Ok(req) => req,
            // Paths are made of encoded parts; one that is still not a URI
            // is refused here rather than sent somewhere else.
            Err(e) => {
                return Answer {
                    status: StatusCode::BAD_REQUEST,
                    headers: HeaderMap::new(),
                    body: serde_json::json!({
                        "code": "INVALID",
                        "message": format!("not an address the registry serves: {e}"),
                    }),
                }
            }
        };
        let headers = req.headers_mut();
        for (name, value) in [
            (header::COOKIE, visitor.cookie.clone()),
            // The pull lines the API writes name the registry as the
            // browser reached it.
            (header::HOST, visitor.host.clone()),
            (header::USER_AGENT, visitor.user_agent.clone()),
            (
                header::CONTENT_TYPE,
                content_type.and_then(|c| c.parse().ok()),
            ),
            (
                header::HeaderName::from_static("idempotency-key"),
                key.and_then(|k| k.parse().ok()),
            ),
        ] {
            if let Some(value) = value {
                headers.insert(name, value);
            }
        }
        if let Some(c) = visitor.connect {
            req.extensions_mut().insert(c);
        }
        if let Some(id) = visitor.request_id {
            req.extensions_mut().insert(id);
        }
        let response: Response = match self.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_else(|_| Bytes::new());
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Reads an API route as the visitor.
    pub async fn get(&self, visitor: &Visitor, path: &str) -> Result<Value, Failure> {
        let answer = self
            .call(visitor, Method::GET, path, Body::empty(), None, None)
            .await;
        answer.into_result()
    }

    /// Sends a JSON body (or none) to an API route as the visitor.
    pub async fn send(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: &str,
    ) -> Result<Value, Failure> {
        let (body, content_type) = match body {
            Some(v) => (Body::from(v.to_string()), Some("application/json")),
            None => (Body::empty(), None),
        };
        self.call(visitor, method, path, body, content_type, Some(key))
            .await
            .into_result()
    }
}

impl Answer {
    /// The body of a success, or the refusal.
    pub fn into_result(self) -> Result<Value, Failure> {
        if self.status.is_success() {
            return Ok(self.body);
        }
        let text = |k: &str| self.body[k].as_str().map(str::to_owned);
        Err(Failure {
            status: self.status.as_u16(),
            code: text("code").unwrap_or_else(|| "OTHER".into()),
            message: text("message").unwrap_or_default(),
            field: text("field").filter(|f| !f.is_empty()),
            retry_after: self
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        })
    }
}
