//! Drives the same load against Berth and the reference registry, one after
//! the other on loopback, and prints one table. Every measurement uses the
//! plain Registry V2 protocol, so both servers do exactly the same work.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

#[derive(Parser)]
struct Args {
    /// Berth base URL.
    #[arg(long)]
    berth: String,
    /// Berth server process id (for peak RSS).
    #[arg(long)]
    berth_pid: u32,
    /// `Authorization` header for Berth (Basic with a docker credential).
    #[arg(long)]
    berth_auth: String,
    /// Reference registry base URL.
    #[arg(long)]
    reference: String,
    /// Reference registry process id.
    #[arg(long)]
    reference_pid: u32,
    /// Size of the large blob in MiB.
    #[arg(long, default_value_t = 1024)]
    blob_mib: usize,
    /// Number of small images pushed per run.
    #[arg(long, default_value_t = 500)]
    images: usize,
    /// Small images pushed with 8 clients, untimed, before the timed runs
    /// of each server: every server is measured warm (its caches, its
    /// connections, its database's first pages), not in its first seconds.
    #[arg(long, default_value_t = 100)]
    warm_images: usize,
    /// Seconds of manifest GET load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// `reference`: Berth against the reference registry. `cluster`: the
    /// cluster (`--berth`, through its load balancer) against one embedded
    /// node (`--reference`, with `--reference-auth`), without the large
    /// blob (bench/cluster.sh measures that against the object store).
    #[arg(long, value_enum, default_value = "reference")]
    mode: Mode,
    /// `Authorization` header for the second target, in cluster mode.
    #[arg(long, default_value = "")]
    reference_auth: String,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Reference,
    Cluster,
    /// Only manifest GETs at `--berth` (the images of an earlier run must
    /// be there): for measuring the servers' CPU per request around it.
    Gets,
    /// Only `--images` small image pushes with 8 clients at `--berth`: for
    /// measuring each process's CPU per image around it.
    Pushes,
}

struct Target {
    name: &'static str,
    base: String,
    pid: u32,
    /// `Authorization` value every request carries (empty: none).
    auth: String,
}

/// A client sending `auth` (when not empty) with every request, as a
/// logged-in docker client does.
fn client_for(auth: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if !auth.is_empty() {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            auth.parse().expect("valid header value"),
        );
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CHUNK: usize = 1 << 20;

fn digest(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Peak resident memory of a process, in MiB (VmHWM).
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets a process's peak RSS to its current RSS (`clear_refs` 5), so the
/// next reading covers only what follows (logins before the run hash with
/// argon2, whose working memory would otherwise count).
fn reset_peak_rss(pid: u32) {
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("cannot reset the peak RSS of {pid} ({e}); the figure covers the whole run");
    }
}

/// The large blob: `n` one-MiB chunks, each different, generated on the fly.
fn big_chunk(seed: &[u8], i: usize) -> Bytes {
    let mut c = seed.to_vec();
    c[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Bytes::from(c)
}

fn location(base: &str, r: &reqwest::Response) -> String {
    let loc = r.headers()["location"].to_str().expect("Location is text");
    if loc.starts_with("http") {
        loc.to_owned()
    } else {
        format!("{base}{loc}")
    }
}

fn with_digest(loc: &str, d: &str) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={d}")
}

/// POST, one streamed PATCH, PUT: the way docker pushes a layer.
async fn push_big(c: &reqwest::Client, t: &Target, seed: &[u8], n: usize, d: &str) -> f64 {
    let started = Instant::now();
    let r = c
        .post(format!("{}/v2/bench/big/blobs/uploads/", t.base))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 202, "{}: start upload", t.name);
    let loc = location(&t.base, &r);
    let seed = seed.to_vec();
    let body =
        futures_util::stream::iter(0..n).map(move |i| Ok::<_, std::io::Error>(big_chunk(&seed, i)));
    let r = c
        .patch(&loc)
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 202, "{}: patch", t.name);
    let loc = location(&t.base, &r);
    let r = c
        .put(with_digest(&loc, d))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 201, "{}: finish", t.name);
    (n * CHUNK) as f64 / 1e6 / started.elapsed().as_secs_f64()
}

async fn pull_big(c: &reqwest::Client, t: &Target, n: usize, d: &str) -> f64 {
    let started = Instant::now();
    let r = c
        .get(format!("{}/v2/bench/big/blobs/{d}", t.base))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 200, "{}: pull", t.name);
    let mut stream = r.bytes_stream();
    let mut got = 0usize;
    while let Some(chunk) = stream.next().await {
        got += chunk.expect("body chunk").len();
    }
    assert_eq!(got, n * CHUNK, "{}: pulled size", t.name);
    got as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// One small image: a config and a layer (POST + PUT each), then the manifest.
