//! Who is calling: credentials parsed from a request, checked against the
//! read models, and turned into a [`Principal`]; plus the facts the policy
//! needs to decide what that principal may do to a repository.

pub mod limiter;
pub mod secrets;
pub mod token;

use std::time::Duration;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use berth_domain::policy::{level_on_repo, OrgFacts, RepoFacts};
use berth_domain::{AccountName, CredentialKind, Level, Principal, RepoPath, UserName};
use berth_projections::ReadModels;
use berth_store::StoreError;
use chrono::Utc;

use crate::credentials::verify_password;

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
        }
    }
}

/// Credentials as presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
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
pub fn presented(headers: &HeaderMap) -> Result<Presented, AuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AuthError::Invalid)?;
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Ok(Presented::Bearer(token.trim().to_owned()));
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = STANDARD
                .decode(encoded.trim())
                .map_err(|_| AuthError::Invalid)?;
            let text = String::from_utf8(decoded).map_err(|_| AuthError::Invalid)?;
            let (user, password) = text.split_once(':').ok_or(AuthError::Invalid)?;
            return Ok(Presented::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            });
        }
        return Err(AuthError::Invalid);
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

/// Why credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown user, wrong secret, disabled or expired credential, bad token.
    Invalid,
    /// A password was used where only docker credentials are accepted.
    PasswordNotAccepted,
}

/// A principal together with the docker credential that proved it, so a
/// token can be re-checked against that credential on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who.
    pub principal: Principal,
    /// The access key or temporary login id.
    pub credential: String,
    /// Which of the two it is.
    pub kind: CredentialKind,
}

/// The principal behind an account and user name, if the user exists and
/// is not disabled: every way of authenticating goes through here, so a
/// disabled user's sessions, keys and tokens all stop at once.
fn principal(
    models: &ReadModels,
    account: &AccountName,
    user: &UserName,
) -> Result<Option<Principal>, StoreError> {
    if models.accounts.is_disabled(account, user)? {
        return Ok(None);
    }
    Ok(models.accounts.user(account, user)?.map(|row| Principal {
        account: account.clone(),
        user: user.clone(),
        account_admin: row.admin,
    }))
}

/// Parses `account/user` (a subject or a password login name).
pub fn split_subject(s: &str) -> Option<(AccountName, UserName)> {
    let (a, u) = s.split_once('/')?;
    Some((AccountName::parse(a).ok()?, UserName::parse(u).ok()?))
}

/// Checks a docker credential (`<region>@<access key>` with the HMAC
/// password, or `<region>@<temporary login id>` with its secret). Blocking:
/// reads the read models.
pub fn check_docker_login(
    models: &ReadModels,
    settings: &Settings,
    user: &str,
    password: &str,
) -> Result<Result<Authenticated, AuthError>, StoreError> {
    let Some((region, id)) = user.split_once('@') else {
        return Ok(Err(if user.contains('/') {
            AuthError::PasswordNotAccepted
        } else {
            AuthError::Invalid
        }));
    };
    if region != settings.region {
        return Ok(Err(AuthError::Invalid));
    }
    if let Some(key) = models.accounts.key(id)? {
        let ok = secrets::constant_time_eq(&secrets::verifier(password), &key.verifier)
            && models.accounts.key_enabled(id)?;
        if !ok {
            return Ok(Err(AuthError::Invalid));
        }
        return Ok(principal(models, &key.account, &key.user)?
            .map(|principal| Authenticated {
                principal,
                credential: id.to_owned(),
                kind: CredentialKind::AccessKey,
            })
            .ok_or(AuthError::Invalid));
    }
    if let Some(login) = models.accounts.temporary_login(id)? {
        let ok = secrets::constant_time_eq(&secrets::verifier(password), &login.verifier)
            && Utc::now() < login.expires_at;
        if !ok {
            return Ok(Err(AuthError::Invalid));
        }
        return Ok(principal(models, &login.account, &login.user)?
            .map(|principal| Authenticated {
                principal,
                credential: id.to_owned(),
                kind: CredentialKind::Temporary,
            })
            .ok_or(AuthError::Invalid));
    }
    Ok(Err(AuthError::Invalid))
}

