//! The client side: [`ClientTls`] and its [`ClientTlsBuilder`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::verify::{Chain, PinnedVerifier};
use super::{
    ALPN_HTTP11, PROTOCOL_VERSIONS, certified_key, crypto_provider, fingerprint_hex, in_file,
    parse_certificates, parse_private_key, parse_roots, read_file,
};
use crate::{Error, Result};

/// A TLS client configuration that follows this module's policy (see the
/// [module documentation](super)). Build one with [`ClientTls::builder`].
///
/// Cloning is cheap (the configuration is shared). `Debug` describes the trust settings and
/// pins, never the client key.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    trust: Trust,
    pins: Vec<[u8; 32]>,
    client_certificate: bool,
}

impl ClientTls {
    /// A builder that trusts the Mozilla root store, with no pins and no client certificate.
    pub fn builder() -> ClientTlsBuilder {
        ClientTlsBuilder {
            roots: Roots::WebPki,
            pins: Vec::new(),
            pin_only: false,
            client_key: None,
        }
    }

    /// The rustls configuration, for code that drives rustls itself.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// A connector that performs the TLS handshake on connected TCP streams.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.config.clone())
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pins: Vec<String> = self.pins.iter().map(fingerprint_hex).collect();
        f.debug_struct("ClientTls")
            .field("trust", &self.trust)
            .field("pins_sha256", &pins)
            .field("client_certificate", &self.client_certificate)
            .finish_non_exhaustive()
    }
}

/// What a built [`ClientTls`] trusts (for `Debug`).
#[derive(Clone, Copy)]
enum Trust {
    WebPkiRoots,
    CustomCa { certificates: usize },
    PinOnly,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::WebPkiRoots => f.write_str("webpki-roots"),
            Trust::CustomCa { certificates } => {
                write!(f, "{certificates} custom CA certificate(s)")
            }
            Trust::PinOnly => f.write_str("pin-only"),
        }
    }
}

/// The server certificate verifier a built configuration uses.
enum Verifier {
    /// Plain WebPKI verification, installed through rustls' safe builder path.
    WebPki(Arc<WebPkiServerVerifier>),
    /// WebPKI or nothing, then a pin check.
    Pinned(Arc<PinnedVerifier>),
}

enum Roots {
    WebPki,
    Custom(RootCertStore),
}

/// Builds a [`ClientTls`].
///
/// Server authentication is one of:
///
/// * the Mozilla root store ([`webpki_roots`](Self::webpki_roots), the default), or only
///   the CA(s) given with [`ca_pem`](Self::ca_pem) / [`ca_file`](Self::ca_file): full chain,
///   name, validity and key-usage verification; [`pin_sha256`](Self::pin_sha256) adds pins
///   that the leaf certificate must *also* match;
/// * [`pin_only`](Self::pin_only): the leaf certificate must match a pin; nothing else about
///   the certificate is checked (for self-signed development certificates).
pub struct ClientTlsBuilder {
    roots: Roots,
    pins: Vec<[u8; 32]>,
    pin_only: bool,
    client_key: Option<Arc<CertifiedKey>>,
}

impl ClientTlsBuilder {
    /// Trusts the Mozilla root store shipped in `webpki-roots` (the default). Discards CAs
    /// added with [`ca_pem`](Self::ca_pem) or [`ca_file`](Self::ca_file) before.
    pub fn webpki_roots(mut self) -> Self {
        self.roots = Roots::WebPki;
        self
    }

    /// Trusts only the CA certificate(s) in `ca_pem` instead of the Mozilla roots. May be
    /// called several times; all the CAs given are trusted.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if `ca_pem` is not valid PEM, contains no certificate or a
    /// certificate that cannot be a trust anchor.
    pub fn ca_pem(self, ca_pem: &[u8]) -> Result<Self> {
        self.add_roots(ca_pem, "the CA PEM")
    }

    /// Like [`ca_pem`](Self::ca_pem), reading the CA bundle from a file.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] naming the file, as for [`ca_pem`](Self::ca_pem).
    pub fn ca_file(self, ca: &Path) -> Result<Self> {
        let pem = read_file(ca, "CA")?;
        self.add_roots(&pem, "the CA bundle")
            .map_err(|e| in_file(ca, e))
    }

    fn add_roots(mut self, pem: &[u8], what: &str) -> Result<Self> {
        let mut store = match self.roots {
            Roots::Custom(store) => store,
            Roots::WebPki => RootCertStore::empty(),
        };
        let result = parse_roots(pem, what, &mut store);
        self.roots = Roots::Custom(store);
        result.map(|()| self)
    }

