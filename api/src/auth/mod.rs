//! Who is calling. Every surface (registry routes, the token service, the
//! management API and the console) authenticates through [`authenticate`]
//! (or [`login`], for credentials sent in a body) into one [`Caller`]; the
//! failed-login limiter lives on that path and nowhere else.

pub mod identity;
pub mod levels;
pub mod limiter;
pub mod passwords;
pub mod secrets;
pub mod token;

use std::time::Duration;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use berth_domain::policy::allows;
pub use berth_domain::Surface;
use berth_domain::{
    AccountCommand, Action, Actor, Command, CredentialKind, Level, Owner, Principal, Pushed,
    RepoPath, UserCommand,
};
use berth_store::{RequestMeta, StoreError};
use chrono::Utc;
use thiserror::Error;

use crate::clock::Clock;
use crate::request::Origin;
use crate::state::AppState;
use identity::{Proven, Verdict};
use token::{verify, Access, SESSION_AUDIENCE};

/// Settings of authentication and authorization.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Service name in tokens and challenges.
    pub service: String,
    /// Region prefix of docker login user names (`<region>@<id>`).
    pub region: String,
    /// Public base URL for the token realm; derived from `Host` when unset.
    pub external_url: Option<String>,
    /// Whether anyone may pull public repositories without credentials.
    pub anonymous_pull: bool,
    /// Organizations an account may own.
    pub org_quota: usize,
    /// Lifetime of registry bearer tokens.
    pub token_ttl: Duration,
    /// Lifetime of management sessions.
    pub session_ttl: Duration,
    /// Lifetime of temporary docker logins.
    pub temporary_login_ttl: Duration,
    /// Now, for deadlines.
    pub clock: Clock,
    /// Whether the listener speaks HTTPS: the token realm derived from
    /// `Host` then says `https://`.
    pub tls: bool,
    /// Blob downloads answer with a redirect to the object store's signed
    /// address, valid this long, instead of passing the bytes through.
    pub blob_redirect: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service: "berth".into(),
            region: "local".into(),
            external_url: None,
            anonymous_pull: true,
            org_quota: berth_domain::limits::DEFAULT_ORG_QUOTA,
            token_ttl: Duration::from_secs(300),
            session_ttl: Duration::from_secs(12 * 3600),
            temporary_login_ttl: Duration::from_secs(24 * 3600),
            clock: Clock::default(),
            tls: false,
            blob_redirect: None,
        }
    }
}

/// Credentials as presented.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Presented {
    /// Nothing.
    Nothing,
    /// `Authorization: Bearer <token>` or the session cookie.
    Bearer(String),
    /// `Authorization: Basic <user:password>`.
    Basic {
        /// The user name as typed.
        user: String,
        /// The password.
        password: String,
    },
}

/// Name of the management session cookie.
pub const SESSION_COOKIE: &str = "berth_session";

/// Reads the credentials of a request: the `Authorization` header, else the
/// session cookie. A malformed header counts as a wrong credential.
fn presented(headers: &HeaderMap) -> Result<Presented, AuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Ok(Presented::Bearer(token.trim().to_owned()));
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = STANDARD
                .decode(encoded.trim())
                .map_err(|_| AuthError::Malformed)?;
            let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
            let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
            return Ok(Presented::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            });
        }
        return Err(AuthError::Malformed);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{SESSION_COOKIE}="))
                .map(str::to_owned)
        });
    Ok(cookie.map_or(Presented::Nothing, Presented::Bearer))
}

/// Credentials sent in a request body rather than a header.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `account/user` and its password.
    Password {
        /// `account/user`.
        login: String,
        /// The password.
        password: String,
    },
    /// `<region>@<id>` and its secret.
    Docker {
        /// `<region>@<id>`.
        user: String,
        /// The HMAC login password or temporary secret.
        password: String,
    },
}

impl Credentials {
    fn login(&self) -> &str {
        match self {
            Self::Password { login, .. } => login,
            Self::Docker { user, .. } => user,
        }
    }
}

