//! Access control for the registry routes: what each route needs, who the
//! caller is (bearer token, docker Basic credential, or nobody), and the one
//! check every request passes before its handler runs.

use axum::http::{header, HeaderMap, Method};
use berth_domain::policy::{allows, DENIED_MESSAGE};
use berth_domain::{Action, Actor, Command, Owner, Principal, RepoPath};
use berth_store::RequestMeta;
use chrono::Utc;

use crate::auth::token::{verify, Claims};
use crate::auth::{self, presented, AuthError, Authenticated, Presented};
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
    /// One action on one repository.
    Repo(RepoPath, Action),
}

/// The action a request on an endpoint needs.
pub fn needs(endpoint: &Endpoint, method: &Method) -> Needs {
    let action = match *method {
        Method::DELETE => Action::Delete,
        Method::GET | Method::HEAD => Action::Pull,
        _ => Action::Push,
    };
    match endpoint {
        Endpoint::Base => Needs::Nothing,
        Endpoint::Catalog => Needs::Catalog,
        Endpoint::Tags { repo }
        | Endpoint::Manifest { repo, .. }
        | Endpoint::Blob { repo, .. }
        | Endpoint::Referrers { repo, .. } => Needs::Repo(repo.clone(), action),
        // Cancelling or inspecting one's own upload is part of pushing.
        Endpoint::UploadStart { repo } | Endpoint::Upload { repo, .. } => {
            Needs::Repo(repo.clone(), Action::Push)
        }
    }
}

/// The caller of a registry request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials.
    Anonymous,
    /// A bearer token from the token service; `principal` is its subject.
    Token {
        /// The verified claims.
        claims: Claims,
        /// The subject, if the token is not anonymous.
        principal: Option<Principal>,
    },
    /// Docker credentials sent straight to the registry route.
    User(Authenticated),
}

impl Caller {
    /// The authenticated principal, if any.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Self::Anonymous => None,
            Self::Token { principal, .. } => principal.as_ref(),
            Self::User(a) => Some(&a.principal),
        }
    }

    /// The actor recorded in the events this caller causes.
    pub fn actor(&self, client_addr: Option<String>) -> Actor {
        let kind = match self {
            Self::Anonymous => None,
            Self::Token { claims, .. } => claims.kind,
            Self::User(a) => Some(a.kind),
        };
        match (self.principal(), kind) {
            (Some(p), Some(kind)) => Actor::user(&p.account, &p.user, kind, client_addr),
            _ => Actor::anonymous(client_addr),
        }
    }

    /// The owner of an organization this caller's push would create.
    pub fn owner(&self, org_quota: usize) -> Option<Owner> {
        self.principal().map(|p| Owner {
            account: p.account.clone(),
            user: p.user.clone(),
            org_quota,
        })
    }
}

fn unauthorized(
    app: &AppState,
    headers: &HeaderMap,
    scope: Option<String>,
    message: &str,
) -> ApiError {
    let base = app.settings.external_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    let mut challenge = format!(
        "Bearer realm=\"{base}/v2/token\",service=\"{}\"",
        app.settings.service
    );
    if let Some(scope) = scope {
        challenge.push_str(&format!(",scope=\"{scope}\""));
    }
    ApiError::Unauthorized {
        message: message.to_owned(),
        challenge: Some(challenge),
    }
}

