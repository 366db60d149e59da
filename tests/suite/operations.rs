//! What operators watch: liveness and readiness, and the Prometheus metrics,
//! read back with a text-format parser.

use prometheus_parse::{Scrape, Value as Sample};
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn health_and_readiness_answer_while_serving() {
    let server = Server::start();
    let http = client_with(Default::default());
    let r = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ready\n");
}

async fn scrape(url: &str) -> Scrape {
    let r = client_with(Default::default())
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of a counter or gauge sample with these labels.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match sample.value {
        Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
        ref other => panic!("{name} is not a single value: {other:?}"),
    }
}

/// The observation count of a histogram with these labels.
fn observations(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let count = format!("{name}_count");
    scrape
        .samples
        .iter()
        .filter(|s| {
            (s.metric == name || s.metric == count)
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .map(|s| match &s.value {
            Sample::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Sample::Counter(v) | Sample::Untyped(v) => *v,
            _ => 0.0,
        })
        .fold(0.0, f64::max)
}

#[tokio::test]
async fn metrics_count_a_push_a_pull_and_a_failed_login() {
    let server = Server::start();
    let digest = push_image(&server, "metrics/app", "v1", 5).await;
    let manifest = get_json(&server, "/v2/metrics/app/manifests/v1").await;
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let layer_size = manifest["layers"][0]["size"].as_u64().unwrap();
    let blob = get_bytes(&server, &format!("/v2/metrics/app/blobs/{layer}")).await;
    assert_eq!(blob.len() as u64, layer_size);
    let refused = client_with(Default::default())
        .get(server.url("/v2/manage/namespaces"))
        .header("Authorization", basic("system/admin", "not the password"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(!digest.is_empty());

    let m = scrape(&server.url("/metrics")).await;
    let latency = "berth_http_request_duration_seconds";
    assert!(observations(&m, latency, &[("class", "manifest"), ("status", "2xx")]) >= 2.0);
    assert!(observations(&m, latency, &[("class", "blob"), ("status", "2xx")]) >= 1.0);
    assert!(observations(&m, latency, &[("class", "upload"), ("status", "2xx")]) >= 1.0);
    assert!(observations(&m, latency, &[("class", "manage"), ("status", "4xx")]) >= 1.0);
    assert!(
        value(
            &m,
            "berth_http_received_bytes_total",
            &[("class", "upload")]
        ) >= layer_size as f64
    );
    assert!(value(&m, "berth_http_sent_bytes_total", &[("class", "blob")]) >= layer_size as f64);
    assert!(observations(&m, "berth_writer_batch_commands", &[]) >= 2.0);
    assert!(observations(&m, "berth_writer_commit_seconds", &[]) >= 2.0);
    let head = value(&m, "berth_log_head_sequence", &[]);
    assert!(head > BOOTSTRAP_EVENTS as f64);
    assert_eq!(value(&m, "berth_projection_checkpoint_sequence", &[]), head);
    assert_eq!(value(&m, "berth_upload_sessions_open", &[]), 0.0);
    assert_eq!(
        value(&m, "berth_login_failures_total", &[("surface", "manage")]),
        1.0
    );
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server::start_with(&[("BERTH_METRICS_LISTEN", &addr)]);
    let m = scrape(&format!("http://{addr}/metrics")).await;
    assert!(value(&m, "berth_log_head_sequence", &[]) >= BOOTSTRAP_EVENTS as f64);
    let r = client_with(Default::default())
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200, "not on the main listener");
}

#[tokio::test]
async fn a_backup_taken_during_pushes_restores_every_image_acknowledged_before_it() {
    let mut server = Server::start();
    let pushing = std::sync::atomic::AtomicBool::new(true);
    let to = tempfile::tempdir().unwrap();
    let backup_dir = to.path().join("backup");
    let pusher = async {
        let mut acked = Vec::new();
        let mut seed = 0;
        while pushing.load(std::sync::atomic::Ordering::Relaxed) {
            seed += 1;
            let tag = format!("v{seed}");
            let digest = push_image(&server, "backed/app", &tag, seed).await;
            acked.push((std::time::Instant::now(), tag, digest));
        }
        acked
    };
    let backup = async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let started = std::time::Instant::now();
        let (dir, to) = (server.dir.clone(), backup_dir.clone());
        let taken = tokio::task::spawn_blocking(move || {
            berth(&["backup", "--to", to.to_str().unwrap()], &dir)
        })
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        pushing.store(false, std::sync::atomic::Ordering::Relaxed);
        (started, taken)
    };
    let (acked, (started, (code, out))) = tokio::join!(pusher, backup);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("backup of"), "{out}");
    server.stop();
    let before: Vec<_> = acked.iter().filter(|(t, _, _)| *t < started).collect();
    assert!(
        before.len() >= 3,
        "{} pushes before the backup",
        before.len()
    );
    assert!(
        acked.len() > before.len(),
        "pushes went on during the backup"
    );

    let restored = to.path().join("restored");
    let out = std::process::Command::new(BERTH)
        .args(["restore", "--from"])
        .arg(&backup_dir)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, out) = berth(&["log", "verify"], &restored);
    assert_eq!(code, 0, "{out}");

    let copy = Server::start_in(&restored, &[]);
    for (_, tag, digest) in before {
        let r = copy
            .client()
            .get(copy.url(&format!("/v2/backed/app/manifests/{tag}")))
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{tag}");
        assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
        let manifest: serde_json::Value = r.json().await.unwrap();
        let blobs =
            std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap());
        for blob in blobs {
            let d = blob["digest"].as_str().unwrap();
            let bytes = get_bytes(&copy, &format!("/v2/backed/app/blobs/{d}")).await;
            assert_eq!(crate::support::digest(&bytes), d, "{tag}");
        }
    }
}

