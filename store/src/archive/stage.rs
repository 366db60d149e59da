//! Streaming an archive into staged files: the tar read once, a gzip
//! inflated on a thread of its own, every member hashed as it is written,
//! and every limit counted on what actually passes.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use sha2::{Digest as _, Sha256};

use super::{invalid, sha256, too_large, Limits, Member, Staged};
use crate::error::StoreError;

/// The small members the layouts name, held in memory.
const METADATA: [&str; 4] = ["manifest.json", "repositories", "index.json", "oci-layout"];
/// Largest metadata member.
const MAX_METADATA: u64 = 1 << 20;
/// Most members one archive may hold.
const MAX_MEMBERS: usize = 10_000;
/// Bytes read from a member at a time.
const CHUNK: usize = 256 * 1024;

/// Counts the bytes that pass and fails past a limit. The count is shared,
/// so progress and the limit's cause survive the tar reader wrapping
/// errors in its own.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
    limit: u64,
    tripped: Arc<AtomicBool>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.count.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.limit {
            self.tripped.store(true, Ordering::Relaxed);
            return Err(io::Error::other("archive over its size limit"));
        }
        Ok(n)
    }
}

/// Hashes what is written to it, failing past a limit: the inflated
/// content of a gzip member.
struct HashSink {
    hasher: Sha256,
    count: u64,
    limit: u64,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len() as u64;
        if self.count > self.limit {
            return Err(io::Error::other("layer inflates past the layer size limit"));
        }
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A member's name: its path, relative and without `.` parts. Absolute
/// paths and `..` are refused.
fn member_name(path: &Path) -> Result<String, StoreError> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| invalid(format!("member {path:?} is not UTF-8")))?,
            ),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(invalid(format!(
                    "member {} leaves the archive (absolute paths and .. are refused)",
                    path.display()
                )))
            }
        }
    }
    if parts.is_empty() {
        return Err(invalid("a member has an empty name"));
    }
    Ok(parts.join("/"))
}

/// Reads as much of `buf` as the reader gives before its end.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Streams `input` (a tar, or a gzip of one, told apart by content) into
/// `dir`. `progress` hears the bytes read so far after every chunk. On any
/// error the caller removes `dir`; nothing outside it was touched.
pub fn stage(
    input: impl Read + Send,
    dir: &Path,
    limits: Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<Staged, StoreError> {
    fs::create_dir_all(dir)?;
    let read = Arc::new(AtomicU64::new(0));
    let tripped = Arc::new(AtomicBool::new(false));
    let mut outer = BufReader::with_capacity(
        CHUNK,
        Counted {
            inner: input,
            count: read.clone(),
            limit: limits.max_bytes,
            tripped: tripped.clone(),
        },
    );
    let head = outer.fill_buf().map_err(|e| read_error(&e, &tripped))?;
    if head.is_empty() {
        return Err(invalid("the file is empty; upload a docker save archive"));
    }
    if !head.starts_with(&[0x1f, 0x8b]) {
        return unpack(outer, dir, limits, progress, &read, &tripped);
    }
    // A gzip inflates on a thread of its own, a few chunks ahead of the
    // thread that hashes and writes what it inflates to.
    let inflated = Counted {
        inner: MultiGzDecoder::new(outer),
        count: Arc::new(AtomicU64::new(0)),
        limit: limits.max_bytes,
        tripped: tripped.clone(),
    };
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(INFLATED_AHEAD);
        scope.spawn(move || inflate(inflated, &tx));
        unpack(
            Inflated {
                rx,
                chunk: Vec::new(),
                at: 0,
            },
            dir,
            limits,
            progress,
            &read,
            &tripped,
        )
    })
}

/// Chunks inflated ahead of the tar reader.
const INFLATED_AHEAD: usize = 4;

