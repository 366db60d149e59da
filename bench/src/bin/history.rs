//! The management API and the audit trail on a large history. `generate`
//! writes one through the real write path (the engine, its group commit
//! and every read model, but no HTTP: blob facts are asserted, not
//! uploaded): an account with `--orgs` organizations holding `--images`
//! images of `--tags` tags each, one image in a hundred shared with a
//! second account, one in fifty refused to that account's admin (a denial
//! record), and one repository (`org0000/hot`) with `--hot-events` tag
//! events. It then times the pull path's share check on the read models.
//! `measure` times the image list's first page, a filtered search and one
//! image's tag list over HTTP against `berth serve` on that data directory;
//! `measure-audit` times audit queries, the CSV export and as-of.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::auth::passwords::hash_password;
use berth_api::auth::secrets::{login_password, random_string, verifier, AK_ALPHABET, SK_ALPHABET};
use berth_domain::repository::Attributes;
use berth_domain::{
    parse_manifest, AccountCommand, AccountName, Actor, Algorithm, Category, Command, Deadline,
    Description, Digest, OrgCommand, OrgName, Owner, RepoCommand, RepoName, RepoPath, ShareNote,
    TagName, UserCommand, UserName,
};
use berth_projections::ReadModels;
use berth_store::{Content, Engine, EventLog, RequestMeta};
use clap::{Parser, Subcommand};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a history into an empty data directory.
    Generate {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        orgs: usize,
        #[arg(long, default_value_t = 100_000)]
        images: usize,
        #[arg(long, default_value_t = 10)]
        tags: usize,
        /// Tag events of the one hot repository, `org0000/hot`.
        #[arg(long, default_value_t = 0)]
        hot_events: usize,
    },
    /// Time audit queries, the CSV export and as-of against a server (as
    /// the operator).
    MeasureAudit(Server),
    /// Time management queries against a server over that directory (with
    /// the printed access key).
    Measure(Server),
    /// Time the console's image list page, as the account's admin signed
    /// in through the console's session.
    MeasureConsole {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 500)]
        samples: usize,
    },
}

/// The server a measurement runs against.
#[derive(clap::Args)]
struct Server {
    #[arg(long)]
    url: String,
    /// `Authorization` header.
    #[arg(long)]
    auth: String,
    #[arg(long, default_value_t = 300)]
    samples: usize,
}

fn meta() -> RequestMeta {
    RequestMeta {
        actor: Actor::system(),
        request_id: Uuid::new_v4(),
    }
}

fn name<T>(parse: fn(&str) -> Result<T, berth_domain::DomainError>, s: &str) -> T {
    parse(s).unwrap_or_else(|e| panic!("generated name {s:?}: {e}"))
}

async fn submit(engine: &Engine, command: Command) {
    engine
        .submit(command, meta())
        .await
        .unwrap_or_else(|e| panic!("generated command refused: {e}"));
}

/// The manifest every image's tags point at, and the two blobs it needs.
fn manifest() -> (Vec<u8>, [Digest; 2]) {
    let digest = |b: &[u8]| {
        Digest::from_bytes(Algorithm::Sha256, &Sha256::digest(b)).expect("a sha256 digest")
    };
    let config = digest(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    let layer = digest(b"generated layer");
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2048},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.to_string(), "size": 31_457_280}],
    });
    (
        serde_json::to_vec(&body).expect("plain JSON"),
        [config, layer],
    )
}

/// Pushes the generated manifest as `<prefix>0` and points `count - 1`
/// more tags (`<prefix>1`, ...) at it.
async fn tagged(engine: &Engine, owner: &Owner, repo: &RepoPath, prefix: &str, count: usize) {
    let first = format!("{prefix}0");
    push(engine, owner, repo, &first).await;
    for t in 1..count {
        let retag = RepoCommand::Retag {
            repo: repo.clone(),
            source: name(TagName::parse, &first),
            destination: name(TagName::parse, &format!("{prefix}{t}")),
            overwrite: false,
        };
        submit(engine, Command::Repo(retag)).await;
    }
}

