//! Small blobs sent whole live in PostgreSQL, not in the bucket, written
//! with the event that links them: every node serves them, whole and by range, a collection removes them, and a
//! small blob sent in chunks is an object as before.

use super::sweep::objects;
use super::{collect, post_whole, start_upload, Cluster};
use crate::support::*;

fn in_db(cluster: &Cluster, d: &str) -> String {
    cluster.psql(&format!(
        "SELECT count(*) FROM berth_blobs WHERE digest = '{d}'"
    ))
}

fn in_bucket(cluster: &Cluster, d: &str) -> bool {
    let hex = d.trim_start_matches("sha256:");
    objects(cluster, "blobs/sha256")
        .iter()
        .any(|k| k.ends_with(hex))
}

pub(super) fn small_blobs_in_db(cluster: &Cluster, c: &reqwest::blocking::Client, auth: &str) {
    let repo = "team/small";
    let at = |n: usize, path: &str| format!("http://{}/v2/{repo}/{path}", cluster.node(n));
    let blob = random_bytes(5000, 81);
    let d = digest(&blob);
    let r = post_whole(c, cluster.node(1), auth, repo, &d, blob.clone()).unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(in_db(cluster, &d), "1", "a small blob sent whole is a row");
    assert!(!in_bucket(cluster, &d), "and no object");
    assert_eq!(
        cluster.psql(&format!(
            "SELECT (SELECT xmin FROM berth_blobs WHERE digest = '{d}')::text \
             = (SELECT xmin FROM berth_events ORDER BY seq DESC LIMIT 1)::text"
        )),
        "t",
        "the row was written by the transaction that appended the event linking it"
    );

    for n in 1..=3 {
        let r = c
            .get(at(n, &format!("blobs/{d}")))
            .header("Authorization", auth)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().unwrap().as_ref(), &blob[..], "node {n} serves it");
        let r = c
            .get(at(n, &format!("blobs/{d}")))
            .header("Authorization", auth)
            .header("Range", "bytes=4990-")
            .send()
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            r.headers()["content-range"].to_str().unwrap(),
            "bytes 4990-4999/5000"
        );
        assert_eq!(r.bytes().unwrap().as_ref(), &blob[4990..], "a range of it");
    }

    // A node that redirects blob GETs to the store serves a row itself,
    // and redirects for an object.
    let (ok, out) = cluster.sh(&["stop", "3"]);
    assert!(ok, "stop 3: {out}");
    // It also signs the bodies it sends to the store, which the others
    // send unsigned: the object it writes reads back the same.
    let (ok, out) = cluster.sh_with(
        &["start", "3"],
        &[
            ("BERTH_BLOB_REDIRECT_SECONDS", "60"),
            ("BERTH_S3_SIGN_PAYLOAD", "true"),
        ],
    );
    assert!(ok, "start 3: {out}");
    let large = random_bytes(80 << 10, 83);
    let ld = digest(&large);
    let r = post_whole(c, cluster.node(3), auth, repo, &ld, large.clone()).unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(at(1, &format!("blobs/{ld}")))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), &large[..], "signed, then read");
    let direct = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |d: &str| {
        direct
            .get(at(3, &format!("blobs/{d}")))
            .header("Authorization", auth)
            .send()
            .unwrap()
    };
    let r = get(&d);
    assert_eq!(r.status(), 200, "a row has no address of its own");
    assert_eq!(r.bytes().unwrap().as_ref(), &blob[..]);
    assert_eq!(get(&ld).status(), 307, "an object is redirected to");

    // A row cut short is an error, never a short body.
    cluster.psql(&format!(
        "UPDATE berth_blobs SET body = substring(body FROM 1 FOR 10) WHERE digest = '{d}'"
    ));
    let r = c
        .get(at(2, &format!("blobs/{d}")))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());

    // Unlinked and collected, the row goes.
    let r = c
        .delete(at(2, &format!("blobs/{d}")))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let report = collect(c, cluster.node(3), auth);
    assert!(
        report["blobs"].to_string().contains(&d),
        "the unreferenced small blob is swept: {report}"
    );
    assert_eq!(in_db(cluster, &d), "0", "its row is gone");

    // The same size in chunks (POST, PATCH, PUT, as docker pushes) is an
    // object in the bucket.
    let chunked = random_bytes(5000, 82);
    let cd = digest(&chunked);
    let location = start_upload(c, cluster.node(1), auth, repo);
    let r = c
        .patch(format!("http://{}{location}", cluster.node(2)))
        .header("Authorization", auth)
        .body(chunked.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = c
        .put(format!("http://{}{location}?digest={cd}", cluster.node(3)))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(in_db(cluster, &cd), "0");
    assert!(in_bucket(cluster, &cd), "a chunked blob is an object");
    let r = c
        .get(at(1, &format!("blobs/{cd}")))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), &chunked[..]);
}
