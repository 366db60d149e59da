//! One call to every management route, in an order that works, each
//! checked for success. With `BERTH_BLESS=1` the calls and their replies are
//! written to `docs/management-api-examples.md`, so the documentation's
//! examples come from a real run.

use serde_json::{json, Value};

use crate::support::*;

/// Replies are shown with long secrets and tokens cut short.
fn shorten(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() > 60 => Value::String(format!("{}…", &s[..24])),
        Value::Array(items) => Value::Array(items.iter().take(3).map(shorten).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shorten(v))).collect())
        }
        other => other.clone(),
    }
}

#[tokio::test]
async fn every_management_route_by_example() {
    let server = Server::start();
    let acme = server.create_account("acme");
    server.create_account("partner");
    server.create_user(&acme, "alice");
    push_image_as(&server, &acme.client(), "team/web", "v1", 21).await;
    let auth = acme.basic();
    let operator = server.operator_basic();
    let login = json!({"account": "acme", "user": "admin", "password": "admin-password"});
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let steps: Vec<(&str, String, &str, Value)> = vec![
        ("POST", "/session".into(), "", login),
        (
            "POST",
            "/accounts".into(),
            &operator,
            json!({"name": "beta", "admin_user": "root", "admin_password": "a-long-password"}),
        ),
        (
            "POST",
            "/accounts/acme/users".into(),
            &auth,
            json!({"name": "bob", "password": "a-long-password"}),
        ),
        (
            "PATCH",
            "/accounts/acme/users/bob".into(),
            &auth,
            json!({"enabled": false}),
        ),
        ("GET", "/accounts/acme/users".into(), &auth, Value::Null),
        ("GET", "/session".into(), &auth, Value::Null),
        ("POST", "/access-keys".into(), &auth, Value::Null),
        ("GET", "/access-keys".into(), &auth, Value::Null),
        ("POST", "/utils/secret".into(), &auth, Value::Null),
        (
            "POST",
            "/namespaces".into(),
            &auth,
            json!({"namespace": "tools"}),
        ),
        ("GET", "/namespaces".into(), &auth, Value::Null),
        (
            "POST",
            "/namespaces/team/access".into(),
            &auth,
            json!({"users": [{"user_name": "alice", "auth": 3}]}),
        ),
        ("GET", "/namespaces/team".into(), &auth, Value::Null),
        (
            "POST",
            "/namespaces/team/repos".into(),
            &auth,
            json!({"repository": "db", "is_public": false, "category": "database", "description": "PostgreSQL 15"}),
        ),
        ("GET", "/repos?sort=name&limit=2".into(), &auth, Value::Null),
        (
            "GET",
            "/namespaces/team/repos?category=database".into(),
            &auth,
            Value::Null,
        ),
        (
            "GET",
            "/namespaces/team/repos/web".into(),
            &auth,
            Value::Null,
        ),
        (
            "PATCH",
            "/namespaces/team/repos/web".into(),
            &auth,
            json!({"category": "app-server", "description": "the web front end"}),
        ),
        (
            "POST",
            "/namespaces/team/repos/web/access".into(),
            &auth,
            json!({"users": [{"user_name": "alice", "auth": 7}]}),
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/access/alice".into(),
            &auth,
            Value::Null,
        ),
        (
            "POST",
            "/namespaces/team/repos/web/tags".into(),
            &auth,
            json!({"source_tag": "v1", "destination_tag": "stable"}),
        ),
        (
            "GET",
            "/namespaces/team/repos/web/tags?sort=name".into(),
            &auth,
            Value::Null,
        ),
        (
            "POST",
            "/namespaces/team/repos/web/access-domains".into(),
            &auth,
            json!({"access_domain": "partner", "permit": "read", "deadline": tomorrow, "description": "for partner's CI"}),
        ),
        (
            "GET",
            "/namespaces/team/repos/web/access-domains".into(),
            &auth,
            Value::Null,
        ),
        (
            "PATCH",
            "/namespaces/team/repos/web/access-domains/partner".into(),
            &auth,
            json!({"deadline": "forever"}),
        ),
        (
            "GET",
            "/shared-repositories?center=self".into(),
            &auth,
            Value::Null,
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/access-domains/partner".into(),
            &auth,
            Value::Null,
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/tags/stable".into(),
            &auth,
            Value::Null,
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/tags".into(),
            &auth,
            json!({"tags": ["v1"]}),
        ),
        (
            "DELETE",
            "/namespaces/team/repos/db".into(),
            &auth,
            Value::Null,
        ),
        (
            "DELETE",
            "/namespaces/team/access/alice".into(),
            &auth,
            Value::Null,
        ),
        ("DELETE", "/namespaces/tools".into(), &auth, Value::Null),
    ];
    let mut doc = String::from(
        "# Management API by example\n\nWritten by `tests/suite/examples.rs` from a real run \
         (`BERTH_BLESS=1 cargo test --test suite examples`). Long values are cut short. \
         Every call authenticates with Basic credentials unless shown otherwise.\n",
    );
    for (method, path, who, body) in steps {
        let (status, reply) = manage(&server, method, &path, who, body.clone());
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {reply}"
        );
        doc.push_str(&format!("\n## `{method} /v2/manage{path}`\n\n"));
        if !body.is_null() {
            doc.push_str(&format!(
                "```json\n{}\n```\n\n",
                serde_json::to_string_pretty(&body).unwrap()
            ));
        }
        doc.push_str(&format!("→ `{status}`"));
        if reply.is_null() {
            doc.push('\n');
        } else {
            doc.push_str(&format!(
                "\n\n```json\n{}\n```\n",
                serde_json::to_string_pretty(&shorten(&reply)).unwrap()
            ));
        }
    }
    if std::env::var_os("BERTH_BLESS").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/management-api-examples.md");
        std::fs::write(path, doc).unwrap();
    }
}
