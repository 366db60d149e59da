//! The log as the source of truth: read models rebuilt from it are
//! byte-identical to the live ones, and tampering with a stored event is
//! found and named.

use crate::support::*;

#[tokio::test]
async fn rebuilt_read_models_equal_the_live_ones() {
    let mut server = Server::start();
    let c = server.client();
    // A scripted history: pushes, retags, referrers, mounts and deletes.
    for i in 0..6u64 {
        let repo = format!("org{}/app{}", i % 2, i % 3);
        let d = push_image(&server, &repo, &format!("v{i}"), i + 100).await;
        let body = get_bytes(&server, &format!("/v2/{repo}/manifests/{d}")).await;
        put_manifest(&server, &repo, "latest", OCI_MANIFEST, &body).await;
        if i % 2 == 0 {
            let r = c
                .delete(server.url(&format!("/v2/{repo}/manifests/v{i}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
        if i == 4 {
            let r = c
                .delete(server.url(&format!("/v2/{repo}/manifests/{d}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    }
    let shared = upload(&server, "org0/app0", b"mounted").await;
    let r = c
        .post(server.url(&format!(
            "/v2/org1/app2/blobs/uploads/?mount={shared}&from=org0/app0"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .delete(server.url(&format!("/v2/org0/app0/blobs/{shared}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Management history: many tags in flight at once (their events share
    // group commits, and the image list keeps running counts across them),
    // attributes, a share, a retag, deleted tags, a deleted image and a
    // deleted organization.
    let admin = server.create_account("acme");
    server.create_account("beta");
    let ac = admin.client();
    let d = push_image_as(&server, &ac, "team/web", "v0", 300).await;
    let manifest = ac
        .get(server.url(&format!("/v2/team/web/manifests/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let puts = (0..12).map(|i| {
        ac.put(server.url(&format!("/v2/team/web/manifests/t{i}")))
            .header("Content-Type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
    });
    for r in futures_util::future::join_all(puts).await {
        assert_eq!(r.unwrap().status(), 201);
    }
    let admin_auth = admin.basic();
    let must = |method: &str, path: &str, body: serde_json::Value| {
        let (status, reply) = manage(&server, method, path, &admin_auth, body);
        assert!(status < 300, "{method} {path}: {status} {reply}");
    };
    must(
        "PATCH",
        "/namespaces/team/repos/web",
        serde_json::json!({"category": "linux", "description": "base"}),
    );
    must(
        "POST",
        "/namespaces/team/repos/web/access-domains",
        serde_json::json!({"access_domain": "beta", "deadline": "2031-01-01"}),
    );
    must(
        "POST",
        "/namespaces/team/repos/web/tags",
        serde_json::json!({"source_tag": "t0", "destination_tag": "stable"}),
    );
    must(
        "DELETE",
        "/namespaces/team/repos/web/tags",
        serde_json::json!({"tags": ["t1", "t2"]}),
    );
    must(
        "POST",
        "/namespaces",
        serde_json::json!({"namespace": "gone"}),
    );
    must(
        "POST",
        "/namespaces/gone/repos",
        serde_json::json!({"repository": "x"}),
    );
    must(
        "DELETE",
        "/namespaces/gone/repos/x",
        serde_json::Value::Null,
    );
    must("DELETE", "/namespaces/gone", serde_json::Value::Null);
    let (_, web) = manage(
        &server,
        "GET",
        "/namespaces/team/repos/web",
        &admin_auth,
        serde_json::Value::Null,
    );
    // v0, t0..t11 and stable, less t1 and t2.
    assert_eq!(web["num_images"], 12, "{web}");
    server.stop();

    let (code, live) = berth(&["projections", "digest"], &server.dir);
    assert_eq!(code, 0);
    let (code, rebuilt) = berth(&["projections", "rebuild"], &server.dir);
    assert_eq!(code, 0, "{rebuilt}");
    assert!(
        rebuilt.ends_with(&format!("digest {}", live.trim()))
            || rebuilt.trim().ends_with(live.trim()),
        "rebuild gave {rebuilt:?}, live was {live:?}"
    );
    let (_, after) = berth(&["projections", "digest"], &server.dir);
    assert_eq!(
        after, live,
        "read models rebuilt from the log are byte-identical"
    );

    // And the rebuilt models serve the same answers.
    server.restart();
    let tags: serde_json::Value = get_json(&server, "/v2/org1/app1/tags/list").await;
    assert_eq!(tags["tags"], serde_json::json!(["latest", "v1"]));
    let (_, web) = manage(
        &server,
        "GET",
        "/namespaces/team/repos/web",
        &admin.basic(),
        serde_json::Value::Null,
    );
    assert_eq!(web["num_images"], 12);
    assert_eq!(web["category"], "linux");
}

#[tokio::test]
async fn log_verify_names_the_altered_event() {
    let mut server = Server::start();
    // After the bootstrap events: OrgCreated, RepositoryCreated, two
    // BlobUploaded, ManifestPushed, then TagPointed for the marker tag.
    push_image(&server, "audit/app", "marker-7f3a9c1e", 1).await;
    push_image(&server, "audit/app", "later", 2).await;
    server.stop();

    let (code, out) = berth(&["log", "verify"], &server.dir);
    assert_eq!(code, 0, "{out}");
    let total = BOOTSTRAP_EVENTS + 10;
    assert!(
        out.starts_with(&format!("log intact: {total} events")),
        "{out}"
    );

    let mut flipped = 0;
    for file in files_under(&server.dir.join("db")) {
        let in_value_file = file.parent().is_some_and(|p| p.ends_with("blobs"));
        if !in_value_file {
            continue;
        }
        let mut bytes = std::fs::read(&file).unwrap();
        if let Some(at) = bytes.windows(15).position(|w| w == b"marker-7f3a9c1e") {
            bytes[at + 7] ^= 0x01;
            std::fs::write(&file, bytes).unwrap();
            flipped += 1;
        }
    }
    assert_eq!(
        flipped, 1,
        "the event's bytes are in exactly one value file"
    );

    let (code, out) = berth(&["log", "verify"], &server.dir);
    assert_eq!(code, 2, "{out}");
    let marker = BOOTSTRAP_EVENTS + 6;
    assert!(
        out.starts_with(&format!("log damaged: first bad sequence number {marker}:")),
        "{out}"
    );
}

#[tokio::test]
async fn acknowledged_pushes_survive_a_crash() {
    let mut server = Server::start();
    let mut pushed = Vec::new();
    for i in 0..20u64 {
        let tag = format!("v{i}");
        pushed.push((
            tag.clone(),
            push_image(&server, "crash/app", &tag, 500 + i).await,
        ));
    }
    server.crash_and_restart();
    for (tag, d) in &pushed {
        let body = get_bytes(&server, &format!("/v2/crash/app/manifests/{tag}")).await;
        assert_eq!(&digest(&body), d, "{tag} survived the crash");
    }
    let tags = get_json(&server, "/v2/crash/app/tags/list").await;
    assert_eq!(tags["tags"].as_array().unwrap().len(), 20);
    server.stop();
    // The 20 manifest pulls after the restart are recorded at shutdown, in
    // one PullsCounted event.
    let expected = BOOTSTRAP_EVENTS + 2 + 20 * 4 + 1;
    assert_eq!(
        event_count(&server.dir),
        expected,
        "every acknowledged event, no more"
    );
    let (code, last) = berth(
        &["log", "show", "--from", &expected.to_string()],
        &server.dir,
    );
    assert_eq!(code, 0);
    assert!(
        last.contains(r#""type":"PullsCounted""#) && last.contains(r#""pulls":20"#),
        "{last}"
    );
}

#[tokio::test]
async fn the_operator_is_created_once_on_first_start() {
    let mut server = Server::start();
    server.restart();
    server.stop();
    assert_eq!(
        event_count(&server.dir),
        BOOTSTRAP_EVENTS,
        "the operator (and the test's access key) once; a restart creates nothing more"
    );
}

/// Opens a stopped server's database to tamper with it as an attacker
/// with disk access would.
fn tamper(dir: &std::path::Path, f: impl FnOnce(&fjall::Keyspace, &fjall::Keyspace)) {
    let db = fjall::Database::builder(dir.join("db")).open().unwrap();
    let log = db
        .keyspace("log", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    let meta = db
        .keyspace("log_meta", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    f(&log, &meta);
    db.persist(fjall::PersistMode::SyncAll).unwrap();
}

/// A copy of a stopped server's data directory, to tamper with.
fn copy_of(dir: &std::path::Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(dir)
        .arg(tmp.path().join("data"))
        .status()
        .unwrap();
    assert!(status.success());
    tmp
}

#[tokio::test]
async fn signed_checkpoints_prove_the_log_unchanged_and_catch_removal() {
    let mut server = Server::start();
    for i in 0..3u64 {
        push_image(&server, "audit/app", &format!("v{i}"), 700 + i).await;
    }
    let operator = server.operator_basic();
    let (status, checkpoint) = manage(
        &server,
        "GET",
        "/audit/checkpoint",
        &operator,
        serde_json::Value::Null,
    );
    assert_eq!(status, 200, "{checkpoint}");
    let (status, public) = manage(
        &server,
        "GET",
        "/audit/public-key",
        "",
        serde_json::Value::Null,
    );
    assert_eq!(status, 200);
    assert_eq!(public["algorithm"], "Ed25519");
    let held = tempfile::tempdir().unwrap();
    let cp_file = held.path().join("checkpoint.json");
    let key_file = held.path().join("public-key.json");
    std::fs::write(&cp_file, checkpoint.to_string()).unwrap();
    std::fs::write(&key_file, public.to_string()).unwrap();
    for i in 3..6u64 {
        push_image(&server, "audit/app", &format!("v{i}"), 700 + i).await;
    }
    server.stop();
    let held_seq = checkpoint["seq"].as_u64().unwrap();

    // Offline, with no data directory: the signature holds, and a key the
    // auditor did not keep refuses it.
    let offline = |key: &std::path::Path| {
        let out = std::process::Command::new(BERTH)
            .args(["audit", "verify-checkpoint"])
            .arg(&cp_file)
            .arg("--public-key")
            .arg(key)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = offline(&key_file);
    assert_eq!(code, Some(0), "{out}");
    let other = Server::start();
    let (_, other_key) = manage(
        &other,
        "GET",
        "/audit/public-key",
        "",
        serde_json::Value::Null,
    );
    let other_file = held.path().join("other.json");
    std::fs::write(&other_file, other_key.to_string()).unwrap();
    let (code, out) = offline(&other_file);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("refused"), "{out}");

    let verify = |dir: &std::path::Path| {
        berth(
            &["log", "verify", "--checkpoint", cp_file.to_str().unwrap()],
            dir,
        )
    };
    let (code, out) = verify(&server.dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("extends the checkpoint at sequence {held_seq}")));

    // Deleting an event.
    let copy = copy_of(&server.dir);
    let dir = copy.path().join("data");
    tamper(&dir, |log, _| log.remove(5u64.to_be_bytes()).unwrap());
    let (code, out) = verify(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("first bad sequence number 5:"), "{out}");

    // Reordering two events.
    let copy = copy_of(&server.dir);
    let dir = copy.path().join("data");
    tamper(&dir, |log, _| {
        let a = log.get(7u64.to_be_bytes()).unwrap().unwrap();
        let b = log.get(9u64.to_be_bytes()).unwrap().unwrap();
        log.insert(7u64.to_be_bytes(), b).unwrap();
        log.insert(9u64.to_be_bytes(), a).unwrap();
    });
    let (code, out) = verify(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("first bad sequence number 7:"), "{out}");

    // Truncating the tail below the held checkpoint, with the head record
    // rewritten to match: the chain alone looks whole, the checkpoint does
    // not.
    let copy = copy_of(&server.dir);
    let dir = copy.path().join("data");
    let keep = held_seq - 2;
    tamper(&dir, |log, meta| {
        let head = event_count(&server.dir);
        for seq in keep + 1..=head {
            log.remove(seq.to_be_bytes()).unwrap();
        }
        let value = log.get(keep.to_be_bytes()).unwrap().unwrap();
        let mut record = keep.to_be_bytes().to_vec();
        record.extend_from_slice(&value[..32]);
        meta.insert("head", record).unwrap();
    });
    let (code, out) = berth(&["log", "verify"], &dir);
    assert_eq!(
        code, 0,
        "without the checkpoint the shorter log looks whole: {out}"
    );
    let (code, out) = verify(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("first bad sequence number {}:", keep + 1)),
        "{out}"
    );
}

#[tokio::test]
async fn events_name_the_credential_and_the_client_that_caused_them() {
    let mut server = Server::start();
    let (ak, _, password) = server.operator_key.clone().unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "Authorization",
        basic(&format!("local@{ak}"), &password).parse().unwrap(),
    );
    headers.insert("User-Agent", "audit-probe/1.0".parse().unwrap());
    let client = client_with(headers);
    push_image_as(&server, &client, "who/app", "v1", 900).await;
    server.stop();
    let (code, log) = berth(&["log", "show"], &server.dir);
    assert_eq!(code, 0);
    let pushed: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "ManifestPushed")
        .expect("the push is in the log");
    let actor = &pushed["actor"];
    assert_eq!(actor["account"], "system");
    assert_eq!(actor["credential"], "AccessKey");
    assert_eq!(actor["credential_id"], ak.as_str());
    assert_eq!(actor["user_agent"], "audit-probe/1.0");
    assert_eq!(actor["client_addr"], "127.0.0.1");
}

#[tokio::test]
async fn checkpoints_are_written_into_the_log_on_a_schedule() {
    let mut server = Server::start_with(&[("BERTH_CHECKPOINT_INTERVAL", "1")]);
    push_image(&server, "cp/app", "v1", 950).await;
    let (_, public) = manage(
        &server,
        "GET",
        "/audit/public-key",
        "",
        serde_json::Value::Null,
    );
    // Several ticks pass with nothing new after the first checkpoint.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    server.stop();
    let (code, log) = berth(&["log", "show"], &server.dir);
    assert_eq!(code, 0);
    let checkpoints: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["type"] == "CheckpointRecorded")
        .collect();
    assert_eq!(
        checkpoints.len(),
        1,
        "one checkpoint, none for the checkpoint alone: {checkpoints:?}"
    );
    let recorded = &checkpoints[0]["event"]["CheckpointRecorded"];
    assert_eq!(
        recorded["seq"].as_u64().unwrap() + 1,
        checkpoints[0]["seq"].as_u64().unwrap(),
        "it signs the head just before it"
    );
    let held = tempfile::tempdir().unwrap();
    let (cp, key) = (held.path().join("cp.json"), held.path().join("key.json"));
    std::fs::write(&cp, recorded.to_string()).unwrap();
    std::fs::write(&key, public.to_string()).unwrap();
    let out = std::process::Command::new(BERTH)
        .args(["audit", "verify-checkpoint"])
        .arg(&cp)
        .arg("--public-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (code, out) = berth(
        &["log", "verify", "--checkpoint", cp.to_str().unwrap()],
        &server.dir,
    );
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn a_timeline_lists_every_event_of_a_resource_even_after_deletion() {
    let server = Server::start();
    let acme = server.create_account("acme");
    let alice = server.create_user(&acme, "alice");
    let beta = server.create_account("beta");
    let must = |method: &str, path: &str, body: serde_json::Value| {
        let (status, reply) = manage(&server, method, path, &acme.basic(), body);
        assert!(status < 300, "{method} {path}: {status} {reply}");
    };
    must(
        "POST",
        "/namespaces",
        serde_json::json!({"namespace": "team"}),
    );
    push_image_as(&server, &acme.client(), "team/web", "v1", 960).await;
    push_image_as(&server, &acme.client(), "team/api", "v1", 961).await;
    must(
        "POST",
        "/namespaces/team/repos/web/access-domains",
        serde_json::json!({"access_domain": "beta", "deadline": "forever"}),
    );
    must(
        "DELETE",
        "/namespaces/team/repos/web",
        serde_json::Value::Null,
    );
    let timeline = |who: &Identity, query: &str| {
        manage(
            &server,
            "GET",
            &format!("/audit/timeline?{query}"),
            &who.basic(),
            serde_json::Value::Null,
        )
    };
    let kinds = |reply: &serde_json::Value| -> Vec<String> {
        reply["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, web) = timeline(&acme, "namespace=team&repo=web");
    assert_eq!(status, 200, "{web}");
    let web_kinds = kinds(&web);
    assert_eq!(
        web_kinds.first().map(String::as_str),
        Some("RepositoryCreated")
    );
    assert!(web_kinds.contains(&"ShareGranted".to_owned()));
    assert_eq!(
        web_kinds.last().map(String::as_str),
        Some("RepositoryDeleted")
    );
    assert!(web["events"][0]["actor"]["credential_id"].is_string());
    let seqs: Vec<u64> = web["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );

    let (_, team) = timeline(&acme, "namespace=team");
    let team_kinds = kinds(&team);
    assert_eq!(team_kinds[0], "NamespaceCreated");
    assert!(
        team_kinds.len() > web_kinds.len(),
        "the organization's includes both images"
    );
    let (_, page) = timeline(&acme, "namespace=team&limit=2");
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_u64().unwrap();
    let (_, rest) = timeline(&acme, &format!("namespace=team&cursor={cursor}"));
    assert_eq!(kinds(&rest).len(), team_kinds.len() - 2);

    must(
        "DELETE",
        "/namespaces/team/repos/api",
        serde_json::Value::Null,
    );
    must("DELETE", "/namespaces/team", serde_json::Value::Null);
    let (status, after) = timeline(&acme, "namespace=team");
    assert_eq!(
        status, 200,
        "the deleted organization's history stays readable"
    );
    assert_eq!(
        kinds(&after).last().map(String::as_str),
        Some("OrganizationDeleted")
    );

    for outsider in [&alice, &beta] {
        let (status, _) = timeline(outsider, "namespace=team");
        assert_eq!(
            status, 403,
            "only the owning account's admins and the operator"
        );
    }
    let (status, _) = timeline(&acme, "namespace=never");
    assert_eq!(status, 404);
}

/// What the live API says about `team/web` now: tags, attributes, shares.
fn live_state(server: &Server, who: &Identity) -> serde_json::Value {
    let get = |path: &str| manage(server, "GET", path, &who.basic(), serde_json::Value::Null).1;
    let mut tags: Vec<serde_json::Value> = get("/namespaces/team/repos/web/tags?sort=name")["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| serde_json::json!({"tag": t["tag"], "digest": t["digest"]}))
        .collect();
    tags.sort_by_key(ToString::to_string);
    let detail = get("/namespaces/team/repos/web");
    let shares: Vec<serde_json::Value> = get("/namespaces/team/repos/web/access-domains")
        ["access_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(
            |s| serde_json::json!({"access_domain": s["access_domain"], "deadline": s["deadline"]}),
        )
        .collect();
    serde_json::json!({
        "tags": tags,
        "is_public": detail["is_public"],
        "category": detail["category"],
        "shares": shares,
    })
}

#[tokio::test]
async fn as_of_answers_equal_what_the_live_api_said_then() {
    let server = Server::start();
    let acme = server.create_account("acme");
    server.create_user(&acme, "alice");
    server.create_account("beta");
    let auth = acme.basic();
    let must = |method: &str, path: &str, body: serde_json::Value| {
        let (status, reply) = manage(&server, method, path, &auth, body);
        assert!(status < 300, "{method} {path}: {status} {reply}");
    };
    let mut instants = Vec::new();
    let snapshot = |instants: &mut Vec<(u64, String, serde_json::Value)>| {
        let (_, cp) = manage(
            &server,
            "GET",
            "/audit/checkpoint",
            &auth,
            serde_json::Value::Null,
        );
        instants.push((
            cp["seq"].as_u64().unwrap(),
            cp["time"].as_str().unwrap().to_owned(),
            live_state(&server, &acme),
        ));
    };
    must(
        "POST",
        "/namespaces",
        serde_json::json!({"namespace": "team"}),
    );
    push_image_as(&server, &acme.client(), "team/web", "v1", 970).await;
    snapshot(&mut instants);
    must(
        "POST",
        "/namespaces/team/repos/web/tags",
        serde_json::json!({"source_tag": "v1", "destination_tag": "v2"}),
    );
    must(
        "POST",
        "/namespaces/team/repos/web/access",
        serde_json::json!({"users": [{"user_name": "alice", "auth": 3}]}),
    );
    snapshot(&mut instants);
    must(
        "POST",
        "/namespaces/team/repos/web/access-domains",
        serde_json::json!({"access_domain": "beta", "deadline": "2031-06-30"}),
    );
    push_image_as(&server, &acme.client(), "team/web", "v3", 971).await;
    snapshot(&mut instants);
    must(
        "PATCH",
        "/namespaces/team/repos/web",
        serde_json::json!({"category": "database"}),
    );
    must(
        "DELETE",
        "/namespaces/team/repos/web/tags/v1",
        serde_json::Value::Null,
    );
    snapshot(&mut instants);
    must(
        "DELETE",
        "/namespaces/team/repos/web/access-domains/beta",
        serde_json::Value::Null,
    );
    snapshot(&mut instants);

    for (i, (seq, time, live)) in instants.iter().enumerate() {
        for at in [seq.to_string(), time.clone()] {
            let (status, then) = manage(
                &server,
                "GET",
                &format!("/audit/as-of?namespace=team&repo=web&at={at}"),
                &auth,
                serde_json::Value::Null,
            );
            assert_eq!(status, 200, "{then}");
            assert_eq!(then["at_seq"].as_u64(), Some(*seq), "instant {i} at {at}");
            let mut tags = then["tags"].as_array().unwrap().clone();
            tags.sort_by_key(ToString::to_string);
            let folded = serde_json::json!({
                "tags": tags,
                "is_public": then["is_public"],
                "category": then["category"],
                "shares": then["shares"],
            });
            assert_eq!(&folded, live, "instant {i} at {at}");
        }
    }
    let (_, org) = manage(
        &server,
        "GET",
        &format!("/audit/as-of?namespace=team&at={}", instants[1].0),
        &auth,
        serde_json::Value::Null,
    );
    assert_eq!(org["repos"], serde_json::json!(["web"]));
    let (_, repo) = manage(
        &server,
        "GET",
        &format!("/audit/as-of?namespace=team&repo=web&at={}", instants[1].0),
        &auth,
        serde_json::Value::Null,
    );
    assert_eq!(
        repo["members"],
        serde_json::json!([{"account": "acme", "user_name": "alice", "auth": 3}])
    );
    let (_, before) = manage(
        &server,
        "GET",
        "/audit/as-of?namespace=team&repo=web&at=1",
        &auth,
        serde_json::Value::Null,
    );
    assert_eq!(before["exists"], false);
}
