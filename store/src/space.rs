//! Free space on the data directory's file system, and the reserves that
//! keep the node able to write its log when the disk fills up. Uploads
//! may not take the last `--min-free-space` bytes; event writes may not
//! take the last quarter of that. A full disk then refuses new pushes
//! first, while the log still takes the deletes that free space, and the
//! database never meets `ENOSPC` itself (fjall poisons itself when it does).

use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// How much free space uploads must leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// A number of bytes.
    Bytes(u64),
    /// A share of the file system's size, in percent.
    Percent(u8),
    /// The smaller of 1 GiB and 5 % of the file system: the default, which
    /// suits a large disk and a small test file system alike.
    Default,
}

impl Reserve {
    /// Parses `5%`, `512MiB`, `1GiB`, `64MB` or a number of bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(p) = text.strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(p) if p <= 50 => Ok(Self::Percent(p)),
                _ => Err(format!("{text}: a percentage from 0% to 50%")),
            };
        }
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(format!(
                    "{text}: unknown unit {other:?} (B, KiB, MiB, GiB, KB, MB, GB or %)"
                ))
            }
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .map(Self::Bytes)
            .ok_or_else(|| {
                format!("{text}: a size such as 1GiB or 512MiB, or a percentage such as 5%")
            })
    }

    fn bytes(self, total: u64) -> u64 {
        match self {
            Self::Bytes(b) => b,
            Self::Percent(p) => total / 100 * u64::from(p),
            Self::Default => (1 << 30).min(total / 20),
        }
    }
}

/// The free-space guard of one data directory.
#[derive(Debug, Clone)]
pub struct Space {
    dir: PathBuf,
    reserve: Reserve,
}

/// The event log's reserve is the uploads' divided by this.
const EVENT_SHARE: u64 = 4;

/// Free and total bytes of a file system, as an unprivileged writer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes available to this process.
    pub free: u64,
    /// The file system's size.
    pub total: u64,
}

impl Space {
    /// A guard over the file system that holds `dir`.
    pub fn new(dir: &Path, reserve: Reserve) -> Self {
        Self {
            dir: dir.to_owned(),
            reserve,
        }
    }

    /// The file system's free and total bytes now.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        statvfs(&self.dir)
    }

    /// Refuses an upload's bytes when they would eat into the reserve.
    pub fn check_upload(&self) -> Result<(), StoreError> {
        self.check(1, |free, reserve| {
            format!("the registry's disk is nearly full: {free} free, below the {reserve} kept free; uploads are refused until space is freed")
        })
    }

    /// Refuses an event write when it would eat into the log's reserve: a
    /// quarter of the uploads', so that deletes work while uploads do not.
    pub fn check_events(&self) -> Result<(), StoreError> {
        self.check(EVENT_SHARE, |free, reserve| {
            format!("the event log cannot be written: no space left on device ({free} free, below the {reserve} the log keeps)")
        })
    }

    /// Refuses when free space is under the reserve divided by `share`,
    /// saying so with `refusal(free, reserve)`.
    fn check(
        &self,
        share: u64,
        refusal: impl FnOnce(String, String) -> String,
    ) -> Result<(), StoreError> {
        let usage = self.usage()?;
        let reserve = self.reserve.bytes(usage.total) / share;
        if usage.free < reserve {
            return Err(StoreError::NoSpace(refusal(mib(usage.free), mib(reserve))));
        }
        Ok(())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn statvfs(dir: &Path) -> Result<Usage, StoreError> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string, and `stat` is written by the call
    // before it is read (only when the call succeeds).
    #[allow(unsafe_code)]
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(StoreError::Io(std::io::Error::last_os_error()));
        }
        stat.assume_init()
    };
    let block = stat.f_frsize;
    Ok(Usage {
        free: stat.f_bavail.saturating_mul(block),
        total: stat.f_blocks.saturating_mul(block),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_parse_and_scale() {
        assert_eq!(Reserve::parse("5%"), Ok(Reserve::Percent(5)));
        assert_eq!(Reserve::parse("512MiB"), Ok(Reserve::Bytes(512 << 20)));
        assert_eq!(Reserve::parse("1GiB"), Ok(Reserve::Bytes(1 << 30)));
        assert_eq!(Reserve::parse("64MB"), Ok(Reserve::Bytes(64_000_000)));
        assert_eq!(Reserve::parse("4096"), Ok(Reserve::Bytes(4096)));
        assert!(Reserve::parse("60%").is_err());
        assert!(Reserve::parse("12 parsecs").is_err());
        assert!(Reserve::parse("").is_err());
        assert_eq!(Reserve::Default.bytes(100 << 30), 1 << 30);
        assert_eq!(Reserve::Default.bytes(1 << 30), (1 << 30) / 20);
        assert_eq!(Reserve::Percent(10).bytes(1000), 100);
    }

    #[test]
    fn the_guard_reads_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(dir.path(), Reserve::Bytes(0));
        let usage = space.usage().unwrap();
        assert!(usage.total > 0 && usage.free <= usage.total);
        assert!(space.check_upload().is_ok());
        let greedy = Space::new(dir.path(), Reserve::Bytes(u64::MAX));
        assert!(matches!(greedy.check_upload(), Err(StoreError::NoSpace(_))));
        assert!(matches!(greedy.check_events(), Err(StoreError::NoSpace(_))));
    }
}
