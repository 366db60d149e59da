//! The OCI distribution API over real HTTP: uploads in every form, pulls with
//! ranges, manifests, discovery with pagination, referrers, deletion.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn chunked_upload_then_ranged_pulls() {
    let server = Server::start();
    let c = server.client();
    let blob = random_bytes(300_000, 7);
    let r = c
        .post(server.url("/v2/acme/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let mut offset = 0;
    for chunk in blob.chunks(100_000) {
        let end = offset + chunk.len() - 1;
        let r = c
            .patch(server.url(&loc))
            .header("Content-Range", format!("{offset}-{end}"))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()["range"], format!("0-{end}").as_str());
        offset = end + 1;
    }
    let status = c.get(server.url(&loc)).send().await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-299999");
    let d = digest(&blob);
    let r = c
        .put(server.url(&format!("{loc}?digest={d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());

    let url = server.url(&format!("/v2/acme/web/blobs/{d}"));
    let whole = c.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), blob.as_slice());
    let head = c.head(&url).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], "300000");
    let part = c
        .get(&url)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 10-19/300000");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &blob[10..20]);
    let tail = c
        .get(&url)
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &blob[blob.len() - 5..]
    );
    let beyond = c
        .get(&url)
        .header("Range", "bytes=300000-")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], "bytes */300000");
}

