//! What third-party clients and a conformance run expect beyond the happy
//! path: the step-wise token flow, upload status after a refused chunk,
//! non-distributable layers, the empty referrers list, and the oras client
//! end to end.

use std::process::Command;

use crate::support::*;

/// A registry token for `scope` from the token service, as a step-wise
/// client gets it.
async fn token(server: &Server, auth: &str, scope: &str) -> String {
    let v = token_reply(server, auth, scope).await;
    format!("Bearer {}", v["token"].as_str().unwrap())
}

fn with_auth(auth: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("Authorization", auth.parse().unwrap());
    client_with(headers)
}

#[tokio::test]
async fn a_token_short_of_scope_is_challenged_and_a_user_short_of_rights_is_denied() {
    let server = Server::start();
    push_image(&server, "acme/web", "v1", 1).await;
    let operator = server.operator_basic();
    let pull_only = with_auth(&token(&server, &operator, "repository:acme/web:pull").await);
    let r = pull_only
        .post(server.url("/v2/acme/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the identity may push; only the token lacks it"
    );
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
    assert!(
        challenge.contains("scope=\"repository:acme/web:pull,push\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    let widened = with_auth(&token(&server, &operator, "repository:acme/web:pull,push").await);
    let r = widened
        .post(server.url("/v2/acme/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let admin = server.create_account("other");
    let outsider = server.create_user(&admin, "eve");
    let eve_pull = with_auth(&token(&server, &outsider.basic(), "repository:other/x:pull").await);
    let r = eve_pull
        .post(server.url("/v2/acme/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the identity itself may not push here");
    assert!(r.headers().get("www-authenticate").is_none());
    assert_eq!(error_code(r).await, "DENIED");
}

#[tokio::test]
async fn upload_status_answers_after_a_refused_chunk() {
    let server = Server::start();
    let operator = server.operator_basic();
    let push = with_auth(&token(&server, &operator, "repository:acme/up:pull,push").await);
    let r = push
        .post(server.url("/v2/acme/up/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = push
        .patch(server.url(&location))
        .header("Content-Range", "0-3")
        .header("Content-Type", "application/octet-stream")
        .body(b"abcd".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = push
        .patch(server.url(&location))
        .header("Content-Range", "10-13")
        .header("Content-Type", "application/octet-stream")
        .body(b"wxyz".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    // A conformance client asks for the status with a pull token, as the
    // reference registry allows.
    let pull = with_auth(&token(&server, &operator, "repository:acme/up:pull").await);
    for client in [&push, &pull] {
        let r = client.get(server.url(&location)).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["range"], "0-3");
        assert_eq!(r.headers()["location"].to_str().unwrap(), location);
    }
    for id in ["3f1c2a8e-0000-4000-8000-000000000000", "not-a-uuid"] {
        let r = push
            .get(server.url(&format!("/v2/acme/up/blobs/uploads/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{id}");
        assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN", "{id}");
    }
}

#[tokio::test]
async fn non_distributable_layers_need_not_be_pushed() {
    let server = Server::start();
    let client = server.client();
    let config = br#"{"architecture":"amd64","os":"windows"}"#;
    let layer = random_bytes(2000, 7);
    upload(&server, "acme/win", config).await;
    upload(&server, "acme/win", &layer).await;
    for (i, media) in [
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ]
    .iter()
    .enumerate()
    {
        let never_pushed = digest(&random_bytes(50, 100 + i as u64));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": config.len()},
            "layers": [
                {"mediaType": media, "digest": never_pushed, "size": 50,
                 "urls": ["https://example.invalid/layer"]},
                {"mediaType": OCI_LAYER, "digest": digest(&layer), "size": layer.len()},
            ],
        })
        .to_string()
        .into_bytes();
        let tag = format!("t{i}");
        let r = put_manifest(&server, "acme/win", &tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status(), 201, "{media}: {}", r.text().await.unwrap());
        for reference in [tag.clone(), digest(&manifest)] {
            let url = server.url(&format!("/v2/acme/win/manifests/{reference}"));
            let got = client.get(&url).send().await.unwrap();
            assert_eq!(got.status(), 200);
            assert_eq!(got.bytes().await.unwrap(), manifest);
            let head = client.head(&url).send().await.unwrap();
            assert_eq!(head.status(), 200);
            assert_eq!(
                head.headers()["docker-content-digest"].to_str().unwrap(),
                digest(&manifest)
            );
        }
    }
    let tags = get_json(&server, "/v2/acme/win/tags/list").await;
    assert_eq!(tags["tags"], serde_json::json!(["t0", "t1", "t2", "t3"]));
}

#[tokio::test]
async fn an_empty_referrers_list_is_an_oci_index() {
    let server = Server::start();
    let subject = push_image(&server, "acme/web", "v1", 3).await;
    let unknown = digest(b"no such manifest");
    for d in [subject, unknown] {
        let r = server
            .client()
            .get(server.url(&format!("/v2/acme/web/referrers/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], OCI_INDEX);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["manifests"], serde_json::json!([]));
        assert_eq!(body["mediaType"], OCI_INDEX);
    }
}

/// The Python interpreter of the venv where `scripts/test.sh` installed
/// oras.
fn oras_python() -> String {
    std::env::var("BERTH_ORAS_PYTHON").expect(
        "BERTH_ORAS_PYTHON is not set: run the suite with scripts/test.sh, which installs oras",
    )
}

#[test]
fn oras_pushes_and_pulls_an_artifact_with_a_login() {
    let server = Server::start();
    let admin = server.create_account("acme");
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("notes.txt");
    let content = random_bytes(30_000, 11);
    std::fs::write(&artifact, &content).unwrap();
    let out_dir = work.path().join("pulled");
    let script = r#"
import os, sys
import oras.client
host = os.environ["HOST"]
c = oras.client.OrasClient(hostname=host, insecure=True)
c.login(hostname=host, username=os.environ["USER_NAME"], password=os.environ["PASSWORD"], tls_verify=False)
target = host + "/acme/notes:v1"
os.chdir(os.path.dirname(os.environ["ARTIFACT"]))
c.push(target=target, files=[os.path.basename(os.environ["ARTIFACT"])])
c.pull(target=target, outdir=os.environ["OUT"])
print("ok")
"#;
    let out = Command::new(oras_python())
        .arg("-c")
        .arg(script)
        .env("HOST", server.host())
        .env("USER_NAME", format!("local@{}", admin.ak))
        .env("PASSWORD", &admin.docker_password)
        .env("ARTIFACT", &artifact)
        .env("OUT", &out_dir)
        .output()
        .expect("run oras");
    assert!(
        out.status.success(),
        "oras failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pulled = std::fs::read(out_dir.join("notes.txt")).expect("oras pulled the file");
    assert_eq!(pulled, content);
    let tags = http(
        &server,
        "GET",
        "/v2/acme/notes/tags/list",
        &[("Authorization", &admin.basic())],
        "",
    );
    assert_eq!(tags.0, 200, "{}", tags.1);
    assert!(tags.1.contains("\"v1\""), "{}", tags.1);
}