async fn push_small(c: &reqwest::Client, t: &Target, run: &str, i: usize) {
    let config = format!("{{\"run\":\"{run}\",\"image\":{i}}}").into_bytes();
    let layer = format!("layer {run} {i} {}", "x".repeat(1024)).into_bytes();
    for blob in [&config, &layer] {
        let r = c
            .post(format!("{}/v2/bench/small/blobs/uploads/", t.base))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(r.status(), 202, "{}: start", t.name);
        let loc = location(&t.base, &r);
        let r = c
            .put(with_digest(&loc, &digest(blob)))
            .header("Content-Type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .await
            .expect("the server answers");
        assert_eq!(r.status(), 201, "{}: blob", t.name);
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}]
    }))
    .expect("plain JSON encodes");
    let r = c
        .put(format!("{}/v2/bench/small/manifests/{run}-{i}", t.base))
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 201, "{}: manifest", t.name);
}

async fn small_images(
    c: &reqwest::Client,
    t: &Target,
    run: &str,
    images: usize,
    clients: usize,
) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..clients {
        let (c, run) = (c.clone(), run.to_owned());
        let t = Target {
            name: t.name,
            base: t.base.clone(),
            pid: t.pid,
            auth: t.auth.clone(),
        };
        tasks.push(tokio::spawn(async move {
            for i in (k..images).step_by(clients) {
                push_small(&c, &t, &run, i).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    images as f64 / started.elapsed().as_secs_f64()
}

/// Pulls the first `images` small images of the sequential run one after
/// another over one kept-alive connection, the way a single docker daemon
/// pulls: manifest, then config and layer. Images per second.
async fn small_pulls(t: &Target, images: usize) -> f64 {
    let c = client_for(&t.auth);
    let started = Instant::now();
    for i in 0..images {
        let r = c
            .get(format!("{}/v2/bench/small/manifests/seq-{i}", t.base))
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(r.status(), 200, "{}: manifest", t.name);
        let manifest: serde_json::Value = r.json().await.expect("manifest is JSON");
        let config = manifest["config"]["digest"]
            .as_str()
            .expect("config digest");
        let layer = manifest["layers"][0]["digest"]
            .as_str()
            .expect("layer digest");
        for d in [config, layer] {
            let r = c
                .get(format!("{}/v2/bench/small/blobs/{d}", t.base))
                .send()
                .await
                .expect("the server answers");
            assert_eq!(r.status(), 200, "{}: blob", t.name);
            r.bytes().await.expect("body");
        }
    }
    images as f64 / started.elapsed().as_secs_f64()
}

/// Manifest GETs by tag from `conns` connections for `secs` seconds:
/// (requests per second, p99 latency in ms).
async fn manifest_gets(t: &Target, conns: usize, secs: u64) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let url = format!("{}/v2/bench/small/manifests/seq-0", t.base);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let url = url.clone();
        // One client per task: one connection each, as 32 separate pullers would have.
        let c = client_for(&t.auth);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let s = Instant::now();
                let r = c
                    .get(&url)
                    .header("Accept", OCI_MANIFEST)
                    .send()
                    .await
                    .expect("the server answers");
                assert_eq!(r.status(), 200);
                r.bytes().await.expect("body");
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    (all.len() as f64 / elapsed, p99.as_secs_f64() * 1000.0)
}

struct Row {
    metric: &'static str,
    berth: f64,
    reference: f64,
    higher_is_better: bool,
    target: &'static str,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let alone = Target {
        name: "alone",
        base: args.berth.clone(),
        pid: args.berth_pid,
        auth: args.berth_auth.clone(),
    };
    match args.mode {
        Mode::Gets => {
            let (rps, p99) = manifest_gets(&alone, 32, args.seconds).await;
            println!(
                "manifest GET/s {rps:.1} p99 {p99:.2} ms requests {:.0}",
                rps * args.seconds as f64
            );
            return;
        }
        Mode::Pushes => {
            let c = client_for(&alone.auth);
            // A run of its own each time: images pushed again would
            // record nothing and measure less than a push.
            let run = format!(
                "cpu-{}",
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            );
            let rate = small_images(&c, &alone, &run, args.images, 8).await;
            println!("small image pushes/s {rate:.1} images {}", args.images);
            return;
        }
        Mode::Reference | Mode::Cluster => {}
    }
    let cluster = args.mode == Mode::Cluster;
    let targets = [
        Target {
            name: if cluster { "cluster" } else { "berth" },
            base: args.berth.clone(),
            pid: args.berth_pid,
            auth: args.berth_auth.clone(),
        },
        Target {
            name: if cluster { "embedded" } else { "reference" },
            base: args.reference.clone(),
            pid: args.reference_pid,
            auth: args.reference_auth.clone(),
        },
    ];
    let n = args.blob_mib;
    let seed: Vec<u8> = (0..CHUNK)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_digest = {
        let mut h = Sha256::new();
        for i in 0..n {
            h.update(big_chunk(&seed, i));
        }
        format!(
            "sha256:{}",
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };

    let mut results: Vec<[f64; 8]> = Vec::new();
    for t in &targets {
        let c = client_for(&t.auth);
        let (push, rss, pull) = if cluster {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            eprintln!("== {}: {} MiB blob push", t.name, n);
            reset_peak_rss(t.pid);
            let push = push_big(&c, t, &seed, n, &big_digest).await;
            let rss = peak_rss_mib(t.pid);
            eprintln!("== {}: blob pull", t.name);
            (push, rss, pull_big(&c, t, n, &big_digest).await)
        };
        eprintln!(
            "== {}: {} small images to warm up",
            t.name, args.warm_images
        );
        small_images(&c, t, "warm", args.warm_images, 8).await;
        eprintln!("== {}: {} small images, sequential", t.name, args.images);
        let seq = small_images(&c, t, "seq", args.images, 1).await;
        eprintln!("== {}: {} small images, 8 clients", t.name, args.images);
        let par = small_images(&c, t, "par", args.images, 8).await;
        eprintln!(
            "== {}: manifest GETs, 32 connections, {} s",
            t.name, args.seconds
        );
        let (rps, p99) = manifest_gets(t, 32, args.seconds).await;
        eprintln!(
            "== {}: {} small image pulls, one connection",
            t.name, args.images
        );
        let pulls = small_pulls(t, args.images).await;
        results.push([push, pull, seq, par, rps, p99, rss, pulls]);
    }
    let (b, r) = (results[0], results[1]);
    let rows = [
        Row {
            metric: "1 GiB blob push, MB/s",
            berth: b[0],
            reference: r[0],
            higher_is_better: true,
            target: ">= 4x",
        },
        Row {
            metric: "1 GiB blob pull, MB/s",
            berth: b[1],
            reference: r[1],
            higher_is_better: true,
            target: ">= 1x",
        },
        Row {
            metric: "small image pushes/s, sequential",
            berth: b[2],
            reference: r[2],
            higher_is_better: true,
            target: ">= 3x",
        },
        Row {
            metric: "small image pushes/s, 8 clients",
            berth: b[3],
            reference: r[3],
            higher_is_better: true,
            target: ">= 3x",
        },
        Row {
            metric: "small image pulls/s, one connection",
            berth: b[7],
            reference: r[7],
            higher_is_better: true,
            target: ">= 3x",
        },
        Row {
            metric: "manifest GET/s, 32 connections",
            berth: b[4],
            reference: r[4],
            higher_is_better: true,
            target: ">= 2x",
        },
        Row {
            metric: "manifest GET p99 ms, 32 connections",
            berth: b[5],
            reference: r[5],
            higher_is_better: false,
            target: "lower",
        },
        Row {
            metric: "peak RSS during blob push, MiB",
            berth: b[6],
            reference: r[6],
            higher_is_better: false,
            target: "lower",
        },
    ];
    // The cluster's targets: half the embedded node's push rate on the
    // same machine (the extra hops share its two cores), and figures to
    // report for the rest.
    let rows = rows.into_iter().filter(|r| !r.berth.is_nan()).map(|mut r| {
        if cluster {
            r.target = if r.metric.contains("pushes") {
                ">= 0.5x"
            } else {
                "report"
            };
        }
        r
    });
    println!();
    println!(
        "| {:<38} | {:>10} | {:>10} | {:>7} | {:<7} | {:<4} |",
        "measurement", targets[0].name, targets[1].name, "ratio", "target", "met"
    );
    println!(
        "|{:-<40}|{:->12}|{:->12}|{:->9}|{:-<9}|{:-<6}|",
        "", "", "", "", "", ""
    );
    for row in rows {
        let ratio = row.berth / row.reference;
        let met = match row.target {
            ">= 4x" => ratio >= 4.0,
            ">= 3x" => ratio >= 3.0,
            ">= 2x" => ratio >= 2.0,
            ">= 1x" => ratio >= 1.0,
            ">= 0.5x" => ratio >= 0.5,
            "report" => true,
            _ => {
                if row.higher_is_better {
                    ratio >= 1.0
                } else {
                    ratio < 1.0
                }
            }
        };
        println!(
            "| {:<38} | {:>10.1} | {:>10.1} | {:>6.2}x | {:<7} | {:<4} |",
            row.metric,
            row.berth,
            row.reference,
            ratio,
            row.target,
            if met { "yes" } else { "NO" }
        );
    }
}
