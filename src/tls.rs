//! HTTPS on the main listener, with rustls: HTTP/2 and HTTP/1.1 offered
//! through ALPN, the certificate and key checked as a pair before they are
//! used, and reloaded on SIGHUP or when either file changes, without
//! dropping a connection (a handshake takes whichever pair is current).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::CliError;

/// How often the files are looked at for a change.
const WATCH_EVERY: Duration = Duration::from_secs(10);

/// The certificate and key files, and the configuration made from them.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    /// What new handshakes use; swapped whole on reload.
    pub config: RustlsConfig,
}

/// A rustls configuration from a PEM certificate chain and key, refused
/// unless the key is the certificate's.
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: holds no certificate", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "{} and {} are not a certificate and its key: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Tls {
    /// Loads the pair, or says exactly why it cannot be used.
    pub fn load(cert: PathBuf, key: PathBuf) -> Result<Self, CliError> {
        let config = server_config(&cert, &key).map_err(CliError::Tls)?;
        Ok(Self {
            config: RustlsConfig::from_config(Arc::new(config)),
            cert,
            key,
        })
    }

    /// Loads the files again and swaps them in; a bad pair is logged and
    /// the current one kept.
    fn reload(&self, why: &str) {
        match server_config(&self.cert, &self.key) {
            Ok(config) => {
                self.config.reload_from_config(Arc::new(config));
                tracing::info!(cert = %self.cert.display(), why, "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, why, "TLS certificate not reloaded; keeping the current one");
            }
        }
    }

    /// Reloads on SIGHUP, and when either file's modification time moves.
    pub fn spawn_reloader(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup())?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            let mut seen = (modified(&tls.cert), modified(&tls.key));
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                tokio::select! {
                    _ = hangup.recv() => tls.reload("SIGHUP"),
                    _ = tick.tick() => {
                        let now = (modified(&tls.cert), modified(&tls.key));
                        if now != seen {
                            seen = now;
                            tls.reload("the files changed");
                        }
                    }
                }
            }
        }))
    }
}
