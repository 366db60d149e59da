//! Shared helpers: a real `berth` process on a random port over a temp dir,
//! an HTTP client, image building blocks, and the CLI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest as _, Sha256};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
/// Events every test server starts with: the operator's account and user
/// (created by `berth serve`), then the operator's sign-in and access key
/// (by [`Server::start`]).
pub const BOOTSTRAP_EVENTS: u64 = 4;
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
    env: Vec<(String, String)>,
    /// The operator's docker credential: access key, secret key, password.
    pub operator_key: Option<(String, String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A new server over a new, empty data directory, with an access key
    /// for the operator that [`Server::client`] uses.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// The same with extra environment (flags) for `berth serve`.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_in(&tmp.path().join("data"), env);
        s._tmp = Some(tmp);
        s
    }

    /// A server over the data directory `dir`, new or existing (one the
    /// operator password of this suite opens).
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut s = Self::spawn(dir, 0, &env);
        let token = s.session("system", "admin", OPERATOR_PASSWORD);
        let (ak, sk) = s.new_access_key(&token);
        let password = login_password(&ak, &sk);
        s.operator_key = Some((ak, sk, password));
        s
    }

    /// Opens a management session; returns its token.
    pub fn session(&self, account: &str, user: &str, password: &str) -> String {
        let body = serde_json::json!({"account": account, "user": user, "password": password});
        let (status, reply) = http(self, "POST", "/v2/manage/session", &[], &body.to_string());
        assert_eq!(status, 200, "login of {account}/{user}: {reply}");
        serde_json::from_str::<serde_json::Value>(&reply).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an access key with a session token; returns (AK, SK).
    pub fn new_access_key(&self, token: &str) -> (String, String) {
        let auth = format!("Bearer {token}");
        let (status, reply) = http(
            self,
            "POST",
            "/v2/manage/access-keys",
            &[("Authorization", &auth)],
            "",
        );
        assert_eq!(status, 201, "{reply}");
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        (
            v["ak"].as_str().unwrap().to_owned(),
            v["sk"].as_str().unwrap().to_owned(),
        )
    }

    /// `Authorization` value of the operator's docker credential.
    pub fn operator_basic(&self) -> String {
        let (ak, _, password) = self.operator_key.as_ref().expect("operator key");
        basic(&format!("local@{ak}"), password)
    }

    /// An HTTP client that authenticates as the operator (Basic with the
    /// docker credential, as clients may send straight to registry routes).
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("Authorization", self.operator_basic().parse().unwrap());
        client_with(headers)
    }

    fn spawn(dir: &Path, port: u16, env: &[(String, String)]) -> Self {
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
            .env("BERTH_ORG_QUOTA", "50")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
            env: env.to_vec(),
            operator_key: None,
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

    /// Waits (up to 30 s) for the server to exit on its own; its status.
    pub fn wait_exit(&mut self) -> i32 {
        let mut child = self.child.take().expect("a running server");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "berth did not exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
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
        let mut next = Self::spawn(&self.dir, self.port, &self.env);
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

/// The event types of a stopped server's log from sequence `from` on.
pub fn event_types_from(dir: &Path, from: u64) -> Vec<String> {
    let (code, out) = berth(&["log", "show", "--from", &from.to_string()], dir);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["type"].as_str().unwrap().to_owned()
        })
        .collect()
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
pub fn client_with(headers: reqwest::header::HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A `Basic` authorization value.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The long-term docker password of an access key, computed the way the
/// README tells users to (`openssl dgst -hmac`), by running that pipeline.
pub fn login_password(ak: &str, sk: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"printf "$AK" | openssl dgst -binary -sha256 -hmac "$SK" | od -An -vtx1 | tr -d ' \n'"#)
        .env("AK", ak)
        .env("SK", sk)
        .output()
        .expect("openssl is installed by scripts/test.sh");
    assert!(out.status.success(), "openssl pipeline failed");
    String::from_utf8(out.stdout).unwrap()
}

/// A raw HTTP/1.1 request, written as given (no client-side path
/// normalisation); returns status and body.
pub fn http(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.host()).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.host(),
        body.len()
    );
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !typed {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let out = String::from_utf8_lossy(&raw);
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// GETs a path as the operator.
async fn get(server: &Server, path: &str) -> reqwest::Response {
    server.client().get(server.url(path)).send().await.unwrap()
}

/// GETs a path and decodes the JSON body.
pub async fn get_json(server: &Server, path: &str) -> serde_json::Value {
    get(server, path).await.json().await.unwrap()
}

/// GETs a path and returns the body bytes.
pub async fn get_bytes(server: &Server, path: &str) -> bytes::Bytes {
    get(server, path).await.bytes().await.unwrap()
}

/// Uploads a blob monolithically as the operator; returns its digest.
pub async fn upload(server: &Server, repo: &str, bytes: &[u8]) -> String {
    upload_as(server, &server.client(), repo, bytes).await
}

/// Uploads a blob monolithically with a client; returns its digest.
pub async fn upload_as(
    server: &Server,
    client: &reqwest::Client,
    repo: &str,
    bytes: &[u8],
) -> String {
    let d = digest(bytes);
    let r = client
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
    server
        .client()
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

/// Uploads a config and layers and pushes an image manifest tagged `tag`
/// as the operator; returns the manifest digest.
pub async fn push_image(server: &Server, repo: &str, tag: &str, seed: u64) -> String {
    push_image_as(server, &server.client(), repo, tag, seed).await
}

/// The same with a client of one's own.
pub async fn push_image_as(
    server: &Server,
    client: &reqwest::Client,
    repo: &str,
    tag: &str,
    seed: u64,
) -> String {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(1000 + seed as usize, seed);
    upload_as(server, client, repo, &config).await;
    upload_as(server, client, repo, &layer).await;
    let manifest = image_manifest(&config, &[&layer], serde_json::json!({}));
    let r = client
        .put(server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
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

/// A user with a docker credential, made through the management API.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account: String,
    /// Access key id.
    pub ak: String,
    /// Long-term docker password (HMAC of the AK under the SK).
    pub docker_password: String,
}

impl Identity {
    /// `Authorization` value of the docker credential.
    pub fn basic(&self) -> String {
        basic(&format!("local@{}", self.ak), &self.docker_password)
    }

    /// A client authenticating with the docker credential.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("Authorization", self.basic().parse().unwrap());
        client_with(headers)
    }
}

/// Calls a management route; returns status and JSON body (null if none).
pub fn manage(
    server: &Server,
    method: &str,
    path: &str,
    auth: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut headers = Vec::new();
    if !auth.is_empty() {
        headers.push(("Authorization", auth));
    }
    let (status, reply) = http(
        server,
        method,
        &format!("/v2/manage{path}"),
        &headers,
        &body,
    );
    let json = serde_json::from_str(&reply).unwrap_or(serde_json::Value::Null);
    (status, json)
}

impl Server {
    /// Creates an account (as the operator) with its admin; returns the
    /// admin's identity.
    pub fn create_account(&self, account: &str) -> Identity {
        let (status, reply) = manage(
            self,
            "POST",
            "/accounts",
            &self.operator_basic(),
            serde_json::json!({"name": account, "admin_user": "admin", "admin_password": "admin-password"}),
        );
        assert_eq!(status, 201, "{reply}");
        self.identity(account, "admin", "admin-password")
    }

    /// Creates a user (as the account's admin); returns their identity.
    pub fn create_user(&self, admin: &Identity, user: &str) -> Identity {
        let (status, reply) = manage(
            self,
            "POST",
            &format!("/accounts/{}/users", admin.account),
            &admin.basic(),
            serde_json::json!({"name": user, "password": "user-password"}),
        );
        assert_eq!(status, 201, "{reply}");
        self.identity(&admin.account, user, "user-password")
    }

    /// Logs a user in and gives them an access key.
    pub fn identity(&self, account: &str, user: &str, password: &str) -> Identity {
        let token = self.session(account, user, password);
        let (ak, sk) = self.new_access_key(&token);
        Identity {
            account: account.to_owned(),
            docker_password: login_password(&ak, &sk),
            ak,
        }
    }
}

/// One ustar member: a header of type `kind` (`b'0'` file, `b'1'` hard
/// link, `b'2'` symbolic link, `b'3'` device) and its padded content. The
/// name is written as given, so tests can build what no well-behaved
/// archiver would.
pub fn tar_member(name: &str, kind: u8, content: &[u8], link: &str) -> Vec<u8> {
    tar_header(name, kind, content.len() as u64, link)
        .into_iter()
        .chain(content.iter().copied())
        .chain(std::iter::repeat_n(
            0,
            content.len().next_multiple_of(512) - content.len(),
        ))
        .collect()
}

/// A ustar header alone, declaring `size` bytes of content.
pub fn tar_header(name: &str, kind: u8, size: u64, link: &str) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    header.to_vec()
}

/// A tar archive of members, with its end-of-archive blocks.
pub fn tar_of(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out = members.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A one-file tar archive (ustar), enough for a layer.
pub fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    tar_of(&[tar_member(name, b'0', content, "")])
}

/// The docker CLI against the daemon the test script started, with its own
/// credential store so concurrent tests do not log each other out.
/// A docker client with its own config (logins); clones share it.
#[derive(Clone)]
pub struct Docker {
    config: std::sync::Arc<tempfile::TempDir>,
}

impl Docker {
    pub fn new() -> Self {
        assert!(
            std::env::var_os("DOCKER_HOST").is_some(),
            "DOCKER_HOST is not set: run the suite with scripts/test.sh, which starts a private Docker daemon"
        );
        Self {
            config: std::sync::Arc::new(tempfile::tempdir().unwrap()),
        }
    }

    /// Runs `docker args`; `Err` holds stderr.
    pub fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.config.path())
            // The legacy builder: this daemon has no buildx.
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("run docker");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Runs `docker args` and expects success.
    pub fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .unwrap_or_else(|e| panic!("docker {args:?} failed: {e}"))
    }

    /// A one-layer image made with `docker import`, tagged `tag`.
    pub fn import(&self, tag: &str, seed: u64) {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("layer.tar");
        std::fs::write(
            &tar,
            tar_with_file("data.bin", &random_bytes(100_000, seed)),
        )
        .unwrap();
        self.run(&["import", tar.to_str().unwrap(), tag]);
    }

    /// `docker login` as an identity's long-term credential.
    pub fn login(&self, server: &Server, user: &str, password: &str) -> Result<String, String> {
        self.login_host(&server.host(), user, password)
    }

    /// `docker login` to a registry named by `host:port`.
    pub fn login_host(&self, host: &str, user: &str, password: &str) -> Result<String, String> {
        self.try_run(&["login", "-u", user, "-p", password, host])
    }

    /// Pulls after removing any local copy, so the bytes come from the registry.
    pub fn pull_fresh(&self, tag: &str) -> Result<String, String> {
        let _ = self.try_run(&["rmi", "-f", tag]);
        self.try_run(&["pull", tag])
    }
}

/// The reply of the token service to `auth` asking for `scope`, as a
/// step-wise client gets it.
pub async fn token_reply(server: &Server, auth: &str, scope: &str) -> serde_json::Value {
    let r = client_with(Default::default())
        .get(server.url(&format!("/v2/token?service=berth&scope={scope}")))
        .header("Authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
