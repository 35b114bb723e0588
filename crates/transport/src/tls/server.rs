//! The server side: [`ServerTls`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::sign::SingleCertAndKey;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

use super::reload::ReloadableResolver;
use super::{
    ALPN_HTTP11, PROTOCOL_VERSIONS, certified_key, crypto_provider, fingerprint_hex, in_file,
    parse_certificates, parse_private_key, parse_roots, read_file, sha256_fingerprint,
};
use crate::{Error, Result};

/// A TLS server configuration that follows this module's policy (see the
/// [module documentation](super)): a certificate chain and its private key, and optionally a
/// client CA that makes client certificates mandatory.
///
/// Cloning is cheap (the configuration is shared). `Debug` shows the leaf certificate's
/// fingerprint and whether client certificates are required, never the key.
///
/// A configuration made by [`reloadable_from_pem_files`](Self::reloadable_from_pem_files)
/// presents whatever certificate its [`CertificateReloader`](super::CertificateReloader) last
/// loaded; every clone, and every configuration derived from it with
/// [`with_client_ca_pem`](Self::with_client_ca_pem), follows the reloads.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    certificate: Certificate,
    client_auth: bool,
}

/// Where the presented certificate's fingerprint comes from.
#[derive(Clone)]
enum Certificate {
    /// One certificate for the configuration's lifetime.
    Fixed([u8; 32]),
    /// The certificate a reloader installed last.
    Reloadable(Arc<ReloadableResolver>),
}

