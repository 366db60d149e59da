//! Access control for the registry routes: the level each route needs, and
//! the one admission check every request passes before its handler runs,
//! with the answers the Docker token flow expects: a challenge for callers
//! who should (re)authenticate, `DENIED` for those who may not.

use axum::http::{header, HeaderMap, Method};
use berth_domain::policy::DENIED_MESSAGE;
use berth_domain::{Action, Level, RepoPath};

use crate::auth::{self, AuthError, Caller};
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::state::AppState;

/// What a request needs to be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Any known caller (the version check).
    Nothing,
    /// The catalog: answered with what the caller may pull.
    Catalog,
    /// A level on one repository.
    Repo(RepoPath, Level),
}

/// The level a request on an endpoint needs: reads need read, deletes
/// manage, everything else edit. An upload's status is a read, as in the
/// reference registry (clients ask for it with a pull token); cancelling
/// one's own upload is part of pushing.
pub fn needs(endpoint: &Endpoint, method: &Method) -> Needs {
    let by_method = match *method {
        Method::DELETE => Level::Manage,
        Method::GET | Method::HEAD => Level::Read,
        _ => Level::Edit,
    };
    match endpoint {
        Endpoint::Base => Needs::Nothing,
        Endpoint::Catalog => Needs::Catalog,
        Endpoint::Upload { repo, .. } if *method == Method::DELETE => {
            Needs::Repo(repo.clone(), Level::Edit)
        }
        Endpoint::Tags { repo }
        | Endpoint::Manifest { repo, .. }
        | Endpoint::Blob { repo, .. }
        | Endpoint::Referrers { repo, .. }
        | Endpoint::Upload { repo, .. } => Needs::Repo(repo.clone(), by_method),
        Endpoint::UploadStart { repo } => Needs::Repo(repo.clone(), Level::Edit),
    }
}

/// What a challenge asks the token service for.
#[derive(Clone, Copy)]
enum Asks<'a> {
    /// No scope (the version check, a refused credential).
    Nothing,
    /// A caller without credentials: pull and push (and delete, for a
    /// delete), whatever this one request needs. The token service grants
    /// only the part the caller holds, and clients that take their scope
    /// from the first challenge and never widen it (oras-py) can then push.
    Session(&'a RepoPath, Level),
    /// A token short of what this request needs: exactly that, with
    /// `error="insufficient_scope"`.
    Missing(&'a RepoPath, Level),
}

/// The `WWW-Authenticate` challenge that sends a client to the token
/// service, naming the scope it asks for and, when a token fell short, why.
fn challenge(app: &AppState, headers: &HeaderMap, asks: Asks<'_>, message: &str) -> ApiError {
    let base = app.settings.external_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if app.settings.tls { "https" } else { "http" };
        format!("{scheme}://{host}")
    });
    let mut value = format!(
        "Bearer realm=\"{base}/v2/token\",service=\"{}\"",
        app.settings.service
    );
    match asks {
        Asks::Nothing => {}
        Asks::Session(repo, level) => {
            let actions = match level {
                Level::Manage => "pull,push,delete",
                Level::Read | Level::Edit => "pull,push",
            };
            value.push_str(&format!(",scope=\"repository:{repo}:{actions}\""));
        }
        Asks::Missing(repo, level) => {
            let actions = match level {
                Level::Read => "pull".to_owned(),
                other => format!("pull,{}", Action::granting(other).as_str()),
            };
            value.push_str(&format!(
                ",scope=\"repository:{repo}:{actions}\",error=\"insufficient_scope\""
            ));
        }
    }
    ApiError::Unauthorized {
        message: message.to_owned(),
        challenge: Some(value),
    }
}

/// Authenticates a registry request, answering a refused credential with a
/// challenge (so clients log in again).
pub async fn caller(
    app: &AppState,
    origin: crate::request::Origin,
    headers: &HeaderMap,
    needs: &Needs,
) -> Result<Caller, ApiError> {
    let focus = match needs {
        Needs::Repo(repo, _) => Some(repo),
        _ => None,
    };
    auth::authenticate(app, origin, headers, auth::Surface::Registry, focus)
        .await
        .map_err(|e| match &e {
            AuthError::Store(_) | AuthError::Throttled(_) => ApiError::from(e),
            _ => challenge(app, headers, Asks::Nothing, &e.to_string()),
        })
}

/// Lets a request through or answers it:
/// - a token that grants the level passes;
/// - a caller whose identity holds the level but whose token does not gets
///   `401` with `error="insufficient_scope"`, so step-wise clients widen
///   their token;
/// - an anonymous caller without access gets a challenge to log in;
/// - an authenticated one gets `403 DENIED`, the same for a private
///   repository of another account as for a missing one, and the refusal is
///   recorded for the audit trail.
pub async fn admit(
    app: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    needs: &Needs,
) -> Result<(), ApiError> {
    let (repo, level) = match needs {
        Needs::Catalog => return Ok(()),
        // The version check always challenges a caller without credentials:
        // that challenge is how clients discover the token service.
        // Anonymous pulls then go through an anonymous token.
        Needs::Nothing if caller.principal.is_none() && caller.grants.is_none() => {
            return Err(challenge(
                app,
                headers,
                Asks::Nothing,
                "authentication required",
            ))
        }
        Needs::Nothing => return Ok(()),
        Needs::Repo(repo, level) => (repo, *level),
    };
    if caller.token_allows(repo, level) == Some(true) {
        return Ok(());
    }
    let holds = auth::holds(app, caller, repo, level).await?;
    match (holds, caller.grants.is_some(), &caller.principal) {
        (true, false, _) => Ok(()),
        (true, true, _) => Err(challenge(
            app,
            headers,
            Asks::Missing(repo, level),
            "the token does not grant this action",
        )),
        (false, with_token, None) => {
            // Without a token this is the protocol's first step; with an
            // anonymous token it is a refusal, counted for the audit trail.
            if with_token {
                app.failures.count(
                    caller.origin.client_addr.as_deref(),
                    "anonymous-denied",
                    None,
                );
            }
            Err(challenge(
                app,
                headers,
                Asks::Session(repo, level),
                "authentication required",
            ))
        }
        (false, _, Some(_)) => {
            let action = Action::granting(level).as_str();
            auth::record_denial(app, caller, action, &repo.to_string()).await;
            Err(ApiError::Denied(DENIED_MESSAGE.into()))
        }
    }
}
