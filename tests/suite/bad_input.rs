//! Bad input on every route gets the spec's status and error code, and
//! changes nothing: no event but the audit record of a refused push, no
//! file in the blob store, no upload left behind.

use serde_json::json;

use crate::support::*;

/// Sends a request line as written, without any client-side path
/// normalisation (`..` and `%2e` reach the server untouched).
fn raw(server: &Server, method: &str, path: &str) -> (u16, String) {
    http(
        server,
        method,
        path,
        &[("Authorization", &server.operator_basic())],
        "",
    )
}

fn code_of(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v["errors"][0]["code"].as_str().unwrap().to_owned()
}

async fn expect(r: reqwest::Response, status: u16, code: &str, what: &str) {
    assert_eq!(r.status().as_u16(), status, "{what}");
    assert_eq!(error_code(r).await, code, "{what}");
}

#[tokio::test]
async fn bad_input_is_refused_and_leaves_no_trace() {
    let mut server = Server::start();
    let c = server.client();
    push_image(&server, "acme/base", "v1", 9).await;
    let config = b"{\"seed\":9}".to_vec();
    let layer_digest = digest(&random_bytes(1009, 9));

    // Paths and names, sent raw so nothing normalises them first.
    for (method, path, status, code) in [
        ("GET", "/v2/acme/a/b/manifests/v1", 400, "NAME_INVALID"),
        ("GET", "/v2/Acme/web/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/../etc/manifests/v1", 400, "NAME_INVALID"),
        ("GET", "/v2/acme/../manifests/v1", 400, "NAME_INVALID"),
        ("GET", "/v2/acme/%2e%2e/manifests/v1", 400, "NAME_INVALID"),
        (
            "GET",
            "/v2/%2e%2e/%2e%2e/blobs/uploads/",
            400,
            "NAME_INVALID",
        ),
        ("POST", "/v2/1acme/web/blobs/uploads/", 400, "NAME_INVALID"),
        ("POST", "/v2/acme/web-/blobs/uploads/", 400, "NAME_INVALID"),
        ("PUT", "/v2/acme/base/manifests/-bad", 400, "TAG_INVALID"),
        (
            "GET",
            "/v2/acme/base/manifests/sha256%3Aab",
            400,
            "TAG_INVALID",
        ),
        (
            "GET",
            "/v2/acme/base/blobs/sha256:abc",
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            "/v2/acme/base/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
            400,
            "DIGEST_INVALID",
        ),
        ("GET", "/v2/acme/nope/tags/list", 404, "NAME_UNKNOWN"),
        (
            "GET",
            "/v2/acme/base/tags/list?n=abc",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        (
            "DELETE",
            "/v2/acme/base/manifests/nope",
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "GET",
            "/v2/acme/base/blobs/uploads/not-a-session",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        ("POST", "/v2/acme/base/tags/list", 405, "UNSUPPORTED"),
    ] {
        let (got, body) = raw(&server, method, path);
        assert_eq!(
            (got, code_of(&body).as_str()),
            (status, code),
            "{method} {path}"
        );
    }

    // Monolithic upload whose bytes do not match the digest.
    let wrong = digest(b"something else");
    let r = c
        .post(server.url(&format!("/v2/acme/base/blobs/uploads/?digest={wrong}")))
        .body(b"actual bytes".to_vec())
        .send()
        .await
        .unwrap();
    expect(r, 400, "DIGEST_INVALID", "wrong digest").await;

    // Manifests: oversize, garbage, unknown blob, wrong digest, type mismatch.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = put_manifest(&server, "acme/base", "big", OCI_MANIFEST, &huge).await;
    expect(r, 413, "SIZE_INVALID", "oversize manifest").await;
    let r = put_manifest(&server, "acme/base", "junk", OCI_MANIFEST, b"{not json").await;
    expect(r, 400, "MANIFEST_INVALID", "garbage manifest").await;
    let unknown_layer = image_manifest(&config, &[b"never uploaded"], json!({}));
    let r = put_manifest(&server, "acme/base", "v2", OCI_MANIFEST, &unknown_layer).await;
    expect(r, 400, "MANIFEST_BLOB_UNKNOWN", "unknown blob").await;
    let fresh_repo = put_manifest(&server, "fresh/repo", "v1", OCI_MANIFEST, &unknown_layer).await;
    expect(
        fresh_repo,
        400,
        "MANIFEST_BLOB_UNKNOWN",
        "unknown blob in a new repo",
    )
    .await;
    let other = image_manifest(&config, &[], json!({}));
    let r = put_manifest(&server, "acme/base", &digest(b"x"), OCI_MANIFEST, &other).await;
    expect(r, 400, "DIGEST_INVALID", "manifest digest mismatch").await;
    let r = put_manifest(&server, "acme/base", "v3", OCI_INDEX, &other).await;
    expect(r, 400, "MANIFEST_INVALID", "content type mismatch").await;
    let schema1 = br#"{"schemaVersion":1,"name":"acme/base","tag":"v1"}"#;
    let r = put_manifest(&server, "acme/base", "v4", "application/json", schema1).await;
    expect(r, 400, "MANIFEST_INVALID", "schema 1").await;
    let layer_is_known = image_manifest(
        &config,
        &[],
        json!({"layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": -1}]}),
    );
    let r = put_manifest(&server, "acme/base", "v5", OCI_MANIFEST, &layer_is_known).await;
    expect(r, 400, "MANIFEST_INVALID", "negative size").await;

    // Chunked uploads: out of order, malformed and short chunks append nothing.
    let r = c
        .post(server.url("/v2/acme/base/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    for (range, body, status, code) in [
        ("5-9", b"hello".to_vec(), 416, "BLOB_UPLOAD_INVALID"),
        ("abc", b"hello".to_vec(), 416, "BLOB_UPLOAD_INVALID"),
        ("0-9", b"hello".to_vec(), 400, "BLOB_UPLOAD_INVALID"),
    ] {
        let r = c
            .patch(server.url(&loc))
            .header("Content-Range", range)
            .body(body)
            .send()
            .await
            .unwrap();
        if status == 416 {
            assert_eq!(
                r.headers()["range"],
                "0-0",
                "416 tells where the upload stands"
            );
        }
        expect(r, status, code, &format!("Content-Range {range}")).await;
        let s = c.get(server.url(&loc)).send().await.unwrap();
        assert_eq!(
            s.headers()["range"],
            "0-0",
            "nothing appended after {range}"
        );
    }
    let r = c.put(server.url(&loc)).send().await.unwrap();
    expect(r, 400, "DIGEST_INVALID", "finish without digest").await;
    let other_repo = loc.replace("acme/base", "acme/other");
    let r = c.get(server.url(&other_repo)).send().await.unwrap();
    expect(
        r,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "session of another repository",
    )
    .await;
    let r = c
        .put(server.url(&format!("{loc}?digest={wrong}")))
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    expect(r, 400, "DIGEST_INVALID", "finish with wrong digest").await;
    let r = c.get(server.url(&loc)).send().await.unwrap();
    expect(
        r,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "a failed finish removes the session",
    )
    .await;

    server.stop();
    let refusals = event_types_from(&server.dir, BOOTSTRAP_EVENTS + 7);
    assert!(
        refusals.iter().all(|t| t == "PushRejected"),
        "after the baseline image, the log holds only the refused pushes: {refusals:?}"
    );
    assert!(
        refusals.len() >= 3,
        "the refused pushes are audit records: {refusals:?}"
    );
    assert_eq!(
        files_under(&server.dir.join("blobs")).len(),
        2,
        "only its two blobs are stored"
    );
    assert!(
        files_under(&server.dir.join("uploads")).is_empty(),
        "no upload is left"
    );
}
