//! SHA-256 whose running state can be stored and taken up again: a chunked
//! upload whose requests land on different nodes hashes each chunk on the
//! node that receives it, and carries the state (112 bytes) in the shared
//! session row instead of reading the bytes back at the end. It drives the
//! same block function (`sha2::compress256`, with its SHA-NI and AVX2
//! backends) as `Sha256`, and pads as FIPS 180-4 says.

use sha2::digest::generic_array::GenericArray;

const BLOCK: usize = 64;
const INIT: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];
/// Stored size: eight state words, the length, the pending bytes' count
/// and the pending bytes.
pub const STATE_LEN: usize = 32 + 8 + 8 + BLOCK;

/// A running SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumable {
    state: [u32; 8],
    /// Bytes hashed so far, pending ones included.
    len: u64,
    /// Bytes of an incomplete block.
    pending: Vec<u8>,
}

impl Default for Resumable {
    fn default() -> Self {
        Self {
            state: INIT,
            len: 0,
            pending: Vec::with_capacity(BLOCK),
        }
    }
}

impl Resumable {
    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hashes more bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (BLOCK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < BLOCK {
                return;
            }
            let block = std::mem::take(&mut self.pending);
            self.compress(&block);
            self.pending = block;
            self.pending.clear();
        }
        let whole = data.len() - data.len() % BLOCK;
        self.compress(&data[..whole]);
        self.pending.extend_from_slice(&data[whole..]);
    }

    /// Runs the block function over whole blocks, a run at a time so the
    /// fast backends see many blocks per call.
    fn compress(&mut self, blocks: &[u8]) {
        const RUN: usize = 64;
        let mut run = [GenericArray::default(); RUN];
        for chunk in blocks.chunks(RUN * BLOCK) {
            let n = chunk.len() / BLOCK;
            for (slot, block) in run.iter_mut().zip(chunk.chunks_exact(BLOCK)) {
                slot.copy_from_slice(block);
            }
            sha2::compress256(&mut self.state, &run[..n]);
        }
    }

    /// The digest of everything hashed.
    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut tail = std::mem::take(&mut self.pending);
        tail.push(0x80);
        while tail.len() % BLOCK != BLOCK - 8 {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_be_bytes());
        self.compress(&tail);
        let mut out = [0u8; 32];
        for (bytes, word) in out.chunks_exact_mut(4).zip(self.state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// The state as stored between requests.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STATE_LEN);
        for word in self.state {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&(self.pending.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.pending);
        out.resize(STATE_LEN, 0);
        out
    }

    /// A stored state, if it is one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != STATE_LEN {
            return None;
        }
        let word = |i: usize| -> Option<[u8; 4]> { bytes.get(i * 4..i * 4 + 4)?.try_into().ok() };
        let mut state = [0u32; 8];
        for (i, slot) in state.iter_mut().enumerate() {
            *slot = u32::from_be_bytes(word(i)?);
        }
        let len = u64::from_be_bytes(bytes.get(32..40)?.try_into().ok()?);
        let pending = usize::try_from(u64::from_be_bytes(bytes.get(40..48)?.try_into().ok()?))
            .ok()
            .filter(|n| *n < BLOCK)?;
        if len % BLOCK as u64 != pending as u64 {
            return None;
        }
        Some(Self {
            state,
            len,
            pending: bytes.get(48..48 + pending)?.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn matches_sha256_however_the_bytes_are_cut_and_stored() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for cuts in [
            vec![],
            vec![0],
            vec![1],
            vec![63],
            vec![64],
            vec![65, 130],
            vec![3, 4, 5, 4096, 9999],
        ] {
            let mut hasher = Resumable::default();
            let mut from = 0;
            for cut in cuts.iter().copied().chain([data.len()]) {
                hasher.update(&data[from..cut]);
                hasher = Resumable::from_bytes(&hasher.to_bytes()).expect("round trip");
                from = cut;
            }
            assert_eq!(hasher.len(), data.len() as u64);
            assert_eq!(
                hasher.finish(),
                <[u8; 32]>::from(Sha256::digest(&data)),
                "cuts {cuts:?}"
            );
        }
        for n in [0, 1, 55, 56, 63, 64, 119, 120, 128] {
            let mut hasher = Resumable::default();
            hasher.update(&data[..n]);
            assert_eq!(
                hasher.finish(),
                <[u8; 32]>::from(Sha256::digest(&data[..n])),
                "{n} bytes"
            );
        }
    }

    #[test]
    fn a_damaged_state_is_refused() {
        let mut hasher = Resumable::default();
        hasher.update(b"abc");
        let mut bytes = hasher.to_bytes();
        assert!(Resumable::from_bytes(&bytes[..10]).is_none());
        bytes[47] = 9;
        assert!(
            Resumable::from_bytes(&bytes).is_none(),
            "pending count disagrees with the length"
        );
    }
}
