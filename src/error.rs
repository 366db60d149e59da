//! What the binary reports when it cannot do what it was asked: always
//! naming the path or address at fault.

use std::path::PathBuf;

use berth_store::StoreError;
use thiserror::Error;

/// Errors of the `berth` commands.
#[derive(Debug, Error)]
pub enum CliError {
    /// The log, read models or blob store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data directory or a file in it could not be used.
    #[error("{}: {source}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        source: StoreError,
    },
    /// A maintenance command was pointed at a directory with no Berth data.
    #[error("{} holds no Berth data (no event log at {}); check the path", .0.display(), .0.join("db").display())]
    NotADataDir(PathBuf),
    /// A file given on the command line does not hold what it should.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A flag's value is not what the flag takes.
    #[error("--{} {message}", .flag.replace('_', "-"))]
    BadFlag {
        /// The flag, without dashes.
        flag: String,
        /// What it must be.
        message: String,
    },
    /// The token signing key file is not a key.
    #[error("{} is not a 32-byte key; remove it to generate a new one", .0.display())]
    BadKey(PathBuf),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime, signal handling or the server itself failed.
    #[error("server: {0}")]
    Server(std::io::Error),
    /// The TLS certificate and key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A web upload could not be sent, or was refused.
    #[error("upload: {0}")]
    Upload(String),
    /// Standard output could not be written.
    #[error("standard output: {0}")]
    Output(std::io::Error),
    /// The event log's storage failed while serving; the node stopped so
    /// that its supervisor restarts it (exit status [`LOG_FAILED`]).
    #[error("the event log's storage failed ({0}); stopped so that a restart recovers it from its journal")]
    LogFailed(String),
}

/// The exit status after the log's storage failed: `EX_TEMPFAIL`, a
/// temporary failure that a restart is expected to clear.
pub const LOG_FAILED: u8 = 75;

impl CliError {
    /// The process's exit status for this error.
    pub fn exit_code(&self) -> std::process::ExitCode {
        match self {
            Self::LogFailed(_) => std::process::ExitCode::from(LOG_FAILED),
            _ => std::process::ExitCode::FAILURE,
        }
    }
}

/// Attaches a path to a storage failure.
pub trait AtPath<T> {
    /// The result, with `path` named in its error.
    fn at(self, path: &std::path::Path) -> Result<T, CliError>;
}

impl<T, E: Into<StoreError>> AtPath<T> for Result<T, E> {
    fn at(self, path: &std::path::Path) -> Result<T, CliError> {
        self.map_err(|e| CliError::Path {
            path: path.to_owned(),
            source: e.into(),
        })
    }
}
