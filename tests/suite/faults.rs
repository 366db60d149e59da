//! When the disk fills: a real `berth` over a small tmpfs this test mounts
//! (scripts/test.sh runs the suite as root). Writes are refused with 503
//! and the cause, readiness says so, reads go on, and once space is freed
//! writes work again without a restart, with nothing acknowledged lost and
//! nothing refused recorded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "the disk-full tests mount a tmpfs and need root (scripts/test.sh runs them as root)"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system that holds `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join(format!("filler-{}", uuid_like()));
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0xa5u8; 1 << 20];
    loop {
        if file.write_all(&block).is_err() {
            break;
        }
    }
    // The last, partial block.
    let small = vec![0u8; 4096];
    while file.write_all(&small).is_ok() {}
    path
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn create_namespace(server: &Server, name: &str) -> (u16, Value) {
    manage(
        server,
        "POST",
        "/namespaces",
        &server.operator_basic(),
        json!({ "namespace": name }),
    )
}

/// One chunk of an upload session.
async fn patch(client: &reqwest::Client, location: &str, body: Vec<u8>) -> reqwest::Response {
    client
        .patch(location)
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn readyz(server: &Server) -> (u16, String) {
    http(server, "GET", "/readyz", &[], "")
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_503_and_recovers_without_a_restart() {
    let fs = Tmpfs::mount("160m");
    let mut server = Server::start_in(
        &fs.path().join("data"),
        &[
            ("BERTH_MIN_FREE_SPACE", "32MiB"),
            ("BERTH_GC_INTERVAL", "0"),
        ],
    );
    let manifest = push_image(&server, "acme/web", "v1", 7).await;
    assert_eq!(create_namespace(&server, "before").0, 201);

    // A chunked upload with 4 MiB acknowledged.
    let client = server.client();
    let r = client
        .post(server.url("/v2/acme/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = server.url(r.headers()["location"].to_str().unwrap());
    let r = patch(&client, &location, vec![1u8; 4 << 20]).await;
    assert_eq!(r.status(), 202);
    let location = server.url(r.headers()["location"].to_str().unwrap());

    // 70 MiB free, over the 32 MiB reserve: a 100 MiB chunk starts, is cut
    // off when it reaches the reserve, and the session is cut back to what
    // was acknowledged.
    let filler = fill(fs.path());
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - (70 << 20))
        .unwrap();
    let r = patch(&client, &location, vec![2u8; 100 << 20]).await;
    assert_eq!(r.status(), 503);
    let error: Value = r.json().await.unwrap();
    assert!(
        error["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nearly full"),
        "{error}"
    );
    let r = client.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["range"],
        "0-4194303",
        "cut back to the acknowledged offset"
    );
    let second = fill(fs.path());

    // Writes: refused, with the cause, and Retry-After.
    let (status, body) = create_namespace(&server, "refused");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "UNAVAILABLE");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no space left on device"),
        "{body}"
    );
    let r = server
        .client()
        .post(server.url("/v2/acme/web/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["errors"][0]["code"], "UNAVAILABLE");
    assert!(
        error["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nearly full"),
        "{error}"
    );
    let (status, cause) = readyz(&server);
    assert_eq!(status, 503);
    assert!(cause.contains("nearly full"), "{cause}");

    // Reads and pulls go on.
    let pulled = server
        .client()
        .get(server.url("/v2/acme/web/manifests/v1"))
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    let pulled: Value = pulled.json().await.unwrap();
    for layer in pulled["layers"].as_array().unwrap() {
        let d = layer["digest"].as_str().unwrap();
        let bytes = get_bytes(&server, &format!("/v2/acme/web/blobs/{d}")).await;
        assert_eq!(digest(&bytes), d);
    }
    assert_eq!(
        get_json(&server, "/v2/acme/web/tags/list").await["tags"],
        json!(["v1"])
    );

    // Space freed: writes work again within 10 s, with no restart.
    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(second).unwrap();
    let freed = Instant::now();
    loop {
        let (status, body) = create_namespace(&server, "after");
        if status == 201 {
            break;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "still refused 10 s after space was freed: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(readyz(&server).0, 200);
    push_image(&server, "acme/web", "v2", 8).await;

    // Everything acknowledged is there; nothing refused is.
    server.stop();
    let (code, out) = berth(&["log", "verify"], &server.dir);
    assert_eq!(code, 0, "{out}");
    let (_, log) = berth(&["log", "show"], &server.dir);
    let names: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "NamespaceCreated")
        .map(|e| {
            e["event"]["NamespaceCreated"]["org"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        names.iter().any(|n| n == "before") && names.iter().any(|n| n == "after"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "refused"), "{names:?}");
    assert!(log.contains(&manifest));
}

/// The real Docker engine pushing onto a full disk: it shows the registry's
/// message about the lack of space, and the same push succeeds once space
/// is freed, with no restart of the registry.
#[test]
fn docker_push_onto_a_full_disk_names_the_lack_of_space_and_then_succeeds() {
    let fs = Tmpfs::mount("160m");
    let server = Server::start_in(
        &fs.path().join("data"),
        &[
            ("BERTH_MIN_FREE_SPACE", "32MiB"),
            ("BERTH_GC_INTERVAL", "0"),
        ],
    );
    let d = Docker::new();
    let (ak, _, password) = server.operator_key.clone().unwrap();
    d.login(&server, &format!("local@{ak}"), &password).unwrap();
    let tag = format!("{}/acme/full:v1", server.host());
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("layer.tar");
    std::fs::write(&tar, tar_with_file("data.bin", &random_bytes(8 << 20, 41))).unwrap();
    d.run(&["import", tar.to_str().unwrap(), &tag]);
    let id = d.run(&["image", "inspect", "-f", "{{.Id}}", &tag]);

    let filler = fill(fs.path());
    let refused = d.try_run(&["push", &tag]).unwrap_err();
    assert!(
        refused.contains("nearly full") || refused.contains("no space left"),
        "docker should show the cause: {refused}"
    );
    assert!(!refused.contains("internal error"), "{refused}");

    std::fs::remove_file(filler).unwrap();
    d.run(&["push", &tag]);
    d.pull_fresh(&tag).unwrap();
    assert_eq!(d.run(&["image", "inspect", "-f", "{{.Id}}", &tag]), id);
}

/// A commit that fails after its batch was written (as a failed fsync
/// does), in the middle of 50 concurrent writers: no waiter is told
/// "created" for a write that is not durable, and none is told "nothing
/// changed" for one that is. The node stops (exit status 75); restarted, its
/// log verifies and its read models equal a rebuild from the log. Every
/// writer then retries with its `Idempotency-Key`: each gets 201, replayed
/// where the first attempt was durable, and each namespace is created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_fsync_in_a_group_commit_tells_no_waiter_a_wrong_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Startup commits three batches (the operator, its sign-in, its key);
    // the fifth is the second batch of the writers below.
    let mut server = Server::start_in(&data, &[("BERTH_FAULT_FAIL_COMMIT", "5")]);
    let auth = server.operator_basic();
    let base = server.base.clone();
    let client = client_with(Default::default());
    let mut writers = Vec::new();
    for i in 0..50 {
        let (client, auth, base) = (client.clone(), auth.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/v2/manage/namespaces"))
                .header("Authorization", auth)
                .header("Idempotency-Key", format!("create-ns{i}"))
                .json(&json!({ "namespace": format!("ns{i}") }))
                .send()
                .await;
            match r {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    (
                        i,
                        status,
                        body["message"].as_str().unwrap_or_default().to_owned(),
                    )
                }
                // The node went down before answering: no outcome was told.
                Err(e) => (i, 0, e.to_string()),
            }
        }));
    }
    let mut created = Vec::new();
    let mut unknown = Vec::new();
    let mut unchanged = Vec::new();
    for w in writers {
        let (i, status, message) = w.await.unwrap();
        match status {
            201 => created.push(i),
            503 if message.contains("outcome of this request is unknown") => unknown.push(i),
            503 if message.contains("nothing was changed") => unchanged.push(i),
            0 => unknown.push(i),
            other => panic!("ns{i}: {other} {message}"),
        }
    }
    assert!(!unknown.is_empty(), "the injected failure hit a batch");
    assert_eq!(server.wait_exit(), 75, "the node stops for its supervisor");

    let server = Server::start_in(&data, &[]);
    let exists = |i: &usize| {
        let path = format!("/namespaces/ns{i}");
        manage(&server, "GET", &path, &server.operator_basic(), Value::Null).0 == 200
    };
    for i in &created {
        assert!(exists(i), "ns{i} was acknowledged");
    }
    for i in &unchanged {
        assert!(!exists(i), "ns{i} was refused as unchanged");
    }
    let durable: Vec<usize> = unknown.iter().copied().filter(exists).collect();
    for i in 0..50 {
        let r = client
            .post(server.url("/v2/manage/namespaces"))
            .header("Authorization", server.operator_basic())
            .header("Idempotency-Key", format!("create-ns{i}"))
            .json(&json!({ "namespace": format!("ns{i}") }))
            .send()
            .await
            .unwrap();
        let replayed = r.headers().contains_key("idempotent-replayed");
        let was_durable = created.contains(&i) || durable.contains(&i);
        assert_eq!(
            (r.status().as_u16(), replayed),
            (201, was_durable),
            "ns{i}: the retry gets the first answer, or is made now"
        );
    }
    let mut server = server;
    server.stop();
    let types = event_types_from(&data, 1);
    let creations = types.iter().filter(|t| *t == "NamespaceCreated").count();
    assert_eq!(creations, 50, "each namespace is created once");
    let (code, out) = berth(&["log", "verify"], &data);
    assert_eq!(code, 0, "{out}");
    let (_, live) = berth(&["projections", "digest"], &data);
    let (code, rebuilt) = berth(&["projections", "rebuild"], &data);
    assert_eq!(code, 0);
    assert!(
        rebuilt.trim().ends_with(live.trim()),
        "read models {live} differ from a rebuild: {rebuilt}"
    );
    println!(
        "fsync fault: {} created, {} unknown ({} of them durable after the restart), {} refused unchanged; all 50 retried with their keys",
        created.len(),
        unknown.len(),
        durable.len(),
        unchanged.len()
    );
}

/// Retries racing with one `Idempotency-Key` into a batch whose commit
/// fails: a retry answered from that same batch shares its fate, so no one
/// is told "created" by a node that could not write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_in_a_failing_batch_are_not_told_it_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Startup commits three batches; the fourth is the first of these.
    let mut server = Server::start_in(&data, &[("BERTH_FAULT_FAIL_COMMIT", "4")]);
    let (auth, base) = (server.operator_basic(), server.base.clone());
    let client = client_with(Default::default());
    let tries: Vec<_> = (0..20)
        .map(|_| {
            let (client, auth, base) = (client.clone(), auth.clone(), base.clone());
            tokio::spawn(async move {
                client
                    .post(format!("{base}/v2/manage/namespaces"))
                    .header("Authorization", auth)
                    .header("Idempotency-Key", "one-request")
                    .json(&json!({ "namespace": "racing" }))
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 503 || *s == 0),
        "the node wrote nothing it could answer for: {statuses:?}"
    );
    assert_eq!(server.wait_exit(), 75);
}
