//! The `berth` binary: command line, wiring of the layers, startup and
//! graceful shutdown.

mod admin;
mod backup;
mod cli;
mod cluster;
mod error;
mod gc;
mod logs;
mod serve;
mod tls;
mod upload;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    pin_mmap_threshold();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e}");
            e.exit_code()
        }
    }
}

/// Free heap memory glibc keeps rather than returns to the system. Pinning
/// the mmap threshold also pins this one, at 128 KiB: every buffer a large
/// upload receives into was then given back when freed and faulted in and
/// zeroed afresh by the next `recv` (an eighth of the push's CPU). A few
/// batches' worth is kept instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 32 << 20;

/// Keeps glibc serving allocations of 4 MiB and more with their own
/// mappings, returned to the system when freed. Without this, glibc raises
/// its threshold after the first large free (argon2's 19 MiB working memory
/// at every login), and later large buffers stay resident in the heap for
/// the life of the process. The 1 MiB streaming buffers stay below it, so
/// they are reused from the heap rather than mapped and faulted in afresh.
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator tuning; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