impl ServerTls {
    /// Builds a configuration from a PEM certificate chain (leaf first, then intermediates)
    /// and a PEM private key (PKCS#8, PKCS#1 or SEC1, unencrypted).
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if either document is not valid PEM, the chain is empty, the key
    /// is unsupported or does not match the leaf certificate.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let chain = parse_certificates(cert_chain_pem, "the certificate chain PEM")?;
        let key = parse_private_key(key_pem, "the private key PEM")?;
        Self::build(chain, &key)
    }

    /// Like [`from_pem`](Self::from_pem), reading the two PEM files. The key file is read into
    /// a buffer that is wiped afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] naming the file that cannot be read or is wrong, as for
    /// [`from_pem`](Self::from_pem).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self> {
        let cert_pem = read_file(cert, "certificate")?;
        let key_pem = read_file(key, "private key")?;
        let certified = load_certified_key(cert, &cert_pem, key, &key_pem)?;
        let fingerprint = leaf_fingerprint(&certified)?;
        let resolver: Arc<dyn ResolvesServerCert> = Arc::new(SingleCertAndKey::from(certified));
        Self::from_resolver(resolver, Certificate::Fixed(fingerprint))
    }

    /// Builds a configuration from a DER certificate chain (leaf first) and private key. The
    /// key is wiped when this function returns.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if the chain is empty or the key is unsupported or does not match
    /// the leaf certificate.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self> {
        let key = Zeroizing::new(key);
        Self::build(chain, &key)
    }

    pub(crate) fn build(
        chain: Vec<CertificateDer<'static>>,
        key: &PrivateKeyDer<'_>,
    ) -> Result<Self> {
        let certified = certified_key(chain, key, "server certificate")?;
        let fingerprint = leaf_fingerprint(&certified)?;
        let resolver: Arc<dyn ResolvesServerCert> = Arc::new(SingleCertAndKey::from(certified));
        Self::from_resolver(resolver, Certificate::Fixed(fingerprint))
    }

    /// A configuration presenting the certificate that `resolver` holds now (and after each
    /// reload).
    pub(super) fn reloadable(resolver: Arc<ReloadableResolver>) -> Result<Self> {
        let dyn_resolver: Arc<dyn ResolvesServerCert> = resolver.clone();
        Self::from_resolver(dyn_resolver, Certificate::Reloadable(resolver))
    }

    fn from_resolver(
        resolver: Arc<dyn ResolvesServerCert>,
        certificate: Certificate,
    ) -> Result<Self> {
        let config = Self::config_with(resolver, None)?;
        Ok(Self {
            config,
            certificate,
            client_auth: false,
        })
    }

    fn config_with(
        resolver: Arc<dyn ResolvesServerCert>,
        client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<Arc<ServerConfig>> {
        let builder = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|e| Error::TlsConfig(format!("TLS protocol versions: {e}")))?;
        let builder = match client_verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        config.require_ems = true;
        Ok(Arc::new(config))
    }

    /// Requires every client to present a certificate that chains to one of the CA
    /// certificates in `ca_pem` (mutual TLS). Replaces any client CA set before; to accept
    /// several CAs, put them all in one PEM bundle.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if `ca_pem` is not valid PEM, contains no certificate or a
    /// certificate that cannot be a trust anchor.
    pub fn with_client_ca_pem(self, ca_pem: &[u8]) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        parse_roots(ca_pem, "the client CA PEM", &mut roots)?;
        self.with_client_roots(roots)
    }

    /// Like [`with_client_ca_pem`](Self::with_client_ca_pem), reading the CA bundle from a
    /// file.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] naming the file, as for
    /// [`with_client_ca_pem`](Self::with_client_ca_pem).
    pub fn with_client_ca_file(self, ca: &Path) -> Result<Self> {
        let ca_pem = read_file(ca, "client CA")?;
        let mut roots = RootCertStore::empty();
        parse_roots(&ca_pem, "the client CA bundle", &mut roots).map_err(|e| in_file(ca, e))?;
        self.with_client_roots(roots)
    }

    fn with_client_roots(self, roots: RootCertStore) -> Result<Self> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
                .build()
                .map_err(|e| Error::TlsConfig(format!("client certificate verifier: {e}")))?;
        // The same resolver: a reloadable configuration stays reloadable.
        let config = Self::config_with(self.config.cert_resolver.clone(), Some(verifier))?;
        Ok(Self {
            config,
            certificate: self.certificate,
            client_auth: true,
        })
    }

    /// The rustls configuration, for code that drives rustls itself.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// An acceptor that performs the TLS handshake on accepted TCP connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// The SHA-256 of the leaf certificate's DER encoding: what clients pin with
    /// [`ClientTlsBuilder::pin_sha256`](super::ClientTlsBuilder::pin_sha256). Print it with
    /// [`fingerprint_hex`](super::fingerprint_hex).
    ///
    /// For a reloadable configuration this is the certificate presented *now* to new
    /// handshakes (the last one its [`CertificateReloader`](super::CertificateReloader)
    /// installed), the same as [`CertificateReloader::fingerprint`](super::CertificateReloader::fingerprint).
    pub fn certificate_fingerprint(&self) -> [u8; 32] {
        match &self.certificate {
            Certificate::Fixed(fingerprint) => *fingerprint,
            Certificate::Reloadable(resolver) => resolver.fingerprint(),
        }
    }

    /// Whether the certificate can be replaced at run time (made by
    /// [`reloadable_from_pem_files`](Self::reloadable_from_pem_files)).
    pub fn is_reloadable(&self) -> bool {
        matches!(self.certificate, Certificate::Reloadable(_))
    }

    /// Whether clients must present a certificate (mutual TLS).
    pub fn requires_client_certificate(&self) -> bool {
        self.client_auth
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field(
                "certificate_sha256",
                &fingerprint_hex(&self.certificate_fingerprint()),
            )
            .field("reloadable", &self.is_reloadable())
            .field("client_certificate_required", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a certified key's leaf certificate.
pub(super) fn leaf_fingerprint(certified: &CertifiedKey) -> Result<[u8; 32]> {
    match certified.cert.first() {
        Some(leaf) => Ok(sha256_fingerprint(leaf)),
        None => Err(Error::TlsConfig("the certificate chain is empty".into())),
    }
}

/// Parses a certificate chain and private key read from `cert` and `key` and checks that they
/// belong together; errors name the file (or both files, for a mismatch).
pub(super) fn load_certified_key(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey> {
    let chain =
        parse_certificates(cert_pem, "the certificate chain").map_err(|e| in_file(cert, e))?;
    let key_der = parse_private_key(key_pem, "the private key").map_err(|e| in_file(key, e))?;
    certified_key(chain, &key_der, "server certificate").map_err(|e| match e {
        Error::TlsConfig(message) => Error::TlsConfig(format!(
            "certificate {} with key {}: {message}",
            cert.display(),
            key.display()
        )),
        other => other,
    })
}
