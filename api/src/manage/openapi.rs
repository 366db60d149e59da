//! The OpenAPI 3 document of the management API, generated from the
//! handlers' annotations and the request types, so it cannot drift from
//! them. Limits come from the domain's constants, not from literals here.

use axum::response::IntoResponse;
use berth_domain::limits::{MAX_DESCRIPTION_CHARS, MAX_SHARE_NOTE_CHARS};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::{
    access_keys, accounts, audit, audit_events, gc, grants, namespaces, repos, session, shares,
    storage, tags, uploads,
};

/// Every error of the management API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `INVALID`, `NOT_FOUND`, `CONFLICT`, `DENIED`,
    /// `UNAUTHORIZED`, `TOOMANYREQUESTS`, ...
    code: String,
    /// What is wrong, for a person.
    message: String,
    /// The request field at fault (`users[2].auth`), when one is.
    field: Option<String>,
}

/// The path of an organization's routes: extracted by the handlers and
/// described in the document by the same type.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NsAt {
    /// organization (namespace)
    pub ns: String,
}

/// The path of an image's routes, likewise.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RepoAt {
    /// organization (namespace)
    pub ns: String,
    /// image (repository) name
    pub repo: String,
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Berth management API",
        description = "Organizations, images, tags, grants, shares and credentials. Permission levels: 1 read, 3 edit, 7 manage. Errors are {\"code\",\"message\",\"field\"}."
    ),
    paths(
        session::login,
        session::whoami,
        accounts::create_account,
        accounts::create_user,
        accounts::list_users,
        accounts::update_user,
        storage::account,
        gc::run,
        access_keys::create,
        access_keys::list,
        access_keys::update,
        access_keys::delete,
        access_keys::temporary_login,
        namespaces::create,
        namespaces::list,
        namespaces::detail,
        namespaces::remove,
        namespaces::grant,
        namespaces::revoke,
        repos::list,
        repos::list_in,
        repos::create,
        repos::detail,
        repos::update,
        repos::remove,
        repos::grant,
        repos::revoke,
        tags::list,
        tags::retag,
        tags::remove_many,
        tags::remove_one,
        shares::create,
        shares::list,
        shares::update,
        shares::revoke,
        shares::shared_repositories,
        audit::checkpoint,
        audit::public_key,
        audit::timeline,
        audit::as_of,
        audit_events::events,
        uploads::create,
        uploads::get,
        uploads::list,
    ),
    components(schemas(ErrorBody, grants::Grantee)),
    modifiers(&Limits, &Security, &RequestKeys),
    security(("session" = []), ("basic" = []))
)]
pub struct ManageApi;

/// Sets the length limits from the domain's constants.
struct Limits;

impl Modify for Limits {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        let limits = [
            ("NewRepo", "description", MAX_DESCRIPTION_CHARS),
            ("RepoUpdate", "description", MAX_DESCRIPTION_CHARS),
            ("NewShare", "description", MAX_SHARE_NOTE_CHARS),
            ("ShareUpdate", "description", MAX_SHARE_NOTE_CHARS),
        ];
        for (schema, property, max) in limits {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) {
                if let Some(RefOr::T(Schema::Object(p))) = object.properties.get_mut(property) {
                    p.max_length = Some(max);
                }
            }
        }
    }
}

/// Writes that take no `Idempotency-Key`: signing in changes nothing a
/// retry could repeat, and a second collection run finds nothing to do.
pub(super) const UNKEYED: &[&str] = ["/v2/manage/session", "/v2/manage/gc"].as_slice();

/// Adds the `Idempotency-Key` header, and the `422` its reuse gets, to
/// every write that takes one.
struct RequestKeys;

impl Modify for RequestKeys {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, ResponseBuilder, Type};
        for (path, item) in &mut doc.paths.paths {
            if UNKEYED.contains(&path.as_str()) {
                continue;
            }
            let writes = [&mut item.post, &mut item.patch, &mut item.delete];
            for operation in writes.into_iter().flatten() {
                let key = ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(format!(
                        "1 to {} visible ASCII characters (a UUID will do). A retry with the same key, from the same user, within 24 hours, gets the first answer (with Idempotent-Replayed: true) and changes nothing; see docs/decisions.md, \"Retrying a management write\".",
                        super::idempotency::MAX_KEY
                    )))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .max_length(Some(super::idempotency::MAX_KEY)),
                    ))
                    .build();
                operation.parameters.get_or_insert_with(Vec::new).push(key);
                operation.responses.responses.insert(
                    "422".into(),
                    RefOr::T(
                        ResponseBuilder::new()
                            .description("IDEMPOTENCY_KEY_REUSED: the key was used in the last 24 hours for a different request")
                            .build(),
                    ),
                );
            }
        }
    }
}

/// Declares the two ways in: a session (bearer token or cookie) and Basic
/// (an account password or a docker credential).
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "from POST /v2/manage/session, or its berth_session cookie",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "account/user with its password, or a docker credential",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /v2/manage/openapi.json`: the document, to anyone.
pub(super) async fn document() -> axum::response::Response {
    axum::Json(ManageApi::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;

    fn document_json() -> String {
        let mut text = ManageApi::openapi()
            .to_pretty_json()
            .expect("the document serializes");
        text.push('\n');
        text
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let documented: BTreeSet<String> =
            ManageApi::openapi().paths.paths.keys().cloned().collect();
        let routed: BTreeSet<String> = crate::manage::ROUTES
            .iter()
            .map(|(path, _)| format!("/v2/manage{path}"))
            .filter(|p| p != "/v2/manage/openapi.json")
            .collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn every_write_but_two_takes_a_request_key() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let mut keyed = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let takes = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
                assert_eq!(takes, !UNKEYED.contains(&path.as_str()), "{method} {path}");
                keyed += usize::from(takes);
            }
        }
        assert_eq!(keyed, 23);
    }

    #[test]
    fn limits_come_from_the_domain() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["RepoUpdate"]["properties"]["description"]["maxLength"],
            MAX_DESCRIPTION_CHARS
        );
        assert_eq!(
            schemas["NewShare"]["properties"]["description"]["maxLength"],
            MAX_SHARE_NOTE_CHARS
        );
    }

    /// `docs/openapi.json` is the document as published; a change to the
    /// API shows up here as a diff to review. `BERTH_BLESS=1` rewrites it.
    #[test]
    fn the_document_matches_its_snapshot() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let now = document_json();
        if std::env::var_os("BERTH_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            stored == now,
            "docs/openapi.json differs from the generated document; review and run with BERTH_BLESS=1"
        );
    }
}