/// Links the generated manifest's blobs to `repo` and pushes it as `tag`.
async fn push(engine: &Engine, owner: &Owner, repo: &RepoPath, tag: &str) {
    let (bytes, blobs) = manifest();
    for (digest, size) in blobs.iter().zip([2048, 31_457_280]) {
        let link = RepoCommand::LinkUploadedBlob {
            by: Some(owner.clone()),
            repo: repo.clone(),
            digest: digest.clone(),
            size,
        };
        submit(engine, Command::Repo(link)).await;
    }
    let digest = Digest::from_bytes(Algorithm::Sha256, &Sha256::digest(&bytes)).expect("digest");
    let push = RepoCommand::PushManifest {
        by: Some(owner.clone()),
        repo: repo.clone(),
        tag: Some(name(TagName::parse, tag)),
        digest: digest.clone(),
        size: bytes.len() as u64,
        manifest: parse_manifest(None, &bytes).expect("a valid manifest"),
    };
    let content = Content::logged([(digest, bytes::Bytes::from(bytes))]);
    engine
        .submit_with(Command::Repo(push), content, meta())
        .await
        .unwrap_or_else(|e| panic!("push refused: {e}"));
}

async fn image(
    engine: &Engine,
    owner: &Owner,
    partner: &AccountName,
    i: usize,
    orgs: usize,
    tags: usize,
) {
    let repo = RepoPath::new(
        name(OrgName::parse, &format!("org{:04}", i % orgs)),
        name(RepoName::parse, &format!("img{i:06}")),
    );
    let category = Category::ALL[i % Category::ALL.len()];
    let attributes = Attributes {
        public: Some(i % 10 == 0),
        category: Some(category),
        description: Some(name(Description::parse, &format!("generated image {i}"))),
    };
    submit(
        engine,
        Command::Repo(RepoCommand::Create {
            repo: repo.clone(),
            attributes,
        }),
    )
    .await;
    tagged(engine, owner, &repo, "v", tags).await;
    if i % 50 == 7 {
        let denial = UserCommand::RecordDenial {
            action: "push".into(),
            resource: repo.to_string(),
        };
        let as_partner = AccountCommand::User {
            account: partner.clone(),
            user: name(UserName::parse, "admin"),
            change: denial,
        };
        submit(engine, Command::Account(as_partner)).await;
    }
    if i % 100 == 1 {
        let share = RepoCommand::Share {
            repo,
            owner: owner.account.clone(),
            with: partner.clone(),
            deadline: Deadline::Forever,
            description: ShareNote::default(),
        };
        submit(engine, Command::Repo(share)).await;
    }
}

