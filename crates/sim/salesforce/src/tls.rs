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
            Ok(_) => {
                narrow_key(&dir.join("server.key"));
                return Ok(material);
            }
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

    let write = |name: &str, text: &str, secret: bool| -> Result<PathBuf, TlsError> {
        let path = dir.join(name);
        write_file(&path, text.as_bytes(), secret).map_err(|source| TlsError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    create_private_dir(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_path = write("ca.pem", &ca_cert.pem(), false)?;
    let cert_pem = format!("{}{}", cert.pem(), ca_cert.pem());
    write("server.pem", &cert_pem, false)?;
    let key_pem = key.serialize_pem();
    write("server.key", &key_pem, true)?;
    Ok(Material {
        ca_path,
        cert_pem,
        key_pem,
    })
}

/// Creates `dir` and any missing parents, owner-only (0700) on Unix; an existing directory
/// keeps its mode.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes a saved key file (perhaps written by an older version) the owner's only; logs a
/// failure, as the key still works.
fn narrow_key(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let wide = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
        if wide
            && let Err(error) =
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(%error, path = %path.display(), "Could not make the TLS key owner-only");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Writes `bytes` to `path`, replacing it. A `secret` (the private key) is readable by its
/// owner only (0600 on Unix), including when it replaces a file that was readable by others;
/// certificates are public and keep the default mode.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    if secret {
        // `mode` applies only when the file is created; an older key file may be wider.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!(
            "crossdock-sf-tls-{name}-{}-{nanos}",
            std::process::id()
        ))
    }

    /// Issue 22: the private key is the owner's only, and so is the folder created for it.
    #[cfg(unix)]
    #[test]
    fn the_private_key_and_its_new_folder_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = temp_dir("modes");
        let dir = root.join("salesforce").join("tls");
        let material = generate(&dir).expect("generated");
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&dir.join("server.key")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.join("salesforce")), 0o700);
        assert_eq!(mode(&root), 0o700);
        assert!(material.key_pem.contains("PRIVATE KEY"));
        // A key file left readable by others is narrowed when the key is written again.
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let again = generate(&dir).expect("generated again");
        assert_eq!(mode(&dir.join("server.key")), 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.join("server.key")).expect("key"),
            again.key_pem
        );
        assert!(server_config(&again).is_ok());
        // Reusing saved material narrows a key file that others could read.
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o640),
        )
        .expect("chmod");
        let reused = load_or_generate(&dir).expect("reused");
        assert_eq!(reused.key_pem, again.key_pem);
        assert_eq!(mode(&dir.join("server.key")), 0o600);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
