//! The management REST API under `/v2/manage`: JSON in, JSON out, errors as
//! `{"code","message","field"}`. Handlers parse and check the request, turn
//! it into a command, and submit it; the rules live in the domain.

mod access_keys;
mod accounts;
mod audit;
mod audit_events;
mod gc;
mod grants;
mod idempotency;
mod listing;
mod namespaces;
mod openapi;
mod repos;
mod session;
mod shares;
mod storage;
mod tags;
mod uploads;

pub use idempotency::{Reply, RequestKey};
pub use uploads::settle as settle_uploads;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts as RequestParts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Router;
use berth_domain::policy::{allows, DENIED_MESSAGE};
use berth_domain::{Level, Principal};
use serde::de::DeserializeOwned;

use crate::auth::{self, Caller, Surface};
use crate::error::ApiError;
use crate::request::Origin;
use crate::state::AppState;

/// What a path answers, by method.
pub(crate) type Methods = fn() -> MethodRouter<AppState>;

/// Every management route, under `/v2/manage`: the router is built from
/// this table, and a test holds the OpenAPI document to it.
pub(crate) const ROUTES: &[(&str, Methods)] = &[
    ("/openapi.json", || get(openapi::document)),
    ("/session", || post(session::login).get(session::whoami)),
    ("/accounts", || post(accounts::create_account)),
    ("/accounts/{account}/users", || {
        post(accounts::create_user).get(accounts::list_users)
    }),
    ("/accounts/{account}/storage", || get(storage::account)),
    ("/accounts/{account}/users/{user}", || {
        patch(accounts::update_user)
    }),
    ("/access-keys", || {
        post(access_keys::create).get(access_keys::list)
    }),
    ("/access-keys/{ak}", || {
        patch(access_keys::update).delete(access_keys::delete)
    }),
    ("/utils/secret", || post(access_keys::temporary_login)),
    ("/namespaces", || {
        post(namespaces::create).get(namespaces::list)
    }),
    ("/namespaces/{ns}", || {
        get(namespaces::detail).delete(namespaces::remove)
    }),
    ("/namespaces/{ns}/access", || post(namespaces::grant)),
    ("/namespaces/{ns}/access/{user}", || {
        delete(namespaces::revoke)
    }),
    ("/repos", || get(repos::list)),
    ("/namespaces/{ns}/repos", || {
        post(repos::create).get(repos::list_in)
    }),
    ("/namespaces/{ns}/repos/{repo}", || {
        get(repos::detail)
            .patch(repos::update)
            .delete(repos::remove)
    }),
    ("/namespaces/{ns}/repos/{repo}/access", || {
        post(repos::grant)
    }),
    ("/namespaces/{ns}/repos/{repo}/access/{user}", || {
        delete(repos::revoke)
    }),
    ("/namespaces/{ns}/repos/{repo}/tags", || {
        get(tags::list).post(tags::retag).delete(tags::remove_many)
    }),
    ("/namespaces/{ns}/repos/{repo}/tags/{tag}", || {
        delete(tags::remove_one)
    }),
    ("/namespaces/{ns}/repos/{repo}/access-domains", || {
        post(shares::create).get(shares::list)
    }),
    (
        "/namespaces/{ns}/repos/{repo}/access-domains/{account}",
        || patch(shares::update).delete(shares::revoke),
    ),
    ("/shared-repositories", || get(shares::shared_repositories)),
    ("/audit/checkpoint", || get(audit::checkpoint)),
    ("/audit/public-key", || get(audit::public_key)),
    ("/audit/timeline", || get(audit::timeline)),
    ("/audit/as-of", || get(audit::as_of)),
    ("/audit/events", || get(audit_events::events)),
    ("/namespaces/{ns}/uploads", || {
        post(uploads::create).layer(axum::extract::DefaultBodyLimit::disable())
    }),
    ("/uploads", || get(uploads::list)),
    ("/uploads/{job}", || get(uploads::get)),
    ("/gc", || post(gc::run)),
];

/// The management routes, every write taking an `Idempotency-Key`.
pub fn router() -> Router<AppState> {
    ROUTES
        .iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods())
        })
        .layer(axum::middleware::from_fn(idempotency::take))
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
    /// The request's `Idempotency-Key`, if it sent one.
    pub key: Option<RequestKey>,
}

impl Member {
    /// The request metadata for the engine.
    pub fn meta(&self) -> berth_store::RequestMeta {
        self.caller.meta()
    }

    /// Submits a write's command with the answer it gives once the command
    /// is durable. A keyed request that repeats one in the log is answered
    /// as that one was, and changes nothing.
    pub async fn commit(
        &self,
        app: &AppState,
        command: berth_domain::Command,
        content: berth_store::Content,
        reply: Reply,
    ) -> Result<Committed, berth_store::StoreError> {
        let Some(key) = &self.key else {
            app.engine
                .submit_with(command, content, self.meta())
                .await?;
            return Ok(Committed::fresh(reply));
        };
        let keyed = reply.recorded(key)?;
        Ok(
            match app
                .engine
                .submit_keyed(command, content, self.meta(), keyed)
                .await?
            {
                berth_store::Outcome::Recorded(_) => Committed::fresh(reply),
                berth_store::Outcome::Replayed(answer) => Committed {
                    answer: idempotency::replay(&answer),
                    replayed: true,
                },
            },
        )
    }
}

