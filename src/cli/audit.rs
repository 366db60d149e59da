//! `berth audit query`: the audit records of a data directory offline, with
//! the query API's filters.

use berth_projections::ReadModels;
use berth_store::catch_up;
use clap::Args;

use super::{open_existing, DataDir};
use crate::error::CliError;

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    data: DataDir,
    /// Records at or after this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Records at or before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Records about this account.
    #[arg(long)]
    account: Option<String>,
    /// Records of or about this user, `account/user`.
    #[arg(long)]
    user: Option<String>,
    /// Records about this organization or its repositories.
    #[arg(long)]
    namespace: Option<String>,
    /// Records about this repository of `--namespace`.
    #[arg(long)]
    repo: Option<String>,
    /// Records of this event type (`TagPointed`, `LoginFailed`, ...).
    #[arg(long)]
    action: Option<String>,
    /// Records with this result: ok, denied or failed.
    #[arg(long)]
    result: Option<String>,
    /// Records of requests from this IP address.
    #[arg(long)]
    client_addr: Option<String>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    oldest_first: bool,
    /// Most records to print.
    #[arg(long)]
    limit: Option<usize>,
    /// Output: one JSON record per line, or CSV.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
}

/// How `audit query` prints records.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

/// Prints the audit records a query selects, with the read models brought
/// up to the log's head first.
pub fn audit_query(args: &QueryArgs) -> Result<(), CliError> {
    use berth_projections::{AuditOrder, Export, ExportFormat, Filter};
    use std::io::Write;
    let filter = Filter::parse(|name| match name {
        "from" => args.from.as_deref(),
        "to" => args.to.as_deref(),
        "account" => args.account.as_deref(),
        "user" => args.user.as_deref(),
        "namespace" => args.namespace.as_deref(),
        "repo" => args.repo.as_deref(),
        "action" => args.action.as_deref(),
        "result" => args.result.as_deref(),
        "client_addr" => args.client_addr.as_deref(),
        _ => None,
    })
    .map_err(|e| CliError::BadFlag {
        flag: e.field.to_owned(),
        message: e.message,
    })?;
    let log = open_existing(&args.data.data_dir)?;
    let models = ReadModels::open(&log)?;
    catch_up(&log, &models)?;
    let export = Export {
        filter,
        scope: berth_domain::policy::AuditScope::All,
        order: if args.oldest_first {
            AuditOrder::OldestFirst
        } else {
            AuditOrder::NewestFirst
        },
        cursor: None,
        limit: args.limit.unwrap_or(usize::MAX),
        format: match args.format {
            Format::Csv => ExportFormat::Csv,
            Format::Ndjson => ExportFormat::Ndjson,
        },
    };
    let mut out = std::io::stdout();
    let mut write_failure = None;
    models.audit.export(&log, &export, |chunk| {
        match out.write_all(chunk.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                write_failure = Some(e);
                false
            }
        }
    })?;
    match write_failure {
        Some(e) => Err(CliError::Output(e)),
        None => out.flush().map_err(CliError::Output),
    }
}