/// Why credentials were not accepted. Messages never say which part was
/// wrong.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The `Authorization` header does not parse.
    #[error("malformed Authorization header")]
    Malformed,
    /// Unknown user, wrong secret, disabled or expired credential.
    #[error("wrong user name or password")]
    Wrong,
    /// An account password where only docker credentials are taken.
    #[error("account passwords open console and API sessions only; log in with an access key or a temporary login")]
    PasswordNotAccepted,
    /// A token where the token service wants credentials.
    #[error("the token service takes Basic credentials")]
    BearerNotAccepted,
    /// A bad, expired or foreign token or session.
    #[error("invalid or expired token")]
    TokenInvalid,
    /// The credential or user behind a valid token stopped working.
    #[error("the credential behind this token no longer works")]
    Revoked,
    /// Too many failed logins from this address for this name.
    #[error("too many failed logins; retry in {} seconds", .0.as_secs().max(1))]
    Throttled(Duration),
    /// The read models could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// The reason a failure is counted under, for failures that name no
    /// known user (`None` for the others, which are recorded one by one
    /// or are not the caller's doing).
    fn counted_as(&self) -> Option<&'static str> {
        match self {
            Self::Malformed => Some("malformed-credentials"),
            Self::PasswordNotAccepted => Some("password-not-accepted"),
            Self::BearerNotAccepted => Some("bearer-not-accepted"),
            Self::TokenInvalid => Some("token-invalid"),
            Self::Revoked => Some("credential-revoked"),
            Self::Wrong | Self::Throttled(_) | Self::Store(_) => None,
        }
    }
}

/// The one authenticated (or anonymous) caller of a request, whatever
/// surface it arrived on: everything the audit trail says about who acted.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who, unless anonymous.
    pub principal: Option<Principal>,
    /// How they proved it.
    pub credential: CredentialKind,
    /// The access key or temporary login id, for docker credentials.
    pub credential_id: Option<String>,
    /// What a registry token grants, when the caller came with one.
    pub grants: Option<Vec<Access>>,
    /// Where the request came from.
    pub origin: Origin,
    /// The caller's level on the request's repository, when it was read on
    /// the same trip to storage as the credentials.
    known: Option<(RepoPath, Option<Level>)>,
}

impl Caller {
    fn anonymous(origin: Origin) -> Self {
        Self {
            principal: None,
            credential: CredentialKind::Anonymous,
            credential_id: None,
            grants: None,
            origin,
            known: None,
        }
    }

    fn proven(proven: Proven, origin: Origin) -> Self {
        Self {
            principal: Some(proven.principal),
            credential: proven.kind,
            credential_id: proven.credential_id,
            grants: None,
            origin,
            known: None,
        }
    }

    /// The actor recorded in the events this caller causes.
    pub fn actor(&self) -> Actor {
        let addr = self.origin.client_addr.clone();
        let actor = match &self.principal {
            Some(p) => Actor::user(&p.account, &p.user, self.credential, addr),
            None => Actor::anonymous(addr),
        };
        actor.with_request(self.credential_id.clone(), self.origin.user_agent.clone())
    }

    /// The request metadata for the engine.
    pub fn meta(&self) -> RequestMeta {
        RequestMeta {
            actor: self.actor(),
            request_id: self.origin.request_id,
        }
    }

    /// The owner of an organization this caller's push would create.
    pub fn owner(&self, org_quota: usize) -> Option<Owner> {
        self.principal.as_ref().map(|p| Owner {
            account: p.account.clone(),
            user: p.user.clone(),
            org_quota,
        })
    }

    /// Whether the caller's registry token grants `level` on `repo`; `None`
    /// when the caller has no token (their identity decides alone).
    pub fn token_allows(&self, repo: &RepoPath, level: Level) -> Option<bool> {
        let word = Action::granting(level).as_str();
        let name = repo.to_string();
        self.grants.as_ref().map(|grants| {
            grants.iter().any(|a| {
                a.kind == "repository" && a.name == name && a.actions.iter().any(|x| x == word)
            })
        })
    }
}

/// Authenticates a request's credentials for a surface. No credentials at
/// all is an anonymous caller; the surface decides what that may do. With a
/// `focus` repository, a password or docker credential is checked and the
/// caller's level there read in one trip to storage. Every refusal is
/// recorded (a known user's) or counted (anyone else's).
pub async fn authenticate(
    app: &AppState,
    origin: Origin,
    headers: &HeaderMap,
    surface: Surface,
    focus: Option<&RepoPath>,
) -> Result<Caller, AuthError> {
    let addr = origin.client_addr.clone();
    let result = credentials_of(app, origin, headers, surface, focus).await;
    if let Err(e) = &result {
        if let Some(reason) = e.counted_as() {
            app.failures.count(addr.as_deref(), reason, None);
        }
    }
    result
}

