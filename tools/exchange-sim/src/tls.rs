//! TLS for the simulator: a CA and a server certificate for 127.0.0.1/localhost generated
//! at start, the CA written to a PEM file a client can trust.

use std::path::Path;
use std::sync::Arc;

/// Generates the certificates, writes the CA to `ca_path`, and returns the server config.
pub fn server_config(ca_path: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "exchange-sim test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params.distinguished_name.push(DnType::CommonName, "exchange-sim");
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    std::fs::write(ca_path, ca_cert.pem())
        .map_err(|e| anyhow::anyhow!("writing the CA to {}: {e}", ca_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca_cert.der().clone()], key_der)?;
    Ok(Arc::new(config))
}