/// Whether a docker credential named in a token still works (a disabled or
/// deleted key, or an expired temporary login, stops working at once).
pub fn credential_still_valid(models: &ReadModels, credential: &str) -> Result<bool, StoreError> {
    if models.accounts.key(credential)?.is_some() {
        return models.accounts.key_enabled(credential);
    }
    Ok(models
        .accounts
        .temporary_login(credential)?
        .is_some_and(|l| Utc::now() < l.expires_at))
}

/// A verifier to check passwords of unknown users against, made once.
fn unknown_user_hash() -> &'static berth_domain::PasswordHash {
    static HASH: std::sync::OnceLock<berth_domain::PasswordHash> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::credentials::hash_password("no such user"))
}

/// Checks an `account/user` password login. Blocking and deliberately slow
/// (argon2).
pub fn check_password(
    models: &ReadModels,
    login: &str,
    password: &str,
) -> Result<Option<Principal>, StoreError> {
    let Some((account, user)) = split_subject(login) else {
        return Ok(None);
    };
    let Some(stored) = models.accounts.password(&account, &user)? else {
        // One argon2 verification, as for a wrong password: the time taken
        // does not tell whether the user exists.
        verify_password(password, unknown_user_hash());
        return Ok(None);
    };
    if !verify_password(password, &stored) {
        return Ok(None);
    }
    principal(models, &account, &user)
}

/// Looks up the principal behind a token subject.
pub fn subject_principal(models: &ReadModels, sub: &str) -> Result<Option<Principal>, StoreError> {
    match split_subject(sub) {
        Some((account, user)) => principal(models, &account, &user),
        None => Ok(None),
    }
}

/// The level a caller holds on a repository, from the read models. A
/// repository in an organization that does not exist yet is one the caller
/// could create by pushing: authenticated callers within their account's
/// quota get edit there; nobody else gets anything.
pub fn repo_level(
    models: &ReadModels,
    settings: &Settings,
    caller: Option<&Principal>,
    repo: &RepoPath,
) -> Result<Option<Level>, StoreError> {
    let Some(org) = models.orgs.get(repo.org())? else {
        let can_create = match caller {
            Some(p) => models.orgs.count_owned(&p.account)? < settings.org_quota,
            None => false,
        };
        return Ok(can_create.then_some(Level::Edit));
    };
    let creator = match (caller, &org.owner, &org.creator) {
        (Some(p), Some(owner), Some(creator)) => owner == &p.account && creator == &p.user,
        _ => false,
    };
    let grant = match caller {
        Some(p) => models.orgs.grant(repo.org(), &p.account, &p.user)?,
        None => None,
    };
    let org_facts = OrgFacts {
        owner: org.owner,
        grant: if creator { Some(Level::Manage) } else { grant },
    };
    let row = models.repos.get(repo)?;
    let repo_facts = RepoFacts {
        exists: row.is_some(),
        public: match &row {
            Some(r) => models.repos.is_public(r.id)?,
            None => false,
        },
        grant: match (&row, caller) {
            (Some(r), Some(p)) => models.repos.grant(r.id, &p.account, &p.user)?,
            _ => None,
        },
    };
    Ok(level_on_repo(
        caller,
        &org_facts,
        &repo_facts,
        settings.anonymous_pull,
    ))
}

/// The level a principal holds on an existing organization itself (for
/// granting access): manage for its account's admins, the operator and its
/// creator, else the principal's own grant.
pub fn org_level(
    models: &ReadModels,
    p: &Principal,
    org: &berth_domain::OrgName,
) -> Result<Option<Level>, StoreError> {
    let Some(row) = models.orgs.get(org)? else {
        return Ok(None);
    };
    let owner_admin =
        p.is_operator() || (p.account_admin && row.owner.as_ref() == Some(&p.account));
    let creator = row.owner.as_ref() == Some(&p.account) && row.creator.as_ref() == Some(&p.user);
    if owner_admin || creator {
        return Ok(Some(Level::Manage));
    }
    models.orgs.grant(org, &p.account, &p.user)
}
