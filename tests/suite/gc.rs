//! Garbage collection over HTTP and the CLI: what it removes and keeps,
//! who may run it, its record and metrics, and the race test: pushers and
//! a deleter against a collector running every 200 ms, after which every
//! listed image pulls whole and the log shows that nothing referenced was
//! ever removed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A server that collects only when asked, with no grace period: the
/// protocol alone must keep pushes safe.
fn server() -> Server {
    Server::start_with(&[("BERTH_GC_GRACE", "0"), ("BERTH_GC_INTERVAL", "0")])
}

async fn collect(server: &Server, query: &str) -> Value {
    let r = server
        .client()
        .post(server.url(&format!("/v2/manage/gc{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn ids(report: &Value, kind: &str) -> BTreeSet<String> {
    report[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn blob_path(server: &Server, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    server.dir.join("blobs/sha256").join(&hex[..2]).join(hex)
}

#[tokio::test]
async fn gc_removes_what_deletes_left_and_keeps_what_images_use() {
    let mut server = server();
    let client = server.client();
    let shared = random_bytes(3000, 1);
    let (config_a, layer_a) = (b"{\"a\":1}".to_vec(), random_bytes(2000, 2));
    for (repo, config, layers) in [
        ("acme/a", &config_a, vec![&shared[..], &layer_a[..]]),
        ("acme/b", &b"{\"b\":1}".to_vec(), vec![&shared[..]]),
    ] {
        upload(&server, repo, config).await;
        for l in &layers {
            upload(&server, repo, l).await;
        }
        let m = image_manifest(config, &layers, serde_json::json!({}));
        assert_eq!(
            put_manifest(&server, repo, "v1", OCI_MANIFEST, &m)
                .await
                .status(),
            201
        );
    }
    let manifest_a = digest(&image_manifest(
        &config_a,
        &[&shared, &layer_a],
        serde_json::json!({}),
    ));

    // A blob a manifest uses cannot be unlinked from under it.
    let r = client
        .delete(server.url(&format!("/v2/acme/b/blobs/{}", digest(&shared))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "DENIED");

    // An orphan: uploaded, then its link deleted.
    let orphan = upload(&server, "acme/c", b"an abandoned layer").await;
    let r = client
        .delete(server.url(&format!("/v2/acme/c/blobs/{orphan}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Only the operator runs it, and a bad flag is named.
    let admin = server.create_account("tenant");
    let r = admin
        .client()
        .post(server.url("/v2/manage/gc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(server.url("/v2/manage/gc?dry_run=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["field"], "dry_run");

    let head = get_json(&server, "/v2/manage/audit/checkpoint").await["seq"].clone();
    let dry = collect(&server, "?dry_run=true").await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(ids(&dry, "blobs"), set(&[&orphan]));
    assert!(
        blob_path(&server, &orphan).exists(),
        "a dry run removes nothing"
    );
    assert_eq!(
        get_json(&server, "/v2/manage/audit/checkpoint").await["seq"],
        head,
        "and records nothing"
    );

    // Deleting acme/a leaves its own config, layer and manifest unreferenced;
    // the shared layer is still acme/b's.
    let r = client
        .delete(server.url("/v2/manage/namespaces/acme/repos/a"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let report = collect(&server, "").await;
    assert_eq!(
        ids(&report, "blobs"),
        set(&[&orphan, &digest(&config_a), &digest(&layer_a)])
    );
    assert_eq!(ids(&report, "manifests"), set(&[&manifest_a]));
    let bytes = report["bytes"].as_u64().unwrap();
    assert!(bytes > 2000 + 18, "{report}");
    assert_eq!(report["events"].as_array().unwrap().len(), 1);
    for gone in [&orphan, &digest(&layer_a)] {
        assert!(!blob_path(&server, gone).exists());
    }
    assert_eq!(
        get_bytes(&server, &format!("/v2/acme/b/blobs/{}", digest(&shared))).await,
        shared
    );

    let metrics = server
        .client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("berth_gc_runs_total 1\n"), "{metrics}");
    assert!(metrics.contains(&format!("berth_gc_reclaimed_bytes_total {bytes}\n")));
    assert!(metrics.contains("berth_gc_duration_seconds_count 1\n"));

    // `berth gc` reaches the running server through its admin socket.
    let (code, out) = berth(&["gc", "--dry-run"], &server.dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would remove 0 blobs, 0 manifests"), "{out}");

    // Offline, with the server stopped, it opens the data directory itself.
    let late = upload(&server, "acme/c", b"another orphan").await;
    client
        .delete(server.url(&format!("/v2/acme/c/blobs/{late}")))
        .send()
        .await
        .unwrap();
    server.stop();
    let (code, out) = berth(&["gc", "--gc-grace", "0"], &server.dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("removed blob {late}")), "{out}");
    let types = event_types_from(&server.dir, 1);
    assert_eq!(types.iter().filter(|t| *t == "GarbageCollected").count(), 2);
    let (code, out) = berth(&["log", "verify"], &server.dir);
    assert_eq!(code, 0, "{out}");
}

/// Shared base layers, so that images in different repositories hold the
/// same blobs (mounts, and blobs that stay while others go).
fn base_layer(i: u64) -> Vec<u8> {
    random_bytes(2048 + (i as usize) * 512, 1000 + i)
}

/// A pusher as a client pushes: for each blob, HEAD in the target
/// repository and skip it if present; else mount it from another
/// repository or upload it (monolithic or chunked); then the manifest.
/// Returns whether the registry acknowledged the manifest.
async fn push_one(server: &Server, client: &reqwest::Client, n: u64) -> bool {
    let repo = format!("race/r{}", n % 4);
    let config = format!("{{\"push\":{n}}}").into_bytes();
    let unique = random_bytes(1024 + (n % 7) as usize * 100, 50_000 + n);
    let bases = [base_layer(n % 5), base_layer((n + 2) % 5)];
    let layers: Vec<&[u8]> = vec![&bases[0], &bases[1], &unique];
    for (i, blob) in std::iter::once(&config[..])
        .chain(layers.iter().copied())
        .enumerate()
    {
        let d = digest(blob);
        let head = client
            .head(server.url(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .await
            .unwrap();
        if head.status() == 200 {
            continue;
        }
        let from = format!("race/r{}", (n + 1) % 4);
        let mounted = client
            .post(server.url(&format!("/v2/{repo}/blobs/uploads/?mount={d}&from={from}")))
            .send()
            .await
            .unwrap();
        if mounted.status() == 201 {
            continue;
        }
        // The mount fell back to an upload session (202): use it, in one
        // or two chunks.
        let location = mounted.headers()["location"].to_str().unwrap().to_owned();
        let url = |loc: &str| {
            if loc.starts_with("http") {
                loc.to_owned()
            } else {
                server.url(loc)
            }
        };
        let mut location = url(&location);
        if (n + i as u64) % 2 == 0 {
            let half = blob.len() / 2;
            let r = client
                .patch(&location)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("0-{}", half - 1))
                .body(blob[..half].to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            location = url(r.headers()["location"].to_str().unwrap());
            let sep = if location.contains('?') { '&' } else { '?' };
            let r = client
                .put(format!("{location}{sep}digest={d}"))
                .body(blob[half..].to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        } else {
            let sep = if location.contains('?') { '&' } else { '?' };
            let r = client
                .put(format!("{location}{sep}digest={d}"))
                .body(blob.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    }
    let manifest = image_manifest(&config, &layers, serde_json::json!({}));
    let r = client
        .put(server.url(&format!("/v2/{repo}/manifests/t{}", n % 6)))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        201 => true,
        // The deleter unlinked a blob, or deleted the repository, after the
        // HEAD: the registry refuses the manifest rather than accept a
        // broken image.
        400 | 404 => {
            let code = error_code(r).await;
            assert!(
                ["MANIFEST_BLOB_UNKNOWN", "NAME_UNKNOWN"].contains(&code.as_str()),
                "{code}"
            );
            false
        }
        other => panic!("manifest push answered {other}"),
    }
}

/// One deletion chosen by `n`: a tag's manifest, a blob (refused while a
/// manifest uses it), or now and then a whole repository.
async fn delete_one(server: &Server, client: &reqwest::Client, n: u64) {
    let repo = format!("race/r{}", n % 4);
    let tags = client
        .get(server.url(&format!("/v2/{repo}/tags/list")))
        .send()
        .await
        .unwrap();
    if tags.status() != 200 {
        return;
    }
    let tags: Value = tags.json().await.unwrap();
    let Some(tag) = tags["tags"].as_array().and_then(|t| t.first()).cloned() else {
        return;
    };
    let r = client
        .get(server.url(&format!("/v2/{repo}/manifests/{}", tag.as_str().unwrap())))
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return;
    }
    let manifest_digest = r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let manifest: Value = r.json().await.unwrap();
    let path = match n % 10 {
        0 => format!("/v2/manage/namespaces/race/repos/r{}", n % 4),
        1..=4 => format!("/v2/{repo}/manifests/{manifest_digest}"),
        _ => {
            let layer = manifest["layers"][(n % 3) as usize]["digest"]
                .as_str()
                .unwrap()
                .to_owned();
            // Unlink the layer where the manifest is gone already, or have
            // the registry refuse it while the manifest holds it.
            format!("/v2/{repo}/blobs/{layer}")
        }
    };
    let r = client.delete(server.url(&path)).send().await.unwrap();
    assert!(
        [200, 202, 204, 404, 409].contains(&r.status().as_u16()),
        "DELETE {path}: {}",
        r.status()
    );
}

/// Pulls every tag of every repository the catalog lists, checking every
/// blob's bytes against its digest. Returns the images pulled.
async fn pull_everything(server: &Server) -> usize {
    let client = server.client();
    let catalog = get_json(server, "/v2/_catalog?n=1000").await;
    let mut pulled = 0;
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags = get_json(server, &format!("/v2/{repo}/tags/list")).await;
        for tag in tags["tags"].as_array().into_iter().flatten() {
            let tag = tag.as_str().unwrap();
            let r = client
                .get(server.url(&format!("/v2/{repo}/manifests/{tag}")))
                .header("Accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{repo}:{tag} is listed but does not pull");
            let manifest: Value = r.json().await.unwrap();
            let blobs = std::iter::once(&manifest["config"])
                .chain(manifest["layers"].as_array().unwrap())
                .map(|b| b["digest"].as_str().unwrap().to_owned());
            for d in blobs {
                let r = client
                    .get(server.url(&format!("/v2/{repo}/blobs/{d}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{repo}:{tag} lost blob {d}");
                assert_eq!(
                    digest(&r.bytes().await.unwrap()),
                    d,
                    "{repo}:{tag} blob {d} altered"
                );
            }
            pulled += 1;
        }
    }
    pulled
}

/// Replays the log: at each `GarbageCollected` event, nothing it removed
/// may be linked by a live repository or held as a manifest. The sweep
/// runs on the writer alone, so the events before it are exactly the
/// state it saw. Returns the blobs and manifests removed.
fn removed_only_unreferenced(log: &str) -> (usize, usize) {
    // repo_id → linked blobs, and repo_id → held manifests.
    let mut linked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut blobs, mut manifests) = (0, 0);
    for line in log.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let (kind, body) = e["event"].as_object().unwrap().iter().next().unwrap();
        let repo = body["repo_id"].as_str().unwrap_or_default().to_owned();
        let d = || body["digest"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "BlobUploaded" | "BlobMounted" => {
                linked.entry(repo).or_default().insert(d());
            }
            "BlobDeleted" => {
                linked.entry(repo).or_default().remove(&d());
            }
            "ManifestPushed" => {
                held.entry(repo).or_default().insert(d());
            }
            "ManifestDeleted" => {
                held.entry(repo).or_default().remove(&d());
            }
            "GarbageCollected" => {
                for item in body["blobs"].as_array().unwrap() {
                    let gone = item[0].as_str().unwrap();
                    assert!(
                        linked.values().all(|l| !l.contains(gone)),
                        "event {}: blob {gone} removed while linked",
                        e["seq"]
                    );
                    blobs += 1;
                }
                for item in body["manifests"].as_array().unwrap() {
                    let gone = item[0].as_str().unwrap();
                    assert!(
                        held.values().all(|h| !h.contains(gone)),
                        "event {}: manifest {gone} removed while held",
                        e["seq"]
                    );
                    manifests += 1;
                }
            }
            _ => {}
        }
    }
    (blobs, manifests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_every_200ms_against_pushers_and_a_deleter_breaks_no_image() {
    let seconds = std::env::var("BERTH_GC_RACE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let server_ref = Arc::new(server());
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, refused, runs) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut tasks = Vec::new();
    for pusher in 0..2u64 {
        let (s, stop, acked, refused) = (
            server_ref.clone(),
            stop.clone(),
            acked.clone(),
            refused.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = s.client();
            let mut n = pusher;
            while !stop.load(Ordering::Relaxed) {
                let counter = if push_one(&s, &client, n).await {
                    &acked
                } else {
                    &refused
                };
                counter.fetch_add(1, Ordering::Relaxed);
                n += 2;
            }
        }));
    }
    {
        let (s, stop) = (server_ref.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = s.client();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                delete_one(&s, &client, n).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    {
        let (s, stop, runs) = (server_ref.clone(), stop.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                collect(&s, "").await;
                runs.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let pulled = pull_everything(&server_ref).await;
    collect(&server_ref, "").await;
    assert_eq!(
        pull_everything(&server_ref).await,
        pulled,
        "a last run changes nothing listed"
    );
    let mut server = Arc::into_inner(server_ref).unwrap();
    server.stop();
    let (code, out) = berth(&["log", "verify"], &server.dir);
    assert_eq!(code, 0, "{out}");
    let (code, log) = berth(&["log", "show"], &server.dir);
    assert_eq!(code, 0);
    let (blobs, manifests) = removed_only_unreferenced(&log);
    let (acked, refused, runs) = (
        acked.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        runs.load(Ordering::Relaxed),
    );
    println!(
        "gc race: {seconds} s, {acked} pushes acknowledged, {refused} refused, {runs} gc runs \
         removing {blobs} blobs and {manifests} manifests, {pulled} images pulled whole"
    );
    assert!(
        acked > 20 && runs > 20,
        "the race ran: {acked} pushes, {runs} runs"
    );
    assert!(
        blobs > 0 && manifests > 0,
        "and collected: {blobs} blobs, {manifests} manifests"
    );
    assert!(pulled > 0);
}
