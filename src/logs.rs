//! Log maintenance against either log, the data directory's or the shared
//! one in PostgreSQL: verification, rebuilding a node's read models from
//! the shared log, and moving a whole log between the two (`log export`,
//! `log import`) with its chain intact.
//!
//! An export file is `BERTH-LOG\x01`, then one record per event (`E`, its
//! sequence number, its sealed bytes), one per stored manifest (`C`, its
//! digest, its bytes), and an end record (`Z`, the head's sequence number
//! and chain hash). The sealed bytes are the log's own, so the chain is
//! checked again, link by link, on the way in.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::ControlFlow;
use std::path::Path;

use berth_domain::Digest;
use berth_projections::ReadModels;
use berth_store::log::link;
use berth_store::postgres::PgLog;
use berth_store::{ChainPoint, Checkpoint, EventLog, Projector, Sealed, StoreError};
use bytes::Bytes;

use crate::cli::db_dir;
use crate::error::{AtPath, CliError};

const MAGIC: &[u8] = b"BERTH-LOG\x01";

/// Verifies the shared log from its first event to its head, and that it
/// still extends each held checkpoint (the chain hash at its sequence
/// number is the one it holds).
pub fn verify_shared(url: &str, checkpoints: &[Checkpoint]) -> Result<ChainPoint, StoreError> {
    let mut held: Vec<&Checkpoint> = checkpoints.iter().collect();
    let head = PgLog::connect(url)?.scan(|_, _, point| {
        for c in held.iter().filter(|c| c.seq == point.seq) {
            if c.hash_bytes() != Some(point.hash) {
                return Err(StoreError::Corrupt {
                    seq: point.seq,
                    reason: format!(
                        "the chain hash here is not the one the checkpoint of {} holds: the log was rewritten up to here",
                        c.time
                    ),
                });
            }
        }
        held.retain(|c| c.seq != point.seq);
        Ok(ControlFlow::Continue(()))
    })?;
    match held.iter().find(|c| c.seq > 0) {
        Some(c) => Err(StoreError::Corrupt {
            seq: head.seq + 1,
            reason: format!(
                "the log ends at sequence {} but a checkpoint of {} holds sequence {}: events were removed",
                head.seq, c.time, c.seq
            ),
        }),
        None => Ok(head),
    }
}

