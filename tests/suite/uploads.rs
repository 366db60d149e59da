//! Web upload of `docker save` archives: both layouts from fixtures, the
//! real Docker engine's own archives pulled back by Docker, and every
//! hostile archive refused with nothing left behind.

use std::path::{Path, PathBuf};

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::support::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/uploads")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files of one upload: a name and the bytes of each.
type Files<'a> = Vec<(&'a str, Vec<u8>)>;

/// Posts `files` as one multipart upload into `ns`.
async fn upload(server: &Server, auth: &str, ns: &str, files: &[(&str, Vec<u8>)]) -> (u16, Value) {
    let mut form = Form::new();
    for (name, bytes) in files {
        form = form.part(
            "file",
            Part::bytes(bytes.clone()).file_name((*name).to_owned()),
        );
    }
    let r = client_with(Default::default())
        .post(server.url(&format!("/v2/manage/namespaces/{ns}/uploads")))
        .header("Authorization", auth)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The images and tags a job reports, as `repo:tag`, sorted.
fn named(job: &Value) -> Vec<String> {
    let mut out: Vec<String> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["images"].as_array().unwrap().clone())
        .map(|i| {
            format!(
                "{}:{}",
                i["repository"].as_str().unwrap(),
                i["tag"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

async fn manifest(server: &Server, repo: &str, tag: &str) -> Value {
    let r = server
        .client()
        .get(server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{repo}:{tag}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn both_layouts_become_images_whose_layers_are_the_archives_bytes() {
    let mut server = Server::start();
    let auth = server.operator_basic();
    let files = [
        ("legacy-only.tar", fixture("legacy-only.tar")),
        ("multi-image.tar", fixture("multi-image.tar")),
        ("oci-docker25.tar", fixture("oci-docker25.tar")),
        ("oci-only.tar.gz", fixture("oci-only.tar.gz")),
    ];
    let before = head(&server).await;
    let (status, job) = upload(&server, &auth, "fixtures", &files).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["state"], "succeeded");
    assert_eq!(
        named(&job),
        [
            "fixtures/legacy-app:1.0",
            "fixtures/multi-a:latest",
            "fixtures/multi-a:v1",
            "fixtures/multi-b:v2",
            "fixtures/oci-app:2.0",
            "fixtures/oci-gz:3.0",
        ]
    );
    let layers: Vec<u64> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["layers_stored"].as_u64().unwrap())
        .collect();
    assert_eq!(
        layers,
        [2, 3, 2, 2],
        "distinct layers: the two images of multi-image.tar share their base"
    );
    for (f, (name, bytes)) in job["files"].as_array().unwrap().iter().zip(&files) {
        assert_eq!(f["name"], *name);
        assert_eq!(f["bytes_read"], bytes.len() as u64);
        assert!(f["error"].is_null());
    }

    // The job reads back as it was answered.
    let id = job["id"].as_str().unwrap();
    let again = get_json(&server, &format!("/v2/manage/uploads/{id}")).await;
    assert_eq!(again, job);

    // Layers are stored as the archive holds them: the plain tar for the
    // legacy layout, the gzip blob (with its own media type) where the OCI
    // layout kept one compressed.
    let legacy = manifest(&server, "fixtures/legacy-app", "1.0").await;
    assert_eq!(
        legacy["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    for l in legacy["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar"
        );
        let digest = l["digest"].as_str().unwrap();
        let bytes = get_bytes(&server, &format!("/v2/fixtures/legacy-app/blobs/{digest}")).await;
        assert_eq!(crate::support::digest(&bytes), digest);
        assert_eq!(bytes.len() as u64, l["size"].as_u64().unwrap());
    }
    let gz = manifest(&server, "fixtures/oci-gz", "3.0").await;
    let types: Vec<&str> = gz["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.diff.tar"
        ]
    );
    // Two images of one archive share their base layer.
    let (a, b) = (
        manifest(&server, "fixtures/multi-a", "v1").await,
        manifest(&server, "fixtures/multi-b", "v2").await,
    );
    assert_eq!(a["layers"][0], b["layers"][0]);
    assert_ne!(a["layers"][1], b["layers"][1]);

    // The image list shows their size, as it would for a push.
    let image = get_json(&server, "/v2/manage/namespaces/fixtures/repos/multi-a").await;
    assert_eq!(image["num_images"], 2, "{image}");
    assert!(image["size"].as_u64().unwrap() > 20_000, "{image}");

    // The events are a push's: the organization, its repositories, blob
    // links, manifests and tags.
    server.stop();
    let types = event_types_from(&server.dir, before + 1);
    for kind in [
        "NamespaceCreated",
        "RepositoryCreated",
        "BlobUploaded",
        "ManifestPushed",
        "TagPointed",
    ] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
}

/// The log's head sequence number, from the signed checkpoint route.
async fn head(server: &Server) -> u64 {
    get_json(server, "/v2/manage/audit/checkpoint").await["seq"]
        .as_u64()
        .unwrap()
}

#[test]
fn docker_pulls_uploaded_archives_of_its_own_and_of_the_fixtures() {
    let server = Server::start();
    let d = Docker::new();
    let (ak, _, password) = server.operator_key.clone().unwrap();
    d.login(&server, &format!("local@{ak}"), &password).unwrap();

    // An image of two file layers, saved by the engine twice: as a plain
    // tar under one tag, and piped through gzip under another.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("one.txt"), "first layer\n").unwrap();
    std::fs::write(ctx.path().join("two.txt"), "second layer\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY one.txt /one.txt\nCOPY two.txt /two.txt\n",
    )
    .unwrap();
    let local = format!("berth-upload-{}", std::process::id());
    d.run(&[
        "build",
        "-q",
        "-t",
        &format!("{local}:plain"),
        ctx.path().to_str().unwrap(),
    ]);
    d.run(&[
        "tag",
        &format!("{local}:plain"),
        &format!("{local}:gzipped"),
    ]);
    let id = d.run(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        &format!("{local}:plain"),
    ]);
    let tar = ctx.path().join("plain.tar");
    d.run(&[
        "save",
        "-o",
        tar.to_str().unwrap(),
        &format!("{local}:plain"),
    ]);
    let saved = ctx.path().join("gzipped.tar");
    d.run(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        &format!("{local}:gzipped"),
    ]);
    let gz = gzip(&std::fs::read(&saved).unwrap());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let files = [
        ("plain.tar", std::fs::read(&tar).unwrap()),
        ("gzipped.tar.gz", gz),
        ("oci-only.tar.gz", fixture("oci-only.tar.gz")),
    ];
    let (status, job) =
        runtime.block_on(upload(&server, &server.operator_basic(), "webup", &files));
    assert_eq!(status, 201, "{job}");
    d.run(&[
        "rmi",
        &format!("{local}:plain"),
        &format!("{local}:gzipped"),
    ]);

    let host = server.host();
    for tag in ["plain", "gzipped"] {
        let remote = format!("{host}/webup/{local}:{tag}");
        d.pull_fresh(&remote).unwrap();
        let pulled = d.run(&["image", "inspect", "-f", "{{.Id}}", &remote]);
        assert_eq!(pulled, id, "{tag}: the same image id as the saved image");
        assert_eq!(
            file_of(&d, &remote, "/two.txt", ctx.path()),
            "second layer\n"
        );
        assert_eq!(
            file_of(&d, &remote, "/one.txt", ctx.path()),
            "first layer\n"
        );
        d.run(&["rmi", &remote]);
    }
    // The OCI-layout fixture, with a gzip layer, pulls and runs as well.
    let remote = format!("{host}/webup/oci-gz:3.0");
    d.pull_fresh(&remote).unwrap();
    assert_eq!(file_of(&d, &remote, "/base.txt", ctx.path()), "gzip base\n");
    assert_eq!(file_of(&d, &remote, "/app.txt", ctx.path()), "gzip app\n");
    d.run(&["rmi", &remote]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A file of an image, through `docker create` and `docker cp`.
fn file_of(d: &Docker, image: &str, path: &str, scratch: &Path) -> String {
    let container = d.run(&["create", image, "/none"]);
    let out: PathBuf = scratch.join(format!("{container}.out"));
    d.run(&["cp", &format!("{container}:{path}"), out.to_str().unwrap()]);
    d.run(&["rm", &container]);
    std::fs::read_to_string(out).unwrap()
}

/// What a refused upload must leave unchanged: blobs, staging, the log.
async fn footprint(server: &Server) -> (Vec<PathBuf>, Vec<PathBuf>, u64) {
    let staging: Vec<PathBuf> = files_under(&server.dir.join("imports"))
        .into_iter()
        .filter(|p| !p.starts_with(server.dir.join("imports/jobs")))
        .collect();
    (
        files_under(&server.dir.join("blobs")),
        staging,
        head(server).await,
    )
}

/// A legacy archive whose image is named `name`, with these extra members
/// before it and its layer as given.
fn legacy_with(layer: &[u8], diff_id_of: &[u8], name: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest(diff_id_of)]},
    })
    .to_string();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [name],
        "Layers": ["l1/layer.tar"],
    }])
    .to_string();
    let mut members = extra.to_vec();
    members.push(tar_member("l1/layer.tar", b'0', layer, ""));
    members.push(tar_member("config.json", b'0', config.as_bytes(), ""));
    members.push(tar_member("manifest.json", b'0', manifest.as_bytes(), ""));
    tar_of(&members)
}

