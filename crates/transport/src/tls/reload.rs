//! Certificate hot reload: a [`ServerTls`] whose certificate and key can be replaced while the
//! server runs, for certificates renewed every few weeks (ACME / Let's Encrypt) without a
//! restart.
//!
//! The behaviour is documented on [`CertificateReloader`] (this module is private; the type is
//! re-exported by [`tls`](super)). Internally, [`ReloadableResolver`] is the rustls certificate
//! resolver whose certificate the reloader swaps.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use super::server::{leaf_fingerprint, load_certified_key};
use super::{ServerTls, fingerprint_hex, read_file};
use crate::Result;

/// The certificate in service and its leaf fingerprint, swapped together.
struct Current {
    key: Arc<CertifiedKey>,
    fingerprint: [u8; 32],
}

/// A certificate resolver whose certificate can be replaced: every handshake gets the one in
/// service when it starts.
pub(crate) struct ReloadableResolver {
    current: RwLock<Current>,
}

impl ReloadableResolver {
    fn new(key: CertifiedKey, fingerprint: [u8; 32]) -> ReloadableResolver {
        ReloadableResolver {
            current: RwLock::new(Current {
                key: Arc::new(key),
                fingerprint,
            }),
        }
    }

    /// The leaf fingerprint of the certificate in service.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .fingerprint
    }

    fn replace(&self, key: CertifiedKey, fingerprint: [u8; 32]) {
        let next = Current {
            key: Arc::new(key),
            fingerprint,
        };
        // Swap under the lock, drop the old certificate (and its signing key) outside it.
        let previous = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, next)
        };
        drop(previous);
    }
}

impl ResolvesServerCert for ReloadableResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key
                .clone(),
        )
    }
}

impl fmt::Debug for ReloadableResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableResolver")
            .field("certificate_sha256", &fingerprint_hex(&self.fingerprint()))
            .finish_non_exhaustive()
    }
}

/// Replaces the certificate of a [`ServerTls`] made by
/// [`ServerTls::reloadable_from_pem_files`] when its files change, without restarting the
/// server.
///
/// [`ServerTls::reloadable_from_pem_files`] returns the configuration and a
/// [`CertificateReloader`]. Call [`CertificateReloader::reload_if_changed`] when the files may
/// have changed (on `SIGHUP`, from a timer every few minutes, after the renewal hook ran):
///
/// * it re-reads both files and compares a SHA-256 of their contents with the last loaded
///   ones, so a renewal that swaps a symbolic link (as `certbot` does with `live/` pointing
///   into `archive/`) is seen as well as one that rewrites the files;
/// * unchanged files: nothing happens (`Ok(None)`);
/// * changed files that parse, with a key that matches the leaf certificate: the new
///   certificate is installed atomically and its fingerprint returned. New TLS handshakes
///   present it; established connections are unaffected (they keep their session);
/// * a file that cannot be read or parsed, or a key that does not match (for example while
///   a renewal has written one file but not yet the other): an error naming the file, and the
///   old certificate stays in service. Nothing is remembered of the failed attempt, so the
///   next call tries again.
///
/// Only the digest of the files is kept between reloads, never the key bytes; the key file is
/// read into a buffer that is wiped when dropped. (The provider's signing key object holds the
/// key in memory as long as the certificate is in service, as for any [`ServerTls`].)
///
/// TLS sessions resumed from tickets or session ids issued before a reload continue to work
/// (they are authenticated by the earlier full handshake, like established connections); a
/// client sees the new certificate on its next full handshake.
///
/// Cheap to clone; clones share the state. `Debug` shows the file paths and the fingerprint of
/// the certificate in service, never key material.
#[derive(Clone)]
pub struct CertificateReloader {
    inner: Arc<Inner>,
}

struct Inner {
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<ReloadableResolver>,
    /// SHA-256 over the contents of the files last loaded; the lock also serializes reloads.
    digest: Mutex<[u8; 32]>,
}

/// SHA-256 over both files' contents (length-prefixed, so that moving bytes from one file to
/// the other changes it).
fn files_digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"sealwire/v1/tls-reload");
    hasher.update((cert_pem.len() as u64).to_be_bytes());
    hasher.update(cert_pem);
    hasher.update((key_pem.len() as u64).to_be_bytes());
    hasher.update(key_pem);
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    out
}

impl ServerTls {
    /// Like [`from_pem_files`](Self::from_pem_files), but the certificate can be replaced
    /// later with the returned [`CertificateReloader`], without restarting the server or
    /// disturbing established connections.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`](crate::Error::TlsConfig) naming the file that cannot be read or is
    /// wrong, as for [`from_pem_files`](Self::from_pem_files).
    pub fn reloadable_from_pem_files(
        cert: &Path,
        key: &Path,
    ) -> Result<(ServerTls, CertificateReloader)> {
        let cert_pem = read_file(cert, "certificate")?;
        let key_pem = read_file(key, "private key")?;
        let digest = files_digest(&cert_pem, &key_pem);
        let certified = load_certified_key(cert, &cert_pem, key, &key_pem)?;
        drop(key_pem);
        let fingerprint = leaf_fingerprint(&certified)?;
        let resolver = Arc::new(ReloadableResolver::new(certified, fingerprint));
        let tls = ServerTls::reloadable(resolver.clone())?;
        let reloader = CertificateReloader {
            inner: Arc::new(Inner {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                resolver,
                digest: Mutex::new(digest),
            }),
        };
        Ok((tls, reloader))
    }
}

impl CertificateReloader {
    /// Re-reads the certificate and key files and, if their contents changed, installs the new
    /// certificate for new TLS handshakes.
    ///
    /// Returns `Ok(Some(fingerprint))` (the new leaf certificate's SHA-256) after a swap,
    /// `Ok(None)` if the files are byte for byte the ones in service. Files that changed
    /// without changing the certificate (re-encoded, say) are installed again and reported as
    /// `Some` with the same fingerprint.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`](crate::Error::TlsConfig) naming the file that cannot be read or is
    /// not valid, or both files when the key does not match the certificate. The certificate
    /// in service stays in service.
    pub fn reload_if_changed(&self) -> Result<Option<[u8; 32]>> {
        let inner = &*self.inner;
        let cert_pem = read_file(&inner.cert, "certificate")?;
        let key_pem = read_file(&inner.key, "private key")?;
        let digest = files_digest(&cert_pem, &key_pem);
        let mut last = inner.digest.lock().unwrap_or_else(PoisonError::into_inner);
        if *last == digest {
            return Ok(None);
        }
        let certified = load_certified_key(&inner.cert, &cert_pem, &inner.key, &key_pem)?;
        drop(key_pem);
        let fingerprint = leaf_fingerprint(&certified)?;
        inner.resolver.replace(certified, fingerprint);
        *last = digest;
        drop(last);
        tracing::info!(
            cert = %inner.cert.display(),
            sha256 = %fingerprint_hex(&fingerprint),
            "TLS certificate reloaded"
        );
        Ok(Some(fingerprint))
    }

    /// The SHA-256 of the leaf certificate in service now.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.inner.resolver.fingerprint()
    }

    /// The certificate chain file.
    pub fn cert_path(&self) -> &Path {
        &self.inner.cert
    }

    /// The private key file.
    pub fn key_path(&self) -> &Path {
        &self.inner.key
    }
}

impl fmt::Debug for CertificateReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateReloader")
            .field("cert", &self.inner.cert)
            .field("key", &self.inner.key)
            .field("certificate_sha256", &fingerprint_hex(&self.fingerprint()))
            .finish()
    }
}