/// Reads `from` to its end (or its first error) in chunks, into `to`;
/// stops when the reader of `to` has gone.
fn inflate(mut from: impl Read, to: &SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let sent = match fill(&mut from, &mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                to.send(Ok(chunk))
            }
            Err(e) => {
                let _ = to.send(Err(e));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The inflated stream, as the inflating thread sends it.
struct Inflated {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Inflated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads the tar stream member by member into `dir`.
fn unpack(
    tar_stream: impl Read,
    dir: &Path,
    limits: Limits,
    progress: &mut dyn FnMut(u64),
    read: &AtomicU64,
    tripped: &AtomicBool,
) -> Result<Staged, StoreError> {
    let mut tar = tar::Archive::new(tar_stream);
    let mut staged = Staged::default();
    let mut seen = BTreeSet::new();
    let mut buf = vec![0u8; CHUNK];
    let entries = tar.entries().map_err(|e| read_error(&e, tripped))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(&e, tripped))?;
        let path = entry.path().map_err(|e| read_error(&e, tripped))?;
        let name = member_name(&path)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            let what = if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_hard_link() {
                "a hard link"
            } else if kind.is_character_special() || kind.is_block_special() {
                "a device file"
            } else {
                "not a regular file"
            };
            return Err(invalid(format!(
                "member {name} is {what}; links, devices and other special members are refused"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("member {name} appears twice")));
        }
        if seen.len() > MAX_MEMBERS {
            return Err(invalid(format!(
                "the archive holds more than {MAX_MEMBERS} members"
            )));
        }
        if METADATA.contains(&name.as_str()) {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_METADATA + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| read_error(&e, tripped))?;
            if bytes.len() as u64 > MAX_METADATA {
                return Err(too_large(format!(
                    "member {name} is larger than {MAX_METADATA} bytes"
                )));
            }
            staged.metadata.insert(name, bytes);
        } else {
            let file = dir.join(format!("m{}", staged.members.len()));
            let member = write_member(&mut entry, &file, &mut buf, limits, &mut |_| {
                progress(read.load(Ordering::Relaxed));
            })
            .map_err(|e| match e {
                StoreError::Io(io) => read_error(&io, tripped),
                other => other,
            })?;
            staged.members.insert(name, member);
        }
        progress(read.load(Ordering::Relaxed));
    }
    // What follows the end of the tar (padding) is read, so the whole
    // upload counts against the limit and the sender is never left waiting.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| read_error(&e, tripped))?;
    if staged.members.is_empty() && staged.metadata.is_empty() {
        return Err(invalid(
            "the file is not a tar or tar.gz archive, or holds no file",
        ));
    }
    staged.bytes_read = read.load(Ordering::Relaxed);
    progress(staged.bytes_read);
    Ok(staged)
}

/// A read failure as the client should hear it: over a limit, or an
/// archive that is not one, or that ends early.
fn read_error(e: &io::Error, tripped: &AtomicBool) -> StoreError {
    if tripped.load(Ordering::Relaxed) {
        return too_large(
            "the archive is larger than the upload limit, counting its inflated size",
        );
    }
    let text = e.to_string();
    if e.kind() == io::ErrorKind::UnexpectedEof || text.contains("unexpected EOF") {
        return invalid(format!("the archive is truncated: {text}"));
    }
    invalid(format!(
        "the file is not a readable tar or tar.gz archive: {text}"
    ))
}

/// Writes one member to `file`, hashing it (and its inflated content when
/// it is gzip), and makes it durable.
fn write_member(
    entry: &mut impl Read,
    file: &Path,
    buf: &mut [u8],
    limits: Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<Member, StoreError> {
    let mut out = File::create(file)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut inflate: Option<flate2::write::MultiGzDecoder<HashSink>> = None;
    loop {
        let n = fill(entry, buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if size == 0 && chunk.starts_with(&[0x1f, 0x8b]) {
            inflate = Some(flate2::write::MultiGzDecoder::new(HashSink {
                hasher: Sha256::new(),
                count: 0,
                limit: limits.max_layer,
            }));
        }
        hasher.update(chunk);
        out.write_all(chunk)?;
        if let Some(gz) = inflate.as_mut() {
            gz.write_all(chunk)
                .map_err(|e| invalid(format!("a gzip member does not inflate: {e}")))?;
        }
        size += n as u64;
        progress(size);
    }
    out.sync_all()?;
    let digest = sha256(hasher)?;
    let (diff_id, gzip) = match inflate {
        Some(gz) => {
            let sink = gz
                .finish()
                .map_err(|e| invalid(format!("a gzip member does not inflate: {e}")))?;
            (sha256(sink.hasher)?, true)
        }
        None => (digest.clone(), false),
    };
    Ok(Member {
        file: file.to_owned(),
        digest,
        size,
        diff_id,
        gzip,
    })
}
