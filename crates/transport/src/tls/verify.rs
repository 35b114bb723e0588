//! Server certificate verification with SHA-256 pins.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use subtle::{Choice, ConstantTimeEq};

use super::{fingerprint_hex, sha256_fingerprint};

/// How the chain and name are checked before the pin.
#[derive(Debug)]
pub(super) enum Chain {
    /// Full WebPKI verification (chain to a trusted root, name, validity, EKU).
    WebPki(Arc<WebPkiServerVerifier>),
    /// No chain or name verification: the pin is the only trust decision. Handshake
    /// signatures are still verified with these algorithms.
    PinOnly(WebPkiSupportedAlgorithms),
}

/// A [`ServerCertVerifier`] that accepts a server only if its leaf certificate's SHA-256 is
/// one of the pins, after the [`Chain`] check.
pub(super) struct PinnedVerifier {
    chain: Chain,
    pins: Vec<[u8; 32]>,
}

impl PinnedVerifier {
    /// `pins` must not be empty (checked by the builder).
    pub(super) fn new(chain: Chain, pins: Vec<[u8; 32]>) -> Self {
        Self { chain, pins }
    }

    /// Constant-time membership test: every pin is compared in full, whatever matches.
    fn pinned(&self, end_entity: &CertificateDer<'_>) -> bool {
        let fp = sha256_fingerprint(end_entity);
        let matched = self
            .pins
            .iter()
            .fold(Choice::from(0), |acc, pin| acc | pin.ct_eq(&fp));
        bool::from(matched)
    }
}

impl fmt::Debug for PinnedVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pins: Vec<String> = self.pins.iter().map(fingerprint_hex).collect();
        let chain = match self.chain {
            Chain::WebPki(_) => "webpki",
            Chain::PinOnly(_) => "pin-only",
        };
        f.debug_struct("PinnedVerifier")
            .field("chain", &chain)
            .field("pins_sha256", &pins)
            .finish()
    }
}

/// The error a pin mismatch is reported with.
struct PinMismatch;

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("certificate pin mismatch: the server certificate's SHA-256 is not pinned")
    }
}

impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Chain::WebPki(inner) = &self.chain {
            inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        if self.pinned(end_entity) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(
                presented_sha256 = %fingerprint_hex(&sha256_fingerprint(end_entity)),
                "TLS server certificate pin mismatch"
            );
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.chain {
            Chain::WebPki(inner) => inner.verify_tls12_signature(message, cert, dss),
            Chain::PinOnly(algorithms) => verify_tls12_signature(message, cert, dss, algorithms),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.chain {
            Chain::WebPki(inner) => inner.verify_tls13_signature(message, cert, dss),
            Chain::PinOnly(algorithms) => verify_tls13_signature(message, cert, dss, algorithms),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.chain {
            Chain::WebPki(inner) => inner.supported_verify_schemes(),
            Chain::PinOnly(algorithms) => algorithms.supported_schemes(),
        }
    }
}
