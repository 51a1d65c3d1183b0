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
        for cert in extra_roots(path)? {
            roots.add(cert).map_err(|e| ca_error(path, e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The same trust for the HTTP client: the webpki roots, plus `extra_ca` if given, on ring.
pub fn http_config(extra_ca: Option<&Path>) -> Result<ureq::tls::TlsConfig, TlsError> {
    let roots = match extra_ca {
        None => ureq::tls::RootCerts::WebPki,
        Some(path) => {
            let mut certs: Vec<ureq::tls::Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            certs.extend(extra_roots(path)?.iter().map(|c| ureq::tls::Certificate::from_der(c).to_owned()));
            ureq::tls::RootCerts::Specific(Arc::new(certs))
        }
    };
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(provider())
        .build())
}

/// The engine's one crypto provider (ring).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn ca_error(path: &Path, reason: String) -> TlsError {
    TlsError::Ca { path: path.display().to_string(), reason }
}

/// The certificates of the PEM file `path` (at least one).
fn extra_roots(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    let file = std::fs::File::open(path).map_err(|e| ca_error(path, e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error(path, "no certificate in the file".into()));
    }
    Ok(certs)
}

/// A TLS session for `host` (a DNS name or an IP address).
pub fn session(config: &Arc<rustls::ClientConfig>, host: &str) -> Result<rustls::ClientConnection, TlsError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| TlsError::Rustls(rustls::Error::General(format!("server name {host:?}: {e}"))))?;
    Ok(rustls::ClientConnection::new(config.clone(), name)?)
}
