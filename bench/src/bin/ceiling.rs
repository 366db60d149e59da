//! The ceiling a durable blob push can reach on this machine: SHA-256 on
//! one core (the `sha2` crate Berth hashes with), and writing to the data
//! directory's file system until `fdatasync` returns, each over the same
//! number of bytes. A push both hashes and writes every byte, on different
//! threads, so it can go no faster than the lower of the two.
//! Usage: berth-ceiling --dir DIR [--mib N]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use sha2::{Digest as _, Sha256};

#[derive(Parser)]
struct Args {
    /// A directory on the file system to measure (the data directory's).
    #[arg(long)]
    dir: PathBuf,
    /// MiB hashed and written.
    #[arg(long, default_value_t = 1024)]
    mib: usize,
}

const CHUNK: usize = 1 << 20;

#[allow(clippy::cast_precision_loss)]
fn rate(bytes: usize, secs: f64) -> String {
    format!("{:.1} MB/s", bytes as f64 / secs / 1e6)
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let total = args.mib * CHUNK;
    // Distinct bytes per chunk, made before timing.
    let chunks: Vec<Vec<u8>> = (0..16u8)
        .map(|i| (0..CHUNK).map(|j| (j as u8).wrapping_mul(31) ^ i).collect())
        .collect();

    let started = Instant::now();
    let mut hasher = Sha256::new();
    for i in 0..args.mib {
        hasher.update(&chunks[i % chunks.len()]);
    }
    let digest = hasher.finalize();
    let hash_secs = started.elapsed().as_secs_f64();

    let path = args.dir.join("berth-ceiling.tmp");
    let started = Instant::now();
    let mut file = std::fs::File::create(&path)?;
    for i in 0..args.mib {
        file.write_all(&chunks[i % chunks.len()])?;
    }
    file.sync_data()?;
    let write_secs = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;

    println!("| ceiling ({} MiB) | time | rate |", args.mib);
    println!("|---|---|---|");
    println!(
        "| SHA-256, one core (sha2; digest {:02x}{:02x}…) | {hash_secs:.2} s | {} |",
        digest[0],
        digest[1],
        rate(total, hash_secs)
    );
    println!(
        "| write 1 MiB at a time, then fdatasync | {write_secs:.2} s | {} |",
        rate(total, write_secs)
    );
    Ok(())
}
