//! Commands and their dispatch. The flags of `serve` are in `serve_flags`,
//! the offline audit query in `audit`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_projections::ReadModels;
use berth_store::{catch_up, Checkpoint, EventLog, Projector, StoreError};
use clap::{Args, Parser, Subcommand};

use crate::cluster::SharedLogArg;
use crate::error::{AtPath, CliError};
use crate::{admin, backup, logs};

mod audit;
mod serve_flags;

use audit::{audit_query, QueryArgs};
pub use serve_flags::{GraceArg, ServeArgs};

/// Berth: a self-hosted container image registry on an event-sourced core.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the registry.
    Serve(Box<ServeArgs>),
    /// Read-model maintenance.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCmd,
    },
    /// Event-log maintenance.
    Log {
        #[command(subcommand)]
        command: LogCmd,
    },
    /// Audit queries and checks.
    Audit {
        #[command(subcommand)]
        command: AuditCmd,
    },
    /// Upload `docker save` archives into an organization of a running
    /// registry, as the web upload does.
    Upload(crate::upload::UploadArgs),
    /// Take a consistent backup of a data directory into a new directory,
    /// online (through the running server) or offline.
    Backup {
        #[command(flatten)]
        data: DataDir,
        /// The new directory to write the backup into.
        #[arg(long)]
        to: PathBuf,
    },
    /// Remove blob files, stored manifests and abandoned upload sessions
    /// that nothing references: through the running server when one holds
    /// the data directory (with its policy), else offline.
    Gc(crate::gc::CollectArgs),
    /// Restore a backup into a new data directory, and verify it.
    Restore {
        /// The backup directory.
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Query the audit records of a data directory offline (the server
    /// stopped, or a copy), with the query API's filters: every record.
    Query(Box<QueryArgs>),
    /// Check a checkpoint's Ed25519 signature with a public key you hold.
    VerifyCheckpoint {
        /// The checkpoint, as `/v2/manage/audit/checkpoint` served it.
        file: PathBuf,
        /// The public key: hex, or the JSON `/v2/manage/audit/public-key` serves.
        #[arg(long)]
        public_key: PathBuf,
    },
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    data: DataDir,
    /// Verify the shared log in PostgreSQL instead of the data directory's.
    #[command(flatten)]
    shared: SharedLogArg,
    /// A checkpoint the log must still extend (repeatable).
    #[arg(long)]
    checkpoint: Vec<PathBuf>,
}

#[derive(Args)]
pub struct DataDir {
    /// Data directory (event log, read models, blobs, uploads).
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Args)]
struct RebuildArgs {
    #[command(flatten)]
    data: DataDir,
    /// Replay the shared log in PostgreSQL (a cluster node's data
    /// directory, new or existing) instead of the data directory's.
    #[command(flatten)]
    shared: SharedLogArg,
}

/// Which log a transfer reads or writes, and the file.
#[derive(Args)]
struct TransferArgs {
    /// The data directory's log (unless `--log` names the shared one).
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    shared: SharedLogArg,
    /// The export file.
    #[arg(long)]
    file: PathBuf,
}

impl TransferArgs {
    fn place(&self) -> logs::Place<'_> {
        match &self.shared.log_url {
            Some(url) => logs::Place::Shared(url),
            None => logs::Place::Dir(&self.data.data_dir),
        }
    }
}

#[derive(Args)]
struct DigestArgs {
    #[command(flatten)]
    data: DataDir,
    /// One digest per read model, by name: which one differs.
    #[arg(long)]
    by_model: bool,
}

#[derive(Subcommand)]
enum ProjectionsCmd {
    /// Drop every read model and replay the whole log into them.
    Rebuild(RebuildArgs),
    /// Print a digest of every read-model row (equal digests, identical models).
    Digest(DigestArgs),
}

#[derive(Subcommand)]
enum LogCmd {
    /// Check every event's hash and link from the first to the head, and
    /// that the log still extends each held checkpoint.
    Verify(VerifyArgs),
    /// Print events as JSON lines, oldest first (password verifiers redacted).
    Show(ShowArgs),
    /// Write the whole log, checked link by link, into a file (from the
    /// data directory, or from PostgreSQL with `--log`).
    Export(TransferArgs),
    /// Load an exported log into an empty log (a new data directory, or an
    /// empty PostgreSQL database with `--log`), checked link by link.
    Import(TransferArgs),
}

#[derive(Args)]
struct ShowArgs {
    #[command(flatten)]
    data: DataDir,
    /// First sequence number to print.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Most events to print.
    #[arg(long)]
    limit: Option<usize>,
}

/// Where the event log's database lives inside the data directory.
pub fn db_dir(data: &Path) -> PathBuf {
    data.join("db")
}

/// Opens the event log of an existing data directory. Maintenance commands
/// never create one: a mistyped path must not read as an empty, intact log.
pub fn open_existing(data: &Path) -> Result<EventLog, CliError> {
    let db = db_dir(data);
    if !db.is_dir() {
        return Err(CliError::NotADataDir(data.to_owned()));
    }
    EventLog::open(&db).at(&db)
}

