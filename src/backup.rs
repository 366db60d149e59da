//! Backups and restores. A backup is itself a data directory: the
//! database copied from one fjall snapshot (the log, its chain head and the
//! read models at one instant), the blob tree hard-linked (blob files never
//! change once in place, so a link is a copy that costs nothing; a copy is
//! made across file systems), the two key files, and `backup.json` with the
//! head it holds. Upload sessions and web-upload staging are not kept: they
//! hold nothing acknowledged.

use std::fs;
use std::io::Write;
use std::path::Path;

use berth_domain::hex;
use berth_store::{startup_check, EventLog, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cli::db_dir;
use crate::error::{AtPath, CliError};

/// What a backup holds, written beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The newest event it holds.
    pub head_seq: u64,
    /// The chain hash there, hex: what `berth log verify` of a restored
    /// copy must reach.
    pub head_hash: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Blob files it holds.
    pub blobs: u64,
}

const MANIFEST: &str = "backup.json";
const KEY_FILES: [&str; 2] = ["secret.key", "checkpoint.key"];

/// Refuses a target that holds anything: a backup or restore never mixes
/// with other files.
fn fresh_dir(dir: &Path) -> Result<(), CliError> {
    if dir.exists() && fs::read_dir(dir).at(dir)?.next().is_some() {
        return Err(CliError::BadFile {
            path: dir.to_owned(),
            reason: "is not empty; give a new or empty directory".into(),
        });
    }
    fs::create_dir_all(dir).at(dir)
}

/// How [`mirror`] places each file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A hard link, or a synced copy across file systems: for blob files,
    /// which never change once in place.
    Link,
    /// A synced copy: for database files, which the restored server will
    /// write to.
    Copy,
}

/// Places every file under `from` at the same path under `to`, and syncs
/// the directories; returns how many files. A missing `from` is empty.
fn mirror(from: &Path, to: &Path, place: Place) -> Result<u64, CliError> {
    let mut n = 0;
    if !from.is_dir() {
        return Ok(0);
    }
    fs::create_dir_all(to).at(to)?;
    for entry in fs::read_dir(from).at(from)? {
        let entry = entry.at(from)?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().at(&src)?.is_dir() {
            n += mirror(&src, &dst, place)?;
            continue;
        }
        if place == Place::Copy || fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).at(&dst)?;
            fs::File::open(&dst).and_then(|f| f.sync_all()).at(&dst)?;
        }
        n += 1;
    }
    fs::File::open(to).and_then(|f| f.sync_all()).at(to)?;
    Ok(n)
}

fn copy_keys(from: &Path, to: &Path) -> Result<(), CliError> {
    for name in KEY_FILES {
        let src = from.join(name);
        if src.exists() {
            fs::copy(&src, to.join(name)).at(&src)?;
        }
    }
    Ok(())
}

/// Takes a backup of the data directory `data`, whose log is `log` (open
/// in this process: the server's, or the command's own when no server
/// runs), into the new directory `to`.
pub fn backup(log: &EventLog, data: &Path, to: &Path) -> Result<Manifest, CliError> {
    fresh_dir(to)?;
    let head = log.copy_to(&db_dir(to))?;
    // Every blob an event of the snapshot names was in place before that
    // event was written, so the walk that follows finds it.
    let blobs = mirror(&data.join("blobs"), &to.join("blobs"), Place::Link)?;
    copy_keys(data, to)?;
    let manifest = Manifest {
        head_seq: head.seq,
        head_hash: hex::encode(&head.hash),
        taken_at: Utc::now(),
        blobs,
    };
    write_manifest(to, &manifest)?;
    Ok(manifest)
}

fn write_manifest(to: &Path, manifest: &Manifest) -> Result<(), CliError> {
    let path = to.join(MANIFEST);
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| CliError::BadFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut f = fs::File::create(&path).at(&path)?;
    f.write_all(&text).and_then(|()| f.sync_all()).at(&path)
}

/// Restores the backup `from` into the new data directory `data`, then
/// checks the restored log's whole chain and that it ends at the head the
/// backup recorded.
pub fn restore(from: &Path, data: &Path) -> Result<Manifest, CliError> {
    let path = from.join(MANIFEST);
    let text = fs::read(&path).at(&path)?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| CliError::BadFile {
        path: path.clone(),
        reason: format!("not a backup manifest: {e}"),
    })?;
    fresh_dir(data)?;
    mirror(&db_dir(from), &db_dir(data), Place::Copy)?;
    mirror(&from.join("blobs"), &data.join("blobs"), Place::Link)?;
    copy_keys(from, data)?;
    let db = db_dir(data);
    let log = EventLog::open(&db).at(&db)?;
    log.set_verified(berth_store::ChainPoint::START)?;
    let head = startup_check(&log)?;
    if head.seq != manifest.head_seq || hex::encode(&head.hash) != manifest.head_hash {
        return Err(CliError::Store(StoreError::Corrupt {
            seq: head.seq,
            reason: format!(
                "the restored log ends at {} but the backup recorded {} ({})",
                head.seq, manifest.head_seq, manifest.head_hash
            ),
        }));
    }
    Ok(manifest)
}
