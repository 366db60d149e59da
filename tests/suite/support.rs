//! Shared helpers: a real `berth` process on a random port over a temp dir,
//! an HTTP client, image building blocks, and the CLI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest as _, Sha256};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
/// Events every data directory starts with: the operator's account and user.
pub const BOOTSTRAP_EVENTS: u64 = 2;
/// The operator's password in every test server.
pub const OPERATOR_PASSWORD: &str = "operator-test-password";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// A running berth server.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A new server over a new, empty data directory.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Self::spawn(&dir, 0);
        s._tmp = Some(tmp);
        s
    }

    fn spawn(dir: &Path, port: u16) -> Self {
        let mut child = Command::new(BERTH)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir)
            .env("BERTH_LOG", "warn")
            .env("BERTH_ADMIN_PASSWORD", OPERATOR_PASSWORD)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start berth");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read address");
        let base = line
            .trim()
            .strip_prefix("berth listening on ")
            .unwrap_or_else(|| panic!("berth did not start: {line:?}"))
            .to_owned();
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            child: Some(child),
            base,
            port,
            dir: dir.to_owned(),
            _tmp: None,
        }
    }

    /// Stops the server with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let ok = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(ok.success());
            let status = child.wait().expect("wait");
            assert!(status.success(), "berth exited with {status}");
        }
    }

    /// Stops and starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.respawn();
    }

    /// Kills the server with SIGKILL (no shutdown, no flush) and starts it
    /// again on the same port and data directory: a crash.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("wait");
        }
        self.respawn();
    }

    fn respawn(&mut self) {
        let mut next = Self::spawn(&self.dir, self.port);
        self.child = next.child.take();
        self.base = std::mem::take(&mut next.base);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:<port>`, as docker and skopeo name the registry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a `berth` subcommand; returns (exit code, stdout).
pub fn berth(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(BERTH)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("BERTH_LOG", "warn")
        .output()
        .expect("run berth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Number of events in a stopped server's log, from `berth log verify`.
pub fn event_count(dir: &Path) -> u64 {
    let (code, out) = berth(&["log", "verify"], dir);
    assert_eq!(code, 0, "{out}");
    out.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected verify output {out:?}"))
}

/// Files under a directory, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An HTTP client that opens a connection per request: tests restart
/// servers on the same port, and a pooled connection to the old process
/// would fail the first request after a restart.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// GETs a path and decodes the JSON body.
pub async fn get_json(server: &Server, path: &str) -> serde_json::Value {
    client()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GETs a path and returns the body bytes.
pub async fn get_bytes(server: &Server, path: &str) -> bytes::Bytes {
    client()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

/// Uploads a blob monolithically; returns its digest.
pub async fn upload(server: &Server, repo: &str, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let r = client()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "upload to {repo}: {}",
        r.text().await.unwrap()
    );
    d
}

/// Pushes a manifest under a reference; returns the response.
pub async fn put_manifest(
    server: &Server,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> reqwest::Response {
    client()
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("Content-Type", media_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// An OCI image manifest over the given config and layers.
pub fn image_manifest(config: &[u8], layers: &[&[u8]], extra: serde_json::Value) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": digest(config), "size": config.len() },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": OCI_LAYER, "digest": digest(l), "size": l.len()
        })).collect::<Vec<_>>(),
    });
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            m[k] = v;
        }
    }
    serde_json::to_vec(&m).unwrap()
}

/// Uploads a config and layers and pushes an image manifest tagged `tag`;
/// returns the manifest digest.
pub async fn push_image(server: &Server, repo: &str, tag: &str, seed: u64) -> String {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(1000 + seed as usize, seed);
    upload(server, repo, &config).await;
    upload(server, repo, &layer).await;
    let manifest = image_manifest(&config, &[&layer], serde_json::json!({}));
    let r = put_manifest(server, repo, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    digest(&manifest)
}

/// The registry error code of an error response.
pub async fn error_code(r: reqwest::Response) -> String {
    let body: serde_json::Value = r.json().await.expect("error body is JSON");
    body["errors"][0]["code"]
        .as_str()
        .expect("error body has a code")
        .to_owned()
}
