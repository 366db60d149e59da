//! Checking credentials against the read models: who a password, a docker
//! credential or a token subject belongs to, and whether that user and
//! credential still work. Blocking: call from a storage thread.

use berth_domain::{AccountName, CredentialKind, LoginFailure, Principal, UserName};
use berth_projections::ReadModels;
use berth_store::StoreError;
use chrono::Utc;

use super::passwords::{hash_password, verify_password};
use super::secrets;
use super::Settings;

/// A principal with the docker credential that proved it, so a token can be
/// re-checked against that credential on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// Who.
    pub principal: Principal,
    /// How.
    pub kind: CredentialKind,
    /// The access key or temporary login id, for docker credentials.
    pub credential_id: Option<String>,
}

/// What checking a password or docker credential found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credential works.
    Proven(Proven),
    /// It names a known user but does not work: recorded for the audit
    /// trail under that user.
    Refused {
        /// The user's account.
        account: AccountName,
        /// The user.
        user: UserName,
        /// The kind of credential tried.
        kind: CredentialKind,
        /// The access key or temporary login id tried.
        credential_id: Option<String>,
        /// Why it does not work.
        reason: LoginFailure,
    },
    /// It names nobody: counted per client address, not recorded alone.
    Unknown,
}

/// The principal behind an account and user name, if the user exists and
/// is not disabled: every way of authenticating goes through here, so a
/// disabled user's sessions, keys and tokens all stop at once.
pub fn principal(
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

/// The principal behind a token subject.
pub fn subject_principal(models: &ReadModels, sub: &str) -> Result<Option<Principal>, StoreError> {
    match split_subject(sub) {
        Some((account, user)) => principal(models, &account, &user),
        None => Ok(None),
    }
}

/// Checks a docker credential: `<region>@<access key>` with the HMAC
/// password, or `<region>@<temporary login id>` with its secret.
pub fn docker_login(
    models: &ReadModels,
    settings: &Settings,
    user: &str,
    password: &str,
) -> Result<Verdict, StoreError> {
    let Some((region, id)) = user.split_once('@') else {
        return Ok(Verdict::Unknown);
    };
    if region != settings.region {
        return Ok(Verdict::Unknown);
    }
    let offered = secrets::verifier(password);
    let (account, user, kind, refusal) = if let Some(key) = models.accounts.key(id)? {
        let refusal = if !secrets::constant_time_eq(&offered, &key.verifier) {
            Some(LoginFailure::WrongSecret)
        } else if !models.accounts.key_enabled(id)? {
            Some(LoginFailure::KeyDisabled)
        } else {
            None
        };
        (key.account, key.user, CredentialKind::AccessKey, refusal)
    } else if let Some(login) = models.accounts.temporary_login(id)? {
        let refusal = if !secrets::constant_time_eq(&offered, &login.verifier) {
            Some(LoginFailure::WrongSecret)
        } else if Utc::now() >= login.expires_at {
            Some(LoginFailure::LoginExpired)
        } else {
            None
        };
        (
            login.account,
            login.user,
            CredentialKind::Temporary,
            refusal,
        )
    } else {
        return Ok(Verdict::Unknown);
    };
    let credential_id = Some(id.to_owned());
    verdict(models, account, user, kind, credential_id, refusal)
}

/// The verdict on a credential of a known user: refused for `refusal`, or
/// for the user being disabled, else proven.
fn verdict(
    models: &ReadModels,
    account: AccountName,
    user: UserName,
    kind: CredentialKind,
    credential_id: Option<String>,
    refusal: Option<LoginFailure>,
) -> Result<Verdict, StoreError> {
    let principal = match refusal {
        Some(_) => None,
        None => principal(models, &account, &user)?,
    };
    Ok(match principal {
        Some(principal) => Verdict::Proven(Proven {
            principal,
            kind,
            credential_id,
        }),
        None => Verdict::Refused {
            account,
            user,
            kind,
            credential_id,
            reason: refusal.unwrap_or(LoginFailure::UserDisabled),
        },
    })
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
    HASH.get_or_init(|| hash_password("no such user"))
}

/// Checks an `account/user` password login. Deliberately slow (argon2).
pub fn password_login(
    models: &ReadModels,
    login: &str,
    password: &str,
) -> Result<Verdict, StoreError> {
    let Some((account, user)) = split_subject(login) else {
        return Ok(Verdict::Unknown);
    };
    let Some(stored) = models.accounts.password(&account, &user)? else {
        // One argon2 verification, as for a wrong password: the time taken
        // does not tell whether the user exists.
        verify_password(password, unknown_user_hash());
        return Ok(Verdict::Unknown);
    };
    let refusal = (!verify_password(password, &stored)).then_some(LoginFailure::WrongSecret);
    verdict(
        models,
        account,
        user,
        CredentialKind::Password,
        None,
        refusal,
    )
}
