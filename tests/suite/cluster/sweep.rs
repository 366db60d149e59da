//! Left-over upload objects, for real: a collection removes the chunk
//! objects of sessions it removes as idle, and those a crash left behind
//! without a session. The bucket is listed with S3's own `ListObjectsV2`,
//! signed here, not through berth.

use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use super::{collect, start_upload, Cluster};
use crate::support::*;

fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The keys of the objects under `under/` in the nodes' prefix.
pub(super) fn objects(cluster: &Cluster, under: &str) -> Vec<String> {
    let endpoint = cluster.var("BERTH_CLUSTER_S3");
    let host = endpoint.trim_start_matches("http://");
    let secret = cluster.var("BERTH_CLUSTER_S3_SECRET");
    let now = chrono::Utc::now();
    let (stamp, day) = (
        now.format("%Y%m%dT%H%M%SZ").to_string(),
        now.format("%Y%m%d").to_string(),
    );
    let query = format!(
        "list-type=2&prefix=registry%2F{}%2F",
        under.replace('/', "%2F")
    );
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "GET\n/berth\n{query}\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n\
         x-amz-date:{stamp}\n\n{signed}\nUNSIGNED-PAYLOAD"
    );
    let scope = format!("{day}/garage/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical))
    );
    let key = [b"garage".as_slice(), b"s3", b"aws4_request"].iter().fold(
        mac(format!("AWS4{secret}").as_bytes(), day.as_bytes()),
        |k, part| mac(&k, part),
    );
    let r = reqwest::blocking::Client::new()
        .get(format!("{endpoint}/berth?{query}"))
        .header("x-amz-date", &stamp)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={}",
                cluster.var("BERTH_CLUSTER_S3_KEY_ID"),
                hex(&mac(&key, to_sign.as_bytes()))
            ),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "listing the bucket");
    r.text()
        .unwrap()
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Key>").map(|(k, _)| k.to_owned()))
        .collect()
}

/// Starts an upload on `host` and stores one chunk; the session's id.
fn one_chunk(c: &reqwest::blocking::Client, host: &str, auth: &str, seed: u64) -> String {
    let location = start_upload(c, host, auth, "team/sweep");
    let r = c
        .patch(format!("http://{host}{location}"))
        .header("Authorization", auth)
        .header("Content-Type", "application/octet-stream")
        .body(random_bytes(1000, seed))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    location.rsplit('/').next().unwrap().to_owned()
}

/// On `node`, started with no idle allowance for upload sessions.
pub(super) fn leftovers_swept(
    cluster: &Cluster,
    c: &reqwest::blocking::Client,
    auth: &str,
    node: usize,
) {
    let host = cluster.node(node);
    let (crashed, idle) = (one_chunk(c, host, auth, 91), one_chunk(c, host, auth, 92));
    let holds = |id: &str| objects(cluster, "uploads").iter().any(|k| k.contains(id));
    assert!(
        holds(&crashed) && holds(&idle),
        "{:?}",
        objects(cluster, "uploads")
    );
    // A crash between a session's removal and its chunks' leaves this.
    cluster.psql(&format!("DELETE FROM berth_uploads WHERE id = '{crashed}'"));
    let report = collect(c, host, auth);
    let removed = report["uploads"].to_string();
    assert!(
        removed.contains(&idle) && !removed.contains(&crashed),
        "the idle session is removed, the crashed one had no row: {report}"
    );
    let left = objects(cluster, "uploads");
    assert!(
        !left
            .iter()
            .any(|k| k.contains(&crashed) || k.contains(&idle)),
        "both sessions' chunks are gone: {left:?}"
    );
}
