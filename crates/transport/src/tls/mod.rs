//! TLS for the WebSocket Secure transport: server and client configurations, certificate
//! pinning, mutual TLS and (behind the `dev-cert` feature) development certificates.
//!
//! The crate terminates TLS itself with `tokio-rustls` and runs the WebSocket handshake over
//! the TLS stream. [`ServerTls`] wraps a `rustls::ServerConfig`, [`ClientTls`] wraps a
//! `rustls::ClientConfig`; both are cheap to clone and hand out a
//! [`TlsAcceptor`](tokio_rustls::TlsAcceptor) / [`TlsConnector`](tokio_rustls::TlsConnector).
//!
//! # Policy
//!
//! Every configuration built here uses one explicit *ring* [`CryptoProvider`]; the
//! process-wide default provider is never consulted.
//!
//! * **Versions:** TLS 1.3 is preferred; TLS 1.2 is the minimum. Older versions do not exist
//!   in rustls.
//! * **Cipher suites:** only AEAD suites with forward secrecy, in this order of preference:
//!   * TLS 1.3: `TLS13_AES_256_GCM_SHA384`, `TLS13_AES_128_GCM_SHA256`,
//!     `TLS13_CHACHA20_POLY1305_SHA256`;
//!   * TLS 1.2: `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`,
//!     `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`,
//!     `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`,
//!     `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`,
//!     `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`.
//! * **Key exchange:** X25519, secp256r1, secp384r1.
//! * **TLS 1.2 hardening:** the Extended Master Secret extension (RFC 7627) is required on both
//!   sides, so keying material exported from a TLS 1.2 session is unique to that session.
//! * **ALPN:** both sides offer exactly `http/1.1` (the WebSocket upgrade runs over HTTP/1.1).
//! * **Server authentication:** by default the server's chain is verified against the Mozilla
//!   root store (`webpki-roots`) and its name against the requested host. A client may instead
//!   trust only its own CA(s) ([`ClientTlsBuilder::ca_pem`]), may additionally pin the SHA-256
//!   of the server's leaf certificate ([`ClientTlsBuilder::pin_sha256`], compared in constant
//!   time), or, for self-signed development certificates, trust a pin alone
//!   ([`ClientTlsBuilder::pin_only`]): chain, name and validity period are then not checked,
//!   but the handshake signatures still are, so the peer must hold the pinned key.
//! * **Client authentication (mutual TLS):** optional; once a server has a client CA
//!   ([`ServerTls::with_client_ca_pem`]) a certificate chaining to it is *required*.
//! * **Secrets:** private keys are read into zeroizing buffers, handed to the provider by
//!   reference and wiped when dropped; no `Debug` output of this module contains key material.
//!   (The provider's own in-memory key object and the intermediate buffers of PEM decoding are
//!   outside this module's control.)
//!
//! * **Certificate renewal:** [`ServerTls::reloadable_from_pem_files`] gives a configuration
//!   whose certificate a [`CertificateReloader`] replaces when the files change, for new
//!   handshakes only (see [`CertificateReloader::reload_if_changed`]).
//!
//! Certificate fingerprints are the SHA-256 of the leaf certificate's DER encoding;
//! [`fingerprint_hex`] and [`parse_fingerprint`] convert them for operators and command lines.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as ring_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Error, Result};

mod client;
#[cfg(feature = "dev-cert")]
mod dev;
mod reload;
mod server;
mod verify;

pub use client::{ClientTls, ClientTlsBuilder};
#[cfg(feature = "dev-cert")]
pub use dev::{DevCa, DevCertificate};
pub use reload::CertificateReloader;
pub use server::ServerTls;

/// The ALPN protocol both sides offer.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// TLS 1.3 first, TLS 1.2 as the minimum.
pub(crate) static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The *ring* provider restricted to this module's policy (see the module documentation).
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            use ring_provider::cipher_suite as cs;
            use ring_provider::kx_group as kx;
            Arc::new(CryptoProvider {
                cipher_suites: vec![
                    cs::TLS13_AES_256_GCM_SHA384,
                    cs::TLS13_AES_128_GCM_SHA256,
                    cs::TLS13_CHACHA20_POLY1305_SHA256,
                    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                    cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                    cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                    cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                ],
                kx_groups: vec![kx::X25519, kx::SECP256R1, kx::SECP384R1],
                ..ring_provider::default_provider()
            })
        })
        .clone()
}

/// SHA-256 of a certificate's DER encoding.
pub(crate) fn sha256_fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    let digest = Sha256::digest(cert.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    out
}

/// Formats a certificate fingerprint as 64 lowercase hexadecimal digits, without separators.
pub fn fingerprint_hex(fp: &[u8; 32]) -> String {
    hex::encode(fp)
}

