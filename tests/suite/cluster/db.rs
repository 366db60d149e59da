//! The shared log's database as the tests look into it: psql, and the
//! advisory locks berth takes there.

use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::Cluster;

impl Cluster {
    /// One value from `sql`, run by psql on the shared log's database.
    pub(super) fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([self.pg(), "-Atc", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits up to 20 s for `sql` to answer `want`.
    pub(super) fn await_psql(&self, sql: &str, want: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.psql(sql) != want {
            assert!(
                Instant::now() < deadline,
                "{what}: `{sql}` never said {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The 64-bit advisory-lock key berth derives from a name.
pub(super) fn lock_key(name: &str) -> i64 {
    let hash = Sha256::digest(name);
    i64::from_be_bytes(hash[..8].try_into().unwrap())
}

/// A query selecting `what` over the granted holds of the advisory lock
/// `key` (`l`, split the way `pg_locks` shows a 64-bit key) and the
/// sessions that hold them (`a`, from `pg_stat_activity`).
pub(super) fn lock_held(key: i64, what: &str) -> String {
    let bits = key as u64;
    format!(
        "SELECT {what} FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE l.locktype = 'advisory' AND l.granted \
         AND l.classid = {}::bigint::oid AND l.objid = {}::bigint::oid",
        bits >> 32,
        bits & 0xffff_ffff
    )
}
