//! The management API as account admins and scripts use it: organizations,
//! images, attributes, tags, grants and shares, with the exact answers for
//! bad input and for other accounts' resources.

use serde_json::{json, Value};

use crate::support::*;

fn call(server: &Server, method: &str, path: &str, who: &Identity, body: Value) -> (u16, Value) {
    manage(server, method, path, &who.basic(), body)
}

fn ok(server: &Server, method: &str, path: &str, who: &Identity, body: Value) -> Value {
    let (status, reply) = call(server, method, path, who, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {reply}"
    );
    reply
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn organizations_are_unique_quota_bound_listed_and_deleted_only_empty() {
    let server = Server::start_with(&[("BERTH_ORG_QUOTA", "2")]);
    let a = server.create_account("acme");
    let b = server.create_account("beta");
    ok(
        &server,
        "POST",
        "/namespaces",
        &a,
        json!({"namespace": "team"}),
    );
    let (status, reply) = call(
        &server,
        "POST",
        "/namespaces",
        &b,
        json!({"namespace": "team"}),
    );
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["code"], "CONFLICT");
    assert!(reply["message"]
        .as_str()
        .unwrap()
        .contains("organization already exists"));
    ok(
        &server,
        "POST",
        "/namespaces",
        &a,
        json!({"namespace": "tools"}),
    );
    let (status, reply) = call(
        &server,
        "POST",
        "/namespaces",
        &a,
        json!({"namespace": "third"}),
    );
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("at most 2"),
        "{reply}"
    );
    let (status, reply) = call(
        &server,
        "POST",
        "/namespaces",
        &a,
        json!({"namespace": "Bad!"}),
    );
    assert_eq!((status, reply["field"].as_str()), (400, Some("namespace")));
    let (status, reply) = call(
        &server,
        "POST",
        "/namespaces",
        &a,
        json!({"namespace": "x", "owner": "beta"}),
    );
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("owner")),
        "{reply}"
    );

    push_image_as(&server, &a.client(), "team/web", "v1", 1).await;
    push_image_as(&server, &a.client(), "team/api", "v1", 2).await;
    let list = ok(&server, "GET", "/namespaces", &a, Value::Null);
    let team = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "team")
        .unwrap()
        .clone();
    assert_eq!(team["auth"], 7);
    assert_eq!(team["num_repos"], 2);
    assert_eq!(team["creator"], "admin");

    let alice = server.create_user(&a, "alice");
    ok(
        &server,
        "POST",
        "/namespaces/team/access",
        &a,
        json!({"users": [{"user_name": "alice", "auth": 1}]}),
    );
    let detail = ok(&server, "GET", "/namespaces/team", &a, Value::Null);
    assert_eq!(detail["repos"], json!(["api", "web"]));
    assert_eq!(
        detail["members"],
        json!([{"account": "acme", "user_name": "alice", "auth": 1}])
    );
    let (status, _) = call(&server, "GET", "/namespaces/team", &alice, Value::Null);
    assert_eq!(status, 200, "members see their organization");
    let (status, reply) = call(&server, "GET", "/namespaces/team", &b, Value::Null);
    let (missing_status, missing) = call(&server, "GET", "/namespaces/nosuch", &b, Value::Null);
    assert_eq!((status, missing_status), (404, 404));
    assert_eq!(
        reply["code"], missing["code"],
        "another account's organization looks missing"
    );
    let (status, _) = call(&server, "DELETE", "/namespaces/team", &alice, Value::Null);
    assert_eq!(status, 403, "read members do not delete");

    let (status, reply) = call(&server, "DELETE", "/namespaces/team", &a, Value::Null);
    assert_eq!(status, 409, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("api") && message.contains("web"),
        "{message}"
    );
    ok(
        &server,
        "DELETE",
        "/namespaces/team/repos/web",
        &a,
        Value::Null,
    );
    ok(
        &server,
        "DELETE",
        "/namespaces/team/repos/api",
        &a,
        Value::Null,
    );
    ok(
        &server,
        "DELETE",
        "/namespaces/team/access/alice",
        &a,
        Value::Null,
    );
    let (status, _) = call(
        &server,
        "DELETE",
        "/namespaces/team/access/alice",
        &a,
        Value::Null,
    );
    assert_eq!(status, 404, "no grant left to revoke");
    ok(&server, "DELETE", "/namespaces/team", &a, Value::Null);
    ok(
        &server,
        "POST",
        "/namespaces",
        &b,
        json!({"namespace": "team"}),
    );
    ok(
        &server,
        "POST",
        "/namespaces",
        &a,
        json!({"namespace": "third"}),
    );
}

