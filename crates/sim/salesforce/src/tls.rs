//! TLS material: a CA and a server certificate for `127.0.0.1` and `localhost` signed by it,
//! generated at start, or reused from a configured data folder so clients that trust the CA
//! keep trusting a restarted simulator. The CA file is what clients are told to trust.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Generated certificate files and their PEM text.
#[derive(Debug, Clone)]
pub struct Material {
    /// CA certificate file (what clients trust).
    pub ca_path: PathBuf,
    /// Server certificate PEM.
    pub cert_pem: String,
    /// Server private key PEM.
    pub key_pem: String,
}

/// Why TLS setup failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing the files failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// rustls refused the material.
    #[error("invalid TLS material: {0}")]
    Rustls(String),
}

/// The material already in `dir` (`ca.pem`, `server.pem`, `server.key`) when all three load,
/// else freshly generated material written there.
///
/// # Errors
/// [`TlsError`] when generation or writing fails.
pub fn load_or_generate(dir: &Path) -> Result<Material, TlsError> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    if let (Some(_), Some(cert_pem), Some(key_pem)) =
        (read("ca.pem"), read("server.pem"), read("server.key"))
    {
        let material = Material {
            ca_path: dir.join("ca.pem"),
            cert_pem,
            key_pem,
        };
        match server_config(&material) {
            Ok(_) => return Ok(material),
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "Saved TLS material does not load; generating a new CA");
            }
        }
    }
    generate(dir)
}

/// Generates a CA and a server certificate and writes `ca.pem`, `server.pem`, `server.key`
/// into `dir`.
///
/// # Errors
/// [`TlsError`] when generation or writing fails.
pub fn generate(dir: &Path) -> Result<Material, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "crossdock Salesforce simulator CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer)?;

    let write = |name: &str, text: &str| -> Result<PathBuf, TlsError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| TlsError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_path = write("ca.pem", &ca_cert.pem())?;
    let cert_pem = format!("{}{}", cert.pem(), ca_cert.pem());
    write("server.pem", &cert_pem)?;
    let key_pem = key.serialize_pem();
    write("server.key", &key_pem)?;
    Ok(Material {
        ca_path,
        cert_pem,
        key_pem,
    })
}

/// A rustls server configuration (ring provider) for the REST listener.
///
/// # Errors
/// [`TlsError::Rustls`] when the material does not load.
pub fn server_config(m: &Material) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