#[tokio::test]
async fn hostile_archives_are_refused_and_leave_nothing_behind() {
    // A small limit, so the bomb and the oversized file stay small here;
    // the limit counts bytes read and inflated either way.
    let limit = 8 << 20;
    let server = Server::start_with(&[("BERTH_UPLOAD_MAX_FILE_SIZE", &limit.to_string())]);
    let auth = server.operator_basic();
    let layer = tar_with_file("hello.txt", b"hello\n");
    let ok = |extra: &[Vec<u8>]| legacy_with(&layer, &layer, "fine:v1", extra);
    let file = |name: &str| tar_member(name, b'0', b"x", "");
    // A member that declares 16 MiB and inflates to it from a few KiB.
    let bomb = {
        let mut t = tar_header("zeros.bin", b'0', 16 << 20, "");
        t.resize(t.len() + (16 << 20) + 1024, 0);
        gzip(&t)
    };
    assert!(bomb.len() < 100_000);
    let big_json = {
        let padding = " ".repeat(1_100_000);
        tar_of(&[tar_member(
            "manifest.json",
            b'0',
            format!("[{padding}]").as_bytes(),
            "",
        )])
    };
    let legacy = fixture("legacy-only.tar");
    let cases: Vec<(&str, Files, u16, &str)> = vec![
        ("path traversal", vec![("a.tar", ok(&[file("../evil.txt")]))], 400, "member ../evil.txt leaves the archive"),
        ("absolute path", vec![("a.tar", ok(&[file("/etc/evil")]))], 400, "member /etc/evil leaves the archive"),
        ("symbolic link", vec![("a.tar", ok(&[tar_member("link", b'2', b"", "/etc/passwd")]))], 400, "member link is a symbolic link"),
        ("hard link", vec![("a.tar", ok(&[tar_member("hard", b'1', b"", "l1/layer.tar")]))], 400, "member hard is a hard link"),
        ("device file", vec![("a.tar", ok(&[tar_member("dev", b'3', b"", "")]))], 400, "member dev is a device file"),
        ("duplicate member", vec![("a.tar", ok(&[file("twice"), file("twice")]))], 400, "member twice appears twice"),
        (
            "missing layer",
            vec![("a.tar", tar_of(&[tar_member("manifest.json", b'0', br#"[{"Config":"c.json","RepoTags":["m:v1"],"Layers":["gone/layer.tar"]}]"#, ""), tar_member("c.json", b'0', b"{}", "")]))],
            400,
            "names gone/layer.tar, which the archive does not hold",
        ),
        (
            "diff id mismatch",
            vec![("a.tar", legacy_with(&layer, b"another layer", "fine:v1", &[]))],
            400,
            "but the config expects",
        ),
        ("gzip bomb", vec![("bomb.tar.gz", bomb)], 413, "larger than the upload limit"),
        ("oversized file", vec![("big.tar", ok(&[tar_member("pad", b'0', &vec![7u8; 9 << 20], "")]))], 413, "larger than the upload limit"),
        ("oversized JSON member", vec![("a.tar", big_json)], 413, "member manifest.json is larger than 1048576 bytes"),
        (
            "more than 10 files",
            (0..11).map(|_| ("legacy-only.tar", legacy.clone())).collect(),
            400,
            "at most 10 files",
        ),
        ("not an archive", vec![("notes.tar", b"just some text, not a tar archive at all".repeat(20))], 400, "not a readable tar or tar.gz archive"),
        ("truncated archive", vec![("cut.tar", legacy[..legacy.len() / 2 + 100].to_vec())], 400, "truncated"),
        ("untagged image", vec![("a.tar", legacy_with(&layer, &layer, "untagged", &[]))], 400, "has no tag"),
        ("invalid name", vec![("a.tar", legacy_with(&layer, &layer, "team/Bad_Name:v1", &[]))], 400, "image name \"team/Bad_Name:v1\" is refused: repository name \"Bad_Name\" must contain only"),
        (
            "one bad file among good ones",
            vec![("legacy-only.tar", legacy.clone()), ("b.tar", ok(&[file("../x")]))],
            400,
            "leaves the archive",
        ),
    ];
    for (case, files, status, message) in cases {
        let before = footprint(&server).await;
        let (got, body) = upload(&server, &auth, "hostile", &files).await;
        assert_eq!(got, status, "{case}: {body}");
        let text = body["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{case}: {text:?} lacks {message:?}");
        assert_eq!(body["job"]["state"], "failed", "{case}: {body}");
        if case == "gzip bomb" {
            let read = body["job"]["files"][0]["bytes_read"].as_u64().unwrap();
            assert!(
                read > 0,
                "{case}: the bytes read before the refusal are reported"
            );
        }
        assert_eq!(
            footprint(&server).await,
            before,
            "{case}: something was left behind"
        );
    }
    // Nothing was created: not even the organization.
    let r = client_with(Default::default())
        .get(server.url("/v2/manage/namespaces/hostile"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn uploads_follow_a_pushs_permissions_and_jobs_are_private() {
    let server = Server::start_with(&[("BERTH_ORG_QUOTA", "1")]);
    let admin = server.create_account("uploader");
    let other = server.create_account("outsider");
    let legacy = vec![("legacy-only.tar", fixture("legacy-only.tar"))];

    // A free organization is created by the upload, within the quota...
    let (status, job) = upload(&server, &admin.basic(), "first-org", &legacy).await;
    assert_eq!(status, 201, "{job}");
    // ...and past it the upload is denied, as a push would be.
    let (status, body) = upload(&server, &admin.basic(), "second-org", &legacy).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["message"], "you do not have the permission");
    // Another account's organization looks missing.
    let (status, body) = upload(&server, &other.basic(), "first-org", &legacy).await;
    assert_eq!(status, 404, "{body}");

    // The job is the uploader's: another account does not see it.
    let id = job["id"].as_str().unwrap();
    let r = other
        .client()
        .get(server.url(&format!("/v2/manage/uploads/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = admin
        .client()
        .get(server.url(&format!("/v2/manage/uploads/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_job_survives_a_restart() {
    let mut server = Server::start();
    let (status, job) = upload(
        &server,
        &server.operator_basic(),
        "kept",
        &[("legacy-only.tar", fixture("legacy-only.tar"))],
    )
    .await;
    assert_eq!(status, 201, "{job}");
    server.restart();
    let id = job["id"].as_str().unwrap();
    assert_eq!(
        get_json(&server, &format!("/v2/manage/uploads/{id}")).await,
        job
    );
}

#[tokio::test]
async fn a_job_cut_off_by_a_crash_is_failed_and_leaves_nothing_behind() {
    let mut server = Server::start();
    let auth = server.operator_basic();
    let before = footprint(&server).await;
    // A body that sends the start of a large member, then stalls.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let mut start = tar_header("big.bin", b'0', 64 << 20, "");
    start.extend(random_bytes(2 << 20, 9));
    tx.send(Ok(start)).await.unwrap();
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|item| (item, rx))
    }));
    let form = Form::new().part("file", Part::stream(body).file_name("big.tar"));
    let request = client_with(Default::default())
        .post(server.url("/v2/manage/namespaces/cut/uploads"))
        .header("Authorization", &auth)
        .multipart(form)
        .send();
    let sending = tokio::spawn(request);
    // The job shows up, receiving, with the bytes read so far.
    let mut job = Value::Null;
    for _ in 0..100 {
        let jobs = get_json(&server, "/v2/manage/uploads").await;
        job = jobs["jobs"][0].clone();
        if job["files"][0]["bytes_read"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["state"], "receiving", "{job}");
    assert!(
        job["files"][0]["bytes_read"].as_u64().unwrap() >= 1 << 20,
        "{job}"
    );

    server.crash_and_restart();
    drop(tx);
    let _ = sending.await;
    let id = job["id"].as_str().unwrap();
    let after = get_json(&server, &format!("/v2/manage/uploads/{id}")).await;
    assert_eq!(after["state"], "failed", "{after}");
    assert_eq!(after["error"]["code"], "INTERRUPTED", "{after}");
    assert_eq!(footprint(&server).await, before, "nothing of it was kept");
}

#[test]
fn the_command_line_uploads_and_reports_each_file() {
    let server = Server::start();
    let (ak, _, password) = server.operator_key.clone().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uploads");
    let run = |files: &[&str]| {
        let out = std::process::Command::new(BERTH)
            .args(["upload", "--url", &server.url(""), "--namespace", "cli"])
            .args(["--user", &format!("local@{ak}")])
            .env("BERTH_PASSWORD", &password)
            .args(files.iter().map(|f| dir.join(f)))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["multi-image.tar", "oci-only.tar.gz"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("multi-image.tar: 40960 bytes, 3 layers, cli/multi-a:v1, cli/multi-a:latest, cli/multi-b:v2"),
        "{out}"
    );
    assert!(
        out.contains("oci-only.tar.gz: 1040 bytes, 2 layers, cli/oci-gz:3.0"),
        "{out}"
    );
    assert!(out.contains(": succeeded"), "{out}");

    // A file that is no archive: refused, named, and a failing exit.
    let (code, out, err) = run(&["../events/v1/AccessDenied.bin"]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("AccessDenied.bin: refused: the file is not a readable tar"),
        "{out}"
    );
    assert!(err.contains("400 Bad Request"), "{err}");
}
