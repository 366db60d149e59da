//! Staging of an uploaded `docker save` archive. The archive streams
//! through once, in whatever order its members come: each small JSON
//! member the layouts name (`manifest.json`, `repositories`, `index.json`,
//! `oci-layout`) is kept in memory under a small cap, every other member
//! is written to its own file in the upload area while its SHA-256 is
//! computed (and, for a gzip member, the SHA-256 of what it inflates to).
//! Nothing reaches the blob store here; [`plan`] then reads what the
//! archive means, and a caller that accepts the plan ingests its files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use berth_domain::archive::{self, Blob, CONFIG_MEDIA_TYPE, LAYER_TAR, LAYER_TAR_GZIP};
use berth_domain::{Algorithm, Digest, DomainError, RepoName, TagName};
use flate2::read::MultiGzDecoder;
use sha2::{Digest as _, Sha256};

use crate::error::StoreError;

/// The small members the layouts name, held in memory.
const METADATA: [&str; 4] = ["manifest.json", "repositories", "index.json", "oci-layout"];
/// Largest metadata member.
const MAX_METADATA: u64 = 1 << 20;
/// Largest image config or OCI manifest, as for a pushed manifest.
const MAX_CONFIG: u64 = 4 << 20;
/// Most members one archive may hold.
const MAX_MEMBERS: usize = 10_000;
/// Bytes read from a member at a time.
const CHUNK: usize = 256 * 1024;

/// What an archive may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes read from the upload, and most bytes of tar it inflates
    /// to: both are counted as they come, whatever the headers declare.
    pub max_bytes: u64,
    /// Most bytes one gzip layer inflates to when its diff id is computed.
    pub max_layer: u64,
}

/// A staged member: a file in the upload area, with its digests.
#[derive(Debug, Clone)]
pub struct Member {
    /// Where its bytes are.
    pub file: PathBuf,
    /// SHA-256 of its bytes.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// SHA-256 of its uncompressed content: the digest itself unless it is
    /// gzip.
    pub diff_id: Digest,
    /// Whether it is gzip.
    pub gzip: bool,
}

/// An archive read to its end.
#[derive(Debug, Default)]
pub struct Staged {
    /// The files, by member name.
    pub members: BTreeMap<String, Member>,
    /// The metadata members' bytes, by name.
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// Bytes read from the upload.
    pub bytes_read: u64,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(DomainError::ArchiveInvalid(message.into()))
}

fn too_large(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(DomainError::ArchiveTooLarge(message.into()))
}

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

