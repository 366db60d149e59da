//! Leases, for real: of three nodes that each try every second, one holds
//! the scheduled checkpoints' lease; when that node is killed, its
//! connection goes with it and another node takes the lease over.

use std::time::{Duration, Instant};

use super::db::{lock_held, lock_key};
use super::Cluster;

/// The node whose connection (its client port, as PostgreSQL sees it)
/// holds the lease `key`, found through the sockets in `/proc`.
fn holder(cluster: &Cluster, key: i64) -> Option<usize> {
    let port: u16 = cluster
        .psql(&lock_held(key, "a.client_port"))
        .parse()
        .ok()?;
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local = fields.get(1)?.rsplit_once(':')?.1;
                    let inode = fields.get(9)?;
                    (u16::from_str_radix(local, 16).ok()? == port)
                        .then(|| format!("socket:[{inode}]"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    (1..=3).find(|n| {
        let pid =
            std::fs::read_to_string(cluster.dir.join(format!("node{n}/pid"))).unwrap_or_default();
        std::fs::read_dir(format!("/proc/{}/fd", pid.trim()))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|link| inodes.iter().any(|i| link.to_string_lossy() == *i))
    })
}

/// Starts the three nodes again, with checkpoints every second and no
/// idle allowance for upload sessions; the node that holds the lease
/// in the end.
pub(super) fn one_holder_and_failover(cluster: &Cluster) -> usize {
    let key = lock_key("berth-lease:checkpoint");
    let held = lock_held(key, "count(*)");
    let env = [
        ("BERTH_CHECKPOINT_INTERVAL", "1"),
        ("BERTH_UPLOAD_MAX_IDLE_HOURS", "0"),
    ];
    for n in 1..=3 {
        let n = n.to_string();
        let (ok, out) = cluster.sh_with(&["start", &n], &env);
        assert!(ok, "start {n}: {out}");
    }
    cluster.await_psql(&held, "1", "a node takes the checkpoint lease");
    // Each node tries every second: for three seconds, one holds it.
    for _ in 0..6 {
        assert_eq!(cluster.psql(&held), "1", "one node holds the lease");
        std::thread::sleep(Duration::from_millis(500));
    }
    let first = holder(cluster, key).expect("the lease's holder is a node");
    let (ok, out) = cluster.sh(&["kill", &first.to_string()]);
    assert!(ok, "kill {first}: {out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let next = loop {
        if let Some(n) = holder(cluster, key).filter(|n| *n != first) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no node took the lease over from node {first}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(cluster.psql(&held), "1", "node {next} alone holds it now");
    eprintln!("the checkpoint lease moved from node {first} to node {next}");
    next
}
