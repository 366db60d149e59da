//! Failed-login throttling per (login name, client address): after a few
//! failures in a window, further attempts are refused with a wait time,
//! which makes password guessing slow without locking the user out for
//! everyone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed in one window.
const MAX_FAILURES: u32 = 5;
/// Window length.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries kept before old windows are swept.
const SWEEP_AT: usize = 10_000;

/// The throttle.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<(String, String), (u32, Instant)>>,
}

impl LoginLimiter {
    /// `Err(wait)` when this login from this address must wait.
    pub fn check(&self, login: &str, addr: &str) -> Result<(), Duration> {
        let map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&(login.to_owned(), addr.to_owned())) {
            Some((n, since)) if *n >= MAX_FAILURES && since.elapsed() < WINDOW => {
                Err(WINDOW - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn failed(&self, login: &str, addr: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > SWEEP_AT {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = map
            .entry((login.to_owned(), addr.to_owned()))
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Forgets failures after a successful login.
    pub fn succeeded(&self, login: &str, addr: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&(login.to_owned(), addr.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_repeated_failures_per_login_and_address() {
        let l = LoginLimiter::default();
        for _ in 0..MAX_FAILURES {
            assert!(l.check("acme/bob", "10.0.0.1").is_ok());
            l.failed("acme/bob", "10.0.0.1");
        }
        assert!(l.check("acme/bob", "10.0.0.1").is_err());
        assert!(
            l.check("acme/bob", "10.0.0.2").is_ok(),
            "another address is not throttled"
        );
        assert!(
            l.check("acme/eve", "10.0.0.1").is_ok(),
            "another login is not throttled"
        );
        l.succeeded("acme/bob", "10.0.0.1");
        assert!(l.check("acme/bob", "10.0.0.1").is_ok());
    }
}