/// Identifies the caller of a registry route and, for a repository action,
/// whether the caller may do it: one trip to the storage threads for both.
pub async fn authorize(
    app: &AppState,
    headers: &HeaderMap,
    needs: &Needs,
) -> Result<(Caller, bool), ApiError> {
    let invalid = |m: &str| unauthorized(app, headers, None, m);
    let presented = presented(headers).map_err(|_| invalid("malformed Authorization header"))?;
    // Verifying a token is CPU work: it needs no storage thread.
    let claims = match &presented {
        Presented::Bearer(token) => Some(
            verify(
                &app.key,
                token,
                &app.settings.service,
                Utc::now().timestamp(),
            )
            .map_err(|_| invalid("invalid or expired token"))?,
        ),
        _ => None,
    };
    let wanted = match needs {
        Needs::Repo(repo, action) => Some((repo.clone(), *action)),
        _ => None,
    };
    let outcome = app
        .read(move |p| {
            let caller = match (presented, claims) {
                (Presented::Bearer(_), Some(claims)) => {
                    let valid = match &claims.cred {
                        Some(c) => auth::credential_still_valid(&p.models, c)?,
                        None => true,
                    };
                    let principal = auth::subject_principal(&p.models, &claims.sub)?;
                    if !valid || (principal.is_none() && !claims.sub.is_empty()) {
                        return Ok(Err("the credential behind this token no longer works"));
                    }
                    Caller::Token { claims, principal }
                }
                (Presented::Basic { user, password }, _) => {
                    match auth::check_docker_login(&p.models, &p.settings, &user, &password)? {
                        Ok(a) => Caller::User(a),
                        Err(AuthError::PasswordNotAccepted) => return Ok(Err(
                            "account passwords open console and API sessions only; log in with an access key or a temporary login",
                        )),
                        Err(AuthError::Invalid) => return Ok(Err("wrong user name or password")),
                    }
                }
                _ => Caller::Anonymous,
            };
            let allowed = match (&caller, &wanted) {
                (_, None) => true,
                (Caller::Token { claims, .. }, Some((repo, action))) => token_grants(claims, repo, *action),
                (caller, Some((repo, action))) => {
                    let level = auth::repo_level(&p.models, &p.settings, caller.principal(), repo)?;
                    allows(level, *action)
                }
            };
            Ok(Ok((caller, allowed)))
        })
        .await?;
    outcome.map_err(invalid)
}

/// Whether a token grants an action on a repository.
fn token_grants(claims: &Claims, repo: &RepoPath, action: Action) -> bool {
    let name = repo.to_string();
    claims.access.iter().any(|a| {
        a.kind == "repository" && a.name == name && a.actions.iter().any(|x| x == action.as_str())
    })
}

/// Turns an authorization outcome into the answer. Anonymous callers who
/// lack access get 401 with a challenge (so clients log in); authenticated
/// ones get 403 `DENIED`, the same for a private repository of another
/// account as for a missing one, and the refusal is recorded for the audit
/// trail.
pub async fn enforce(
    app: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    allowed: bool,
    needs: &Needs,
    meta: &RequestMeta,
) -> Result<(), ApiError> {
    let (repo, action) = match needs {
        Needs::Catalog => return Ok(()),
        // The version check always challenges a caller without credentials:
        // that challenge is how clients discover the token service. Anonymous
        // pulls then go through an anonymous token.
        Needs::Nothing => {
            return match caller {
                Caller::Anonymous => {
                    Err(unauthorized(app, headers, None, "authentication required"))
                }
                _ => Ok(()),
            }
        }
        Needs::Repo(repo, action) => (repo, *action),
    };
    if allowed {
        return Ok(());
    }
    let Some(principal) = caller.principal() else {
        let scope = match action {
            Action::Pull => format!("repository:{repo}:pull"),
            other => format!("repository:{repo}:pull,{}", other.as_str()),
        };
        return Err(unauthorized(
            app,
            headers,
            Some(scope),
            "authentication required",
        ));
    };
    record_denial(app, principal, action.as_str(), &repo.to_string(), meta).await;
    Err(ApiError::Denied(DENIED_MESSAGE.into()))
}

/// Appends an `AccessDenied` event. A failure to record is logged, not
/// shown: the refusal stands either way.
pub async fn record_denial(
    app: &AppState,
    principal: &Principal,
    action: &str,
    resource: &str,
    meta: &RequestMeta,
) {
    let command = Command::RecordDenial {
        account: principal.account.clone(),
        user: principal.user.clone(),
        action: action.to_owned(),
        resource: resource.to_owned(),
    };
    if let Err(e) = app.engine.submit(command, meta.clone()).await {
        tracing::error!(error = %e, "could not record a denied attempt");
    }
}