async fn credentials_of(
    app: &AppState,
    origin: Origin,
    headers: &HeaderMap,
    surface: Surface,
    focus: Option<&RepoPath>,
) -> Result<Caller, AuthError> {
    let focus = focus.cloned();
    match (surface, presented(headers)?) {
        (_, Presented::Nothing) => Ok(Caller::anonymous(origin)),
        (Surface::TokenService, Presented::Bearer(_)) => Err(AuthError::BearerNotAccepted),
        (Surface::Registry, Presented::Bearer(t)) => registry_token(app, origin, t).await,
        (Surface::Manage, Presented::Bearer(t)) => session(app, origin, t).await,
        (Surface::Manage, Presented::Basic { user, password }) if user.contains('/') => {
            let credentials = Credentials::Password {
                login: user,
                password,
            };
            check(app, origin, surface, credentials, focus).await
        }
        (_, Presented::Basic { user, password }) => {
            if user.contains('/') && !user.contains('@') {
                return Err(AuthError::PasswordNotAccepted);
            }
            let credentials = Credentials::Docker { user, password };
            check(app, origin, surface, credentials, focus).await
        }
    }
}

/// Checks a password or docker credential sent in a body (the management
/// sign-in).
pub async fn login(
    app: &AppState,
    origin: Origin,
    credentials: Credentials,
) -> Result<Caller, AuthError> {
    check(app, origin, Surface::Manage, credentials, None).await
}

/// Checks a password or docker credential, throttling repeated failures
/// per login name and client address, and reads the level on `focus`. A
/// known user's failure is recorded under that user; a failure under an
/// unknown name, or a throttled attempt, is counted.
async fn check(
    app: &AppState,
    origin: Origin,
    surface: Surface,
    credentials: Credentials,
    focus: Option<RepoPath>,
) -> Result<Caller, AuthError> {
    let name = credentials.login().to_owned();
    let addr = origin.client_addr.clone().unwrap_or_default();
    if let Err(wait) = app.limiter.check(&name, &addr) {
        app.failures
            .count(origin.client_addr.as_deref(), "throttled", Some(&name));
        app.metrics.throttled();
        return Err(AuthError::Throttled(wait));
    }
    let (verdict, known) = app
        .read(move |p| {
            let verdict = match credentials {
                Credentials::Password { login, password } => {
                    identity::password_login(&p.models, &login, &password)?
                }
                Credentials::Docker { user, password } => {
                    identity::docker_login(&p.models, &p.settings, &user, &password)?
                }
            };
            let known = match (&verdict, focus) {
                (Verdict::Proven(proven), Some(repo)) => {
                    let level =
                        levels::repo_level(&p.models, &p.settings, Some(&proven.principal), &repo)?;
                    Some((repo, level))
                }
                _ => None,
            };
            Ok((verdict, known))
        })
        .await?;
    match verdict {
        Verdict::Proven(proven) => {
            app.limiter.succeeded(&name, &addr);
            Ok(Caller {
                known,
                ..Caller::proven(proven, origin)
            })
        }
        Verdict::Refused {
            account,
            user,
            kind,
            credential_id,
            reason,
        } => {
            app.limiter.failed(&name, &addr);
            app.metrics.login_failed(surface.as_str());
            let actor = Actor::user(&account, &user, kind, origin.client_addr.clone())
                .with_request(credential_id, origin.user_agent.clone());
            let command = Command::Account(AccountCommand::User {
                account,
                user,
                change: UserCommand::RecordLoginFailure { surface, reason },
            });
            let meta = RequestMeta {
                actor,
                request_id: origin.request_id,
            };
            if let Err(e) = app.engine.submit(command, meta).await {
                tracing::error!(error = %e, "could not record a failed login");
            }
            Err(AuthError::Wrong)
        }
        Verdict::Unknown => {
            app.limiter.failed(&name, &addr);
            app.metrics.login_failed(surface.as_str());
            app.failures
                .count(origin.client_addr.as_deref(), "unknown-user", Some(&name));
            Err(AuthError::Wrong)
        }
    }
}

