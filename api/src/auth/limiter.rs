//! Failed-login throttling per (login name, client address): after a few
//! failures in a window, further attempts are refused with a wait time,
//! which makes password guessing slow without locking the user out for
//! everyone.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed in one window.
const MAX_FAILURES: u32 = 5;
/// Window length.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries kept before old windows are swept.
const SWEEP_AT: usize = 10_000;

/// The throttle. Entries are keyed by a keyed hash of (login, address):
/// every authenticated request checks here, and a lookup must not allocate.
/// The key is random per process, so no client can aim a collision.
#[derive(Default)]
pub struct LoginLimiter {
    keys: RandomState,
    failures: Mutex<HashMap<u64, (u32, Instant)>>,
    /// Whether any failure is recorded: while none is, checks and successes
    /// take no lock.
    any: AtomicBool,
}

impl LoginLimiter {
    fn key(&self, login: &str, addr: &str) -> u64 {
        self.keys.hash_one((login, addr))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(wait)` when this login from this address must wait.
    pub fn check(&self, login: &str, addr: &str) -> Result<(), Duration> {
        if !self.any.load(Ordering::Acquire) {
            return Ok(());
        }
        let key = self.key(login, addr);
        match self.lock().get(&key) {
            Some((n, since)) if *n >= MAX_FAILURES && since.elapsed() < WINDOW => {
                Err(WINDOW - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn failed(&self, login: &str, addr: &str) {
        let key = self.key(login, addr);
        let mut map = self.lock();
        if map.len() > SWEEP_AT {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = map.entry(key).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
        self.any.store(true, Ordering::Release);
    }

    /// Forgets failures after a successful login.
    pub fn succeeded(&self, login: &str, addr: &str) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let key = self.key(login, addr);
        let mut map = self.lock();
        map.remove(&key);
        if map.is_empty() {
            self.any.store(false, Ordering::Release);
        }
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
