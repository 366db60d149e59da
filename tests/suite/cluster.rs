//! The scale-out topology, for real: `scripts/cluster.sh` starts a private
//! PostgreSQL (the shared log), a Garage node (S3 blobs), three berth nodes
//! and HAProxy round-robin in front of them. Docker pushes and pulls
//! through HAProxy and each node; nodes are killed and PostgreSQL is
//! restarted under load; the nodes' read models are compared with each
//! other and with a rebuild from the shared log. These tests fail, never
//! skip, when a part is missing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::e2e::build_image;
use crate::support::*;

mod db;
mod leases;
mod pins;
mod sessions;
mod small;
mod sweep;

/// A running cluster, taken down when dropped.
struct Cluster {
    dir: PathBuf,
    port_base: u16,
    env: HashMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh")
}

impl Cluster {
    fn up(port_base: u16) -> Self {
        // Not a private temp dir: PostgreSQL runs as its own user and must
        // reach its directory.
        let dir =
            std::env::temp_dir().join(format!("berth-cluster-{}-{port_base}", std::process::id()));
        let mut cluster = Self {
            dir,
            port_base,
            env: HashMap::new(),
        };
        let out = cluster.sh(&["up"]);
        assert!(out.0, "cluster.sh up failed:\n{}", out.1);
        let env = std::fs::read_to_string(cluster.dir.join("env")).unwrap();
        cluster.env = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        cluster
    }

    /// Runs `cluster.sh args`; whether it succeeded, and its output.
    fn sh(&self, args: &[&str]) -> (bool, String) {
        self.sh_with(args, &[])
    }

    /// [`Cluster::sh`] with more environment for the nodes it starts.
    fn sh_with(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let out = Command::new("bash")
            .arg(script())
            .args(args)
            .envs(env.iter().copied())
            .env("BERTH_BIN", env!("CARGO_BIN_EXE_berth"))
            .env("BERTH_CLUSTER_DIR", &self.dir)
            .env("BERTH_CLUSTER_PORT_BASE", self.port_base.to_string())
            // Counted pulls and anonymous failures become events within a
            // second, so the nodes settle quickly before their read models
            // are compared (a node that stops records what it still holds,
            // which nodes stopped before it never see).
            .env("BERTH_PULL_COUNT_SECONDS", "1")
            .env("BERTH_FAILURE_WINDOW_SECONDS", "1")
            // Collections run only when the test asks, with no grace.
            .env("BERTH_GC_GRACE", "0")
            .output()
            .expect("run scripts/cluster.sh");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .map_or_else(|| panic!("{name} not in the cluster's env"), String::as_str)
    }

    fn lb(&self) -> &str {
        self.var("BERTH_CLUSTER_LB")
    }

    fn node(&self, n: usize) -> &str {
        self.var(&format!("BERTH_CLUSTER_NODE{n}"))
    }

    fn nodes(&self) -> Vec<&str> {
        (1..=3).map(|n| self.node(n)).collect()
    }

    fn pg(&self) -> &str {
        self.var("BERTH_CLUSTER_PG")
    }

    fn node_log(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{n}/log"))).unwrap_or_default()
    }

