//! `berth gc`: garbage collection from the command line, through the
//! running server's writer when one holds the data directory, else offline
//! with a writer of its own. Either way the run is recorded in the log.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use berth_projections::ReadModels;
use berth_store::gc::{self, Collector, Item, Pins, Report};
use berth_store::{LocalBlobs, LocalUploads};
use clap::Args;

use crate::admin;
use crate::cli::{open_existing, DataDir, GraceArg};
use crate::error::{AtPath, CliError};

/// What `berth gc` takes.
#[derive(Args)]
pub struct CollectArgs {
    #[command(flatten)]
    data: DataDir,
    /// List what would go; remove nothing, record nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    grace: GraceArg,
    /// Offline only: hours after which an idle upload session is abandoned.
    #[arg(long, env = "BERTH_UPLOAD_MAX_IDLE_HOURS", default_value_t = 24)]
    upload_max_idle_hours: u64,
}

/// Runs `berth gc` and prints what went (or would go).
pub fn gc(args: &CollectArgs) -> Result<ExitCode, CliError> {
    let data = &args.data.data_dir;
    let report = admin::online_or_offline(
        data,
        &admin::Request::Gc {
            dry_run: args.dry_run,
        },
        |reply| match reply {
            admin::Reply::Gc(report) => Some(report),
            _ => None,
        },
        || offline(args),
    )?;
    print(&report);
    Ok(ExitCode::SUCCESS)
}

/// Opens the data directory with a writer of its own and runs once.
fn offline(args: &CollectArgs) -> Result<Report, CliError> {
    let data = &args.data.data_dir;
    let log = open_existing(data)?;
    let models = Arc::new(ReadModels::open(&log)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(CliError::Server)?;
    let (engine, writer) = berth_store::start(log.clone(), models.clone(), models.clone())?;
    let blob_dir = data.join("blobs");
    let blobs = Arc::new(LocalBlobs::open(blob_dir.clone()).at(&blob_dir)?);
    let upload_dir = data.join("uploads");
    // The collector removes idle sessions itself, so that its record
    // counts them.
    let uploads = LocalUploads::open(upload_dir.clone(), blobs.clone(), u64::MAX, Duration::MAX)
        .at(&upload_dir)?;
    let collector = Collector::new(
        gc::Parts {
            blobs,
            uploads: Arc::new(uploads),
            log: log.clone(),
            references: models,
            engine,
            pins: Arc::new(Pins::default()),
        },
        args.grace.policy(args.upload_max_idle_hours),
    );
    let report = runtime.block_on(collector.run(args.dry_run, admin::system_meta()));
    drop(collector);
    let _ = writer.join();
    log.flush()?;
    Ok(report?)
}

fn print(report: &Report) {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for (kind, items) in [
        ("blob", &report.blobs),
        ("manifest", &report.manifests),
        ("upload", &report.uploads),
    ] {
        for Item { id, bytes } in items {
            println!("{verb} {kind} {id} ({bytes} bytes)");
        }
    }
    println!(
        "garbage collection {} {verb} {} blobs, {} manifests and {} upload sessions: {} bytes in {:.3} s{}",
        report.run,
        report.blobs.len(),
        report.manifests.len(),
        report.uploads.len(),
        report.bytes,
        report.seconds,
        if report.events.is_empty() {
            String::new()
        } else {
            format!(" (events {:?})", report.events)
        }
    );
}
