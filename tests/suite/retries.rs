//! Retrying management writes with an `Idempotency-Key`, as a client does
//! that did not hear the answer: the first answer comes back, marked
//! replayed, and nothing changes a second time; the same key on another
//! request is refused with 422; a key is one user's own.

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::support::*;

/// What a keyed request was answered: status, whether it was replayed,
/// and the body.
struct Answered {
    status: u16,
    replayed: bool,
    body: Value,
}

async fn send(
    server: &Server,
    method: &str,
    path: &str,
    auth: &str,
    key: &str,
    body: Option<Value>,
) -> Answered {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client_with(Default::default())
        .request(method, server.url(&format!("/v2/manage{path}")))
        .header("Authorization", auth)
        .header("Idempotency-Key", key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    answered(req.send().await.unwrap()).await
}

async fn answered(r: reqwest::Response) -> Answered {
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let body = r.json().await.unwrap_or(Value::Null);
    Answered {
        status,
        replayed,
        body,
    }
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

#[tokio::test]
async fn a_retried_write_gets_the_first_answer_and_changes_nothing() {
    let mut server = Server::start();
    let op = server.operator_basic();
    let create = || Some(json!({ "namespace": "retried" }));

    let first = send(&server, "POST", "/namespaces", &op, "k-ns", create()).await;
    assert_eq!(
        (first.status, first.replayed),
        (201, false),
        "{}",
        first.body
    );
    let again = send(&server, "POST", "/namespaces", &op, "k-ns", create()).await;
    assert_eq!(
        (again.status, again.replayed),
        (201, true),
        "{}",
        again.body
    );
    assert_eq!(again.body, first.body);
    // Key order and spacing are not part of the request.
    let respaced = client_with(Default::default())
        .post(server.url("/v2/manage/namespaces"))
        .header("Authorization", &op)
        .header("Idempotency-Key", "k-ns")
        .header("Content-Type", "application/json")
        .body("{ \"namespace\" : \"retried\" }")
        .send()
        .await
        .unwrap();
    assert_eq!(answered(respaced).await.status, 201);
    // Without a key the same request is a new one, and refused.
    let (status, _) = manage(&server, "POST", "/namespaces", &op, create().unwrap());
    assert_eq!(status, 409);

    // The same key on another request: 422, naming the header.
    let other = Some(json!({ "namespace": "another" }));
    let reused = send(&server, "POST", "/namespaces", &op, "k-ns", other).await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert_eq!(reused.body["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(reused.body["field"], "Idempotency-Key");
    let (status, _) = manage(&server, "GET", "/namespaces/another", &op, Value::Null);
    assert_eq!(status, 404, "a refused key changes nothing");
    let elsewhere = send(&server, "DELETE", "/namespaces/retried", &op, "k-ns", None).await;
    assert_eq!(elsewhere.status, 422, "the path is part of the request");

    // A key that is not one.
    for bad in ["", &"k".repeat(256), "with space"] {
        let r = send(&server, "POST", "/namespaces", &op, bad, create()).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some("Idempotency-Key"))
        );
    }

    // A delete retried after it succeeded: its first answer, not a 404
    // from the check that now finds nothing.
    for _ in 0..2 {
        let r = send(&server, "DELETE", "/namespaces/retried", &op, "k-del", None).await;
        assert_eq!(r.status, 204);
    }

    // Another user's key of the same name is another key.
    let acme = server.create_account("acme");
    let theirs = send(
        &server,
        "POST",
        "/namespaces",
        &acme.basic(),
        "k-ns",
        create(),
    )
    .await;
    assert_eq!(
        (theirs.status, theirs.replayed),
        (201, false),
        "{}",
        theirs.body
    );

    server.stop();
    let types = event_types_from(&server.dir, 1);
    assert_eq!(count(&types, "NamespaceCreated"), 2, "{types:?}");
    assert_eq!(count(&types, "OrganizationDeleted"), 1, "{types:?}");
}

/// A secret is shown once: a replay names the key it made, never the
/// secret, and no second key is made.
#[tokio::test]
async fn a_retried_access_key_is_not_made_twice_and_its_secret_is_not_replayed() {
    let mut server = Server::start();
    let acme = server.create_account("acme");
    let auth = acme.basic();
    let first = send(&server, "POST", "/access-keys", &auth, "k-ak", None).await;
    assert_eq!(first.status, 201);
    let sk = first.body["sk"].as_str().unwrap().to_owned();
    let again = send(&server, "POST", "/access-keys", &auth, "k-ak", None).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body["ak"], first.body["ak"]);
    assert_eq!(again.body["sk"], Value::Null);
    assert!(again.body["message"]
        .as_str()
        .unwrap()
        .contains("shown once"));
    let (_, keys) = manage(&server, "GET", "/access-keys", &auth, Value::Null);
    assert_eq!(keys["access_keys"].as_array().unwrap().len(), 2, "{keys}");

    let login = send(&server, "POST", "/utils/secret", &auth, "k-tmp", None).await;
    let replayed = send(&server, "POST", "/utils/secret", &auth, "k-tmp", None).await;
    assert_eq!(
        (login.status, replayed.status, replayed.replayed),
        (201, 201, true)
    );
    assert_eq!(replayed.body["expires_at"], login.body["expires_at"]);
    assert_eq!(replayed.body["command"], Value::Null);
    let password = login.body["command"]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(5)
        .unwrap();

    server.stop();
    let (code, log) = berth(&["log", "show"], &server.dir);
    assert_eq!(code, 0);
    assert!(
        log.contains("k-ak") && log.contains("k-tmp"),
        "the keys are in the log"
    );
    for secret in [sk.as_str(), password] {
        assert!(!log.contains(secret), "no secret is in the log");
    }
}

/// A web upload retried with its key, its multipart body built anew: the
/// first job's answer, and the images stored once.
#[tokio::test]
async fn a_retried_web_upload_answers_with_the_first_job() {
    let server = Server::start();
    let archive = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uploads/oci-only.tar.gz"),
    )
    .unwrap();
    let post = || async {
        let form = Form::new().part(
            "file",
            Part::bytes(archive.clone()).file_name("image.tar.gz"),
        );
        let r = client_with(Default::default())
            .post(server.url("/v2/manage/namespaces/web/uploads"))
            .header("Authorization", server.operator_basic())
            .header("Idempotency-Key", "k-up")
            .multipart(form)
            .send()
            .await
            .unwrap();
        answered(r).await
    };
    let first = post().await;
    assert_eq!(
        (first.status, first.replayed),
        (201, false),
        "{}",
        first.body
    );
    let from = head(&server).await;
    let again = post().await;
    assert_eq!(
        (again.status, again.replayed),
        (201, true),
        "{}",
        again.body
    );
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(head(&server).await, from, "the retry stored nothing");
}

/// The log's head, as the audit checkpoint names it.
async fn head(server: &Server) -> u64 {
    get_json(server, "/v2/manage/audit/checkpoint").await["seq"]
        .as_u64()
        .unwrap()
}