fn sha256(hasher: Sha256) -> Result<Digest, StoreError> {
    Ok(Digest::from_bytes(Algorithm::Sha256, &hasher.finalize())?)
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

/// One image of an archive, ready to become a push.
#[derive(Debug, Clone)]
pub struct Image {
    /// The repositories and tags it gets, inside the chosen organization.
    pub names: Vec<(RepoName, TagName)>,
    /// The config blob, with its staged file.
    pub config: (Blob, PathBuf),
    /// The layer blobs, base first, with their staged files.
    pub layers: Vec<(Blob, PathBuf)>,
    /// The Docker schema 2 manifest built for it.
    pub manifest: Vec<u8>,
}

impl Staged {
    fn member(&self, name: &str, named_by: &str) -> Result<&Member, StoreError> {
        self.members.get(name).ok_or_else(|| {
            invalid(format!(
                "{named_by} names {name}, which the archive does not hold"
            ))
        })
    }

    /// A small member's bytes (a config, an OCI manifest), capped.
    fn small(&self, name: &str, named_by: &str) -> Result<Vec<u8>, StoreError> {
        let member = self.member(name, named_by)?;
        if member.size > MAX_CONFIG {
            return Err(too_large(format!(
                "member {name} is larger than {MAX_CONFIG} bytes"
            )));
        }
        Ok(fs::read(&member.file)?)
    }

    /// Checks that an OCI layout blob hashes to the name it is stored
    /// under.
    fn check_blob(&self, name: &str) -> Result<(), StoreError> {
        let member = self.member(name, "index.json")?;
        if !name.ends_with(member.digest.hex()) {
            return Err(invalid(format!(
                "member {name} hashes to {}, not to its name",
                member.digest
            )));
        }
        Ok(())
    }
}

/// What a staged archive means: its images, each checked (every layer
/// present, the config's diff ids matching the layers) and named. Legacy
/// `manifest.json` is read when present (Docker writes it in both
/// layouts); an OCI layout without it is read from `index.json`.
pub fn plan(staged: &Staged) -> Result<Vec<Image>, StoreError> {
    let images = if let Some(bytes) = staged.metadata.get("manifest.json") {
        legacy_images(staged, bytes)?
    } else if let Some(bytes) = staged.metadata.get("index.json") {
        oci_images(staged, bytes)?
    } else {
        return Err(invalid(
            "the archive has neither manifest.json nor index.json: it is not a docker save archive",
        ));
    };
    if images.is_empty() {
        return Err(invalid("the archive holds no image"));
    }
    let mut seen = BTreeSet::new();
    for image in &images {
        for (repo, tag) in &image.names {
            if !seen.insert((repo.clone(), tag.clone())) {
                return Err(invalid(format!(
                    "{repo}:{tag} is the name of two images in the archive"
                )));
            }
        }
    }
    Ok(images)
}

/// The names of an image from its references; none is refused.
fn names(references: &[String], which: &str) -> Result<Vec<(RepoName, TagName)>, StoreError> {
    if references.is_empty() {
        return Err(invalid(format!(
            "image {which} has no name and tag in the archive; tag it before `docker save`"
        )));
    }
    references
        .iter()
        .map(|r| archive::image_name(r).map_err(StoreError::from))
        .collect()
}

fn legacy_images(staged: &Staged, bytes: &[u8]) -> Result<Vec<Image>, StoreError> {
    let repositories = match staged.metadata.get("repositories") {
        Some(b) => archive::legacy_repositories(b)?,
        None => BTreeMap::new(),
    };
    let mut images = Vec::new();
    for entry in archive::legacy_manifest(bytes)? {
        let mut references = entry.repo_tags.clone().unwrap_or_default();
        if references.is_empty() {
            // `repositories` names images by the id of their top layer,
            // the directory of the last layer's member.
            let top = entry
                .layers
                .last()
                .and_then(|l| l.rsplit_once('/'))
                .map(|(dir, _)| dir.to_owned());
            for (repo, tags) in &repositories {
                for (tag, id) in tags {
                    if Some(id) == top.as_ref() {
                        references.push(format!("{repo}:{tag}"));
                    }
                }
            }
        }
        let names = names(&references, &entry.config)?;
        images.push(image(
            staged,
            names,
            &entry.config,
            &entry.layers,
            "manifest.json",
        )?);
    }
    Ok(images)
}

fn oci_images(staged: &Staged, bytes: &[u8]) -> Result<Vec<Image>, StoreError> {
    let mut images = Vec::new();
    for entry in archive::oci_index(bytes)? {
        let names = names(&archive::oci_names(&entry), &entry.digest)?;
        let manifest_member = archive::blob_member(&entry.digest)?;
        staged.check_blob(&manifest_member)?;
        let manifest = archive::oci_manifest(
            &staged.small(&manifest_member, "index.json")?,
            &entry.digest,
        )?;
        let config = archive::blob_member(&manifest.config.digest)?;
        let layers = manifest
            .layers
            .iter()
            .map(|l| archive::blob_member(&l.digest))
            .collect::<Result<Vec<_>, _>>()?;
        for name in std::iter::once(&config).chain(&layers) {
            staged.check_blob(name)?;
        }
        images.push(image(staged, names, &config, &layers, &entry.digest)?);
    }
    Ok(images)
}

/// Checks one image's members and builds its manifest.
fn image(
    staged: &Staged,
    names: Vec<(RepoName, TagName)>,
    config: &str,
    layers: &[String],
    named_by: &str,
) -> Result<Image, StoreError> {
    let config_bytes = staged.small(config, named_by)?;
    let mut layer_ids = Vec::with_capacity(layers.len());
    let mut blobs = Vec::with_capacity(layers.len());
    for name in layers {
        let m = staged.member(name, named_by)?;
        layer_ids.push((name.clone(), m.diff_id.clone()));
        blobs.push((
            Blob {
                media_type: if m.gzip { LAYER_TAR_GZIP } else { LAYER_TAR },
                size: m.size,
                digest: m.digest.to_string(),
            },
            m.file.clone(),
        ));
    }
    archive::check_diff_ids(&config_bytes, config, &layer_ids)?;
    let c = staged.member(config, named_by)?;
    let config_blob = Blob {
        media_type: CONFIG_MEDIA_TYPE,
        size: c.size,
        digest: c.digest.to_string(),
    };
    let layer_blobs: Vec<Blob> = blobs.iter().map(|(b, _)| b.clone()).collect();
    let manifest = archive::schema2_manifest(&config_blob, &layer_blobs);
    Ok(Image {
        names,
        config: (config_blob, c.file.clone()),
        layers: blobs,
        manifest,
    })
}