/// Rebuilds the read models of the node data directory `data` (new or
/// existing) from the shared log: every event is read from PostgreSQL,
/// checked link by link, added to the node's mirror where it lacks it
/// (and compared where it has it), and applied to emptied read models.
/// Returns the head and the models' digest.
pub fn rebuild_from_shared(url: &str, data: &Path) -> Result<(u64, String), CliError> {
    const BATCH: usize = 65_536;
    let db = db_dir(data);
    std::fs::create_dir_all(data).at(data)?;
    let log = EventLog::open(&db).at(&db)?;
    let local = berth_store::startup_check(&log)?;
    let models = ReadModels::open(&log)?;
    models.reset()?;
    let mut pg = PgLog::connect(url)?;
    let mut batch = log.batch();
    let mut pending = 0;
    let head = pg.scan(|sealed, recorded, point| {
        let seq = recorded.seq;
        if seq <= local.seq {
            if log.point_at(seq)? != point {
                return Err(StoreError::Corrupt {
                    seq,
                    reason: "this node's log differs from the shared log here".into(),
                });
            }
        } else {
            log.mirror(&mut batch, sealed, &recorded);
        }
        models.apply(&mut batch, &recorded)?;
        pending += 1;
        if pending == BATCH {
            models.set_checkpoint(&mut batch, seq);
            if point.seq > local.seq {
                log.record_head(&mut batch, point);
            }
            log.commit(std::mem::replace(&mut batch, log.batch()))?;
            pending = 0;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if head.seq < local.seq {
        return Err(StoreError::Corrupt {
            seq: head.seq + 1,
            reason: "this node's log is ahead of the shared log".into(),
        }
        .into());
    }
    models.set_checkpoint(&mut batch, head.seq);
    log.record_head(&mut batch, head);
    log.commit(batch)?;
    log.set_verified(head)?;
    log.flush()?;
    Ok((head.seq, models.digest()?))
}

/// Where a log is read from or written to.
pub enum Place<'a> {
    /// A data directory's log.
    Dir(&'a Path),
    /// The shared log at this address.
    Shared(&'a str),
}

/// Writes the whole log at `from` into the file `to`; returns its head.
pub fn export(from: &Place<'_>, to: &Path) -> Result<ChainPoint, CliError> {
    let file = File::create(to).at(to)?;
    let mut out = BufWriter::new(file);
    let write = |out: &mut BufWriter<File>, bytes: &[u8]| out.write_all(bytes);
    write(&mut out, MAGIC).at(to)?;
    let mut failure = None;
    let mut record = |out: &mut BufWriter<File>, seq: u64, value: &[u8]| {
        let mut head = vec![b'E'];
        head.extend_from_slice(&seq.to_be_bytes());
        head.extend_from_slice(&len32(value.len()).to_be_bytes());
        if let Err(e) = out.write_all(&head).and_then(|()| out.write_all(value)) {
            failure.get_or_insert(e);
        }
    };
    let mut content: Vec<(Digest, Bytes)> = Vec::new();
    let head = match from {
        Place::Dir(dir) => {
            let log = crate::cli::open_existing(dir)?;
            let head = log.scan_stored(ChainPoint::START, |r, value| {
                record(&mut out, r.seq, value);
                Ok(ControlFlow::Continue(()))
            })?;
            for (digest, _) in log.contents()? {
                if let Some(bytes) = log.content(&digest)? {
                    content.push((digest, bytes));
                }
            }
            head
        }
        Place::Shared(url) => PgLog::connect(url)?.scan(|sealed, _, _| {
            record(&mut out, sealed.seq, &sealed.value);
            content.extend(sealed.content.iter().cloned());
            Ok(ControlFlow::Continue(()))
        })?,
    };
    if let Some(e) = failure {
        return Err(e).at(to);
    }
    // In digest order, whichever log they came from: two exports of the
    // same log are the same bytes.
    content.sort_by(|a, b| a.0.cmp(&b.0));
    content.dedup_by(|a, b| a.0 == b.0);
    for (digest, bytes) in content {
        let name = digest.to_string();
        let mut rec = vec![b'C'];
        rec.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
        rec.extend_from_slice(name.as_bytes());
        rec.extend_from_slice(&len32(bytes.len()).to_be_bytes());
        write(&mut out, &rec).at(to)?;
        write(&mut out, &bytes).at(to)?;
    }
    let mut end = vec![b'Z'];
    end.extend_from_slice(&head.seq.to_be_bytes());
    end.extend_from_slice(&head.hash);
    write(&mut out, &end).at(to)?;
    out.flush().at(to)?;
    out.get_ref().sync_all().at(to)?;
    Ok(head)
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An export read back and checked: its events, link by link, its
/// content, and its end record against the chain.
struct Exported {
    events: Vec<Sealed>,
    content: Vec<(Digest, Bytes)>,
    head: ChainPoint,
}

fn read_export(path: &Path) -> Result<Exported, CliError> {
    let bad = |reason: String| CliError::BadFile {
        path: path.to_owned(),
        reason,
    };
    let mut input = BufReader::new(File::open(path).at(path)?);
    let mut take = |n: usize| -> Result<Vec<u8>, CliError> {
        let mut buf = vec![0u8; n];
        input
            .read_exact(&mut buf)
            .map_err(|e| bad(format!("the export ends early: {e}")))?;
        Ok(buf)
    };
    if take(MAGIC.len())? != MAGIC {
        return Err(bad("not a berth log export".into()));
    }
    let num = |b: &[u8]| b.iter().fold(0u64, |n, x| n << 8 | u64::from(*x));
    let mut at = ChainPoint::START;
    let mut events = Vec::new();
    let mut content = Vec::new();
    loop {
        match take(1)?[0] {
            b'E' => {
                let seq = num(&take(8)?);
                let len = usize::try_from(num(&take(4)?)).unwrap_or(usize::MAX);
                let value = take(len)?;
                let (_, next) = link(at, seq, &value)?;
                at = next;
                events.push(Sealed::stored(seq, value));
            }
            b'C' => {
                let len = usize::try_from(num(&take(2)?)).unwrap_or(usize::MAX);
                let name = String::from_utf8(take(len)?)
                    .map_err(|_| bad("a content digest is not text".into()))?;
                let digest = Digest::parse(&name).map_err(|e| bad(e.to_string()))?;
                let len = usize::try_from(num(&take(4)?)).unwrap_or(usize::MAX);
                content.push((digest, Bytes::from(take(len)?)));
            }
            b'Z' => {
                let seq = num(&take(8)?);
                let hash = take(32)?;
                if seq != at.seq || hash != at.hash {
                    return Err(bad(format!(
                        "the end record says head {seq} but the events end at {}: the export is cut short or altered",
                        at.seq
                    )));
                }
                return Ok(Exported {
                    events,
                    content,
                    head: at,
                });
            }
            other => return Err(bad(format!("unknown record kind {other:#x}"))),
        }
    }
}

/// Loads an export into an empty log at `to`; returns its head.
pub fn import(from: &Path, to: &Place<'_>) -> Result<ChainPoint, CliError> {
    let exported = read_export(from)?;
    match to {
        Place::Shared(url) => {
            PgLog::connect(url)?.import(exported.events, exported.content)?;
        }
        Place::Dir(dir) => {
            let db = db_dir(dir);
            if db.exists() {
                return Err(CliError::BadFile {
                    path: db,
                    reason: "a log is there already: import only into a new data directory".into(),
                });
            }
            std::fs::create_dir_all(dir).at(dir)?;
            let log = EventLog::open(&db).at(&db)?;
            let mut events = exported.events;
            if let Some(last) = events.last_mut() {
                last.content = exported.content;
            }
            let mut at = ChainPoint::START;
            for page in events.chunks(65_536) {
                let mut batch = log.batch();
                for event in page {
                    let (recorded, next) = link(at, event.seq, &event.value)?;
                    log.mirror(&mut batch, event, &recorded);
                    at = next;
                }
                log.record_head(&mut batch, at);
                log.commit(batch)?;
            }
            log.set_verified(at)?;
            log.flush()?;
        }
    }
    Ok(exported.head)
}
