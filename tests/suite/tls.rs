//! HTTPS: the real Docker engine over TLS with a self-signed CA, a
//! certificate swap under load that loses no request, and a bad pair
//! refused at start. Certificates come from the openssl command line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed by scripts/test.sh");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and `names` server pairs it signed for 127.0.0.1 and localhost:
/// `<name>.crt` and `<name>.key` in `dir`.
fn certificates(dir: &Path, names: &[&str]) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
    ]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    for name in names {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        );
    }
}

/// A Berth serving HTTPS with `cert.crt`/`cert.key` of `dir`.
struct TlsServer {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl TlsServer {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(BERTH)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--tls-cert")
            .arg(dir.join("cert.crt"))
            .arg("--tls-key")
            .arg(dir.join("cert.key"))
            .env("BERTH_LOG", "warn")
            .env("BERTH_ADMIN_PASSWORD", OPERATOR_PASSWORD)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start berth");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("berth listening on ")
            .unwrap_or_else(|| panic!("berth did not start: {line:?}"))
            .to_owned();
        assert!(base.starts_with("https://127.0.0.1:"), "{base}");
        Self {
            child,
            base,
            dir: dir.to_owned(),
        }
    }

    fn host(&self) -> &str {
        self.base.trim_start_matches("https://")
    }

    /// `curl` over TLS, verifying against the test CA; returns the HTTP
    /// status and body.
    fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(self.dir.join("ca.crt"))
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// The serial of the certificate a new handshake gets.
    fn served_serial(&self) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg("openssl s_client -connect \"$HOST\" </dev/null 2>/dev/null | openssl x509 -noout -serial")
            .env("HOST", self.host())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serial(dir: &Path, crt: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in", crt])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn install(dir: &Path, pair: &str) {
    for ext in ["crt", "key"] {
        let tmp = dir.join(format!("cert.{ext}.new"));
        std::fs::copy(dir.join(format!("{pair}.{ext}")), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(format!("cert.{ext}"))).unwrap();
    }
}

#[test]
fn docker_logs_in_pushes_and_pulls_over_https_and_a_certificate_swap_loses_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir, &["first", "second"]);
    install(dir, "first");
    let server = TlsServer::start(dir);

    // The challenge sends clients to the token service over HTTPS.
    let (status, headers) = server.curl(&["-D", "-", "-o", "/dev/null"], "/v2/");
    assert_eq!(status, 401);
    assert!(
        headers.contains(&format!("realm=\"https://{}/v2/token\"", server.host())),
        "{headers}"
    );

    // An access key, as the README shows, over HTTPS.
    let login =
        format!(r#"{{"account":"system","user":"admin","password":"{OPERATOR_PASSWORD}"}}"#);
    let (status, body) = server.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &login,
        ],
        "/v2/manage/session",
    );
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Authorization: Bearer {}", token["token"].as_str().unwrap());
    let (status, body) = server.curl(&["-X", "POST", "-H", &bearer], "/v2/manage/access-keys");
    assert_eq!(status, 201, "{body}");
    let key: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (ak, sk) = (key["ak"].as_str().unwrap(), key["sk"].as_str().unwrap());

    // The engine trusts the CA the way the README says.
    let certs = PathBuf::from("/etc/docker/certs.d").join(server.host());
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(dir.join("ca.crt"), certs.join("ca.crt")).unwrap();
    let d = Docker::new();
    d.login_host(
        server.host(),
        &format!("local@{ak}"),
        &login_password(ak, sk),
    )
    .unwrap();
    let image = format!("{}/secure/app:v1", server.host());
    d.import(&image, 31);
    let id = d.run(&["image", "inspect", "-f", "{{.Id}}", &image]);
    d.run(&["push", &image]);
    d.pull_fresh(&image).unwrap();
    assert_eq!(d.run(&["image", "inspect", "-f", "{{.Id}}", &image]), id);
    d.run(&["rmi", &image]);
    let _ = std::fs::remove_dir_all(&certs);

    // `berth upload` over HTTPS, trusting the test CA.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uploads/oci-only.tar.gz");
    let out = Command::new(BERTH)
        .args(["upload", "--url", &server.base, "--namespace", "secure"])
        .args(["--user", &format!("local@{ak}")])
        .env("BERTH_PASSWORD", login_password(ak, sk))
        .arg("--ca-cert")
        .arg(dir.join("ca.crt"))
        .arg(&fixture)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("secure/oci-gz:3.0"), "{printed}");

    // A swap under load: every request on a new connection, before, during
    // and after the new pair is installed and SIGHUP sent.
    assert_eq!(server.served_serial(), serial(dir, "first.crt"));
    let load = {
        let base = server.base.clone();
        let ca = dir.join("ca.crt");
        std::thread::spawn(move || {
            let mut codes = Vec::new();
            for _ in 0..200 {
                let out = Command::new("curl")
                    .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                    .arg(&ca)
                    .arg(format!("{base}/readyz"))
                    .output()
                    .unwrap();
                codes.push(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            codes
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    install(dir, "second");
    let hup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let codes = load.join().unwrap();
    assert!(codes.iter().all(|c| c == "200"), "{codes:?}");
    assert_eq!(server.served_serial(), serial(dir, "second.crt"));
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir, &["first", "second"]);
    let out = Command::new(BERTH)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("first.crt"))
        .arg("--tls-key")
        .arg(dir.join("second.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("are not a certificate and its key"), "{err}");
    assert!(
        !dir.join("data").exists(),
        "refused before touching the data directory"
    );
}
