//! Shared pins, for real: an upload finishing on one node keeps its blob
//! from a collection that runs on another meanwhile, and a pin waits for
//! a removal of its digest that is in progress (the digest's advisory
//! lock, held here from psql as a collection holds it).

use std::io::Read;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::db::{lock_held, lock_key};
use super::{collect, post_whole, start_upload, Cluster};
use crate::support::*;

/// A request body that sends its first half, then waits to be let go
/// before it sends the rest: an upload held between its pin and its link.
struct Held {
    bytes: Vec<u8>,
    sent: usize,
    gate: mpsc::Receiver<()>,
}

impl Read for Held {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let half = self.bytes.len() / 2;
        if self.sent == half {
            // A dropped sender lets the rest go too.
            let _ = self.gate.recv();
        }
        let end = if self.sent < half {
            half
        } else {
            self.bytes.len()
        };
        let n = (end - self.sent).min(buf.len());
        buf[..n].copy_from_slice(&self.bytes[self.sent..self.sent + n]);
        self.sent += n;
        Ok(n)
    }
}

/// The advisory-lock key that a digest's pins and its removal share.
fn pin_key(digest: &str) -> i64 {
    lock_key(&format!("berth-pin:{digest}"))
}

/// Holds the advisory lock `key` from a psql session for `seconds`.
fn hold_lock(cluster: &Cluster, key: i64, seconds: u32) -> Child {
    Command::new("psql")
        .args([cluster.pg(), "-Atq"])
        .args(["-c", &format!("SELECT pg_advisory_lock({key})")])
        .args(["-c", &format!("SELECT pg_sleep({seconds})")])
        .spawn()
        .expect("run psql")
}

pub(super) fn pins_across_nodes(cluster: &Cluster, c: &reqwest::blocking::Client, auth: &str) {
    let repo = "team/pinned";
    let at = |n: usize, path: &str| format!("http://{}/v2/{repo}/{path}", cluster.node(n));
    // Larger than the small blobs the database holds: an object.
    let blob = random_bytes(96 << 10, 77);
    let d = digest(&blob);

    // The blob is pushed and unlinked again: its object stays in the
    // bucket, referenced by nothing, for the next collection to sweep.
    let r = post_whole(c, cluster.node(1), auth, repo, &d, blob.clone()).unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .delete(at(1, &format!("blobs/{d}")))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);

    // The same bytes are uploaded again on node 1, whose last request
    // stops halfway: the digest is pinned.
    let location = start_upload(c, cluster.node(1), auth, repo);
    // A session with a row holds its pin there; one with none yet (no
    // chunk came before the last request) in the pins' table.
    let pinned = format!(
        "SELECT (SELECT count(*) FROM berth_uploads WHERE pinned = '{d}') \
         + (SELECT count(*) FROM berth_pins WHERE digest = '{d}')"
    );
    // Named under another repository, the session is unknown, and
    // nothing is pinned.
    let elsewhere = location.replacen(repo, "team/elsewhere", 1);
    let r = c
        .put(format!("http://{}{elsewhere}?digest={d}", cluster.node(1)))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().unwrap().contains("BLOB_UPLOAD_UNKNOWN"));
    assert_eq!(
        cluster.psql(&pinned),
        "0",
        "nothing pinned through another repository"
    );
    let (go, gate) = mpsc::channel();
    let put = {
        let url = format!("http://{}{location}?digest={d}", cluster.node(1));
        let (auth, bytes) = (auth.to_owned(), blob.clone());
        std::thread::spawn(move || {
            reqwest::blocking::Client::new()
                .put(url)
                .header("Authorization", auth)
                .body(reqwest::blocking::Body::new(Held {
                    bytes,
                    sent: 0,
                    gate,
                }))
                .send()
                .map(|r| r.status().as_u16())
        })
    };
    cluster.await_psql(&pinned, "1", "the finishing upload pins its digest");

    // A collection on node 2 meanwhile leaves the blob alone.
    let report = collect(c, cluster.node(2), auth);
    assert!(
        !report["blobs"].to_string().contains(&d),
        "a pinned blob is not swept: {report}"
    );
    go.send(()).unwrap();
    assert_eq!(
        put.join().unwrap().unwrap(),
        201,
        "the held upload finishes"
    );
    let r = c
        .get(at(3, &format!("blobs/{d}")))
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().as_ref(), &blob[..], "node 3 serves it");
    cluster.await_psql(&pinned, "0", "the pin goes once the blob is linked");

    // While a removal of a digest holds its lock, an upload of that digest
    // waits before it pins (and so before its bytes move in). A small blob
    // sent whole takes no pin: its bytes are written with its link, which
    // a collection step, holding the log's write lock, is ordered with.
    let other = random_bytes(80 << 10, 78);
    let key = pin_key(&digest(&other));
    let mut holder = hold_lock(cluster, key, 3);
    cluster.await_psql(
        &lock_held(key, "count(*)"),
        "1",
        "psql holds the digest's lock",
    );
    let started = Instant::now();
    let r = post_whole(c, cluster.node(2), auth, repo, &digest(&other), other).unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 201);
    assert!(holder.wait().unwrap().success());
    assert!(
        waited >= Duration::from_millis(1500),
        "the upload waited for the digest's lock: it took {waited:?}"
    );
}