/// A registry token: its signature (CPU only), then whether the user and
/// the credential behind it still work.
async fn registry_token(
    app: &AppState,
    origin: Origin,
    token: String,
) -> Result<Caller, AuthError> {
    let claims = verify(
        &app.key,
        &token,
        &app.settings.service,
        Utc::now().timestamp(),
    )
    .map_err(|_| AuthError::TokenInvalid)?;
    let (sub, cred) = (claims.sub.clone(), claims.cred.clone());
    let principal = app
        .read(move |p| {
            let valid = match &cred {
                Some(c) => identity::credential_still_valid(&p.models, c)?,
                None => true,
            };
            let principal = identity::subject_principal(&p.models, &sub)?;
            Ok((valid && (principal.is_some() || sub.is_empty())).then_some(principal))
        })
        .await?
        .ok_or(AuthError::Revoked)?;
    Ok(Caller {
        credential: claims.kind.unwrap_or(CredentialKind::Anonymous),
        credential_id: claims.cred,
        grants: Some(claims.access),
        principal,
        origin,
        known: None,
    })
}

/// A management session (header or cookie).
async fn session(app: &AppState, origin: Origin, token: String) -> Result<Caller, AuthError> {
    let claims = verify(&app.key, &token, SESSION_AUDIENCE, Utc::now().timestamp())
        .map_err(|_| AuthError::TokenInvalid)?;
    let principal = app
        .read(move |p| identity::subject_principal(&p.models, &claims.sub))
        .await?
        .ok_or(AuthError::TokenInvalid)?;
    Ok(Caller::proven(
        Proven {
            principal,
            kind: CredentialKind::Password,
            credential_id: None,
        },
        origin,
    ))
}

/// The level a caller holds on a repository, read off a storage thread
/// unless it was read with the credentials.
pub async fn repo_level(
    app: &AppState,
    caller: &Caller,
    repo: &RepoPath,
) -> Result<Option<Level>, StoreError> {
    if let Some((known, level)) = &caller.known {
        if known == repo {
            return Ok(*level);
        }
    }
    let (principal, repo) = (caller.principal.clone(), repo.clone());
    app.read(move |p| levels::repo_level(&p.models, &p.settings, principal.as_ref(), &repo))
        .await
}

/// Whether a caller holds `needed` on a repository.
pub async fn holds(
    app: &AppState,
    caller: &Caller,
    repo: &RepoPath,
    needed: Level,
) -> Result<bool, StoreError> {
    Ok(allows(repo_level(app, caller, repo).await?, needed))
}

/// Appends a record about an authenticated caller (a login, a refusal).
/// A failure to record is logged, not shown: the answer stands either way.
async fn record_for(app: &AppState, caller: &Caller, change: UserCommand) {
    let Some(p) = &caller.principal else {
        return;
    };
    let command = Command::Account(AccountCommand::User {
        account: p.account.clone(),
        user: p.user.clone(),
        change,
    });
    if let Err(e) = app.engine.submit(command, caller.meta()).await {
        tracing::error!(error = %e, "could not write an audit record");
    }
}

/// Records that an authenticated caller was refused an action.
pub async fn record_denial(app: &AppState, caller: &Caller, action: &str, resource: &str) {
    let change = UserCommand::RecordDenial {
        action: action.to_owned(),
        resource: resource.to_owned(),
    };
    record_for(app, caller, change).await;
}

/// Records that a caller logged in.
pub async fn record_login(app: &AppState, caller: &Caller, surface: Surface) {
    record_for(app, caller, UserCommand::RecordLogin { surface }).await;
}

/// A push refused for its content, as the audit trail records it.
pub struct Rejection {
    /// The repository pushed to.
    pub repo: RepoPath,
    /// What was refused.
    pub object: Pushed,
    /// The tag or digest it was pushed under.
    pub reference: String,
    /// The registry error code the client got.
    pub code: &'static str,
    /// The message the client got.
    pub message: String,
}

/// Records that an authenticated caller's push was refused for its
/// content.
pub async fn record_push_rejection(app: &AppState, caller: &Caller, rejection: Rejection) {
    let change = UserCommand::RecordPushRejection {
        repo: rejection.repo,
        object: rejection.object,
        reference: rejection.reference,
        code: rejection.code.to_owned(),
        message: rejection.message,
    };
    record_for(app, caller, change).await;
}