/// Runs a command; the exit code says whether it succeeded.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Cmd::Serve(args) => crate::serve::serve(*args).map(|()| ExitCode::SUCCESS),
        Cmd::Upload(args) => crate::upload::upload(&args),
        Cmd::Gc(args) => crate::gc::gc(&args),
        Cmd::Backup { data, to } => {
            let request = admin::Request::Backup { to: to.clone() };
            let manifest = admin::online_or_offline(
                &data.data_dir,
                &request,
                |reply| match reply {
                    admin::Reply::Backup(m) => Some(m),
                    _ => None,
                },
                || {
                    let log = open_existing(&data.data_dir)?;
                    let manifest = backup::backup(&log, &data.data_dir, &to)?;
                    log.flush()?;
                    Ok(manifest)
                },
            )?;
            println!(
                "backup of {} taken into {}: head {} ({}), {} blobs",
                data.data_dir.display(),
                to.display(),
                manifest.head_seq,
                manifest.head_hash,
                manifest.blobs
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore { from, data } => {
            let manifest = backup::restore(&from, &data.data_dir)?;
            println!(
                "restored {} into {}: log verified to head {} ({})",
                from.display(),
                data.data_dir.display(),
                manifest.head_seq,
                manifest.head_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Projections {
            command: ProjectionsCmd::Rebuild(args),
        } => {
            let started = std::time::Instant::now();
            let (last, digest) = match &args.shared.log_url {
                Some(url) => logs::rebuild_from_shared(url, &args.data.data_dir)?,
                None => {
                    let log = open_existing(&args.data.data_dir)?;
                    berth_store::startup_check(&log)?;
                    let models = ReadModels::open(&log)?;
                    models.reset()?;
                    let last = catch_up(&log, &models)?;
                    log.flush()?;
                    (last, models.digest()?)
                }
            };
            let secs = started.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let rate = last as f64 / secs.max(1e-9);
            println!(
                "rebuilt read models from {last} events in {secs:.2} s ({rate:.0} events/s); digest {digest}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Log {
            command: LogCmd::Export(args),
        } => {
            let head = logs::export(&args.place(), &args.file)?;
            println!(
                "exported {} events into {}, head hash {}",
                head.seq,
                args.file.display(),
                berth_domain::hex::encode(&head.hash)
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Log {
            command: LogCmd::Import(args),
        } => {
            let head = logs::import(&args.file, &args.place())?;
            println!(
                "imported {} events from {}, chain intact, head hash {}",
                head.seq,
                args.file.display(),
                berth_domain::hex::encode(&head.hash)
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Projections {
            command: ProjectionsCmd::Digest(args),
        } => {
            let log = open_existing(&args.data.data_dir)?;
            let models = ReadModels::open(&log)?;
            if args.by_model {
                for (name, digest) in models.digests()? {
                    println!("{digest} {name}");
                }
            } else {
                println!("{}", models.digest()?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Log {
            command: LogCmd::Verify(args),
        } => {
            let checkpoints = args
                .checkpoint
                .iter()
                .map(|f| read_json::<Checkpoint>(f))
                .collect::<Result<Vec<_>, _>>()?;
            let verified = match &args.shared.log_url {
                Some(url) => logs::verify_shared(url, &checkpoints),
                None => {
                    let log = open_existing(&args.data.data_dir)?;
                    log.verify_from(berth_store::ChainPoint::START)
                        .and_then(|head| {
                            for c in &checkpoints {
                                log.extends(c)?;
                            }
                            Ok(head)
                        })
                }
            };
            match verified {
                Ok(head) => {
                    println!(
                        "log intact: {} events, head hash {}",
                        head.seq,
                        berth_domain::hex::encode(&head.hash)
                    );
                    for c in &checkpoints {
                        println!("extends the checkpoint at sequence {} of {}", c.seq, c.time);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::Corrupt { seq, reason }) => {
                    println!("log damaged: first bad sequence number {seq}: {reason}");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Log {
            command: LogCmd::Show(args),
        } => {
            let log = open_existing(&args.data.data_dir)?;
            show(&log, args.from, args.limit.unwrap_or(usize::MAX))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Audit {
            command: AuditCmd::Query(args),
        } => {
            audit_query(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Audit {
            command: AuditCmd::VerifyCheckpoint { file, public_key },
        } => {
            let checkpoint: Checkpoint = read_json(&file)?;
            let text = std::fs::read_to_string(&public_key).at(&public_key)?;
            let key = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["public_key"].as_str().map(str::to_owned))
                .unwrap_or(text);
            match checkpoint.verify(&key) {
                Ok(()) => {
                    println!(
                        "checkpoint valid: sequence {}, hash {}, signed {}",
                        checkpoint.seq, checkpoint.hash, checkpoint.time
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("checkpoint refused: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}

/// Reads a JSON file an auditor keeps.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path).at(path)?;
    serde_json::from_str(&text).map_err(|e| CliError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Prints events from `from` on, verifying the chain as it reads.
fn show(log: &EventLog, from: u64, limit: usize) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0usize;
    let mut write_failure = None;
    log.scan(berth_store::ChainPoint::START, |r| {
        if r.seq < from {
            return Ok(ControlFlow::Continue(()));
        }
        if printed == limit {
            return Ok(ControlFlow::Break(()));
        }
        if let Err(e) = writeln!(out, "{}", r.to_json()) {
            write_failure = Some(e);
            return Ok(ControlFlow::Break(()));
        }
        printed += 1;
        Ok(ControlFlow::Continue(()))
    })?;
    match write_failure {
        Some(e) => Err(CliError::Output(e)),
        None => out.flush().map_err(CliError::Output),
    }
}
