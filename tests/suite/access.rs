//! Who may do what: a table walking registry and management routes for
//! every role, and the same rules through the real Docker engine.

use serde_json::json;

use crate::support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Anonymous,
    OtherAccount,
    Read,
    Edit,
    Manage,
    AccountAdmin,
    Operator,
}

const ROLES: [Role; 7] = [
    Role::Anonymous,
    Role::OtherAccount,
    Role::Read,
    Role::Edit,
    Role::Manage,
    Role::AccountAdmin,
    Role::Operator,
];

/// Management routes under acme's organization: another account, which
/// holds nothing there, is answered as if nothing were there.
const ACME_MANAGED: &str = "/v2/manage/namespaces/acme-apps";

/// The expected outcome for a role: allowed, or refused with this status.
fn outcome(allowed: bool, role: Role, path: &str) -> Result<(), u16> {
    match (allowed, role) {
        (true, _) => Ok(()),
        (false, Role::Anonymous) => Err(401),
        (false, Role::OtherAccount) if path.starts_with(ACME_MANAGED) => Err(404),
        (false, _) => Err(403),
    }
}

struct World {
    server: Server,
    admin: Identity,
    other: Identity,
    reader: Identity,
    auth: Vec<(Role, String)>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl World {
    fn auth(&self, role: Role) -> &str {
        &self.auth.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

/// acme (admin + read/edit/manage users) owns acme-apps/web, private, with
/// one image; beta is another account.
async fn world() -> World {
    let server = Server::start();
    let admin = server.create_account("acme");
    let other = server.create_account("beta");
    let mut auth = vec![
        (Role::Anonymous, String::new()),
        (Role::OtherAccount, other.basic()),
        (Role::AccountAdmin, admin.basic()),
        (Role::Operator, server.operator_basic()),
    ];
    let config = b"{\"world\":1}".to_vec();
    let layer = random_bytes(2000, 77);
    let c = admin.client();
    for blob in [&config, &layer] {
        let r = c
            .post(server.url(&format!(
                "/v2/acme-apps/web/blobs/uploads/?digest={}",
                digest(blob)
            )))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let manifest = image_manifest(&config, &[&layer], json!({}));
    let r = c
        .put(server.url("/v2/acme-apps/web/manifests/v1"))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut reader = None;
    for (role, name, level) in [
        (Role::Read, "reader", 1),
        (Role::Edit, "editor", 3),
        (Role::Manage, "manager", 7),
    ] {
        let user = server.create_user(&admin, name);
        if role == Role::Read {
            reader = Some(user.clone());
        }
        let (status, body) = manage(
            &server,
            "POST",
            "/namespaces/acme-apps/access",
            &admin.basic(),
            json!({"users": [{"user_name": name, "auth": level}]}),
        );
        assert_eq!(status, 201, "{body}");
        auth.push((role, user.basic()));
    }
    server.create_user(&admin, "temp");
    World {
        server,
        admin,
        other,
        reader: reader.unwrap(),
        auth,
        layer,
        manifest,
    }
}

/// Sends one request as a role; `Ok` unless refused with 401 or 403.
fn attempt(
    w: &World,
    role: Role,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> Result<(), u16> {
    let mut headers = vec![];
    let auth = w.auth(role).to_owned();
    if !auth.is_empty() {
        headers.push(("Authorization", auth.as_str()));
    }
    if !content_type.is_empty() {
        headers.push(("Content-Type", content_type));
    }
    let body = String::from_utf8_lossy(body).into_owned();
    let (status, reply) = http(&w.server, method, path, &headers, &body);
    match status {
        401 | 403 => Err(status),
        404 if path.starts_with(ACME_MANAGED) => Err(status),
        s if s >= 500 => panic!("{role:?} {method} {path}: {s} {reply}"),
        _ => Ok(()),
    }
}

/// What a route needs to exist before a role tries it: a scratch
/// repository of its own, or a grant of user `temp` to revoke.
fn prepare(w: &World, path: &str) {
    let admin = w.admin.basic();
    // Made once per role; a second route on the same scratch repository
    // finds it there (409) unless the first deleted it.
    let must = |method: &str, route: &str, body: serde_json::Value| {
        let (status, reply) = manage(&w.server, method, route, &admin, body);
        assert!(
            status < 300 || status == 409,
            "{method} {route}: {status} {reply}"
        );
    };
    if let Some(rest) = path.split("/repos/scratch-").nth(1) {
        let name = rest.split('/').next().unwrap();
        must(
            "POST",
            "/namespaces/acme-apps/repos",
            json!({"repository": format!("scratch-{name}")}),
        );
    }
    if path.ends_with("/repos/web/access/temp") {
        must(
            "POST",
            "/namespaces/acme-apps/repos/web/access",
            json!({"users": [{"user_name": "temp", "auth": 1}]}),
        );
    } else if path.ends_with("/access/temp") {
        must(
            "POST",
            "/namespaces/acme-apps/access",
            json!({"users": [{"user_name": "temp", "auth": 1}]}),
        );
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let w = world().await;
    let d = digest(&w.manifest);
    let layer = digest(&w.layer);
    // Roles are ordered by what they hold on acme-apps: the other account
    // holds nothing there, below read.
    let at_least = |min: Role| move |r: Role| r >= min;
    let pull = at_least(Role::Read);
    let push = at_least(Role::Edit);
    let delete = at_least(Role::Manage);
    let any_user = |r: Role| r != Role::Anonymous;
    let manifest = String::from_utf8(w.manifest.clone()).unwrap();

    type Rule = Box<dyn Fn(Role) -> bool>;
    let routes: Vec<(&str, String, Vec<u8>, &str, Rule)> = vec![
        ("GET", "/v2/".into(), vec![], "", Box::new(any_user)),
        ("GET", "/v2/_catalog".into(), vec![], "", Box::new(|_| true)),
        (
            "GET",
            "/v2/acme-apps/web/tags/list".into(),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "GET",
            "/v2/acme-apps/web/manifests/v1".into(),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "HEAD",
            format!("/v2/acme-apps/web/manifests/{d}"),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "GET",
            format!("/v2/acme-apps/web/blobs/{layer}"),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "HEAD",
            format!("/v2/acme-apps/web/blobs/{layer}"),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "GET",
            format!("/v2/acme-apps/web/referrers/{d}"),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "POST",
            "/v2/acme-apps/web/blobs/uploads/".into(),
            vec![],
            "",
            Box::new(push),
        ),
        (
            "PUT",
            "/v2/acme-apps/web/manifests/{role}".into(),
            manifest.clone().into_bytes(),
            OCI_MANIFEST,
            Box::new(push),
        ),
        (
            "DELETE",
            "/v2/acme-apps/web/manifests/{role}".into(),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "GET",
            "/v2/manage/session".into(),
            vec![],
            "",
            Box::new(any_user),
        ),
        (
            "POST",
            "/v2/manage/accounts".into(),
            br#"{"name":"x{role}","admin_user":"a","admin_password":"long-enough"}"#.to_vec(),
            "application/json",
            Box::new(|r| r == Role::Operator),
        ),
        (
            "POST",
            "/v2/manage/gc?dry_run=true".into(),
            vec![],
            "",
            Box::new(|r| r == Role::Operator),
        ),
        (
            "GET",
            "/v2/manage/accounts/acme/users".into(),
            vec![],
            "",
            Box::new(|r| r >= Role::AccountAdmin),
        ),
        (
            "POST",
            "/v2/manage/accounts/acme/users".into(),
            br#"{"name":"u{role}","password":"long-enough"}"#.to_vec(),
            "application/json",
            Box::new(|r| r >= Role::AccountAdmin),
        ),
        (
            "POST",
            "/v2/manage/namespaces/acme-apps/access".into(),
            br#"{"users":[{"user_name":"reader","auth":1}]}"#.to_vec(),
            "application/json",
            Box::new(delete),
        ),
        (
            "POST",
            "/v2/manage/namespaces/acme-apps/repos/web/access".into(),
            br#"{"users":[{"user_name":"reader","auth":1}]}"#.to_vec(),
            "application/json",
            Box::new(delete),
        ),
        (
            "PATCH",
            "/v2/manage/namespaces/acme-apps/repos/web".into(),
            br#"{"is_public":false}"#.to_vec(),
            "application/json",
            Box::new(push),
        ),
        (
            "POST",
            "/v2/manage/utils/secret".into(),
            vec![],
            "",
            Box::new(any_user),
        ),
        (
            "GET",
            "/v2/manage/access-keys".into(),
            vec![],
            "",
            Box::new(any_user),
        ),
        (
            "GET",
            "/v2/manage/namespaces".into(),
            vec![],
            "",
            Box::new(any_user),
        ),
        ("GET", ACME_MANAGED.to_string(), vec![], "", Box::new(pull)),
        // Not empty: the roles allowed get 409, the others their refusal.
        (
            "DELETE",
            ACME_MANAGED.to_string(),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "DELETE",
            format!("{ACME_MANAGED}/access/temp"),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "GET",
            "/v2/manage/repos".into(),
            vec![],
            "",
            Box::new(any_user),
        ),
        (
            "GET",
            format!("{ACME_MANAGED}/repos"),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "POST",
            format!("{ACME_MANAGED}/repos"),
            br#"{"repository":"new-{role}"}"#.to_vec(),
            "application/json",
            Box::new(push),
        ),
        (
            "GET",
            format!("{ACME_MANAGED}/repos/web"),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "DELETE",
            format!("{ACME_MANAGED}/repos/scratch-{{role}}"),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "DELETE",
            format!("{ACME_MANAGED}/repos/web/access/temp"),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "GET",
            format!("{ACME_MANAGED}/repos/web/tags"),
            vec![],
            "",
            Box::new(pull),
        ),
        (
            "POST",
            format!("{ACME_MANAGED}/repos/web/tags"),
            br#"{"source_tag":"v1","destination_tag":"copy-{role}"}"#.to_vec(),
            "application/json",
            Box::new(push),
        ),
        (
            "DELETE",
            format!("{ACME_MANAGED}/repos/web/tags/{{role}}"),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "DELETE",
            format!("{ACME_MANAGED}/repos/web/tags"),
            br#"{"tags":["{role}"]}"#.to_vec(),
            "application/json",
            Box::new(delete),
        ),
        (
            "POST",
            format!("{ACME_MANAGED}/repos/scratch-{{role}}/access-domains"),
            br#"{"access_domain":"beta","deadline":"forever"}"#.to_vec(),
            "application/json",
            Box::new(delete),
        ),
        (
            "PATCH",
            format!("{ACME_MANAGED}/repos/scratch-{{role}}/access-domains/beta"),
            br#"{"description":"changed"}"#.to_vec(),
            "application/json",
            Box::new(delete),
        ),
        (
            "DELETE",
            format!("{ACME_MANAGED}/repos/scratch-{{role}}/access-domains/beta"),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "GET",
            format!("{ACME_MANAGED}/repos/web/access-domains"),
            vec![],
            "",
            Box::new(delete),
        ),
        (
            "POST",
            "/v2/manage/namespaces".into(),
            br#"{"namespace":"org-{role}"}"#.to_vec(),
            "application/json",
            Box::new(any_user),
        ),
        (
            "GET",
            "/v2/manage/audit/timeline?namespace=acme-apps".into(),
            vec![],
            "",
            Box::new(|r| r >= Role::AccountAdmin),
        ),
        (
            "GET",
            "/v2/manage/audit/as-of?namespace=acme-apps&repo=web&at=5".into(),
            vec![],
            "",
            Box::new(|r| r >= Role::AccountAdmin),
        ),
        (
            "GET",
            "/v2/manage/openapi.json".into(),
            vec![],
            "",
            Box::new(|_| true),
        ),
        (
            "GET",
            "/v2/manage/shared-repositories".into(),
            vec![],
            "",
            Box::new(any_user),
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, content_type, rule) in &routes {
        for role in ROLES {
            let tag = format!("{role:?}").to_lowercase();
            let path = path.replace("{role}", &tag);
            let body = String::from_utf8_lossy(body)
                .replace("{role}", &tag)
                .into_bytes();
            prepare(&w, &path);
            if *method == "DELETE" {
                // Something to delete, whoever tries.
                let r = w
                    .server
                    .client()
                    .put(w.server.url(&format!("/v2/acme-apps/web/manifests/{tag}")))
                    .header("Content-Type", OCI_MANIFEST)
                    .body(w.manifest.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
            let got = attempt(&w, role, method, &path, &body, content_type);
            let want = outcome(rule(role), role, &path);
            if got != want {
                failures.push(format!(
                    "{role:?} {method} {path}: got {got:?}, want {want:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization table mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_catalog_lists_only_what_the_caller_may_pull() {
    let w = world().await;
    let names = |auth: &str| {
        let (_, body) = {
            let headers: Vec<(&str, &str)> = if auth.is_empty() {
                vec![]
            } else {
                vec![("Authorization", auth)]
            };
            http(&w.server, "GET", "/v2/_catalog", &headers, "")
        };
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["repositories"].clone()
    };
    assert_eq!(names(w.auth(Role::Read)), json!(["acme-apps/web"]));
    assert_eq!(names(w.auth(Role::OtherAccount)), json!([]));
    assert_eq!(names(""), json!([]));
}

#[tokio::test]
async fn another_accounts_private_repository_looks_missing() {
    let w = world().await;
    let other = w.auth(Role::OtherAccount).to_owned();
    let private = http(
        &w.server,
        "GET",
        "/v2/acme-apps/web/manifests/v1",
        &[("Authorization", &other)],
        "",
    );
    let missing = http(
        &w.server,
        "GET",
        "/v2/acme-apps/nothing/manifests/v1",
        &[("Authorization", &other)],
        "",
    );
    assert_eq!(private.0, 403);
    assert_eq!(private, missing, "same status, same body");
    let (status, body) = http(&w.server, "GET", "/v2/acme-apps/web/manifests/v1", &[], "");
    assert_eq!(status, 401);
    assert!(body.contains("UNAUTHORIZED"), "{body}");
}

const DENIED: &str = "denied: you do not have the permission";

/// Everything a user sees through the real Docker engine: long-term and
/// temporary logins, expiry, wrong passwords, read-only users, other
/// accounts, public repositories, anonymous pulls, foreign organizations and
/// the organization quota.
#[test]
fn docker_logins_and_permissions_end_to_end() {
    let server = Server::start_with(&[
        ("BERTH_ORG_QUOTA", "2"),
        ("BERTH_TEMPORARY_LOGIN_SECONDS", "6"),
    ]);
    let host = server.host();
    let alice = server.create_account("acme");
    let reader = server.create_user(&alice, "reader");
    let bob = server.create_account("beta");
    let d = Docker::new();
    let login =
        |who: &Identity| d.login(&server, &format!("local@{}", who.ak), &who.docker_password);
    let image = |repo: &str, seed: u64| {
        let tag = format!("{host}/{repo}:v1");
        d.import(&tag, seed);
        tag
    };

    // A wrong password is refused; the right one (computed by openssl) works.
    let wrong = d.login(
        &server,
        &format!("local@{}", alice.ak),
        "0".repeat(64).as_str(),
    );
    assert!(wrong.is_err(), "a wrong password logs in: {wrong:?}");
    login(&alice).expect("long-term login");
    let web = image("acme-apps/web", 1);
    let secret = image("acme-apps/secret", 2);
    d.run(&["push", &web]);
    d.run(&["push", &secret]);

    // A user with read pulls but cannot push.
    let (status, body) = manage(
        &server,
        "POST",
        "/namespaces/acme-apps/access",
        &alice.basic(),
        json!({"users": [{"user_name": "reader", "auth": 1}]}),
    );
    assert_eq!(status, 201, "{body}");
    login(&reader).unwrap();
    d.pull_fresh(&web).expect("read pulls");
    let pushed = d.try_run(&["push", &web]);
    assert!(
        pushed.as_ref().is_err_and(|e| e.contains(DENIED)),
        "read pushed: {pushed:?}"
    );

    // Another account: a private repository looks like a missing one.
    login(&bob).unwrap();
    let private = d
        .pull_fresh(&web)
        .expect_err("bob pulled acme's private image");
    let missing = d
        .pull_fresh(&format!("{host}/acme-apps/missing:v1"))
        .expect_err("a missing image pulled");
    assert_eq!(
        private.replace("acme-apps/web", "X"),
        missing.replace("acme-apps/missing", "X"),
        "the same answer for private and missing"
    );
    // ... cannot push into acme's organization, and has a quota of two.
    let evil = image("acme-apps/evil", 3);
    let pushed = d.try_run(&["push", &evil]);
    assert!(
        pushed.as_ref().is_err_and(|e| e.contains(DENIED)),
        "{pushed:?}"
    );
    for (i, org) in ["beta-one", "beta-two"].iter().enumerate() {
        let tag = image(&format!("{org}/app"), 10 + i as u64);
        d.run(&["push", &tag]);
    }
    let third = image("beta-three/app", 12);
    let pushed = d.try_run(&["push", &third]);
    assert!(
        pushed.as_ref().is_err_and(|e| e.contains(DENIED)),
        "beyond the quota: {pushed:?}"
    );

    // Public: every user and anyone may pull; private stays closed.
    let (status, body) = manage(
        &server,
        "PATCH",
        "/namespaces/acme-apps/repos/web",
        &alice.basic(),
        json!({"is_public": true}),
    );
    assert_eq!(status, 200, "{body}");
    d.pull_fresh(&web).expect("bob pulls a public image");
    d.run(&["logout", &host]);
    d.pull_fresh(&web)
        .expect("anonymous pull of a public image");
    assert!(
        d.pull_fresh(&secret).is_err(),
        "anonymous pull of a private image"
    );

    // A temporary login works, then expires.
    let (status, reply) = manage(
        &server,
        "POST",
        "/utils/secret",
        &alice.basic(),
        serde_json::Value::Null,
    );
    assert_eq!(status, 201, "{reply}");
    let command = reply["command"].as_str().unwrap().to_owned();
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(words[..3], ["docker", "login", "-u"]);
    assert_eq!(words[6], host);
    assert!(reply["auths"][host.as_str()]["auth"].is_string());
    d.login(&server, words[3], words[5])
        .expect("temporary login");
    let temp = image("acme-apps/temp", 4);
    d.run(&["push", &temp]);
    std::thread::sleep(std::time::Duration::from_secs(7));
    let late = d.login(&server, words[3], words[5]);
    assert!(
        late.is_err(),
        "an expired temporary login still works: {late:?}"
    );
}

fn status_with(w: &World, auth: &str, path: &str) -> u16 {
    http(&w.server, "GET", path, &[("Authorization", auth)], "").0
}

#[tokio::test]
async fn credentials_stop_working_when_they_should() {
    let mut w = world().await;
    let tags = "/v2/acme-apps/web/tags/list";

    // Failed logins are throttled per login and address.
    for _ in 0..5 {
        let (status, _) = manage(
            &w.server,
            "POST",
            "/session",
            "",
            json!({"account": "acme", "user": "reader", "password": "wrong-password"}),
        );
        assert_eq!(status, 401);
    }
    let (status, body) = http(
        &w.server,
        "POST",
        "/v2/manage/session",
        &[],
        &json!({"account": "acme", "user": "reader", "password": "user-password"}).to_string(),
    );
    assert_eq!(status, 429, "{body}");
    let raw = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(w.server.host()).unwrap();
        let body =
            json!({"account": "acme", "user": "reader", "password": "user-password"}).to_string();
        write!(s, "POST /v2/manage/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(raw.to_lowercase().contains("retry-after: "), "{raw}");

    // A token for one repository does not open another: the reader may
    // read there too, so the answer is a challenge to widen the token.
    let (status, reply) = http(
        &w.server,
        "GET",
        "/v2/token?service=berth&scope=repository:acme-apps/web:pull",
        &[("Authorization", &w.reader.basic())],
        "",
    );
    assert_eq!(status, 200, "{reply}");
    let token = serde_json::from_str::<serde_json::Value>(&reply).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");
    assert_eq!(status_with(&w, &bearer, tags), 200);
    assert_eq!(
        status_with(&w, &bearer, "/v2/acme-apps/other/tags/list"),
        401
    );
    // A forged token with alg none is refused.
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine as _;
    let none =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert_eq!(
        status_with(&w, &format!("Bearer {none}.{}.", parts[1]), tags),
        401
    );

    // Disabling the key stops it, and the token issued for it, at once.
    let (status, body) = manage(
        &w.server,
        "PATCH",
        &format!("/access-keys/{}", w.reader.ak),
        &w.reader.basic(),
        json!({"enabled": false}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_with(&w, &w.reader.basic(), tags), 401);
    assert_eq!(status_with(&w, &bearer, tags), 401);
    let (status, _) = manage(
        &w.server,
        "PATCH",
        &format!("/access-keys/{}", w.reader.ak),
        &basic("acme/reader", "user-password"),
        json!({"enabled": true}),
    );
    assert_eq!(
        status, 429,
        "the throttle still holds for this login and address"
    );

    // An admin changes a password and disables a user: old credentials stop.
    let admin_password = basic("acme/admin", "admin-password");
    let editor = w.server.identity("acme", "editor", "user-password");
    assert_eq!(status_with(&w, &editor.basic(), tags), 200);
    let (status, body) = manage(
        &w.server,
        "PATCH",
        "/accounts/acme/users/editor",
        &admin_password,
        json!({"password": "a-new-password", "enabled": false}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        status_with(&w, &editor.basic(), tags),
        401,
        "a disabled user's key stops"
    );
    let (status, _) = manage(
        &w.server,
        "POST",
        "/session",
        "",
        json!({"account": "acme", "user": "editor", "password": "a-new-password"}),
    );
    assert_eq!(status, 401, "a disabled user cannot log in");
    let (status, _) = manage(
        &w.server,
        "PATCH",
        "/accounts/acme/users/editor",
        &admin_password,
        json!({"enabled": true}),
    );
    assert_eq!(status, 200);
    assert_eq!(status_with(&w, &editor.basic(), tags), 200, "re-enabled");
    let (status, _) = manage(
        &w.server,
        "POST",
        "/session",
        "",
        json!({"account": "acme", "user": "editor", "password": "user-password"}),
    );
    assert_eq!(status, 401, "the old password no longer works");
    w.server.session("acme", "editor", "a-new-password");
    let (status, _) = manage(
        &w.server,
        "PATCH",
        "/accounts/acme/users/admin",
        &admin_password,
        json!({"enabled": false}),
    );
    assert_eq!(status, 403, "nobody disables themselves");

    // Mounting needs pull on the source: for another account it is an upload.
    let layer = digest(&w.layer);
    let r = w
        .other
        .client()
        .post(w.server.url(&format!(
            "/v2/beta-apps/copy/blobs/uploads/?mount={layer}&from=acme-apps/web"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "not mounted without pull on the source");
    let r = w
        .admin
        .client()
        .post(w.server.url(&format!(
            "/v2/acme-apps/copy/blobs/uploads/?mount={layer}&from=acme-apps/web"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "mounted with pull on the source");

    // The other account's denied pull is in the audit trail.
    assert_eq!(
        status_with(&w, &w.other.basic(), "/v2/acme-apps/web/manifests/v1"),
        403
    );
    w.server.stop();
    let (code, log) = berth(&["log", "show"], &w.server.dir);
    assert_eq!(code, 0);
    let denied: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            e["type"] == "AccessDenied" && e["event"]["AccessDenied"]["resource"] == "acme-apps/web"
        })
        .collect();
    let last = denied.last().expect("the denial was recorded");
    assert_eq!(last["actor"]["account"], "beta");
    assert_eq!(last["actor"]["user"], "admin");
    assert_eq!(last["actor"]["client_addr"], "127.0.0.1");
    assert_eq!(last["actor"]["credential"], "AccessKey");
    assert_eq!(last["event"]["AccessDenied"]["action"], "pull");
    assert!(
        !log.contains("$argon2id$"),
        "log show redacts password verifiers"
    );
}

#[tokio::test]
async fn repository_grants_add_to_organization_grants() {
    let w = world().await;
    // secret: a second private repository in the same organization.
    let config = b"{\"secret\":1}".to_vec();
    let c = w.admin.client();
    let r = c
        .post(w.server.url(&format!(
            "/v2/acme-apps/secret/blobs/uploads/?digest={}",
            digest(&config)
        )))
        .body(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .put(w.server.url("/v2/acme-apps/secret/manifests/v1"))
        .header("Content-Type", OCI_MANIFEST)
        .body(image_manifest(&config, &[], json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let guest = w.server.create_user(&w.admin, "guest");
    let grant = |user: &str, level: u64| {
        manage(
            &w.server,
            "POST",
            "/namespaces/acme-apps/repos/web/access",
            &w.admin.basic(),
            json!({"users": [{"user_name": user, "auth": level}]}),
        )
    };
    // A user with no organization grant gets read on one repository only.
    assert_eq!(
        status_with(&w, &guest.basic(), "/v2/acme-apps/web/tags/list"),
        403
    );
    assert_eq!(grant("guest", 1).0, 201);
    assert_eq!(
        status_with(&w, &guest.basic(), "/v2/acme-apps/web/tags/list"),
        200
    );
    assert_eq!(
        status_with(&w, &guest.basic(), "/v2/acme-apps/secret/tags/list"),
        403
    );
    // A repository grant adds to the organization's read...
    assert_eq!(grant("reader", 3).0, 201);
    let r = w
        .reader
        .client()
        .post(w.server.url("/v2/acme-apps/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "edit on the repository lets read push there"
    );
    // ... and a lower one takes nothing away from it.
    let manager = w.server.identity("acme", "manager", "user-password");
    assert_eq!(grant("manager", 1).0, 201);
    let r = manager
        .client()
        .delete(w.server.url("/v2/acme-apps/web/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "org manage still deletes");
    // Grants go to the owning account's users only, and need manage.
    let (status, _) = grant("nobody", 1);
    assert_eq!(status, 404, "unknown user");
    let (status, _) = manage(
        &w.server,
        "POST",
        "/namespaces/acme-apps/repos/web/access",
        &guest.basic(),
        json!({"users": [{"user_name": "guest", "auth": 7}]}),
    );
    assert_eq!(status, 403, "read cannot grant");
    let (status, body) = manage(
        &w.server,
        "POST",
        "/namespaces",
        &w.admin.basic(),
        json!({"namespace": "manage"}),
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("namespace")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("reserved"),
        "{body}"
    );
    let (status, body) = grant("reader", 5);
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("users[0].auth"))
    );
}

#[tokio::test]
async fn sessions_cookies_deleted_keys_and_the_readme_example() {
    let w = world().await;
    // The session cookie works like the bearer token.
    let (status, reply) = http(
        &w.server,
        "POST",
        "/v2/manage/session",
        &[],
        &json!({"account": "acme", "user": "admin", "password": "admin-password"}).to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    let token = serde_json::from_str::<serde_json::Value>(&reply).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = format!("berth_session={token}");
    let (status, body) = http(
        &w.server,
        "GET",
        "/v2/manage/access-keys",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&w.admin.ak));
    // A session is not a registry token.
    assert_eq!(
        status_with(
            &w,
            &format!("Bearer {token}"),
            "/v2/acme-apps/web/tags/list"
        ),
        401
    );
    // A deleted key stops working.
    let (status, _) = manage(
        &w.server,
        "DELETE",
        &format!("/access-keys/{}", w.admin.ak),
        &format!("Bearer {token}"),
        serde_json::Value::Null,
    );
    assert_eq!(status, 204);
    assert_eq!(
        status_with(&w, &w.admin.basic(), "/v2/acme-apps/web/tags/list"),
        401
    );
    // The README's worked example, computed by the README's openssl pipeline.
    assert_eq!(
        login_password(
            "BERTHEXAMPLEKEY00001",
            "bErThExAmPlEsEcReTkEy0123456789abcdefghij"
        ),
        "221589de16e7ebd487de04abae6b7f86a3c3336093855286051d8fefa60aeb6c"
    );
}

#[tokio::test]
async fn anonymous_pull_can_be_turned_off() {
    let server = Server::start_with(&[("BERTH_ANONYMOUS_PULL", "false")]);
    let admin = server.create_account("acme");
    let config = b"{}".to_vec();
    let r = admin
        .client()
        .post(server.url(&format!(
            "/v2/acme-apps/pub/blobs/uploads/?digest={}",
            digest(&config)
        )))
        .body(config)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, _) = manage(
        &server,
        "PATCH",
        "/namespaces/acme-apps/repos/pub",
        &admin.basic(),
        json!({"is_public": true}),
    );
    assert_eq!(status, 200);
    let (status, _) = http(&server, "GET", "/v2/acme-apps/pub/tags/list", &[], "");
    assert_eq!(status, 401, "no anonymous pull when it is off");
    let other = server.create_account("beta");
    assert_eq!(
        http(
            &server,
            "GET",
            "/v2/acme-apps/pub/tags/list",
            &[("Authorization", &other.basic())],
            ""
        )
        .0,
        200,
        "every user still pulls a public repository"
    );
}
