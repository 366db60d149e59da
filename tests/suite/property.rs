//! Random histories: sequences of registry and management commands across
//! three accounts, drawn from a seeded generator. After each sequence the
//! read models rebuilt from the log equal the live ones byte for byte, and
//! every account's image list from the API equals a brute-force fold of the
//! log (`berth log show`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::support::*;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const ACCOUNTS: [&str; 3] = ["acme", "beta", "gamma"];
const REPOS: [&str; 3] = ["web", "db", "tool"];
const TAGS: [&str; 4] = ["v1", "v2", "stable", "dev"];
const CATEGORIES: [&str; 4] = ["linux", "database", "other", "app-server"];

/// One image as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    path: String,
    num_images: u64,
    public: bool,
    category: String,
    shared: bool,
}

/// The image lists every account's admin should see, folded by brute
/// force from the log's JSON lines.
fn fold(log: &str) -> BTreeMap<String, BTreeSet<Listed>> {
    #[derive(Default, Clone)]
    struct Repo {
        tags: BTreeSet<String>,
        public: bool,
        category: String,
        shares: BTreeSet<String>,
    }
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut repos: BTreeMap<String, Repo> = BTreeMap::new();
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let (kind, e) = entry["event"].as_object().unwrap().iter().next().unwrap();
        let repo = e["repo"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "NamespaceCreated" => {
                owners.insert(
                    e["org"].as_str().unwrap().to_owned(),
                    e["account"].as_str().unwrap().to_owned(),
                );
            }
            "OrganizationDeleted" => {
                owners.remove(e["org"].as_str().unwrap());
            }
            "RepositoryCreated" => {
                repos.insert(
                    repo,
                    Repo {
                        category: "Other".into(),
                        ..Repo::default()
                    },
                );
            }
            "RepositoryDeleted" => {
                repos.remove(&repo);
            }
            "TagPointed" => {
                let tag = e["tag"].as_str().unwrap().to_owned();
                repos.get_mut(&repo).unwrap().tags.insert(tag);
            }
            "TagDeleted" => {
                repos
                    .get_mut(&repo)
                    .unwrap()
                    .tags
                    .remove(e["tag"].as_str().unwrap());
            }
            "RepositoryVisibilityChanged" => {
                repos.get_mut(&repo).unwrap().public = e["public"].as_bool().unwrap();
            }
            "RepositoryAttributesChanged" => {
                repos.get_mut(&repo).unwrap().category = e["category"].as_str().unwrap().into();
            }
            "ShareGranted" => {
                let with = e["with"].as_str().unwrap().to_owned();
                repos.get_mut(&repo).unwrap().shares.insert(with);
            }
            "ShareEnded" => {
                repos
                    .get_mut(&repo)
                    .unwrap()
                    .shares
                    .remove(e["with"].as_str().unwrap());
            }
            _ => {}
        }
    }
    let category = |c: &str| match c {
        "AppServer" => "app-server".to_owned(),
        other => other.to_lowercase(),
    };
    let mut lists: BTreeMap<String, BTreeSet<Listed>> = BTreeMap::new();
    for (path, r) in &repos {
        let org = path.split('/').next().unwrap();
        let listed = |shared| Listed {
            path: path.clone(),
            num_images: r.tags.len() as u64,
            public: r.public,
            category: category(&r.category),
            shared,
        };
        if let Some(owner) = owners.get(org) {
            lists
                .entry(owner.clone())
                .or_default()
                .insert(listed(false));
        }
        for with in &r.shares {
            lists.entry(with.clone()).or_default().insert(listed(true));
        }
    }
    lists
}

