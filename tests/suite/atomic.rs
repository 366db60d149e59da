//! Requests that change several things change all of them or nothing, and
//! maintenance commands never mistake a wrong path for an empty registry.

use std::process::Command;

use crate::support::*;

/// The actions a registry token for `scope` grants `auth`.
async fn granted(server: &Server, auth: &str, scope: &str) -> serde_json::Value {
    use base64::Engine as _;
    let v = token_reply(server, auth, scope).await;
    let claims = v["token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    claims["access"][0]["actions"].clone()
}

#[tokio::test]
async fn a_grant_list_naming_an_unknown_user_grants_nobody() {
    let server = Server::start();
    let admin = server.create_account("acme");
    let alice = server.create_user(&admin, "alice");
    server.create_user(&admin, "bob");
    let (status, reply) = manage(
        &server,
        "POST",
        "/namespaces",
        &admin.basic(),
        serde_json::json!({"namespace": "team"}),
    );
    assert_eq!(status, 201, "{reply}");
    push_image_as(&server, &admin.client(), "team/web", "v1", 1).await;

    let grants = |users: serde_json::Value| {
        manage(
            &server,
            "POST",
            "/namespaces/team/access",
            &admin.basic(),
            serde_json::json!({ "users": users }),
        )
    };
    let (status, reply) = grants(serde_json::json!([
        {"user_name": "alice", "auth": 1},
        {"user_name": "bob", "auth": 3},
        {"user_name": "nosuch", "auth": 1},
    ]));
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["field"], "users[2].user_name");
    assert!(
        reply["message"].as_str().unwrap().contains("nosuch"),
        "{reply}"
    );
    assert_eq!(
        granted(&server, &alice.basic(), "repository:team/web:pull").await,
        serde_json::json!([]),
        "alice got nothing from the refused list"
    );
    let (status, reply) = grants(serde_json::json!([
        {"user_name": "alice", "auth": 1},
        {"user_name": "bob", "auth": 3},
    ]));
    assert_eq!(status, 201, "{reply}");
    assert_eq!(
        granted(&server, &alice.basic(), "repository:team/web:pull").await,
        serde_json::json!(["pull"])
    );
    let (status, reply) = manage(
        &server,
        "POST",
        "/namespaces/team/repos/web/access",
        &admin.basic(),
        serde_json::json!({"users": [{"user_name": "alice", "auth": 3}, {"user_name": "ghost", "auth": 3}]}),
    );
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["field"], "users[1].user_name");
    assert_eq!(
        granted(&server, &alice.basic(), "repository:team/web:pull,push").await,
        serde_json::json!(["pull"]),
        "the refused repository grant changed nothing"
    );
}

#[test]
fn a_user_update_with_one_bad_part_changes_nothing() {
    let server = Server::start();
    let admin = server.create_account("acme");
    server.create_user(&admin, "alice");
    let alice_session = format!(
        "Bearer {}",
        server.session("acme", "alice", "user-password")
    );
    let update = |auth: &str, body: serde_json::Value| {
        manage(&server, "PATCH", "/accounts/acme/users/alice", auth, body)
    };
    let (status, reply) = update(
        &alice_session,
        serde_json::json!({"password": "a-new-password", "admin": true}),
    );
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["field"], "admin");
    let (status, reply) = update(
        &alice_session,
        serde_json::json!({"password": "a-new-password", "enabled": "maybe"}),
    );
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = update(
        &alice_session,
        serde_json::json!({"password": "a-new-password", "enabled": false}),
    );
    assert_eq!(status, 403, "users do not disable themselves: {reply}");
    let login = |password: &str| {
        let body = serde_json::json!({"account": "acme", "user": "alice", "password": password});
        http(
            &server,
            "POST",
            "/v2/manage/session",
            &[],
            &body.to_string(),
        )
        .0
    };
    assert_eq!(login("a-new-password"), 401, "the password did not change");
    assert_eq!(login("user-password"), 200);
    let (status, reply) = update(
        &admin.basic(),
        serde_json::json!({"password": "a-new-password", "enabled": false}),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(login("a-new-password"), 401, "disabled in the same change");
}

#[test]
fn maintenance_commands_refuse_a_path_without_berth_data() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    for args in [
        vec!["log", "verify"],
        vec!["log", "show"],
        vec!["projections", "digest"],
        vec!["projections", "rebuild"],
    ] {
        let out = Command::new(BERTH)
            .args(&args)
            .arg("--data-dir")
            .arg(&missing)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains(missing.to_str().unwrap()),
            "{args:?}: {stderr}"
        );
        assert!(!missing.exists(), "{args:?} created the directory");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("intact"),
            "{args:?}"
        );
    }
    let out = Command::new(BERTH)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg("/proc/berth-no-such/data")
        .env("BERTH_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/proc/berth-no-such/data"), "{stderr}");
}
