//! `GET /v2/token`: the Docker token service. It takes docker credentials
//! (Basic, access key or temporary login) or none, and `scope` parameters,
//! and returns a short-lived signed token granting the subset of the
//! requested actions that the caller holds.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_domain::policy::allows;
use berth_domain::{Action, RepoPath};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::auth::token::{sign, Access, Claims};
use crate::auth::{self, levels, Surface};
use crate::error::ApiError;
use crate::request::{query_pairs, Origin};
use crate::state::AppState;

/// One requested scope: `repository:<name>:<actions>`.
fn parse_scope(scope: &str) -> Option<(RepoPath, Vec<Action>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind != "repository" {
        return None;
    }
    let repo = RepoPath::parse(name).ok()?;
    let actions = actions.split(',').filter_map(Action::parse).collect();
    Some((repo, actions))
}

/// Serves the token endpoint.
pub async fn token(State(app): State<AppState>, req: Request) -> Response {
    match issue(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn issue(app: AppState, req: Request) -> Result<Response, ApiError> {
    let origin = Origin::of(req.extensions(), req.headers());
    let caller =
        auth::authenticate(&app, origin, req.headers(), Surface::TokenService, None).await?;
    let scopes: Vec<(RepoPath, Vec<Action>)> = query_pairs(req.uri().query())
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').filter_map(parse_scope).collect::<Vec<_>>())
        .collect();
    if scopes.is_empty() && caller.principal.is_some() {
        // A credential check without a scope is a client logging in.
        auth::record_login(&app, &caller, Surface::TokenService).await;
    }
    let principal = caller.principal.clone();
    let access = app
        .read(move |p| {
            let mut out = Vec::new();
            for (repo, wanted) in scopes {
                let level = levels::repo_level(&p.models, &p.settings, principal.as_ref(), &repo)?;
                let actions: Vec<String> = wanted
                    .into_iter()
                    .filter(|a| allows(level, a.needs()))
                    .map(|a| a.as_str().to_owned())
                    .collect();
                out.push(Access {
                    kind: "repository".into(),
                    name: repo.to_string(),
                    actions,
                });
            }
            Ok(out)
        })
        .await?;
    let now = Utc::now().timestamp();
    let ttl = i64::try_from(app.settings.token_ttl.as_secs()).unwrap_or(300);
    let claims = Claims {
        iss: "berth".into(),
        sub: caller
            .principal
            .as_ref()
            .map(|p| format!("{}/{}", p.account, p.user))
            .unwrap_or_default(),
        aud: app.settings.service.clone(),
        exp: now + ttl,
        nbf: now - 5,
        iat: now,
        jti: Uuid::new_v4().to_string(),
        access,
        kind: caller.principal.as_ref().map(|_| caller.credential),
        cred: caller.credential_id,
    };
    let token = sign(&app.key, &claims);
    let issued_at = chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .to_rfc3339();
    Ok(axum::Json(json!({
        "token": token,
        "access_token": token,
        "expires_in": ttl,
        "issued_at": issued_at,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let (repo, actions) = parse_scope("repository:acme/web:pull,push").unwrap();
        assert_eq!(repo.to_string(), "acme/web");
        assert_eq!(actions, vec![Action::Pull, Action::Push]);
        assert_eq!(parse_scope("repository:acme/web:*").unwrap().1, vec![]);
        assert!(parse_scope("registry:catalog:*").is_none());
        assert!(parse_scope("repository:a/b/c:pull").is_none());
    }
}