/// A committed write's answer.
pub struct Committed {
    /// What the client is told.
    pub answer: Response,
    /// Whether the request repeated a keyed one, so that it changed nothing.
    pub replayed: bool,
}

impl Committed {
    fn fresh(reply: Reply) -> Self {
        Self {
            answer: reply.into_response(),
            replayed: false,
        }
    }
}

impl FromRequestParts<AppState> for Member {
    /// A refusal, or the first answer to a request this one repeats.
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut RequestParts,
        app: &AppState,
    ) -> Result<Self, Response> {
        let origin = Origin::of_parts(parts);
        let caller = auth::authenticate(app, origin, &parts.headers, Surface::Manage, None)
            .await
            .map_err(|e| Refusal::from(e).into_response())?;
        let principal = caller.principal.clone().ok_or_else(|| {
            Refusal(ApiError::Unauthorized {
                message: "log in first: POST /v2/manage/session".into(),
                challenge: None,
            })
            .into_response()
        })?;
        let key = parts.extensions.get::<RequestKey>().cloned();
        if let Some(key) = &key {
            let scope = berth_store::KeyScope::of(&caller.meta().actor, &key.key);
            let earlier = idempotency::earlier(app, scope, key).await;
            if let Some(answer) = earlier.map_err(IntoResponse::into_response)? {
                return Err(answer);
            }
        }
        Ok(Self {
            principal,
            caller,
            key,
        })
    }
}

/// Largest management request body: a 30 000-character description in
/// any script fits.
pub(super) const MAX_BODY: usize = 256 * 1024;

/// Reads a JSON body, answering a parse failure with the field at fault:
/// its path for a wrong value (`users[2].auth`), its name for an unknown
/// one.
pub async fn json_body<T: DeserializeOwned>(req: Request) -> Result<T, Refusal> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::Invalid {
            field: String::new(),
            message: "request body is missing or larger than 256 KiB".into(),
        })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let text = e.inner().to_string();
        let path = e.path().to_string();
        let field = match text.split('`').nth(1) {
            Some(unknown) if text.starts_with("unknown field") => unknown.to_owned(),
            _ if path == "." => String::new(),
            _ => path,
        };
        Refusal(ApiError::Invalid {
            field,
            message: format!("request body is not what this route takes: {text}"),
        })
    })
}

/// What a caller holds on a resource a route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The resource does not exist.
    Absent,
    /// It exists, and the caller holds this level on it (or none).
    Present(Option<Level>),
}

/// Holds a caller to a level on a resource. No level at all looks exactly
/// like a resource that does not exist (`missing`); too low a level is
/// refused. Both refusals on a resource that exists are recorded for its
/// owner's auditors.
pub async fn require(
    app: &AppState,
    member: &Member,
    held: Held,
    needed: Level,
    action: &str,
    resource: &str,
    missing: impl FnOnce() -> ApiError,
) -> Result<(), Refusal> {
    match held {
        Held::Absent => Err(Refusal(missing())),
        Held::Present(level) if allows(level, needed) => Ok(()),
        Held::Present(None) => {
            auth::record_denial(app, &member.caller, action, resource).await;
            Err(Refusal(missing()))
        }
        Held::Present(Some(_)) => Err(deny(app, member, action, resource).await),
    }
}

/// The registry's address as clients name it: the configured external URL,
/// else this request's `Host`.
pub fn registry_host(app: &AppState, headers: &HeaderMap) -> String {
    app.settings
        .external_url
        .as_deref()
        .map(|u| {
            u.trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_owned()
        })
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".into())
}

/// Query parameters of a listing, refusing any the route does not know.
pub struct Query(std::collections::HashMap<String, String>);

impl Query {
    /// Parses a query string; `known` are the parameters the route takes.
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Self, Refusal> {
        let map = crate::request::query_map(raw);
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Refusal(ApiError::Invalid {
                field: unknown.clone(),
                message: format!(
                    "unknown query parameter {unknown}; this route takes {}",
                    known.join(", ")
                ),
            }));
        }
        Ok(Self(map))
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `limit`: 1 to 1 000, `default` when absent.
    pub fn limit(&self, default: usize) -> Result<usize, Refusal> {
        Ok(self
            .parsed(
                "limit",
                |l| l.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)),
                "a number from 1 to 1000",
            )?
            .unwrap_or(default))
    }

    /// A parameter parsed by `parse`, the parameter named on failure.
    pub fn parsed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, Refusal> {
        self.get(key)
            .map(|v| {
                parse(v).ok_or_else(|| {
                    Refusal(ApiError::Invalid {
                        field: key.to_owned(),
                        message: format!("{key} must be {expected}, not {v:?}"),
                    })
                })
            })
            .transpose()
    }
}

/// Submits a member's command and answers `204 No Content`.
pub async fn done(app: &AppState, member: &Member, command: berth_domain::Command) -> Answer {
    commit(app, member, command, Reply::no_content()).await
}

/// Submits a member's command that brings no content, with its answer.
pub async fn commit(
    app: &AppState,
    member: &Member,
    command: berth_domain::Command,
    reply: Reply,
) -> Answer {
    Ok(member
        .commit(app, command, berth_store::Content::new(), reply)
        .await?
        .answer)
}

/// Refuses an authenticated caller, recording the attempt.
pub async fn deny(app: &AppState, member: &Member, action: &str, resource: &str) -> Refusal {
    auth::record_denial(app, &member.caller, action, resource).await;
    Refusal(ApiError::Denied(DENIED_MESSAGE.into()))
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
