//! Failures of anonymous callers and unknown users (a login under a name
//! that does not exist, a forged or expired token, a throttled attempt) are
//! counted per client address per window and written as one
//! `FailuresCounted` event each, so nobody can flood the hash-chained log:
//! it grows by at most [`MAX_ADDRESSES`] + 1 records per window however
//! many requests fail. A known user's failures are recorded one by one
//! (the limiter bounds them); see docs/audit.md.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use berth_domain::audit::OTHER_ADDRESSES;
use berth_domain::{Actor, Command};
use berth_store::RequestMeta;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::state::AppState;

/// Distinct client addresses counted apart in one window; failures from
/// further addresses are counted together under `*`.
pub const MAX_ADDRESSES: usize = 1000;
/// Login names kept per record, to show what a guessing run tried.
const MAX_NAMES: usize = 10;
/// Longest login name kept.
const MAX_NAME_LEN: usize = 128;

#[derive(Default)]
struct Tally {
    count: u64,
    reasons: BTreeMap<String, u64>,
    names: Vec<String>,
}

/// Failures counted and not yet written, by window start and address.
pub struct FailureCounter {
    window_seconds: u32,
    open: Mutex<HashMap<DateTime<Utc>, HashMap<String, Tally>>>,
}

impl FailureCounter {
    /// A counter with windows of `window_seconds` (at least 1).
    pub fn new(window_seconds: u32) -> Self {
        Self {
            window_seconds: window_seconds.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let secs = now.timestamp();
        let start = secs - secs.rem_euclid(i64::from(self.window_seconds));
        DateTime::from_timestamp(start, 0).unwrap_or(now)
    }

    /// Counts one failure from `addr` for `reason`, with the login name
    /// tried when there was one.
    pub fn count(&self, addr: Option<&str>, reason: &str, name: Option<&str>) {
        let start = self.window_start(Utc::now());
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = open.entry(start).or_default();
        let addr = addr.unwrap_or("unknown");
        let addr = if window.contains_key(addr) || window.len() < MAX_ADDRESSES {
            addr
        } else {
            OTHER_ADDRESSES
        };
        let tally = window.entry(addr.to_owned()).or_default();
        tally.count += 1;
        *tally.reasons.entry(reason.to_owned()).or_default() += 1;
        if let Some(name) = name {
            let name: String = name.chars().take(MAX_NAME_LEN).collect();
            if tally.names.len() < MAX_NAMES && !tally.names.contains(&name) {
                tally.names.push(name);
            }
        }
    }

    /// Takes the windows that have ended by `now`, or all of them.
    fn take(&self, all: bool) -> Vec<Command> {
        let now = Utc::now();
        let length = TimeDelta::seconds(i64::from(self.window_seconds));
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ended: Vec<DateTime<Utc>> = open
            .keys()
            .filter(|start| all || **start + length <= now)
            .copied()
            .collect();
        let mut commands = Vec::new();
        for start in ended {
            for (addr, tally) in open.remove(&start).unwrap_or_default() {
                commands.push(Command::RecordFailures {
                    client_addr: addr,
                    window_start: start,
                    window_seconds: self.window_seconds,
                    count: tally.count,
                    reasons: tally.reasons,
                    names: tally.names,
                });
            }
        }
        commands
    }
}

/// Writes the counted failures of ended windows (or, at shutdown, of all).
pub async fn flush(app: &AppState, all: bool) {
    for command in app.failures.take(all) {
        let addr = match &command {
            Command::RecordFailures { client_addr, .. } if client_addr != OTHER_ADDRESSES => {
                Some(client_addr.clone())
            }
            _ => None,
        };
        let meta = RequestMeta {
            actor: Actor::anonymous(addr),
            request_id: Uuid::new_v4(),
        };
        if let Err(e) = app.engine.submit(command, meta).await {
            tracing::warn!(error = %e, "failure counts not recorded");
        }
    }
}

/// Writes ended windows a few times per window until the process ends.
pub fn spawn_flusher(app: AppState) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(u64::from(app.failures.window_seconds)) / 4;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(250)));
        loop {
            tick.tick().await;
            flush(&app, false).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tallies(commands: &[Command]) -> BTreeMap<String, (u64, Vec<String>)> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::RecordFailures {
                    client_addr,
                    count,
                    names,
                    ..
                } => Some((client_addr.clone(), (*count, names.clone()))),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn failures_from_one_address_are_one_record_with_a_count() {
        let counter = FailureCounter::new(3600);
        for i in 0..50 {
            counter.count(
                Some("192.0.2.1"),
                "unknown-user",
                Some(&format!("n{}", i % 12)),
            );
        }
        counter.count(Some("192.0.2.2"), "token-invalid", None);
        assert!(counter.take(false).is_empty(), "the window has not ended");
        let all = tallies(&counter.take(true));
        assert_eq!(all.len(), 2);
        assert_eq!(all["192.0.2.1"].0, 50);
        assert_eq!(all["192.0.2.1"].1.len(), MAX_NAMES, "names are capped");
        assert_eq!(all["192.0.2.2"].0, 1);
        assert!(counter.take(true).is_empty(), "taken once");
    }

    #[test]
    fn addresses_beyond_the_cap_are_counted_together() {
        let counter = FailureCounter::new(3600);
        for i in 0..MAX_ADDRESSES + 25 {
            counter.count(
                Some(&format!("10.0.{}.{}", i / 256, i % 256)),
                "malformed",
                None,
            );
        }
        let all = tallies(&counter.take(true));
        assert_eq!(all.len(), MAX_ADDRESSES + 1);
        assert_eq!(all[OTHER_ADDRESSES].0, 25);
    }
}