    /// Also requires the server's leaf certificate to have this SHA-256 fingerprint (of its
    /// DER encoding), compared in constant time. Call it several times to accept any of
    /// several certificates, for example the current and the next one during a renewal.
    pub fn pin_sha256(mut self, fingerprint: [u8; 32]) -> Self {
        if !self.pins.contains(&fingerprint) {
            self.pins.push(fingerprint);
        }
        self
    }

    /// Trusts the server by its pin alone: no chain, name or validity-period verification
    /// (for self-signed development certificates). The TLS handshake signatures are still
    /// verified, so the server must hold the private key of the pinned certificate. Requires at
    /// least one [`pin_sha256`](Self::pin_sha256) and cannot be combined with
    /// [`ca_pem`](Self::ca_pem).
    pub fn pin_only(mut self) -> Self {
        self.pin_only = true;
        self
    }

    /// Presents this certificate chain (leaf first) and private key to servers that ask for
    /// one (mutual TLS). The key is loaded now and its PEM buffer wiped.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if either document is not valid PEM, the chain is empty, the key
    /// is unsupported or does not match the leaf certificate.
    pub fn client_certificate(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let chain = parse_certificates(chain_pem, "the client certificate chain PEM")?;
        let key = parse_private_key(key_pem, "the client private key PEM")?;
        self.client_key = Some(Arc::new(certified_key(chain, &key, "client certificate")?));
        Ok(self)
    }

    /// Like [`client_certificate`](Self::client_certificate), reading the two PEM files.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] naming the file that cannot be read or is wrong.
    pub fn client_certificate_files(mut self, chain: &Path, key: &Path) -> Result<Self> {
        let chain_pem = read_file(chain, "client certificate")?;
        let key_pem = read_file(key, "client private key")?;
        let certs = parse_certificates(&chain_pem, "the client certificate chain")
            .map_err(|e| in_file(chain, e))?;
        let key_der =
            parse_private_key(&key_pem, "the client private key").map_err(|e| in_file(key, e))?;
        let what = format!(
            "client certificate {} with key {}",
            chain.display(),
            key.display()
        );
        self.client_key = Some(Arc::new(certified_key(certs, &key_der, &what)?));
        Ok(self)
    }

    /// Builds the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if [`pin_only`](Self::pin_only) was asked for without a pin or
    /// together with custom CAs, or if the verifier cannot be built (an empty CA set).
    pub fn build(self) -> Result<ClientTls> {
        let provider = crypto_provider();
        let (verifier, trust) = if self.pin_only {
            if self.pins.is_empty() {
                return Err(Error::TlsConfig(
                    "pin_only() needs at least one pin_sha256() fingerprint".into(),
                ));
            }
            if matches!(self.roots, Roots::Custom(_)) {
                return Err(Error::TlsConfig(
                    "pin_only() skips chain verification, so the CAs given with ca_pem()/\
                     ca_file() would be ignored; use one or the other"
                        .into(),
                ));
            }
            let chain = Chain::PinOnly(provider.signature_verification_algorithms);
            let pinned = PinnedVerifier::new(chain, self.pins.clone());
            (Verifier::Pinned(Arc::new(pinned)), Trust::PinOnly)
        } else {
            let (roots, trust) = match self.roots {
                Roots::WebPki => (
                    RootCertStore {
                        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                    },
                    Trust::WebPkiRoots,
                ),
                Roots::Custom(store) => {
                    let certificates = store.len();
                    (store, Trust::CustomCa { certificates })
                }
            };
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::TlsConfig(format!("server certificate verifier: {e}")))?;
            let verifier = if self.pins.is_empty() {
                Verifier::WebPki(webpki)
            } else {
                let pinned = PinnedVerifier::new(Chain::WebPki(webpki), self.pins.clone());
                Verifier::Pinned(Arc::new(pinned))
            };
            (verifier, trust)
        };

        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|e| Error::TlsConfig(format!("TLS protocol versions: {e}")))?;
        let builder = match verifier {
            Verifier::WebPki(webpki) => builder.with_webpki_verifier(webpki),
            Verifier::Pinned(pinned) => {
                builder.dangerous().with_custom_certificate_verifier(pinned)
            }
        };
        let client_certificate = self.client_key.is_some();
        let mut config = match self.client_key {
            Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        config.require_ems = true;
        Ok(ClientTls {
            config: Arc::new(config),
            trust,
            pins: self.pins,
            client_certificate,
        })
    }
}

impl fmt::Debug for ClientTlsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots = match &self.roots {
            Roots::WebPki => "webpki-roots".to_owned(),
            Roots::Custom(store) => format!("{} custom CA certificate(s)", store.len()),
        };
        let pins: Vec<String> = self.pins.iter().map(fingerprint_hex).collect();
        f.debug_struct("ClientTlsBuilder")
            .field("roots", &roots)
            .field("pins_sha256", &pins)
            .field("pin_only", &self.pin_only)
            .field("client_certificate", &self.client_key.is_some())
            .finish()
    }
}
