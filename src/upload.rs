//! `berth upload`: the web upload from a terminal, for operators and
//! scripts. Every file goes in one multipart request, streamed from disk,
//! with a progress bar per file; the job's report is printed at the end.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio_util::io::ReaderStream;

use crate::error::CliError;

/// What `berth upload` takes.
#[derive(Args)]
pub struct UploadArgs {
    /// The registry's base URL, e.g. `http://registry.example.com:5000`.
    #[arg(long, env = "BERTH_URL")]
    url: String,
    /// The organization the images go into.
    #[arg(long)]
    namespace: String,
    /// A docker login user name: `<region>@<AK>` or a temporary login's.
    #[arg(long, env = "BERTH_USER")]
    user: String,
    /// Its password (the HMAC of the access key, or the temporary one).
    #[arg(long, env = "BERTH_PASSWORD", hide_env_values = true)]
    password: String,
    /// A PEM CA certificate to trust besides the system's (a registry
    /// with a self-signed CA).
    #[arg(long, env = "BERTH_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// `docker save` archives (`.tar` or `.tar.gz`), 1 to 10.
    #[arg(required = true, num_args = 1..=10)]
    files: Vec<PathBuf>,
}

fn failed(message: impl Into<String>) -> CliError {
    CliError::Upload(message.into())
}

/// Uploads the files and prints what became of each.
pub fn upload(args: &UploadArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Server)?;
    runtime.block_on(send(args))
}

async fn send(args: &UploadArgs) -> Result<ExitCode, CliError> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:30!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
    )
    .map_err(|e| failed(e.to_string()))?
    .progress_chars("=> ");
    let mut form = Form::new();
    for path in &args.files {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| failed(format!("{}: {e}", path.display())))?
            .len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bar = bars.add(ProgressBar::new(len).with_style(style.clone()));
        bar.set_prefix(name.clone());
        let stream = ReaderStream::with_capacity(file, 1 << 20).inspect(move |chunk| {
            if let Ok(c) = chunk {
                bar.inc(c.len() as u64);
            }
        });
        let part =
            Part::stream_with_length(reqwest::Body::wrap_stream(stream), len).file_name(name);
        form = form.part("file", part);
    }
    let url = format!(
        "{}/v2/manage/namespaces/{}/uploads",
        args.url.trim_end_matches('/'),
        args.namespace
    );
    let mut client = reqwest::Client::builder();
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        let ca = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| failed(format!("{}: not a PEM certificate: {e}", path.display())))?;
        client = client.add_root_certificate(ca);
    }
    let client = client.build().map_err(|e| failed(e.to_string()))?;
    let response = client
        .post(&url)
        .basic_auth(&args.user, Some(&args.password))
        .multipart(form)
        .send()
        .await
        .map_err(|e| failed(format!("{url}: {e}")))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| failed(format!("{url} answered {status} without a JSON body: {e}")))?;
    bars.clear().map_err(CliError::Output)?;
    let job = if body["job"].is_object() {
        &body["job"]
    } else {
        &body
    };
    for file in job["files"].as_array().into_iter().flatten() {
        let name = file["name"].as_str().unwrap_or("?");
        match file["error"]["message"].as_str() {
            Some(message) => println!("{name}: refused: {message}"),
            None => {
                let images: Vec<String> = file["images"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        format!(
                            "{}:{}",
                            i["repository"].as_str().unwrap_or("?"),
                            i["tag"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                println!(
                    "{name}: {} bytes, {} layers, {}",
                    file["bytes_read"],
                    file["layers_stored"],
                    images.join(", ")
                );
            }
        }
    }
    if status.is_success() {
        println!(
            "job {}: {}",
            job["id"].as_str().unwrap_or("?"),
            job["state"].as_str().unwrap_or("?")
        );
        Ok(ExitCode::SUCCESS)
    } else {
        let message = body["message"].as_str().unwrap_or("the upload was refused");
        Err(failed(format!("{status}: {message} (nothing was stored)")))
    }
}
