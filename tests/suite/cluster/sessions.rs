//! Upload sessions without a row until they hold bytes: the `POST` writes
//! nothing, another node still knows the session by its id (and a made-up
//! id from a real one), the last chunk may come with the `PUT` on a third
//! node, two requests racing at one offset leave the bytes of the one
//! that won, and a cancelled or failed session is unknown from then on.

use super::{start_upload, Cluster};
use crate::support::*;

fn rows(cluster: &Cluster, id: &str) -> String {
    cluster.psql(&format!(
        "SELECT count(*) FROM berth_uploads WHERE id = '{id}' AND NOT ended"
    ))
}

pub(super) fn sessions_without_rows(cluster: &Cluster, c: &reqwest::blocking::Client, auth: &str) {
    let repo = "team/sessions";
    let url = |n: usize, location: &str| format!("http://{}{location}", cluster.node(n));
    let send =
        |r: reqwest::blocking::RequestBuilder| r.header("Authorization", auth).send().unwrap();

    // Started on node 1, asked about on node 2, finished whole on node 3.
    let location = start_upload(c, cluster.node(1), auth, repo);
    let id = location.rsplit('/').next().unwrap().to_owned();
    assert_eq!(rows(cluster, &id), "0", "starting an upload writes no row");
    let r = send(c.get(url(2, &location)));
    assert_eq!(r.status(), 204, "another node knows the session");
    assert_eq!(r.headers()["range"], "0-0");
    let blob = random_bytes(3000, 61);
    let r = send(
        c.put(format!("{}?digest={}", url(3, &location), digest(&blob)))
            .body(blob.clone()),
    );
    assert_eq!(r.status(), 201, "finished whole on a third node");
    assert_eq!(rows(cluster, &id), "0", "and never a row");

    // An id this cluster did not issue, or issued for another repository,
    // is unknown on every node.
    let made_up = format!("/v2/{repo}/blobs/uploads/3f1c2a8e-0000-4000-8000-000000000000");
    let elsewhere = location.replacen(repo, "team/elsewhere", 1);
    for (n, path) in [(1, &made_up), (2, &elsewhere)] {
        let r = send(c.get(url(n, path)));
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.text().unwrap().contains("BLOB_UPLOAD_UNKNOWN"));
        let r = send(
            c.put(format!("{}?digest={}", url(n, path), digest(&blob)))
                .body(blob.clone()),
        );
        assert_eq!(r.status(), 404, "PUT {path}");
    }

    // A first chunk on node 2 writes the row; the rest comes with the
    // PUT on node 3, which names no range: it is not the whole blob, so
    // the row is read and the upload completes from it.
    let blob = random_bytes(20_000, 62);
    let d = digest(&blob);
    let location = start_upload(c, cluster.node(1), auth, repo);
    let id = location.rsplit('/').next().unwrap().to_owned();
    let r = send(
        c.patch(url(2, &location))
            .header("Content-Type", "application/octet-stream")
            .body(blob[..12_000].to_vec()),
    );
    assert_eq!(r.status(), 202);
    assert_eq!(rows(cluster, &id), "1", "the first chunk writes the row");
    let r = send(
        c.put(format!("{}?digest={d}", url(3, &location)))
            .body(blob[12_000..].to_vec()),
    );
    assert_eq!(r.status(), 201, "the last chunk with the PUT");
    for n in 1..=3 {
        let r = send(c.get(format!("http://{}/v2/{repo}/blobs/{d}", cluster.node(n))));
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().unwrap().as_ref(), &blob[..], "node {n}");
    }
    // Its row goes off the request path, a moment later.
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(40));
        send(c.get(url(1, &location))).status() == 404
    });
    assert!(gone, "a session finished from its row is gone");

    // Two requests race at offset 0 of one session, on two nodes, with
    // different bytes of one length: one moves the session, and the blob
    // is made of its bytes, whichever object write came last.
    let location = start_upload(c, cluster.node(1), auth, repo);
    let bodies = [random_bytes(300_000, 63), random_bytes(300_000, 64)];
    let racing: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let (url, auth, body) = (url(i + 1, &location), auth.to_owned(), body.clone());
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .patch(url)
                    .header("Authorization", auth)
                    .header("Content-Range", "0-299999")
                    .header("Content-Type", "application/octet-stream")
                    .body(body)
                    .send()
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = racing.into_iter().map(|t| t.join().unwrap()).collect();
    let won: Vec<usize> = (0..2).filter(|i| statuses[*i] == 202).collect();
    assert_eq!(won.len(), 1, "one request moves the session: {statuses:?}");
    let winner = &bodies[won[0]];
    let d = digest(winner);
    assert_eq!(
        send(c.put(format!("{}?digest={d}", url(3, &location)))).status(),
        201
    );
    let r = send(c.get(format!("http://{}/v2/{repo}/blobs/{d}", cluster.node(3))));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().unwrap().as_ref(),
        &winner[..],
        "the blob is the bytes whose hash the session recorded"
    );

    // A session cancelled before any byte, or whose whole body had the
    // wrong digest, is unknown everywhere from then on.
    let cancelled = start_upload(c, cluster.node(1), auth, repo);
    assert_eq!(send(c.delete(url(2, &cancelled))).status(), 204);
    let failed = start_upload(c, cluster.node(1), auth, repo);
    let r = send(
        c.put(format!("{}?digest={d}", url(2, &failed)))
            .body(b"not those bytes".to_vec()),
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("DIGEST_INVALID"));
    for location in [&cancelled, &failed] {
        for n in 1..=3 {
            let r = send(c.get(url(n, location)));
            assert_eq!(r.status(), 404, "{location} on node {n}");
            let r = send(
                c.patch(url(n, location))
                    .header("Content-Type", "application/octet-stream")
                    .body(b"more".to_vec()),
            );
            assert_eq!(r.status(), 404, "PATCH {location} on node {n}");
        }
    }
}
