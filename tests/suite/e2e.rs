//! Real clients against a real server: the Docker engine started by the test
//! script (DOCKER_HOST) and skopeo. These tests fail, never skip, when a
//! client or the daemon is missing.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::*;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn docker(args: &[&str]) -> String {
    assert!(
        std::env::var_os("DOCKER_HOST").is_some(),
        "DOCKER_HOST is not set: run the suite with scripts/test.sh, which starts a private Docker daemon"
    );
    run(Command::new("docker").args(args))
}

/// Builds a three-layer image FROM scratch, one layer 64 MiB of random bytes.
fn build_image(tag: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), random_bytes(64 << 20, seed)).unwrap();
    std::fs::write(dir.path().join("small.txt"), format!("seed {seed}\n")).unwrap();
    std::fs::write(dir.path().join("mid.bin"), random_bytes(1 << 20, seed + 1)).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY big.bin /big.bin\nCOPY small.txt /small.txt\nCOPY mid.bin /mid.bin\n",
    )
    .unwrap();
    run(Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0"));
}

fn image_id(tag: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", tag])
}

fn layer_count(tag: &str) -> usize {
    docker(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", tag])
        .parse()
        .unwrap()
}

/// `docker login` with the operator's long-term credential.
fn login(server: &Server) {
    let (ak, _, password) = server.operator_key.clone().unwrap();
    docker(&[
        "login",
        "-u",
        &format!("local@{ak}"),
        "-p",
        &password,
        &server.host(),
    ]);
}

fn push_rmi_pull(server: &mut Server, repo: &str, seed: u64, restart: bool) {
    login(server);
    let tag = format!("{}/{repo}:v1", server.host());
    build_image(&tag, seed);
    assert_eq!(layer_count(&tag), 3);
    let before = image_id(&tag);
    docker(&["push", &tag]);
    docker(&["rmi", &tag]);
    assert!(
        Command::new("docker")
            .args(["image", "inspect", &tag])
            .output()
            .unwrap()
            .status
            .code()
            != Some(0)
    );
    if restart {
        server.restart();
    }
    docker(&["pull", &tag]);
    assert_eq!(image_id(&tag), before, "same image id after the round trip");
    docker(&["rmi", &tag]);
}

#[test]
fn docker_push_rmi_pull_round_trip() {
    let mut server = Server::start();
    push_rmi_pull(&mut server, "e2e/app", 41, false);
}

#[test]
fn docker_pull_after_restart() {
    let mut server = Server::start();
    push_rmi_pull(&mut server, "e2e/restart", 42, true);
}

/// Writes an OCI layout holding a two-platform index; returns the index bytes.
fn write_oci_layout(dir: &Path) -> Vec<u8> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest(bytes);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        (d, bytes.len())
    };
    let mut children = Vec::new();
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let layer = tar_with_file(&format!("hello-{arch}"), &random_bytes(5000, i as u64 + 1));
        let (ld, ls) = put(&layer);
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [ld]},
            "config": {}
        }))
        .unwrap();
        let (cd, cs) = put(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
            "layers": [{"mediaType": OCI_LAYER, "digest": ld, "size": ls}]
        }))
        .unwrap();
        let (md, ms) = put(&manifest);
        children.push(json!({
            "mediaType": OCI_MANIFEST, "digest": md, "size": ms,
            "platform": {"architecture": arch, "os": "linux"}
        }));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children
    }))
    .unwrap();
    let (id, is) = put(&index);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_INDEX, "digest": id, "size": is,
                "annotations": {"org.opencontainers.image.ref.name": "v1"}
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    index
}

/// A one-file tar archive (ustar), enough for a layer.
fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[tokio::test]
async fn skopeo_copies_a_multi_platform_index_in_and_out() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let index = write_oci_layout(&src);
    let dest = format!("docker://{}/e2e/multi:v1", server.host());
    let (ak, _, password) = server.operator_key.clone().unwrap();
    let creds = format!("local@{ak}:{password}");
    run(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
        ])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&dest));

    let served = server
        .client()
        .get(server.url("/v2/e2e/multi/manifests/v1"))
        .header("Accept", OCI_INDEX)
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["content-type"], OCI_INDEX);
    assert_eq!(
        served.bytes().await.unwrap().as_ref(),
        index.as_slice(),
        "index stored byte for byte"
    );

    let out = tmp.path().join("out");
    run(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
        ])
        .arg(&dest)
        .arg(format!("oci:{}:v1", out.display())));
    for file in files_under(&src.join("blobs")) {
        let copied = out.join(file.strip_prefix(&src).unwrap());
        assert_eq!(
            std::fs::read(&copied)
                .unwrap_or_else(|_| panic!("{} not copied out", copied.display())),
            std::fs::read(&file).unwrap(),
            "{} differs after the round trip",
            file.display()
        );
    }
}