#[tokio::test]
async fn upload_resumes_after_restart() {
    let mut server = Server::start();
    let c = server.client();
    let blob = random_bytes(200_000, 11);
    let r = c
        .post(server.url("/v2/acme/resume/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let r = c
        .patch(server.url(&loc))
        .header("Content-Range", "0-119999")
        .body(blob[..120_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    server.restart();
    let status = c.get(server.url(&loc)).send().await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-119999");
    let d = digest(&blob);
    let r = c
        .put(server.url(&format!("{loc}?digest={d}")))
        .header("Content-Range", "120000-199999")
        .body(blob[120_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let pulled = c
        .get(server.url(&format!("/v2/acme/resume/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), blob.as_slice());
}

#[tokio::test]
async fn cancelled_upload_is_gone() {
    let server = Server::start();
    let c = server.client();
    let r = c
        .post(server.url("/v2/acme/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        c.delete(server.url(&loc)).send().await.unwrap().status(),
        204
    );
    let after = c.get(server.url(&loc)).send().await.unwrap();
    assert_eq!(after.status(), 404);
    assert_eq!(error_code(after).await, "BLOB_UPLOAD_UNKNOWN");
    assert!(files_under(&server.dir.join("uploads")).is_empty());
}

#[tokio::test]
async fn cross_repository_mount() {
    let server = Server::start();
    let c = server.client();
    let d = upload(&server, "acme/source", b"shared layer").await;
    let r = c
        .post(server.url(&format!(
            "/v2/other/target/blobs/uploads/?mount={d}&from=acme/source"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/other/target/blobs/{d}").as_str()
    );
    let pulled = c
        .get(server.url(&format!("/v2/other/target/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), b"shared layer");
    let missing = digest(b"never uploaded");
    let r = c
        .post(server.url(&format!(
            "/v2/other/target/blobs/uploads/?mount={missing}&from=acme/source"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "an unmountable blob opens a normal upload");
}

#[tokio::test]
async fn manifests_by_tag_and_digest_and_tag_pagination() {
    let server = Server::start();
    let c = server.client();
    let d = push_image(&server, "acme/app", "v1", 1).await;
    for tag in ["v2", "v3", "v4", "latest"] {
        let body = get_bytes(&server, "/v2/acme/app/manifests/v1").await;
        let r = put_manifest(&server, "acme/app", tag, OCI_MANIFEST, &body).await;
        assert_eq!(r.status(), 201);
    }
    let by_tag = c
        .get(server.url("/v2/acme/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_tag.headers()["docker-content-digest"], d.as_str());
    assert_eq!(by_tag.headers()["content-type"], OCI_MANIFEST);
    let bytes = by_tag.bytes().await.unwrap();
    assert_eq!(digest(&bytes), d);
    let by_digest = c
        .head(server.url(&format!("/v2/acme/app/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(by_digest.status(), 200);
    assert_eq!(
        by_digest.headers()["content-length"],
        bytes.len().to_string().as_str()
    );

    let all: serde_json::Value = get_json(&server, "/v2/acme/app/tags/list").await;
    assert_eq!(
        all,
        json!({"name": "acme/app", "tags": ["latest", "v1", "v2", "v3", "v4"]})
    );
    let page = c
        .get(server.url("/v2/acme/app/tags/list?n=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.headers()["link"],
        "</v2/acme/app/tags/list?n=2&last=v1>; rel=\"next\""
    );
    let body: serde_json::Value = page.json().await.unwrap();
    assert_eq!(body["tags"], json!(["latest", "v1"]));
    let next: serde_json::Value = get_json(&server, "/v2/acme/app/tags/list?n=2&last=v1").await;
    assert_eq!(next["tags"], json!(["v2", "v3"]));
    let last = c
        .get(server.url("/v2/acme/app/tags/list?n=2&last=v3"))
        .send()
        .await
        .unwrap();
    assert!(last.headers().get("link").is_none());
    assert_eq!(
        last.json::<serde_json::Value>().await.unwrap()["tags"],
        json!(["v4"])
    );
}

#[tokio::test]
async fn catalog_pages_in_name_order() {
    let server = Server::start();
    for repo in ["zeta/one", "acme/web", "acme/api", "beta/x"] {
        upload(&server, repo, repo.as_bytes()).await;
    }
    let c = server.client();
    let first = c.get(server.url("/v2/_catalog?n=3")).send().await.unwrap();
    assert_eq!(
        first.headers()["link"],
        "</v2/_catalog?n=3&last=beta/x>; rel=\"next\""
    );
    let body: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        body["repositories"],
        json!(["acme/api", "acme/web", "beta/x"])
    );
    let rest: serde_json::Value = get_json(&server, "/v2/_catalog?n=3&last=beta/x").await;
    assert_eq!(rest["repositories"], json!(["zeta/one"]));
}

#[tokio::test]
async fn index_needs_children_and_referrers_are_listed() {
    let server = Server::start();
    let c = server.client();
    let child = push_image(&server, "acme/multi", "amd64", 3).await;
    let size = get_bytes(&server, &format!("/v2/acme/multi/manifests/{child}"))
        .await
        .len();
    let missing = digest(b"no such manifest");
    let index = |children: &[&str]| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": children.iter().map(|d| json!({
                "mediaType": OCI_MANIFEST, "digest": d, "size": size,
                "platform": {"architecture": "amd64", "os": "linux"}
            })).collect::<Vec<_>>()
        }))
        .unwrap()
    };
    let bad = put_manifest(
        &server,
        "acme/multi",
        "all",
        OCI_INDEX,
        &index(&[&child, &missing]),
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(error_code(bad).await, "MANIFEST_BLOB_UNKNOWN");
    let good = put_manifest(&server, "acme/multi", "all", OCI_INDEX, &index(&[&child])).await;
    assert_eq!(good.status(), 201);

    let config = b"{}".to_vec();
    upload(&server, "acme/multi", &config).await;
    let sbom = image_manifest(
        &config,
        &[],
        json!({
            "artifactType": "application/spdx+json",
            "subject": {"mediaType": OCI_MANIFEST, "digest": child, "size": size},
            "annotations": {"org.example.kind": "sbom"}
        }),
    );
    let r = put_manifest(&server, "acme/multi", &digest(&sbom), OCI_MANIFEST, &sbom).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["oci-subject"], child.as_str());
    let list = c
        .get(server.url(&format!("/v2/acme/multi/referrers/{child}")))
        .send()
        .await
        .unwrap();
    assert_eq!(list.headers()["content-type"], OCI_INDEX);
    let body: serde_json::Value = list.json().await.unwrap();
    assert_eq!(body["manifests"][0]["digest"], digest(&sbom));
    assert_eq!(
        body["manifests"][0]["artifactType"],
        "application/spdx+json"
    );
    assert_eq!(
        body["manifests"][0]["annotations"]["org.example.kind"],
        "sbom"
    );
    let filtered = c
        .get(server.url(&format!(
            "/v2/acme/multi/referrers/{child}?artifactType=other"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.headers()["oci-filters-applied"], "artifactType");
    let body: serde_json::Value = filtered.json().await.unwrap();
    assert_eq!(body["manifests"], json!([]));
}

#[tokio::test]
async fn deletes_remove_tags_manifests_and_blobs() {
    let server = Server::start();
    let c = server.client();
    let d = push_image(&server, "acme/del", "v1", 5).await;
    let body = get_bytes(&server, "/v2/acme/del/manifests/v1").await;
    put_manifest(&server, "acme/del", "v2", OCI_MANIFEST, &body).await;

    let r = c
        .delete(server.url("/v2/acme/del/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let gone = c
        .get(server.url("/v2/acme/del/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(error_code(gone).await, "MANIFEST_UNKNOWN");
    let still = c
        .get(server.url(&format!("/v2/acme/del/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "deleting a tag keeps the manifest");

    let r = c
        .delete(server.url(&format!("/v2/acme/del/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let tags: serde_json::Value = get_json(&server, "/v2/acme/del/tags/list").await;
    assert_eq!(
        tags["tags"],
        json!([]),
        "deleting a manifest removes its tags"
    );

    let config = digest(b"{\"seed\":5}");
    let r = c
        .delete(server.url(&format!("/v2/acme/del/blobs/{config}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c
        .get(server.url(&format!("/v2/acme/del/blobs/{config}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn sha512_manifest_digests() {
    use sha2::{Digest as _, Sha512};
    let server = Server::start();
    let config = b"{\"a\":1}".to_vec();
    upload(&server, "acme/sha", &config).await;
    let manifest = image_manifest(&config, &[], json!({}));
    let d = format!("sha512:{}", hex(&Sha512::digest(&manifest)));
    let r = put_manifest(&server, "acme/sha", &d, OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    let got = server
        .client()
        .get(server.url(&format!("/v2/acme/sha/manifests/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), manifest.as_slice());
}