    /// An access key for the operator, made through the load balancer;
    /// returns the docker login name and password.
    fn operator_login(&self) -> (String, String) {
        let c = reqwest::blocking::Client::new();
        let session: serde_json::Value = c
            .post(format!("http://{}/v2/manage/session", self.lb()))
            .json(&serde_json::json!({
                "account": "system", "user": "admin",
                "password": self.var("BERTH_CLUSTER_PASSWORD"),
            }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let token = session["token"].as_str().expect("a session token");
        let key: serde_json::Value = c
            .post(format!("http://{}/v2/manage/access-keys", self.lb()))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let (ak, sk) = (key["ak"].as_str().unwrap(), key["sk"].as_str().unwrap());
        (format!("local@{ak}"), login_password(ak, sk))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.sh(&["down"]);
    }
}

/// Sends `blob` whole to `host` as `name` (`POST ?digest=`).
fn post_whole(
    c: &reqwest::blocking::Client,
    host: &str,
    auth: &str,
    repo: &str,
    name: &str,
    blob: Vec<u8>,
) -> reqwest::Result<reqwest::blocking::Response> {
    c.post(format!(
        "http://{host}/v2/{repo}/blobs/uploads/?digest={name}"
    ))
    .header("Authorization", auth)
    .body(blob)
    .send()
}

/// A `POST` with no body to `url`, answered with `status`.
fn post_empty(
    c: &reqwest::blocking::Client,
    url: &str,
    auth: &str,
    status: u16,
) -> reqwest::blocking::Response {
    let r = c.post(url).header("Authorization", auth).send().unwrap();
    assert_eq!(r.status(), status, "POST {url}");
    r
}

/// Runs a garbage collection on `host`; its report.
fn collect(c: &reqwest::blocking::Client, host: &str, auth: &str) -> serde_json::Value {
    let url = format!("http://{host}/v2/manage/gc");
    post_empty(c, &url, auth, 200).json().unwrap()
}

/// Starts an upload of `repo` on `host`; where to send its chunks.
fn start_upload(c: &reqwest::blocking::Client, host: &str, auth: &str, repo: &str) -> String {
    let url = format!("http://{host}/v2/{repo}/blobs/uploads/");
    let r = post_empty(c, &url, auth, 202);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Pushes a small two-blob image over HTTP (monolithic uploads, then the
/// manifest) to `host`; the manifest digest once it is acknowledged, or
/// the status and body of the first refusal.
fn push_small(
    c: &reqwest::blocking::Client,
    host: &str,
    auth: &str,
    repo: &str,
    tag: &str,
    seed: u64,
) -> Result<String, String> {
    push_image(c, host, auth, repo, tag, seed, 2000 + seed as usize % 5000)
}

/// [`push_small`] with a layer of `layer_len` bytes, pushed before the
/// config.
fn push_image(
    c: &reqwest::blocking::Client,
    host: &str,
    auth: &str,
    repo: &str,
    tag: &str,
    seed: u64,
    layer_len: usize,
) -> Result<String, String> {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(layer_len, seed);
    for blob in [&layer, &config] {
        let r = post_whole(c, host, auth, repo, &digest(blob), blob.clone())
            .map_err(|e| e.to_string())?;
        if r.status() != 201 {
            return Err(format!("{} {}", r.status(), r.text().unwrap_or_default()));
        }
    }
    let manifest = image_manifest(&config, &[&layer], serde_json::json!({}));
    let r = c
        .put(format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .header("Authorization", auth)
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .map_err(|e| e.to_string())?;
    if r.status() != 201 {
        return Err(format!("{} {}", r.status(), r.text().unwrap_or_default()));
    }
    Ok(digest(&manifest))
}

/// Checks that every acknowledged tag answers with its digest, and its
/// layer's bytes, on every node.
fn assert_everywhere(cluster: &Cluster, auth: &str, repo: &str, acked: &BTreeMap<String, String>) {
    let c = reqwest::blocking::Client::new();
    for node in cluster.nodes() {
        for (tag, expected) in acked {
            let r = c
                .get(format!("http://{node}/v2/{repo}/manifests/{tag}"))
                .header("Authorization", auth)
                .header("Accept", OCI_MANIFEST)
                .send()
                .unwrap();
            assert_eq!(r.status(), 200, "{repo}:{tag} on {node}");
            let body = r.bytes().unwrap();
            assert_eq!(&digest(&body), expected, "{repo}:{tag} on {node}");
            let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let layer = manifest["layers"][0]["digest"].as_str().unwrap();
            let bytes = c
                .get(format!("http://{node}/v2/{repo}/blobs/{layer}"))
                .header("Authorization", auth)
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            assert_eq!(digest(&bytes), layer, "a layer of {repo}:{tag} on {node}");
        }
    }
}

/// Pushes `count` small images to the load balancer on a thread, and runs
/// `meanwhile` while it pushes (after `after` acknowledged pushes);
/// returns the acknowledged tags with their digests and every refusal.
fn push_loop(
    cluster: &Cluster,
    auth: &str,
    repo: &str,
    count: u64,
    after: usize,
    meanwhile: impl FnOnce(),
) -> (BTreeMap<String, String>, Vec<String>) {
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (acked, refused, done) = (acked.clone(), refused.clone(), done.clone());
        let (lb, auth, repo) = (cluster.lb().to_owned(), auth.to_owned(), repo.to_owned());
        std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            for i in 0..count {
                let tag = format!("t{i:04}");
                match push_small(&c, &lb, &auth, &repo, &tag, 1000 + i) {
                    Ok(d) => {
                        acked.lock().unwrap().insert(tag, d);
                    }
                    Err(e) => {
                        refused.lock().unwrap().push(e);
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    while acked.lock().unwrap().len() < after && !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    meanwhile();
    worker.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    (acked, refused)
}

/// Lines of the node's access log that carried upload bytes.
fn upload_requests(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains("/blobs/uploads/")
                && (l.contains("method=PATCH") || l.contains("method=PUT"))
        })
        .count()
}

#[test]
fn docker_through_haproxy_node_kills_and_postgres_restarts() {
    let cluster = Cluster::up(16400);
    let (user, password) = cluster.operator_login();
    let auth = basic(&user, &password);
    let d = Docker::new();
    for host in std::iter::once(cluster.lb()).chain(cluster.nodes()) {
        d.login_host(host, &user, &password).unwrap();
    }

    // A three-layer image through HAProxy, pulled back through HAProxy and
    // from each node.
    let tag = format!("{}/team/app:v1", cluster.lb());
    build_image(&d, &tag, 41);
    let id = d.run(&["image", "inspect", "-f", "{{.Id}}", &tag]);
    d.run(&["push", &tag]);
    let spread: Vec<usize> = (1..=3)
        .map(|n| upload_requests(&cluster.node_log(n)))
        .collect();
    assert!(
        spread.iter().filter(|n| **n > 0).count() >= 2,
        "the upload requests went to one node only: {spread:?}"
    );
    for host in std::iter::once(cluster.lb()).chain(cluster.nodes()) {
        let there = format!("{host}/team/app:v1");
        d.pull_fresh(&there).unwrap();
        assert_eq!(
            d.run(&["image", "inspect", "-f", "{{.Id}}", &there]),
            id,
            "pulled from {host}"
        );
    }

    // A chunked upload whose PATCHes land on three different nodes (the
    // session and the running hash travel in PostgreSQL), finished through
    // HAProxy; then ranged reads of the blob from the object store.
    let c = reqwest::blocking::Client::new();
    let blob = random_bytes(3 * (1 << 20) + 12_345, 77);
    let mut path = start_upload(&c, cluster.lb(), &auth, "team/chunked");
    let mut at = 0;
    for (n, piece) in blob.chunks(1 << 20).enumerate() {
        let node = cluster.node(n % 3 + 1);
        let r = c
            .patch(format!("http://{node}{path}"))
            .header("Authorization", &auth)
            .header("Content-Range", format!("{at}-{}", at + piece.len() - 1))
            .header("Content-Type", "application/octet-stream")
            .body(piece.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            r.status(),
            202,
            "PATCH {n} on {node}: {}",
            r.text().unwrap()
        );
        path = r.headers()["location"].to_str().unwrap().to_owned();
        at += piece.len();
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = c
        .put(format!(
            "http://{}{path}{sep}digest={}",
            cluster.lb(),
            digest(&blob)
        ))
        .header("Authorization", &auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    for node in cluster.nodes() {
        let r = c
            .get(format!(
                "http://{node}/v2/team/chunked/blobs/{}",
                digest(&blob)
            ))
            .header("Authorization", &auth)
            .header("Range", "bytes=1048570-1048589")
            .send()
            .unwrap();
        assert_eq!(r.status(), 206, "a range from {node}");
        assert_eq!(r.bytes().unwrap().as_ref(), &blob[1_048_570..1_048_590]);
        let whole = c
            .get(format!(
                "http://{node}/v2/team/chunked/blobs/{}",
                digest(&blob)
            ))
            .header("Authorization", &auth)
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(digest(&whole), digest(&blob), "the whole blob from {node}");
    }

    // Node 2 killed in the middle of a docker push and of a push loop, and
    // started again: the docker push goes through (docker retries what the
    // dead node dropped), and every acknowledged push is there on every
    // node.
    let second = format!("{}/team/app:v2", cluster.lb());
    build_image(&d, &second, 42);
    let second_id = d.run(&["image", "inspect", "-f", "{{.Id}}", &second]);
    let docker_push = {
        let (d, second) = (d.clone(), second.clone());
        std::thread::spawn(move || {
            // One more try of the whole push if docker's own retries of the
            // dropped requests ran out while HAProxy noticed the dead node.
            d.try_run(&["push", &second]).or_else(|first| {
                eprintln!("docker push failed once while a node died: {first}");
                d.try_run(&["push", &second])
            })
        })
    };
    let (acked, refused) = push_loop(&cluster, &auth, "team/kill", 40, 8, || {
        let (ok, out) = cluster.sh(&["kill", "2"]);
        assert!(ok, "{out}");
        std::thread::sleep(Duration::from_secs(2));
        let (ok, out) = cluster.sh(&["start", "2"]);
        assert!(ok, "{out}");
    });
    docker_push.join().unwrap().unwrap();
    for host in std::iter::once(cluster.lb()).chain(cluster.nodes()) {
        let there = format!("{host}/team/app:v2");
        d.pull_fresh(&there).unwrap();
        assert_eq!(
            d.run(&["image", "inspect", "-f", "{{.Id}}", &there]),
            second_id,
            "pulled from {host} after the node was killed"
        );
    }
    eprintln!(
        "node kill: {} acknowledged, {} refused: {refused:?}",
        acked.len(),
        refused.len()
    );
    assert!(
        acked.len() >= 30,
        "most pushes go through while a node is down: {refused:?}"
    );
    assert_everywhere(&cluster, &auth, "team/kill", &acked);

    // PostgreSQL restarted in the middle of a push loop: writes fail fast
    // with a 503 that names the log, then recover without a restart of
    // any node; nothing acknowledged is lost.
    let (acked, refused) = push_loop(&cluster, &auth, "team/pg", 60, 10, || {
        let (ok, out) = cluster.sh(&["restart-pg"]);
        assert!(ok, "{out}");
    });
    eprintln!(
        "PostgreSQL restart: {} acknowledged, {} refused: {refused:?}",
        acked.len(),
        refused.len()
    );
    for why in &refused {
        assert!(
            why.starts_with("503") && why.contains("PostgreSQL"),
            "a refusal during the restart is a 503 naming the log: {why}"
        );
    }
    assert!(
        acked.contains_key("t0059") || acked.len() >= 50,
        "writes recovered: {refused:?}"
    );
    assert_everywhere(&cluster, &auth, "team/pg", &acked);
    let (code, out) = berth(&["log", "verify", "--log", cluster.pg()], &cluster.dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("log intact"), "{out}");

    // A bucket that refuses writes fails the push with a clear error and
    // leaves no event; once it takes writes again, so does the registry.
    let events = |cluster: &Cluster| {
        let (code, out) = berth(&["log", "verify", "--log", cluster.pg()], &cluster.dir);
        assert_eq!(code, 0, "{out}");
        out.split_whitespace()
            .nth(2)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let (ok, out) = cluster.sh(&["s3-writes", "deny"]);
    assert!(ok, "{out}");
    // The pulls above are counted into events within a second of each
    // node: the count is taken once it has stopped moving.
    let mut before = events(&cluster);
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = events(&cluster);
        if now == before {
            break;
        }
        before = now;
    }
    // Its layer is too large for the database, which holds small blobs.
    let refused =
        push_image(&c, cluster.lb(), &auth, "team/s3", "denied", 7, 100 << 10).unwrap_err();
    assert!(
        refused.starts_with("503") && refused.contains("object store"),
        "a refused object-store write is a 503 naming the store: {refused}"
    );
    assert_eq!(events(&cluster), before, "the refused push left an event");
    let (ok, out) = cluster.sh(&["s3-writes", "allow"]);
    assert!(ok, "{out}");
    push_small(&c, cluster.lb(), &auth, "team/s3", "allowed", 8).unwrap();

    // A blob sent whole under a digest that is not its own is refused
    // before anything is stored, and nothing links it.
    let whole = b"whole blob, wrong name".to_vec();
    let wrong = digest(b"another blob");
    let r = post_whole(&c, cluster.node(2), &auth, "team/s3", &wrong, whole).unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("DIGEST_INVALID"));
    for node in cluster.nodes() {
        let r = c
            .head(format!("http://{node}/v2/team/s3/blobs/{wrong}"))
            .header("Authorization", &auth)
            .send()
            .unwrap();
        assert_eq!(
            r.status(),
            404,
            "{node} holds a blob under the wrong digest"
        );
    }

    // The empty blob, sent whole to one node, is served by another.
    let empty = digest(b"");
    let r = post_whole(&c, cluster.node(1), &auth, "team/s3", &empty, Vec::new()).unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(format!(
            "http://{}/v2/team/s3/blobs/{empty}",
            cluster.node(3)
        ))
        .header("Authorization", &auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().unwrap().is_empty(),
        "the empty blob comes back empty"
    );

    // Garbage collection on one node removes what it sweeps everywhere:
    // the blob objects from the bucket, the manifest's bytes from the
    // shared log's content table (and, with the event, from every
    // node's mirror, which the digests below compare).
    let swept = push_small(&c, cluster.node(3), &auth, "team/gc", "gone", 9).unwrap();
    let stored = |digest: &str| {
        cluster
            .psql(&format!(
                "SELECT count(*) FROM berth_content WHERE digest = '{digest}'"
            ))
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(
        stored(&swept),
        1,
        "the pushed manifest's bytes are in PostgreSQL"
    );
    let r = c
        .delete(format!(
            "http://{}/v2/team/gc/manifests/{swept}",
            cluster.node(1)
        ))
        .header("Authorization", &auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let (config, layer) = (b"{\"seed\":9}".to_vec(), random_bytes(2009, 9));
    let blobs = [digest(&config), digest(&layer)];
    for blob in &blobs {
        let r = c
            .delete(format!("http://{}/v2/team/gc/blobs/{blob}", cluster.lb()))
            .header("Authorization", &auth)
            .send()
            .unwrap();
        assert_eq!(r.status(), 202, "unlinking {blob}");
    }
    let report = collect(&c, cluster.node(2), &auth);
    let listed = |kind: &str| report[kind].to_string();
    assert!(listed("manifests").contains(&swept), "{report}");
    for blob in &blobs {
        assert!(
            listed("blobs").contains(blob.as_str()),
            "{blob} is swept: {report}"
        );
    }
    assert_eq!(
        stored(&swept),
        0,
        "the swept manifest's bytes stay in PostgreSQL"
    );

    pins::pins_across_nodes(&cluster, &c, &auth);
    small::small_blobs_in_db(&cluster, &c, &auth);
    sessions::sessions_without_rows(&cluster, &c, &auth);

    // One node on the bucket without a shared log (uploads staged on its
    // own disk, blobs streamed to the store) that answers a blob GET with
    // a redirect to a signed URL of the store.
    let single = Server::start_with(&[
        ("BERTH_BLOB_STORE", "s3://berth/single"),
        ("BERTH_S3_ENDPOINT", cluster.var("BERTH_CLUSTER_S3")),
        ("BERTH_S3_REGION", "garage"),
        (
            "BERTH_S3_ACCESS_KEY_ID",
            cluster.var("BERTH_CLUSTER_S3_KEY_ID"),
        ),
        (
            "BERTH_S3_SECRET_ACCESS_KEY",
            cluster.var("BERTH_CLUSTER_S3_SECRET"),
        ),
        ("BERTH_S3_PATH_STYLE", "true"),
        ("BERTH_BLOB_REDIRECT_SECONDS", "60"),
    ]);
    let (ak, _, password) = single.operator_key.clone().unwrap();
    let single_auth = basic(&format!("local@{ak}"), &password);
    push_small(&c, &single.host(), &single_auth, "solo/app", "v1", 11).unwrap();
    let layer = random_bytes(2011, 11);
    let direct = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = direct
        .get(single.url(&format!("/v2/solo/app/blobs/{}", digest(&layer))))
        .header("Authorization", &single_auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 307);
    let signed = r.headers()["location"].to_str().unwrap().to_owned();
    let hex = digest(&layer).trim_start_matches("sha256:").to_owned();
    assert!(
        signed.starts_with(&format!(
            "{}/berth/single/blobs/sha256/{hex}",
            cluster.var("BERTH_CLUSTER_S3")
        )) && signed.contains("X-Amz-Signature="),
        "the redirect names the blob's object, signed: {signed}"
    );
    let r = direct.get(&signed).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().unwrap().as_ref(),
        &layer[..],
        "the signed URL serves the layer"
    );
    drop(single);

    // Every node's read models equal each other's and a rebuild from the
    // shared log: the nodes are stopped once they hold the head.
    for node in cluster.nodes() {
        let r = c.get(format!("http://{node}/readyz")).send().unwrap();
        let body = r.text().unwrap();
        assert!(
            body.contains("log (PostgreSQL): ok") && body.contains("object store (S3): ok"),
            "{body}"
        );
    }
    // A node records what it still counts when it stops, which the nodes
    // stopped before it never see: once stopped, all three start again
    // (each catches up to the head before it serves) and stop again with
    // nothing new to record.
    std::thread::sleep(Duration::from_secs(3));
    for round in ["stop", "start", "stop"] {
        for n in 1..=3 {
            let (ok, out) = cluster.sh(&[round, &n.to_string()]);
            assert!(ok, "{round} {n}: {out}");
        }
    }
    let digests: Vec<String> = (1..=3)
        .map(|n| {
            let dir = cluster.dir.join(format!("node{n}/data"));
            eprintln!("node {n}: {}", berth(&["log", "verify"], &dir).1.trim());
            let (code, out) = berth(&["projections", "digest"], &dir);
            assert_eq!(code, 0, "{out}");
            out.trim().to_owned()
        })
        .collect();
    let fresh = cluster.dir.join("rebuilt");
    let (code, out) = berth(&["projections", "rebuild", "--log", cluster.pg()], &fresh);
    assert_eq!(code, 0, "{out}");
    let head = event_count(&fresh);
    eprintln!(
        "the last events: {:?}",
        event_types_from(&fresh, head.saturating_sub(8))
    );
    // The log moves between PostgreSQL and fjall in both directions with
    // its chain intact: PostgreSQL → file → a new data directory → file
    // (the same bytes) → a new, empty database.
    let succeeds = |args: &[&str], dir: &Path| {
        let (code, said) = berth(args, dir);
        assert_eq!(code, 0, "berth {args:?}: {said}");
        said
    };
    let export = cluster.dir.join("log.export");
    let (export_file, pg) = (export.to_str().unwrap(), cluster.pg());
    succeeds(
        &["log", "export", "--log", pg, "--file", export_file],
        &cluster.dir,
    );
    let imported = cluster.dir.join("imported");
    succeeds(&["log", "import", "--file", export_file], &imported);
    let said = succeeds(&["log", "verify"], &imported);
    assert!(said.contains(&format!("{head} events")), "{said}");
    let again = cluster.dir.join("again.export");
    let again_file = again.to_str().unwrap();
    succeeds(&["log", "export", "--file", again_file], &imported);
    assert_eq!(
        digest(&std::fs::read(&export).unwrap()),
        digest(&std::fs::read(&again).unwrap()),
        "an export of the imported log is the same bytes"
    );
    let (ok, said) = cluster.sh(&["createdb", "moved"]);
    assert!(ok, "{said}");
    let moved = pg.replace("/berth", "/moved");
    let import_moved = ["log", "import", "--file", again_file, "--log", &moved];
    succeeds(&import_moved, &cluster.dir);
    let said = succeeds(&["log", "verify", "--log", &moved], &cluster.dir);
    assert!(said.contains(&format!("{head} events")), "{said}");
    let (code, said) = berth(&import_moved, &cluster.dir);
    assert_ne!(
        code, 0,
        "an import into a log that is not empty is refused: {said}"
    );

    let by_model = |dir: &Path| berth(&["projections", "digest", "--by-model"], dir).1;
    for (n, node_digest) in digests.iter().enumerate() {
        let dir = cluster.dir.join(format!("node{}/data", n + 1));
        assert!(
            out.contains(&format!("digest {node_digest}")),
            "node {} holds {node_digest}; the rebuild from PostgreSQL says {out}\nnode:\n{}\nrebuilt:\n{}",
            n + 1,
            by_model(&dir),
            by_model(&fresh),
        );
    }

    let survivor = leases::one_holder_and_failover(&cluster);
    sweep::leftovers_swept(&cluster, &c, &auth, survivor);

    // No node panicked, stopping included (a blocking PostgreSQL client
    // dropped on an async worker once did, and that node's mirror missed
    // the batches it had caught up on).
    for n in 1..=3 {
        let log = std::fs::read_to_string(cluster.dir.join(format!("node{n}/log"))).unwrap();
        assert!(!log.contains("panicked"), "node {n} panicked:\n{log}");
    }
}
