//! The audit trail as an auditor queries it: one operation of each kind
//! (every management route that changes something, docker login success
//! and failure through the real engine, push, pull, a refused manifest,
//! refusals, failures under unknown names) and exactly one record for each,
//! with the right actor, credential, address, resource and result; who may
//! read which records; pages, exports and the offline query agreeing.

use serde_json::{json, Value};

use crate::support::*;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Every record the operator's query returns, following cursors.
fn records(server: &Server, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = manage(
            server,
            "GET",
            &format!("/audit/events?{query}{cursor}"),
            &server.operator_basic(),
            Value::Null,
        );
        assert_eq!(status, 200, "{query}: {page}");
        out.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_u64() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// The one record a query finds among those `keep` accepts.
fn one(server: &Server, query: &str, keep: impl Fn(&Value) -> bool) -> Value {
    let found: Vec<Value> = records(server, query).into_iter().filter(keep).collect();
    assert_eq!(found.len(), 1, "exactly one record for {query}: {found:#?}");
    found.into_iter().next().unwrap()
}

/// Checks a record's actor and result.
fn check(record: &Value, account: &str, user: &str, credential: &str, result: &str) {
    let actor = &record["actor"];
    let what = format!("{record:#}");
    assert_eq!(actor["account"], account, "{what}");
    assert_eq!(actor["user"], user, "{what}");
    assert_eq!(actor["credential"], credential, "{what}");
    assert_eq!(actor["client_addr"], "127.0.0.1", "{what}");
    assert_eq!(record["result"], result, "{what}");
    assert!(record["request_id"].is_string(), "{what}");
}

fn any(_: &Value) -> bool {
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_leaves_exactly_one_audit_record() {
    let server = Server::start_with(&[
        ("BERTH_PULL_COUNT_SECONDS", "1"),
        ("BERTH_FAILURE_WINDOW_SECONDS", "3600"),
    ]);
    let acme = server.create_account("acme");
    server.create_account("partner");
    let alice = server.create_user(&acme, "alice");
    let auth = acme.basic();
    let docker = Docker::new();
    let host = server.host();

    // docker login through the real engine: success, then a wrong password.
    let t = now();
    docker
        .login(
            &server,
            &format!("local@{}", acme.ak),
            &acme.docker_password,
        )
        .unwrap();
    let r = one(
        &server,
        &format!("from={t}&action=LoggedIn&user=acme/admin"),
        any,
    );
    check(&r, "acme", "admin", "access-key", "ok");
    assert_eq!(r["actor"]["credential_id"], acme.ak.as_str());
    assert_eq!(r["event"]["LoggedIn"]["surface"], "TokenService");
    assert!(
        r["actor"]["user_agent"]
            .as_str()
            .unwrap()
            .contains("docker"),
        "{r}"
    );

    let t = now();
    docker
        .login(&server, &format!("local@{}", acme.ak), "not-the-password")
        .unwrap_err();
    let r = one(
        &server,
        &format!("from={t}&action=LoginFailed&user=acme/admin"),
        any,
    );
    check(&r, "acme", "admin", "access-key", "failed");
    assert_eq!(r["code"], "UNAUTHORIZED");
    assert_eq!(r["event"]["LoginFailed"]["reason"], "WrongSecret");
    docker
        .login(
            &server,
            &format!("local@{}", acme.ak),
            &acme.docker_password,
        )
        .unwrap();

    // docker push: one record per fact, the tag among them.
    let tag = format!("{host}/team/web:v1");
    docker.import(&tag, 81);
    let t = now();
    docker.run(&["push", &tag]);
    let r = one(
        &server,
        &format!("from={t}&action=TagPointed&namespace=team&repo=web"),
        any,
    );
    check(&r, "acme", "admin", "access-key", "ok");
    assert_eq!(r["resource"]["tag"], "v1");
    assert_eq!(r["resource"]["repo"], "team/web");
    assert!(r["resource"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let pushed = records(&server, &format!("from={t}&namespace=team"));
    let actions: Vec<&str> = pushed
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for expected in [
        "NamespaceCreated",
        "RepositoryCreated",
        "BlobUploaded",
        "ManifestPushed",
        "TagPointed",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }

    // docker pull: counted, never a record per pull.
    let t = now();
    docker.pull_fresh(&tag).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let after_pull = records(&server, &format!("from={t}"));
    let kinds: Vec<&str> = after_pull
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["PullsCounted"], "a pull is only counted: {kinds:?}");
    assert_eq!(after_pull[0]["resource"]["repo"], "team/web");
    assert!(after_pull[0]["count"].as_u64().unwrap() >= 1);

    // A refused manifest: it names a blob the repository does not hold.
    let missing = random_bytes(64, 82);
    let manifest = image_manifest(b"{}", &[&missing], json!({}));
    let t = now();
    let r = acme
        .client()
        .put(server.url("/v2/team/web/manifests/broken"))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = one(
        &server,
        &format!("from={t}&action=PushRejected&namespace=team&repo=web"),
        any,
    );
    check(&r, "acme", "admin", "access-key", "failed");
    assert_eq!(r["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(r["resource"]["tag"], "broken");

    // Reads leave no record.
    let t = now();
    for path in [
        "/namespaces",
        "/namespaces/team",
        "/repos",
        "/namespaces/team/repos/web",
        "/namespaces/team/repos/web/tags",
        "/access-keys",
    ] {
        let (status, reply) = manage(&server, "GET", path, &auth, Value::Null);
        assert_eq!(status, 200, "{path}: {reply}");
    }
    assert_eq!(records(&server, &format!("from={t}")), Vec::<Value>::new());

    // Every management route that changes something, one record each.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let operator = server.operator_basic();
    let steps: Vec<(&str, &str, &str, Value, &str, &str)> = vec![
        (
            "POST",
            "/accounts",
            &operator,
            json!({"name": "beta", "admin_user": "root", "admin_password": "a-long-password"}),
            "AccountCreated",
            "account=beta",
        ),
        (
            "POST",
            "/accounts/acme/users",
            &auth,
            json!({"name": "bob", "password": "a-long-password"}),
            "UserCreated",
            "user=acme/bob",
        ),
        (
            "PATCH",
            "/accounts/acme/users/bob",
            &auth,
            json!({"enabled": false}),
            "UserDisabled",
            "user=acme/bob",
        ),
        (
            "POST",
            "/utils/secret",
            &auth,
            Value::Null,
            "TemporaryLoginIssued",
            "user=acme/admin",
        ),
        (
            "POST",
            "/namespaces",
            &auth,
            json!({"namespace": "tools"}),
            "NamespaceCreated",
            "namespace=tools",
        ),
        (
            "POST",
            "/namespaces/team/access",
            &auth,
            json!({"users": [{"user_name": "alice", "auth": 3}]}),
            "OrgAccessGranted",
            "namespace=team&user=acme/alice",
        ),
        (
            "POST",
            "/namespaces/team/repos",
            &auth,
            json!({"repository": "db", "is_public": false, "category": "database", "description": "PostgreSQL 15"}),
            "RepositoryCreated",
            "namespace=team&repo=db",
        ),
        (
            "PATCH",
            "/namespaces/team/repos/web",
            &auth,
            json!({"category": "app-server", "description": "the web front end"}),
            "RepositoryAttributesChanged",
            "namespace=team&repo=web",
        ),
        (
            "POST",
            "/namespaces/team/repos/web/access",
            &auth,
            json!({"users": [{"user_name": "alice", "auth": 7}]}),
            "RepoAccessGranted",
            "namespace=team&repo=web&user=acme/alice",
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/access/alice",
            &auth,
            Value::Null,
            "RepoAccessRevoked",
            "namespace=team&repo=web&user=acme/alice",
        ),
        (
            "POST",
            "/namespaces/team/repos/web/tags",
            &auth,
            json!({"source_tag": "v1", "destination_tag": "stable"}),
            "TagPointed",
            "namespace=team&repo=web",
        ),
        (
            "POST",
            "/namespaces/team/repos/web/access-domains",
            &auth,
            json!({"access_domain": "partner", "permit": "read", "deadline": tomorrow, "description": "for partner's CI"}),
            "ShareGranted",
            "namespace=team&repo=web&account=partner",
        ),
        (
            "PATCH",
            "/namespaces/team/repos/web/access-domains/partner",
            &auth,
            json!({"deadline": "forever"}),
            "ShareChanged",
            "namespace=team&repo=web&account=partner",
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/access-domains/partner",
            &auth,
            Value::Null,
            "ShareEnded",
            "namespace=team&repo=web&account=partner",
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/tags/stable",
            &auth,
            Value::Null,
            "TagDeleted",
            "namespace=team&repo=web",
        ),
        (
            "DELETE",
            "/namespaces/team/repos/web/tags",
            &auth,
            json!({"tags": ["v1"]}),
            "TagDeleted",
            "namespace=team&repo=web",
        ),
        (
            "DELETE",
            "/namespaces/team/repos/db",
            &auth,
            Value::Null,
            "RepositoryDeleted",
            "namespace=team&repo=db",
        ),
        (
            "DELETE",
            "/namespaces/team/access/alice",
            &auth,
            Value::Null,
            "OrgAccessRevoked",
            "namespace=team&user=acme/alice",
        ),
        (
            "DELETE",
            "/namespaces/tools",
            &auth,
            Value::Null,
            "OrganizationDeleted",
            "namespace=tools",
        ),
    ];
    for (method, path, who, body, action, filter) in steps {
        let t = now();
        let (status, reply) = manage(&server, method, path, who, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {reply}"
        );
        let r = one(&server, &format!("from={t}&action={action}&{filter}"), any);
        let (account, user) = if who == operator {
            ("system", "admin")
        } else {
            ("acme", "admin")
        };
        check(&r, account, user, "access-key", "ok");
    }

    // Access keys: created, disabled, deleted, each naming the key.
    let t = now();
    let (status, key) = manage(&server, "POST", "/access-keys", &auth, Value::Null);
    assert_eq!(status, 201, "{key}");
    let ak = key["ak"].as_str().unwrap();
    let (status, _) = manage(
        &server,
        "PATCH",
        &format!("/access-keys/{ak}"),
        &auth,
        json!({"enabled": false}),
    );
    assert!((200..300).contains(&status));
    let (status, _) = manage(
        &server,
        "DELETE",
        &format!("/access-keys/{ak}"),
        &auth,
        Value::Null,
    );
    assert!((200..300).contains(&status));
    for action in [
        "AccessKeyCreated",
        "AccessKeyEnabledChanged",
        "AccessKeyDeleted",
    ] {
        let r = one(
            &server,
            &format!("from={t}&action={action}&user=acme/admin"),
            any,
        );
        check(&r, "acme", "admin", "access-key", "ok");
        assert_eq!(r["resource"]["key"], ak);
    }

    // A management request refused for permission: alice holds no grant
    // any more, so the repository looks missing to her, and the attempt is
    // recorded for acme's auditors.
    let t = now();
    let (status, _) = manage(
        &server,
        "DELETE",
        "/namespaces/team/repos/web",
        &alice.basic(),
        Value::Null,
    );
    assert_eq!(status, 404);
    let r = one(
        &server,
        &format!("from={t}&result=denied&namespace=team&repo=web"),
        any,
    );
    check(&r, "acme", "alice", "access-key", "denied");
    assert_eq!(r["action"], "AccessDenied");
    assert_eq!(r["code"], "DENIED");

    // A management sign-in, and one with a wrong password.
    let t = now();
    server.session("acme", "alice", "user-password");
    let body = json!({"account": "acme", "user": "alice", "password": "wrong"});
    let (status, _) = manage(&server, "POST", "/session", "", body);
    assert_eq!(status, 401);
    let r = one(
        &server,
        &format!("from={t}&action=LoggedIn&user=acme/alice"),
        any,
    );
    check(&r, "acme", "alice", "password", "ok");
    let r = one(
        &server,
        &format!("from={t}&action=LoginFailed&user=acme/alice"),
        any,
    );
    check(&r, "acme", "alice", "password", "failed");
    assert_eq!(r["event"]["LoginFailed"]["surface"], "Manage");

    // Failures under unknown names: counted, and written as one record
    // per address when the window closes (here: at shutdown).
    let t = now();
    for name in ["ghost", "ghost", "phantom"] {
        let body = json!({"account": "nobody", "user": name, "password": "x"});
        let (status, _) = manage(&server, "POST", "/session", "", body);
        assert_eq!(status, 401);
    }
    let (status, _) = http(
        &server,
        "GET",
        "/v2/token?service=berth",
        &[("Authorization", &basic("local@AKNOSUCHKEY", "x"))],
        "",
    );
    assert_eq!(status, 401);
    let mut server = server;
    server.stop();
    let (code, out) = berth(
        &[
            "audit",
            "query",
            "--from",
            &t,
            "--action",
            "FailuresCounted",
        ],
        &server.dir,
    );
    assert_eq!(code, 0, "{out}");
    let counted: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // One record per address per window (an hour here: the four attempts
    // fall in one unless an hour mark passes between them).
    let windows: std::collections::BTreeSet<String> = counted
        .iter()
        .map(|r| r["event"]["FailuresCounted"]["window_start"].to_string())
        .collect();
    assert_eq!(windows.len(), counted.len(), "{counted:#?}");
    assert!(counted.len() <= 2, "{counted:#?}");
    let total: u64 = counted.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 4, "{counted:#?}");
    let mut names = Vec::new();
    for r in &counted {
        assert_eq!(r["result"], "failed");
        assert_eq!(r["code"], "UNAUTHORIZED");
        assert_eq!(r["actor"]["credential"], "anonymous");
        assert_eq!(r["actor"]["client_addr"], "127.0.0.1");
        let event = &r["event"]["FailuresCounted"];
        assert_eq!(event["reasons"]["unknown-user"], r["count"]);
        for n in event["names"].as_array().unwrap() {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    assert_eq!(
        names,
        [
            json!("nobody/ghost"),
            json!("nobody/phantom"),
            json!("local@AKNOSUCHKEY")
        ]
    );
}

#[tokio::test]
async fn who_reads_which_records_and_every_format_agrees() {
    let mut server = Server::start();
    let acme = server.create_account("acme");
    let partner = server.create_account("partner");
    let alice = server.create_user(&acme, "alice");
    push_image_as(&server, &acme.client(), "team/web", "v1", 91).await;
    push_image_as(&server, &partner.client(), "parts/bolt", "v1", 92).await;
    let body = json!({"access_domain": "partner", "permit": "read", "deadline": "forever", "description": ""});
    let (status, reply) = manage(
        &server,
        "POST",
        "/namespaces/team/repos/web/access-domains",
        &acme.basic(),
        body,
    );
    assert_eq!(status, 201, "{reply}");

    // An account admin reads the records about their account only.
    let read = |who: &Identity, query: &str| {
        manage(
            &server,
            "GET",
            &format!("/audit/events?{query}"),
            &who.basic(),
            Value::Null,
        )
    };
    let (status, page) = read(&partner, "limit=1000");
    assert_eq!(status, 200, "{page}");
    let seen = page["events"].as_array().unwrap();
    assert!(seen.iter().any(|r| r["action"] == "ShareGranted"));
    assert!(seen.iter().any(|r| r["resource"]["repo"] == "parts/bolt"));
    assert!(
        !seen
            .iter()
            .any(|r| r["resource"]["tag"] == "v1" && r["resource"]["repo"] == "team/web"),
        "acme's pushes are not partner's business"
    );
    let (status, page) = read(&partner, "namespace=team&repo=web&action=TagPointed");
    assert_eq!(status, 200);
    assert_eq!(
        page["events"],
        json!([]),
        "a filter does not widen the scope"
    );
    let (status, page) = read(&alice, "");
    assert_eq!(
        status, 403,
        "a member who is no administrator reads nothing: {page}"
    );

    // Bad filters are named.
    for (query, field) in [
        ("result=maybe", "result"),
        ("action=Pulled", "action"),
        ("from=yesterday", "from"),
        ("repo=web", "repo"),
        ("client_addr=localhost", "client_addr"),
        ("user=alice", "user"),
        ("format=xml", "format"),
        ("format=csv&limit=5", "limit"),
        ("colour=red", "colour"),
    ] {
        let (status, reply) = read(&acme, query);
        assert_eq!(status, 400, "{query}: {reply}");
        assert_eq!(reply["field"], field, "{query}: {reply}");
    }

    // Pages newest first, cursors, NDJSON and CSV exports and the offline
    // query all hold the same records.
    let all = records(&server, "");
    let seqs: Vec<u64> = all.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seqs, sorted, "newest first");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = manage(
            &server,
            "GET",
            &format!("/audit/events?limit=7{cursor}"),
            &server.operator_basic(),
            Value::Null,
        );
        paged.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_u64() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all, "pages of 7 add up to the whole");
    let ndjson = server
        .client()
        .get(server.url("/v2/manage/audit/events"))
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, all, "the NDJSON export is the same records");
    let csv = server
        .client()
        .get(server.url("/v2/manage/audit/events?format=csv&order=oldest"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("seq,time,action,result,code,count,account,user,credential"));
    assert_eq!(rows.len(), all.len() + 1, "a header and one row per record");
    let first = all.last().unwrap();
    assert!(
        rows[1].starts_with(&format!("{},", first["seq"])),
        "oldest first: {}",
        rows[1]
    );
    let csv_tag_rows = rows
        .iter()
        .filter(|r| r.contains(",TagPointed,ok,") && r.contains(",team/web,v1,"))
        .count();
    assert_eq!(csv_tag_rows, 1, "{csv}");

    server.stop();
    let (code, out) = berth(&["audit", "query"], &server.dir);
    assert_eq!(code, 0, "{out}");
    let offline: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(offline, all, "the offline query reads the same records");
    let refused = std::process::Command::new(BERTH)
        .args(["audit", "query", "--result", "maybe", "--data-dir"])
        .arg(&server.dir)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("--result must be ok, denied or failed"),
        "{message}"
    );
}
