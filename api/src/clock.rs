//! The registry's idea of now, for deadlines (share expiry). It is the
//! system clock, optionally shifted by a number of seconds read from a file
//! on every call, so a test or a drill can move past a deadline without
//! waiting for it.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};

/// Where now comes from.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_file: Option<PathBuf>,
}

impl Clock {
    /// The system clock, shifted by the whole seconds in `offset_file` when
    /// given (a missing or unreadable file shifts nothing).
    pub fn new(offset_file: Option<PathBuf>) -> Self {
        Self { offset_file }
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        let offset = self
            .offset_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(Duration::zero(), Duration::seconds);
        Utc::now() + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_file_shifts_now() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offset");
        let clock = Clock::new(Some(file.clone()));
        let before = Utc::now();
        assert!(
            clock.now() - before < Duration::seconds(5),
            "no file: no shift"
        );
        std::fs::write(&file, "86400\n").unwrap();
        assert!(clock.now() - before >= Duration::seconds(86_400));
        assert!(Clock::default().now() - before < Duration::seconds(5));
    }
}
