//! The upload area's file work: writing a batch of chunks, starting
//! writeback early, and hashing a session's bytes back from disk.

use std::fs;
use std::io::{IoSlice, Read, Write};

use berth_domain::{Algorithm, Digest};
use bytes::Bytes;
use sha2::{Sha256, Sha512};

use crate::error::StoreError;
use crate::resumable::Resumable;

/// Read buffer when hashing a file back from disk.
const READ_BUFFER: usize = 1 << 20;

/// Writes a batch of chunks with as few system calls as the kernel allows,
/// without copying them into one buffer first.
pub(super) fn write_batch(file: &mut fs::File, batch: &[Bytes]) -> std::io::Result<u64> {
    let total: usize = batch.iter().map(Bytes::len).sum();
    let (mut chunk, mut offset, mut done) = (0, 0, 0);
    while done < total {
        let slices: Vec<IoSlice<'_>> = batch[chunk..]
            .iter()
            .enumerate()
            .map(|(i, b)| IoSlice::new(if i == 0 { &b[offset..] } else { b }))
            .collect();
        let mut n = file.write_vectored(&slices)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
        while n > 0 {
            let left = batch[chunk].len() - offset;
            if n >= left {
                n -= left;
                chunk += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
    }
    Ok(total as u64)
}

/// Asks the kernel to start writing a range to disk without waiting for it
/// (durability still comes from the fsync before the upload is answered).
pub(super) fn start_writeback(file: &fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the duration of the call, and
    // sync_file_range only reads its arguments. A failure only means the
    // final fsync does all the work, so the result is not needed.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// The digest of a session's bytes: from the running SHA-256 when there is
/// one, else by reading the file back (after a restart, or for SHA-512).
pub(super) fn digest_of(
    path: &std::path::Path,
    alg: Algorithm,
    running: Option<Resumable>,
) -> Result<Digest, StoreError> {
    let digest = match (alg, running) {
        (Algorithm::Sha256, Some(h)) => Digest::from_bytes(alg, &h.finish()),
        (Algorithm::Sha256, None) => Digest::from_bytes(alg, &hash_file::<Sha256>(path)?),
        (Algorithm::Sha512, _) => Digest::from_bytes(alg, &hash_file::<Sha512>(path)?),
    };
    digest.map_err(StoreError::from)
}

fn hash_file<H: sha2::Digest>(path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    let mut f = fs::File::open(path)?;
    let mut h = H::new();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}