/// Parses a SHA-256 certificate fingerprint as printed by [`fingerprint_hex`] or by
/// `openssl x509 -fingerprint -sha256`: 64 hexadecimal digits, in either case, either
/// without separators or with a `:` between every pair. Surrounding whitespace is ignored.
///
/// # Errors
///
/// [`Error::TlsConfig`] if the text is not such a fingerprint.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32]> {
    let s = s.trim();
    let invalid = |what: &str| {
        Error::TlsConfig(format!(
            "certificate fingerprint {s:?} is invalid: {what} (expected 64 hex digits, \
             optionally as 32 ':'-separated pairs)"
        ))
    };
    let pairs: Vec<&[u8]> = if s.contains(':') {
        let pairs: Vec<&[u8]> = s.split(':').map(str::as_bytes).collect();
        if pairs.iter().any(|pair| pair.len() != 2) {
            return Err(invalid("every ':'-separated group must be two hex digits"));
        }
        pairs
    } else {
        if s.len() != 64 {
            return Err(invalid(&format!("it has {} characters", s.len())));
        }
        s.as_bytes().chunks(2).collect()
    };
    if pairs.len() != 32 {
        return Err(invalid(&format!("it has {} bytes, not 32", pairs.len())));
    }
    let digits: Vec<u8> = pairs.concat();
    let mut out = [0u8; 32];
    hex::decode_to_slice(&digits, &mut out)
        .map_err(|_| invalid("it contains a character that is not a hex digit"))?;
    Ok(out)
}

/// Reads a whole file into a buffer that is wiped when dropped (key files pass through it).
pub(crate) fn read_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| Error::TlsConfig(format!("cannot read {what} file {}: {e}", path.display())))
}

/// Prefixes a configuration error with the file it came from.
pub(crate) fn in_file(path: &Path, error: Error) -> Error {
    match error {
        Error::TlsConfig(message) => Error::TlsConfig(format!("{}: {message}", path.display())),
        other => other,
    }
}

/// Parses every `CERTIFICATE` section of a PEM document; refuses malformed PEM and an empty
/// result. `what` names the document in error messages.
pub(crate) fn parse_certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsConfig(format!("{what} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::TlsConfig(format!(
            "{what} contains no certificate (expected at least one \
             \"-----BEGIN CERTIFICATE-----\" section)"
        )));
    }
    Ok(certs)
}

/// Parses the first unencrypted private key (PKCS#8, PKCS#1 or SEC1) of a PEM document into a
/// buffer that is wiped when dropped.
pub(crate) fn parse_private_key(
    pem: &[u8],
    what: &str,
) -> Result<Zeroizing<PrivateKeyDer<'static>>> {
    use rustls::pki_types::pem::Error as PemError;
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(Zeroizing::new(key)),
        Err(PemError::NoItemsFound) => Err(Error::TlsConfig(format!(
            "{what} contains no unencrypted private key (expected a \"PRIVATE KEY\", \
             \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\" PEM section; encrypted keys are not \
             supported)"
        ))),
        Err(e) => Err(Error::TlsConfig(format!("{what} is not valid PEM: {e}"))),
    }
}

/// Parses a PEM bundle of CA certificates into a root store.
pub(crate) fn parse_roots(pem: &[u8], what: &str, roots: &mut RootCertStore) -> Result<()> {
    for (index, cert) in parse_certificates(pem, what)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            Error::TlsConfig(format!(
                "{what}: certificate #{} cannot be used as a trust anchor: {e}",
                index + 1
            ))
        })?;
    }
    Ok(())
}

/// Loads a private key with the provider and checks that it belongs to the chain's first
/// certificate. The key is only borrowed, so the caller's zeroizing buffer stays the only copy.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
    what: &str,
) -> Result<CertifiedKey> {
    if chain.is_empty() {
        return Err(Error::TlsConfig(format!(
            "{what}: the certificate chain is empty"
        )));
    }
    let signing_key = ring_provider::sign::any_supported_type(key).map_err(|e| {
        Error::TlsConfig(format!(
            "{what}: the private key cannot be used (not an RSA, ECDSA P-256/P-384 or Ed25519 \
             key, or malformed): {e}"
        ))
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(Error::TlsConfig(format!(
                "{what}: the private key does not match the certificate (the first certificate \
                 of the chain must be the one issued for this key)"
            )))
        }
        Err(e) => Err(Error::TlsConfig(format!(
            "{what}: cannot check that the private key matches the certificate: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let mut fp = [0u8; 32];
        for (i, b) in fp.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(5);
        }
        let hex = fingerprint_hex(&fp);
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(parse_fingerprint(&hex).unwrap(), fp);
        assert_eq!(parse_fingerprint(&hex.to_uppercase()).unwrap(), fp);
        let colons = hex
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), fp);
        assert_eq!(
            parse_fingerprint(&format!("  {}\n", colons.to_uppercase())).unwrap(),
            fp
        );
    }

    #[test]
    fn known_value() {
        let fp = [0xabu8; 32];
        assert_eq!(fingerprint_hex(&fp), "ab".repeat(32));
        assert_eq!(fingerprint_hex(&[0u8; 32]), "0".repeat(64));
    }

    #[test]
    fn rejects_malformed() {
        let good = "ab".repeat(32);
        for bad in [
            String::new(),
            "ab".repeat(31),
            "ab".repeat(33),
            format!("{}zz", "ab".repeat(31)),
            format!("{}+1", "ab".repeat(31)),
            format!("{}é", &good[..62]),
            format!("a:b{}", &good[3..]),
            format!("{}:", ["ab"; 32].join(":")),
            ["ab"; 31].join(":"),
            format!("{}:abc", ["ab"; 31].join(":")),
            ["ab"; 32].join("::"),
            format!("0x{}", &good[2..]),
        ] {
            match parse_fingerprint(&bad) {
                Err(Error::TlsConfig(message)) => {
                    assert!(message.contains("fingerprint"), "{message}")
                }
                other => panic!("{bad:?} parsed as {other:?}"),
            }
        }
    }
}
