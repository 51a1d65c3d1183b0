//! TLS client settings: rustls with the webpki roots, plus an extra CA (exchange-sim's
//! generated certificate) when configured.

use std::path::Path;
use std::sync::Arc;

/// Why the TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The extra CA file could not be read or parsed.
    #[error("extra CA {path}: {reason}")]
    Ca {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client config trusting the webpki roots and `extra_ca` (PEM) if given.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_ca {
        let ca = |reason: String| TlsError::Ca { path: path.display().to_string(), reason };
        let file = std::fs::File::open(path).map_err(|e| ca(e.to_string()))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(file)) {
            roots.add(cert.map_err(|e| ca(e.to_string()))?).map_err(|e| ca(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca("no certificate in the file".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS session for `host` (a DNS name or an IP address).
pub fn session(config: &Arc<rustls::ClientConfig>, host: &str) -> Result<rustls::ClientConnection, TlsError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| TlsError::Rustls(rustls::Error::General(format!("server name {host:?}: {e}"))))?;
    Ok(rustls::ClientConnection::new(config.clone(), name)?)
}
