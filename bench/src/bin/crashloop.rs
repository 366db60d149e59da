//! The crash loop: starts `berth`, pushes small images from several clients
//! at once, kills the server with SIGKILL at a random moment, restarts it,
//! and checks that every push it acknowledged (a `201` for the manifest)
//! pulls back whole. Repeats for `--cycles` cycles, then prints the figures.
//! `bench/crash-loop.sh` runs it; docs/benchmarks.md records its runs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use sha2::{Digest as _, Sha256};

#[derive(Parser)]
struct Args {
    /// The `berth` binary.
    #[arg(long)]
    berth_bin: PathBuf,
    /// Its data directory (made by the script, with an operator key).
    #[arg(long)]
    data_dir: PathBuf,
    /// `Authorization` header of a docker credential.
    #[arg(long)]
    auth: String,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:5301")]
    listen: String,
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 200)]
    cycles: usize,
    /// Concurrent pushing clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// More flags for `berth serve` (repeatable): `--log …`, `--blob-store
    /// …` make the killed server a node of a cluster.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Other addresses every acknowledged push must also pull back from at
    /// the end (repeatable): the cluster's load balancer, its other nodes.
    #[arg(long)]
    check_at: Vec<String>,
}

/// An acknowledged push: where, and what it must pull back as.
#[derive(Clone)]
struct Pushed {
    repo: String,
    tag: String,
    manifest: String,
    blobs: Vec<(String, Vec<u8>)>,
}

fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A small random-looking blob, different for every `seed`.
fn blob(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn start(args: &Args) -> Child {
    Command::new(&args.berth_bin)
        .args(["serve", "--listen", &args.listen, "--data-dir"])
        .arg(&args.data_dir)
        .args(&args.serve_args)
        .env("BERTH_LOG", "error")
        .env("BERTH_GC_INTERVAL", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start berth")
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "berth did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One image: config and layer uploaded monolithically, then the manifest.
/// `Some` when the registry acknowledged all of it.
async fn push(client: &reqwest::Client, base: &str, seed: u64) -> Option<Pushed> {
    let repo = format!("crash/r{}", seed % 8);
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = blob(seed, 4096 + (seed % 64) as usize * 64);
    for b in [&config, &layer] {
        let r = client
            .post(format!(
                "{base}/v2/{repo}/blobs/uploads/?digest={}",
                digest(b)
            ))
            .body(b.clone())
            .send()
            .await
            .ok()?;
        if r.status() != 201 {
            return None;
        }
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    });
    let body = serde_json::to_vec(&manifest).ok()?;
    let tag = format!("s{seed}");
    let r = client
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.clone())
        .send()
        .await
        .ok()?;
    (r.status() == 201).then(|| Pushed {
        repo,
        tag,
        manifest: digest(&body),
        blobs: vec![(digest(&config), config), (digest(&layer), layer)],
    })
}

/// Pulls an acknowledged push back; `Err` says what is missing.
async fn check(client: &reqwest::Client, base: &str, p: &Pushed) -> Result<(), String> {
    let r = client
        .get(format!("{base}/v2/{}/manifests/{}", p.repo, p.tag))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let got = r
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if r.status() != 200 || got.as_deref() != Some(p.manifest.as_str()) {
        return Err(format!(
            "{}:{} manifest: {} {got:?}",
            p.repo,
            p.tag,
            r.status()
        ));
    }
    for (d, bytes) in &p.blobs {
        let r = client
            .get(format!("{base}/v2/{}/blobs/{d}", p.repo))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        if body.as_ref() != bytes.as_slice() {
            return Err(format!("{}:{} blob {d} lost or altered", p.repo, p.tag));
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let base = format!("http://{}", args.listen);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "Authorization",
        args.auth.parse().expect("an Authorization value"),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut acknowledged: Vec<Pushed> = Vec::new();
    let mut ready_times = Vec::new();
    let mut attempted = 0u64;
    let mut next_seed = 0u64;
    let started = Instant::now();
    for cycle in 0..args.cycles {
        let mut server = start(&args);
        ready_times.push(wait_ready(&client, &base).await);
        // Every push acknowledged before the last kill must be there.
        let since = acknowledged.len().saturating_sub(400);
        for p in &acknowledged[since..] {
            if let Err(e) = check(&client, &base, p).await {
                let _ = server.kill();
                panic!("cycle {cycle}: an acknowledged push was lost: {e}");
            }
        }
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for c in 0..args.clients {
            let (client, base, done) = (client.clone(), base.clone(), done.clone());
            let first = next_seed + c as u64;
            let step = args.clients as u64;
            tasks.push(tokio::spawn(async move {
                let mut seed = first;
                let mut tried = 0u64;
                loop {
                    tried += 1;
                    match push(&client, &base, seed).await {
                        Some(p) => done.lock().expect("lock").push(p),
                        None => return tried,
                    }
                    seed += step;
                }
            }));
        }
        // Kill at a moment that varies from cycle to cycle: 100-600 ms in.
        let wait = 100 + (blob(cycle as u64, 1)[0] as u64 * 2);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill().expect("SIGKILL");
        server.wait().expect("reap");
        for t in tasks {
            attempted += t.await.expect("pusher");
        }
        let mut done = std::mem::take(&mut *done.lock().expect("lock"));
        next_seed += 1_000_000;
        acknowledged.append(&mut done);
    }
    let mut server = start(&args);
    wait_ready(&client, &base).await;
    let mut lost = BTreeSet::new();
    for at in std::iter::once(&base).chain(&args.check_at) {
        for p in &acknowledged {
            if let Err(e) = check(&client, at, p).await {
                lost.insert(format!("at {at}: {e}"));
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    ready_times.sort();
    println!("| crash loop | value |");
    println!("|---|---|");
    println!(
        "| cycles (SIGKILL during pushes, restart) | {} |",
        args.cycles
    );
    println!("| concurrent pushing clients | {} |", args.clients);
    println!("| pushes attempted | {attempted} |");
    println!("| pushes acknowledged | {} |", acknowledged.len());
    println!(
        "| acknowledged pushes lost or altered (checked at {} address{}) | {} |",
        1 + args.check_at.len(),
        if args.check_at.is_empty() { "" } else { "es" },
        lost.len()
    );
    println!(
        "| restart to ready, p50 / p99 / max | {:.0} / {:.0} / {:.0} ms |",
        percentile(&ready_times, 0.5),
        percentile(&ready_times, 0.99),
        percentile(&ready_times, 1.0)
    );
    println!("| total time | {:.0} s |", started.elapsed().as_secs_f64());
    if let Some(first) = lost.iter().next() {
        eprintln!(
            "crash loop: {} acknowledged pushes lost, first: {first}",
            lost.len()
        );
        std::process::exit(1);
    }
}