/// An account's image list as the API pages it out, by name.
fn listed(server: &Server, who: &Identity) -> BTreeSet<Listed> {
    let mut out = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/repos?sort=name&limit=2{cursor}");
        let (status, page) = manage(server, "GET", &path, &who.basic(), Value::Null);
        assert_eq!(status, 200, "{page}");
        for r in page["repos"].as_array().unwrap() {
            out.insert(Listed {
                path: format!(
                    "{}/{}",
                    r["namespace"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                ),
                num_images: r["num_images"].as_u64().unwrap(),
                public: r["is_public"].as_bool().unwrap(),
                category: r["category"].as_str().unwrap().to_owned(),
                shared: r["shared"].as_bool().unwrap(),
            });
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// One random step; refusals are part of the history too.
async fn step(server: &Server, rng: &mut Rng, who: &[Identity], n: u64) {
    let a = rng.below(ACCOUNTS.len());
    let me = &who[a];
    let repo = format!("org-{}/{}", ACCOUNTS[a], rng.pick(&REPOS));
    let (ns, name) = repo.split_once('/').unwrap();
    let base = format!("/namespaces/{ns}/repos/{name}");
    let call =
        |method: &str, path: String, body: Value| manage(server, method, &path, &me.basic(), body);
    match rng.below(8) {
        0 | 1 => {
            push_image_as(server, &me.client(), &repo, rng.pick(&TAGS), n).await;
        }
        2 => {
            let public = rng.below(2) == 0;
            call(
                "PATCH",
                base,
                json!({"is_public": public, "category": rng.pick(&CATEGORIES)}),
            );
        }
        3 => {
            call(
                "DELETE",
                format!("{base}/tags/{}", rng.pick(&TAGS)),
                Value::Null,
            );
        }
        4 => {
            let other = ACCOUNTS[(a + 1 + rng.below(2)) % ACCOUNTS.len()];
            call(
                "POST",
                format!("{base}/access-domains"),
                json!({"access_domain": other, "deadline": "forever"}),
            );
        }
        5 => {
            let other = ACCOUNTS[(a + 1 + rng.below(2)) % ACCOUNTS.len()];
            call(
                "DELETE",
                format!("{base}/access-domains/{other}"),
                Value::Null,
            );
        }
        6 => {
            call(
                "POST",
                format!("{base}/tags"),
                json!({"source_tag": rng.pick(&TAGS), "destination_tag": rng.pick(&TAGS), "override": true}),
            );
        }
        _ => {
            if rng.below(3) == 0 {
                call("DELETE", base, Value::Null);
            } else {
                call(
                    "POST",
                    format!("/namespaces/{ns}/repos"),
                    json!({"repository": name}),
                );
            }
        }
    }
}

#[tokio::test]
async fn random_histories_rebuild_identically_and_lists_match_the_log() {
    let mut server = Server::start();
    let who: Vec<Identity> = ACCOUNTS.iter().map(|a| server.create_account(a)).collect();
    for (i, id) in who.iter().enumerate() {
        let (status, reply) = manage(
            &server,
            "POST",
            "/namespaces",
            &id.basic(),
            json!({"namespace": format!("org-{}", ACCOUNTS[i])}),
        );
        assert_eq!(status, 201, "{reply}");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n = 1000;
    for sequence in 0..3 {
        for _ in 0..40 {
            n += 1;
            step(&server, &mut rng, &who, n).await;
        }
        server.stop();
        let (code, live) = berth(&["projections", "digest"], &server.dir);
        assert_eq!(code, 0);
        let (code, rebuilt) = berth(&["projections", "rebuild"], &server.dir);
        assert_eq!(code, 0, "{rebuilt}");
        assert!(
            rebuilt.trim().ends_with(live.trim()),
            "sequence {sequence}: rebuilt {rebuilt:?}, live {live:?}"
        );
        let (code, log) = berth(&["log", "show"], &server.dir);
        assert_eq!(code, 0);
        let expected = fold(&log);
        server.restart();
        for (i, id) in who.iter().enumerate() {
            let want = expected.get(ACCOUNTS[i]).cloned().unwrap_or_default();
            assert_eq!(
                listed(&server, id),
                want,
                "sequence {sequence}: {}'s list",
                ACCOUNTS[i]
            );
        }
    }
}
