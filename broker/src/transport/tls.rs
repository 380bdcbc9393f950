//! TLS for `tls` and `wss` listeners: loading the PEM certificate chain, key and optional client
//! CA into a rustls server config (ring provider), swapping it on reload without touching live
//! connections, and reading the client certificate's subject CN for `use_identity_as_username`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerConfig;

/// The files and client-certificate policy of one TLS listener, paths already resolved.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    /// CA bundle client certificates must chain to; without it no client certificate is asked.
    pub cafile: Option<PathBuf>,
    /// Refuse clients without a valid certificate (needs `cafile`).
    pub require_certificate: bool,
}

impl TlsFiles {
    /// Takes the TLS settings of `config`, resolving relative paths against `base_dir`.
    pub fn from_config(config: &ListenerConfig, base_dir: &Path) -> anyhow::Result<TlsFiles> {
        let resolve = |path: &Path| -> PathBuf {
            if path.is_absolute() {
                path.to_path_buf()
            } else {
                base_dir.join(path)
            }
        };
        let kind = config.kind.as_str();
        let certfile = config
            .certfile
            .as_deref()
            .map(resolve)
            .ok_or_else(|| anyhow!("a {kind} listener needs `certfile`"))?;
        let keyfile = config
            .keyfile
            .as_deref()
            .map(resolve)
            .ok_or_else(|| anyhow!("a {kind} listener needs `keyfile`"))?;
        let cafile = config.cafile.as_deref().map(resolve);
        if config.require_certificate && cafile.is_none() {
            bail!("`require_certificate` needs `cafile` to verify client certificates against");
        }
        Ok(TlsFiles {
            certfile,
            keyfile,
            cafile,
            require_certificate: config.require_certificate,
        })
    }
}

/// The ring provider, named explicitly: other crates in the build may enable aws-lc-rs too,
/// and then rustls cannot pick a process default on its own. rustls 0.23.48 deprecates ring's
/// provider for lacking post-quantum key exchange; the project chose ring because aws-lc-rs
/// needs a C toolchain with cmake/nasm and builds slowly.
#[allow(deprecated)]
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(tokio_rustls::rustls::crypto::ring::default_provider())
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("cannot read certificates from {}: {e}", path.display()))?;
    if certificates.is_empty() {
        bail!("no PEM certificate found in {}", path.display());
    }
    Ok(certificates)
}

fn read_private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| anyhow!("cannot read a private key from {}: {e}", path.display()))
}

/// Builds a server config from the files as they are on disk now.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = crypto_provider();
    let chain = read_certificates(&files.certfile)?;
    let key = read_private_key(&files.keyfile)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.cafile {
        Some(cafile) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(cafile)? {
                roots
                    .add(certificate)
                    .map_err(|e| anyhow!("bad CA certificate in {}: {e}", cafile.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            // Without require_certificate a client may still present one; it is then verified.
            let verifier = if files.require_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| anyhow!("client CA from {}: {e}", cafile.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        anyhow!(
            "key {} does not fit certificate {}: {e}",
            files.keyfile.display(),
            files.certfile.display()
        )
    })?;
    Ok(Arc::new(config))
}

/// The current server config of one listener, swappable while connections are accepted.
pub struct TlsAcceptorCell {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
}

impl TlsAcceptorCell {
    pub fn load(files: TlsFiles) -> anyhow::Result<TlsAcceptorCell> {
        let config = server_config(&files)?;
        Ok(TlsAcceptorCell {
            files,
            current: ArcSwap::new(config),
        })
    }

    /// Re-reads the files; on error the config in use stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = server_config(&self.files)?;
        self.current.store(config);
        Ok(())
    }

    /// An acceptor with the config current now; handshakes already running keep theirs.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }
}

/// The subject CN of the client's certificate, if it sent one that has a CN.
pub fn peer_common_name<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> Option<String> {
    let (_, connection) = stream.get_ref();
    let leaf = connection.peer_certificates()?.first()?;
    common_name(leaf.as_ref())
}

/// The subject CN of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = certificate.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