#[tokio::test]
async fn images_carry_attributes_and_list_with_filters_sorting_and_cursors() {
    let server = Server::start();
    let a = server.create_account("acme");
    let b = server.create_account("beta");
    ok(
        &server,
        "POST",
        "/namespaces",
        &a,
        json!({"namespace": "team"}),
    );
    ok(
        &server,
        "POST",
        "/namespaces/team/repos",
        &a,
        json!({"repository": "db", "category": "database", "description": "PostgreSQL"}),
    );
    let (status, _) = call(
        &server,
        "POST",
        "/namespaces/team/repos",
        &a,
        json!({"repository": "db"}),
    );
    assert_eq!(status, 409);
    for (name, category) in [
        ("web", "app-server"),
        ("tools", "other"),
        ("webhooks", "app-server"),
    ] {
        ok(
            &server,
            "POST",
            "/namespaces/team/repos",
            &a,
            json!({"repository": name, "category": category}),
        );
    }
    push_image_as(&server, &a.client(), "team/web", "v1", 3).await;

    let detail = ok(&server, "GET", "/namespaces/team/repos/db", &a, Value::Null);
    assert_eq!(detail["category"], "database");
    assert_eq!(detail["description"], "PostgreSQL");
    assert_eq!(detail["is_public"], false);
    assert_eq!(detail["num_images"], 0);
    assert!(detail["path"].as_str().unwrap().ends_with("/team/db"));
    assert!(detail["guide"]["pull"]
        .as_str()
        .unwrap()
        .starts_with("docker pull "));
    let web = ok(
        &server,
        "GET",
        "/namespaces/team/repos/web",
        &a,
        Value::Null,
    );
    assert_eq!(web["num_images"], 1);
    assert!(web["size"].as_u64().unwrap() > 1000);

    // Bad attributes change nothing, even beside a good one.
    for (body, field) in [
        (json!({"is_public": true, "category": "games"}), "category"),
        (
            json!({"is_public": true, "description": "x".repeat(30_001)}),
            "description",
        ),
        (json!({"is_public": "yes"}), "is_public"),
        (json!({"creator": "eve"}), "creator"),
    ] {
        let (status, reply) = call(&server, "PATCH", "/namespaces/team/repos/db", &a, body);
        assert_eq!(
            (status, reply["field"].as_str()),
            (400, Some(field)),
            "{reply}"
        );
    }
    assert_eq!(
        ok(&server, "GET", "/namespaces/team/repos/db", &a, Value::Null)["is_public"],
        false
    );
    let long = "镜".repeat(30_000);
    let updated = ok(
        &server,
        "PATCH",
        "/namespaces/team/repos/db",
        &a,
        json!({"is_public": true, "description": long}),
    );
    assert_eq!(updated["is_public"], true);
    assert_eq!(
        updated["description"].as_str().unwrap().chars().count(),
        30_000
    );

    let list = |query: &str| ok(&server, "GET", &format!("/repos?{query}"), &a, Value::Null);
    assert_eq!(
        names(&list("sort=name"), "repos"),
        ["team/db", "team/tools", "team/web", "team/webhooks"]
    );
    assert_eq!(
        names(&list("sort=name&order=desc&name=web"), "repos"),
        ["team/webhooks", "team/web"]
    );
    assert_eq!(
        names(&list("category=app-server&sort=name"), "repos"),
        ["team/web", "team/webhooks"]
    );
    assert_eq!(names(&list("is_public=true"), "repos"), ["team/db"]);
    assert_eq!(
        names(&list("sort=updated_at"), "repos")[0],
        "team/db",
        "the last changed comes first"
    );
    let first = list("sort=name&limit=3");
    assert_eq!(names(&first, "repos").len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = list(&format!("sort=name&limit=3&cursor={cursor}"));
    assert_eq!(names(&second, "repos"), ["team/webhooks"]);
    assert!(second["next_cursor"].is_null());
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("sort=size", "sort"),
        ("colour=red", "colour"),
        ("category=games", "category"),
    ] {
        let (status, reply) = call(&server, "GET", &format!("/repos?{query}"), &a, Value::Null);
        assert_eq!(
            (status, reply["field"].as_str()),
            (400, Some(field)),
            "{query}: {reply}"
        );
    }

    // Another account's private image answers exactly like a missing one.
    let (status, reply) = call(
        &server,
        "GET",
        "/namespaces/team/repos/tools",
        &b,
        Value::Null,
    );
    let (missing_status, missing) = call(
        &server,
        "GET",
        "/namespaces/team/repos/nosuch",
        &b,
        Value::Null,
    );
    assert_eq!((status, missing_status), (404, 404));
    assert_eq!(reply["code"], missing["code"]);
    assert_eq!(
        reply["message"]
            .as_str()
            .unwrap()
            .replace("tools", "nosuch"),
        missing["message"].as_str().unwrap()
    );
    assert!(names(&ok(&server, "GET", "/repos", &b, Value::Null), "repos").is_empty());

    ok(
        &server,
        "DELETE",
        "/namespaces/team/repos/web",
        &a,
        Value::Null,
    );
    let r = a
        .client()
        .get(server.url("/v2/team/web/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the deleted image's tags are gone");
    push_image_as(&server, &a.client(), "team/web", "v2", 4).await;
    let again = ok(
        &server,
        "GET",
        "/namespaces/team/repos/web",
        &a,
        Value::Null,
    );
    assert_eq!(again["num_images"], 1, "a new incarnation starts empty");
}

#[tokio::test]
async fn tags_list_delete_atomically_and_retag() {
    let server = Server::start();
    let a = server.create_account("acme");
    let client = a.client();
    let d1 = push_image_as(&server, &client, "team/web", "v1", 5).await;
    push_image_as(&server, &client, "team/web", "v2", 6).await;
    push_image_as(&server, &client, "team/web", "v3", 7).await;
    let tags = ok(
        &server,
        "GET",
        "/namespaces/team/repos/web/tags?sort=name",
        &a,
        Value::Null,
    );
    let list = tags["tags"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["tag"], "v1");
    assert_eq!(list[0]["digest"], d1.as_str());
    assert_eq!(list[0]["media_type"], OCI_MANIFEST);
    assert!(list[0]["size"].as_u64().unwrap() > 1000);
    assert!(list[0]["pull"].as_str().unwrap().ends_with("/team/web:v1"));
    let newest = ok(
        &server,
        "GET",
        "/namespaces/team/repos/web/tags",
        &a,
        Value::Null,
    );
    assert_eq!(newest["tags"][0]["tag"], "v3", "newest first by default");

    let (status, reply) = call(
        &server,
        "DELETE",
        "/namespaces/team/repos/web/tags",
        &a,
        json!({"tags": ["v1", "nope"]}),
    );
    assert_eq!(status, 404, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("nope"));
    let still = ok(
        &server,
        "GET",
        "/namespaces/team/repos/web/tags",
        &a,
        Value::Null,
    );
    assert_eq!(
        still["tags"].as_array().unwrap().len(),
        3,
        "nothing was deleted"
    );
    ok(
        &server,
        "DELETE",
        "/namespaces/team/repos/web/tags",
        &a,
        json!({"tags": ["v2", "v3"]}),
    );
    ok(
        &server,
        "POST",
        "/namespaces/team/repos/web/tags",
        &a,
        json!({"source_tag": "v1", "destination_tag": "stable"}),
    );
    let (status, _) = call(
        &server,
        "POST",
        "/namespaces/team/repos/web/tags",
        &a,
        json!({"source_tag": "v1", "destination_tag": "stable"}),
    );
    assert_eq!(status, 201, "pointing a tag where it points is no change");
    push_image_as(&server, &client, "team/web", "v4", 8).await;
    let (status, reply) = call(
        &server,
        "POST",
        "/namespaces/team/repos/web/tags",
        &a,
        json!({"source_tag": "v4", "destination_tag": "stable"}),
    );
    assert_eq!(status, 409, "{reply}");
    ok(
        &server,
        "POST",
        "/namespaces/team/repos/web/tags",
        &a,
        json!({"source_tag": "v4", "destination_tag": "stable", "override": true}),
    );
    let r = client
        .head(server.url("/v2/team/web/manifests/stable"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    ok(
        &server,
        "DELETE",
        "/namespaces/team/repos/web/tags/v1",
        &a,
        Value::Null,
    );
    let left: Vec<String> = ok(
        &server,
        "GET",
        "/namespaces/team/repos/web/tags?sort=name",
        &a,
        Value::Null,
    )["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["stable", "v4"]);
}

/// A registry token's actions for `who` on `repo`.
async fn may_pull(server: &Server, who: &Identity, repo: &str) -> u16 {
    who.client()
        .get(server.url(&format!("/v2/{repo}/tags/list")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn shares_open_pulls_to_another_account_until_they_end() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = tmp.path().join("clock-offset");
    let server = Server::start_with(&[("BERTH_CLOCK_OFFSET_FILE", clock.to_str().unwrap())]);
    let a = server.create_account("acme");
    let b = server.create_account("beta");
    let bob = server.create_user(&b, "bob");
    push_image_as(&server, &a.client(), "team/app", "v1", 9).await;
    assert_eq!(may_pull(&server, &bob, "team/app").await, 403);

    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let share = |body: Value| {
        call(
            &server,
            "POST",
            "/namespaces/team/repos/app/access-domains",
            &a,
            body,
        )
    };
    let (status, reply) = share(
        json!({"access_domain": "beta", "permit": "read", "deadline": tomorrow, "description": "for beta's CI"}),
    );
    assert_eq!(status, 201, "{reply}");
    assert_eq!(may_pull(&server, &bob, "team/app").await, 200);
    let (status, _) = share(json!({"access_domain": "beta", "deadline": "forever"}));
    assert_eq!(status, 409, "already shared");
    let (status, reply) = share(json!({"access_domain": "acme", "deadline": "forever"}));
    assert_eq!(status, 400, "{reply}");
    let (status, reply) =
        share(json!({"access_domain": "beta", "permit": "write", "deadline": "forever"}));
    assert_eq!((status, reply["field"].as_str()), (400, Some("permit")));
    let (status, reply) = share(json!({"access_domain": "gamma", "deadline": "someday"}));
    assert_eq!((status, reply["field"].as_str()), (400, Some("deadline")));
    let (status, reply) = share(
        json!({"access_domain": "gamma", "deadline": "forever", "description": "x".repeat(1001)}),
    );
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("description"))
    );

    let mine = ok(
        &server,
        "GET",
        "/shared-repositories?center=self",
        &a,
        Value::Null,
    );
    assert_eq!(mine["repositories"][0]["access_domain"], "beta");
    assert_eq!(mine["repositories"][0]["status"], "valid");
    assert_eq!(mine["repositories"][0]["deadline"], tomorrow.as_str());
    let theirs = ok(
        &server,
        "GET",
        "/shared-repositories?center=thirdparty",
        &bob,
        Value::Null,
    );
    assert_eq!(theirs["repositories"][0]["sharer"], "acme");
    let listed = ok(&server, "GET", "/repos", &bob, Value::Null);
    assert_eq!(names(&listed, "repos"), ["team/app"]);
    assert_eq!(listed["repos"][0]["shared"], true);

    ok(
        &server,
        "DELETE",
        "/namespaces/team/repos/app/access-domains/beta",
        &a,
        Value::Null,
    );
    assert_eq!(
        may_pull(&server, &bob, "team/app").await,
        403,
        "revoked at once"
    );

    ok(
        &server,
        "POST",
        "/namespaces/team/repos/app/access-domains",
        &a,
        json!({"access_domain": "beta", "deadline": tomorrow}),
    );
    assert_eq!(may_pull(&server, &bob, "team/app").await, 200);
    std::fs::write(&clock, (3 * 86_400).to_string()).unwrap();
    assert_eq!(may_pull(&server, &bob, "team/app").await, 403, "expired");
    let mine = ok(&server, "GET", "/shared-repositories", &a, Value::Null);
    assert_eq!(mine["repositories"][0]["status"], "expired");
    std::fs::write(&clock, "0").unwrap();
    ok(
        &server,
        "PATCH",
        "/namespaces/team/repos/app/access-domains/beta",
        &a,
        json!({"deadline": "forever"}),
    );
    std::fs::write(&clock, (3 * 86_400).to_string()).unwrap();
    assert_eq!(
        may_pull(&server, &bob, "team/app").await,
        200,
        "forever now"
    );

    ok(
        &server,
        "PATCH",
        "/namespaces/team/repos/app",
        &a,
        json!({"is_public": true}),
    );
    let shares = ok(
        &server,
        "GET",
        "/namespaces/team/repos/app/access-domains",
        &a,
        Value::Null,
    );
    assert_eq!(
        shares["access_domains"],
        json!([]),
        "making it public ended the share"
    );
    let (status, reply) = share(json!({"access_domain": "beta", "deadline": "forever"}));
    assert_eq!(status, 400, "public images are not shared: {reply}");
}

#[tokio::test]
async fn manifest_pulls_are_counted() {
    let server = Server::start_with(&[("BERTH_PULL_COUNT_SECONDS", "1")]);
    let a = server.create_account("acme");
    push_image_as(&server, &a.client(), "team/web", "v1", 10).await;
    for _ in 0..3 {
        let r = a
            .client()
            .get(server.url("/v2/team/web/manifests/v1"))
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = ok(
            &server,
            "GET",
            "/namespaces/team/repos/web",
            &a,
            Value::Null,
        )["num_download"]
            .clone();
        if seen == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(seen, 3);
}

/// The served OpenAPI document and the server agree: every documented
/// operation is routed (it answers, if only to say who may call it), and
/// every other method on a documented path is 405.
#[test]
fn the_openapi_document_describes_exactly_the_routes_served() {
    let server = Server::start();
    let (status, body) = http(&server, "GET", "/v2/manage/openapi.json", &[], "");
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let mut checked = 0;
    for (template, operations) in paths {
        let path = template
            .replace("{ns}", "acme-apps")
            .replace("{repo}", "web")
            .replace("{account}", "acme")
            .replace("{user}", "alice")
            .replace("{ak}", "AKNOSUCH")
            .replace("{tag}", "v1")
            .replace("{job}", "00000000-0000-0000-0000-000000000000");
        let path = if template.ends_with("/audit/timeline") || template.ends_with("/audit/as-of") {
            format!("{path}?namespace=acme-apps&at=1")
        } else {
            path
        };
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let documented = operations.get(method.to_lowercase()).is_some();
            let (status, reply) = http(&server, method, &path, &[], "{}");
            if documented {
                assert_ne!(
                    status, 405,
                    "{method} {template} is documented but not routed"
                );
                assert!(
                    !reply.contains("\"errors\""),
                    "{method} {template} answered outside the management API: {status} {reply}"
                );
                checked += 1;
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {template} is routed but not documented"
                );
            }
        }
    }
    assert_eq!(checked, 44, "every documented operation was tried");
}