/// One repository with `events` tag events: tags `t1`..`tN` pointed at
/// its one manifest.
async fn hot(engine: &Engine, owner: &Owner, events: usize) {
    let repo = RepoPath::new(
        name(OrgName::parse, "org0000"),
        name(RepoName::parse, "hot"),
    );
    let create = RepoCommand::Create {
        repo: repo.clone(),
        attributes: Attributes::default(),
    };
    submit(engine, Command::Repo(create)).await;
    tagged(engine, owner, &repo, "t", events).await;
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

async fn generate(data: PathBuf, orgs: usize, images: usize, tags: usize, hot_events: usize) {
    let started = Instant::now();
    std::fs::create_dir_all(&data).expect("data directory");
    let log = EventLog::open(&data.join("db")).expect("open the log");
    let models = Arc::new(ReadModels::open(&log).expect("read models"));
    let (engine, writer) =
        berth_store::start(log.clone(), models.clone(), models.clone()).expect("engine");
    let account = name(AccountName::parse, "bench");
    let partner = name(AccountName::parse, "partner");
    let admin = name(UserName::parse, "admin");
    for a in [&account, &partner] {
        let create = AccountCommand::Create {
            account: a.clone(),
            admin_user: admin.clone(),
            admin_password: hash_password("bench-password"),
        };
        submit(&engine, Command::Account(create)).await;
    }
    let (ak, sk) = (
        random_string(20, AK_ALPHABET),
        random_string(40, SK_ALPHABET),
    );
    let key = UserCommand::CreateAccessKey {
        ak: ak.clone(),
        verifier: verifier(&login_password(&ak, &sk)),
    };
    submit(
        &engine,
        Command::Account(AccountCommand::User {
            account: account.clone(),
            user: admin.clone(),
            change: key,
        }),
    )
    .await;
    let owner = Owner {
        account: account.clone(),
        user: admin.clone(),
        org_quota: usize::MAX,
    };
    for o in 0..orgs {
        let org = name(OrgName::parse, &format!("org{o:04}"));
        submit(
            &engine,
            Command::Org(OrgCommand::Create {
                org,
                by: owner.clone(),
            }),
        )
        .await;
    }
    // Many images at once, so group commit batches them as it would
    // concurrent pushes; the hot repository's events among them.
    const WRITERS: usize = 256;
    let mut tasks = Vec::new();
    if hot_events > 0 {
        let (engine, owner) = (engine.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            hot(&engine, &owner, hot_events).await;
        }));
    }
    for w in 0..WRITERS {
        let (engine, owner, partner) = (engine.clone(), owner.clone(), partner.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..images).step_by(WRITERS) {
                image(&engine, &owner, &partner, i, orgs, tags).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    drop(engine);
    writer.join().expect("writer thread");
    let written = log.head().expect("head").seq;
    eprintln!(
        "generated {written} events ({images} images, {orgs} organizations, {tags} tags each) in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // The pull path's share check: one read-model lookup per
    // authorization, timed on shared and unshared images.
    let mut timings = Vec::new();
    for n in 0..200_000usize {
        let i = (n * 7919) % images;
        let repo = RepoPath::new(
            name(OrgName::parse, &format!("org{:04}", i % orgs)),
            name(RepoName::parse, &format!("img{i:06}")),
        );
        let row = models.repos.get(&repo).expect("read").expect("generated");
        let t = Instant::now();
        let share = models.shares.get(row.id, &partner).expect("read");
        timings.push(t.elapsed());
        assert_eq!(share.is_some(), i % 100 == 1);
    }
    let p50 = percentile(&mut timings, 0.5);
    let p99 = percentile(&mut timings, 0.99);
    println!(
        "| share check on the pull path | {:.1} µs | {:.1} µs | adds < 20 µs |",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    log.flush().expect("flush");
    println!(
        "AUTH=Basic {}",
        base64_basic(&format!("local@{ak}"), &login_password(&ak, &sk))
    );
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

async fn measure(url: String, auth: String, samples: usize) {
    let client = client(&auth);
    let queries = [
        (
            "image list, first page (100, newest first)",
            "/v2/manage/repos",
            "< 2 ms median, < 10 ms p99",
        ),
        (
            "filtered search (category + name contains)",
            "/v2/manage/repos?category=database&name=42",
            "",
        ),
        (
            "one image's tag list",
            "/v2/manage/namespaces/org0001/repos/img000001/tags",
            "",
        ),
    ];
    time_queries(&client, &url, &queries, samples).await;
}

/// Prints a table row per query: median and p99 of `samples` GETs.
async fn time_queries(
    client: &reqwest::Client,
    url: &str,
    queries: &[(&str, impl AsRef<str>, &str)],
    samples: usize,
) {
    for (what, path, target) in queries {
        let (p50, p99) = timed(client, &format!("{url}{}", path.as_ref()), samples).await;
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {target} |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
}

/// Median and p99 of `samples` GETs of `path`.
async fn timed(client: &reqwest::Client, url: &str, samples: usize) -> (Duration, Duration) {
    let mut timings = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let r = client.get(url).send().await.expect("the server answers");
        assert_eq!(r.status(), 200, "{url}");
        r.bytes().await.expect("body");
        timings.push(t.elapsed());
    }
    (
        percentile(&mut timings, 0.5),
        percentile(&mut timings, 0.99),
    )
}

fn client(auth: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                auth.parse().expect("header value"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("client")
}

/// The console's image list (first page of 50, newest first) in English
/// and Chinese: the server's own time to make the page (its
/// `Server-Timing`), and the whole request as the client saw it.
async fn measure_console(url: String, samples: usize) {
    let login = reqwest::Client::new()
        .post(format!("{url}/v2/manage/session"))
        .json(
            &serde_json::json!({"account": "bench", "user": "admin", "password": "bench-password"}),
        )
        .send()
        .await
        .expect("the server answers");
    let token = login.json::<serde_json::Value>().await.expect("a session")["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    for lang in ["en", "zh-CN"] {
        let client = reqwest::Client::builder()
            .default_headers(
                [(
                    reqwest::header::COOKIE,
                    format!("berth_session={token}; berth_lang={lang}")
                        .parse()
                        .expect("header value"),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .expect("client");
        let (mut server, mut whole) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let t = Instant::now();
            let r = client
                .get(format!("{url}/console/images"))
                .send()
                .await
                .expect("the server answers");
            assert_eq!(r.status(), 200, "the image list page");
            let made = r
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split("dur=").nth(1))
                .and_then(|ms| ms.parse::<f64>().ok())
                .expect("Server-Timing");
            let body = r.text().await.expect("body");
            assert!(body.matches("<tr>").count() > 50, "a full page of images");
            whole.push(t.elapsed());
            server.push(Duration::from_secs_f64(made / 1e3));
        }
        for (what, timings, target) in [
            ("rendered by the server", &mut server, "< 5 ms p99"),
            ("whole request, loopback", &mut whole, ""),
        ] {
            println!(
                "| console image list ({lang}), 50 of 1 000 images, {what} | {:.2} ms | {:.2} ms | {target} |",
                percentile(timings, 0.5).as_secs_f64() * 1e3,
                percentile(timings, 0.99).as_secs_f64() * 1e3
            );
        }
    }
}

async fn measure_audit(url: String, auth: String, samples: usize) {
    let client = client(&auth);
    let month_ago = (chrono::Utc::now() - chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let queries = [
        (
            "audit query, first page: one repository, last 30 days",
            format!("/v2/manage/audit/events?namespace=org0000&repo=hot&from={month_ago}"),
            "< 50 ms p99",
        ),
        (
            "audit query, first page: one small repository, last 30 days",
            format!("/v2/manage/audit/events?namespace=org0007&repo=img000007&from={month_ago}"),
            "",
        ),
        (
            "audit query, first page: denials of one account",
            "/v2/manage/audit/events?account=partner&result=denied".to_owned(),
            "",
        ),
        (
            "audit query, first page: everything",
            "/v2/manage/audit/events".to_owned(),
            "",
        ),
    ];
    time_queries(&client, &url, &queries, samples).await;
    let as_of = format!(
        "{url}/v2/manage/audit/as-of?namespace=org0000&repo=hot&at={}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let (p50, p99) = timed(&client, &as_of, 20).await;
    println!(
        "| as-of of the hot repository (all its events) | {:.1} ms | {:.1} ms | < 100 ms |",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let mut r = client
        .get(format!("{url}/v2/manage/audit/events?format=csv"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(r.status(), 200);
    let (mut bytes, mut rows) = (0usize, 0usize);
    while let Some(chunk) = r.chunk().await.expect("body") {
        bytes += chunk.len();
        rows += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let secs = t.elapsed().as_secs_f64();
    let records = rows.saturating_sub(1);
    println!(
        "| CSV export of every record ({records} records, {:.0} MB) | {:.0} records/s | {:.1} s | > 200 000 records/s |",
        bytes as f64 / 1e6,
        records as f64 / secs,
        secs
    );
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Cmd::Generate {
            data_dir,
            orgs,
            images,
            tags,
            hot_events,
        } => generate(data_dir, orgs, images, tags, hot_events).await,
        Cmd::MeasureAudit(s) => measure_audit(s.url, s.auth, s.samples).await,
        Cmd::Measure(s) => measure(s.url, s.auth, s.samples).await,
        Cmd::MeasureConsole { url, samples } => measure_console(url, samples).await,
    }
}