/// Pushes an image of `config` and `layers` as an account's client.
async fn push_blobs(server: &Server, who: &Identity, repo: &str, config: &[u8], layers: &[&[u8]]) {
    let client = who.client();
    upload_as(server, &client, repo, config).await;
    for layer in layers {
        upload_as(server, &client, repo, layer).await;
    }
    let manifest = image_manifest(config, layers, serde_json::json!({}));
    let r = client
        .put(server.url(&format!("/v2/{repo}/manifests/v1")))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn storage_counts_a_shared_layer_once_and_as_unique_only_where_it_is_alone() {
    let server = Server::start();
    let acme = server.create_account("acme");
    let (ca, cb, cc) = (
        b"{\"a\":1}".to_vec(),
        b"{\"b\":22}".to_vec(),
        b"{\"c\":333}".to_vec(),
    );
    let (l1, l2, l3) = (
        random_bytes(10_000, 1),
        random_bytes(20_000, 2),
        random_bytes(40_000, 3),
    );
    push_blobs(&server, &acme, "team/a", &ca, &[&l1, &l2]).await;
    push_blobs(&server, &acme, "team/b", &cb, &[&l1, &l3]).await;
    push_blobs(&server, &acme, "other/c", &cc, &[&l1]).await;
    let len = |b: &[&Vec<u8>]| b.iter().map(|x| x.len() as u64).sum::<u64>();
    let auth = acme.basic();

    let (status, a) = manage(
        &server,
        "GET",
        "/namespaces/team/repos/a",
        &auth,
        Value::Null,
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["storage"]["stored_bytes"], len(&[&ca, &l1, &l2]));
    assert_eq!(
        a["storage"]["unique_bytes"],
        len(&[&ca, &l2]),
        "l1 is shared"
    );
    assert_eq!(a["storage"]["logical_bytes"], a["size"]);

    let (status, team) = manage(&server, "GET", "/namespaces/team", &auth, Value::Null);
    assert_eq!(status, 200, "{team}");
    assert_eq!(
        team["storage"]["stored_bytes"],
        len(&[&ca, &cb, &l1, &l2, &l3])
    );
    assert_eq!(
        team["storage"]["unique_bytes"],
        len(&[&ca, &cb, &l2, &l3]),
        "l1 is also in other/c"
    );
    let (_, b) = manage(
        &server,
        "GET",
        "/namespaces/team/repos/b",
        &auth,
        Value::Null,
    );
    assert_eq!(
        team["storage"]["logical_bytes"],
        a["size"].as_u64().unwrap() + b["size"].as_u64().unwrap(),
        "the sum of the images, l1 counted in each"
    );

    let (status, all) = manage(&server, "GET", "/accounts/acme/storage", &auth, Value::Null);
    assert_eq!(status, 200, "{all}");
    let everything = len(&[&ca, &cb, &cc, &l1, &l2, &l3]);
    assert_eq!(all["stored_bytes"], everything);
    assert_eq!(all["unique_bytes"], everything);
    assert_eq!(all["namespaces"].as_array().unwrap().len(), 2);

    // Once other/c is gone, l1 is the organization's alone.
    let (status, _) = manage(
        &server,
        "DELETE",
        "/namespaces/other/repos/c",
        &auth,
        Value::Null,
    );
    assert_eq!(status, 204);
    let (_, team) = manage(&server, "GET", "/namespaces/team", &auth, Value::Null);
    assert_eq!(
        team["storage"]["unique_bytes"],
        len(&[&ca, &cb, &l1, &l2, &l3])
    );

    // Another account may not read it.
    let outsider = server.create_account("outsider");
    let (status, _) = manage(
        &server,
        "GET",
        "/accounts/acme/storage",
        &outsider.basic(),
        Value::Null,
    );
    assert_eq!(status, 403);
}
