//! Development certificates and a development CA, generated in memory with `rcgen`.
//!
//! These are for `--dev` modes and tests only: the keys live in memory, the certificates are
//! short-lived and nobody but a client that pins them (or trusts the [`DevCa`]) accepts them.
//!
//! The PKCS#8 key kept here is wiped when dropped; `rcgen`'s own key object, which exists
//! while a certificate is being generated, is not.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use zeroize::Zeroizing;

use super::{ServerTls, fingerprint_hex, sha256_fingerprint};
use crate::{Error, Result};

const DAY: u64 = 24 * 60 * 60;
/// Validity of generated leaf certificates: from a day ago (clock skew) to 90 days ahead.
const LEAF_NOT_BEFORE_DAYS: i64 = -1;
const LEAF_NOT_AFTER_DAYS: i64 = 90;
/// Validity of a [`DevCa`]: from a day ago to ten years ahead.
const CA_NOT_AFTER_DAYS: i64 = 3650;
/// Bound on the day offsets accepted, so that date arithmetic cannot overflow.
const MAX_OFFSET_DAYS: i64 = 36_500;

fn rcgen_error(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::TlsConfig(format!("{what}: {e}"))
}

/// Sets `params`' validity to `[now + not_before_days, now + not_after_days]`.
fn set_validity(
    params: &mut CertificateParams,
    not_before_days: i64,
    not_after_days: i64,
) -> Result<()> {
    if not_before_days >= not_after_days {
        return Err(Error::TlsConfig(format!(
            "certificate validity: not_before ({not_before_days} days) must be before not_after \
             ({not_after_days} days)"
        )));
    }
    if not_before_days.abs() > MAX_OFFSET_DAYS || not_after_days.abs() > MAX_OFFSET_DAYS {
        return Err(Error::TlsConfig(format!(
            "certificate validity: day offsets must be within ±{MAX_OFFSET_DAYS} days"
        )));
    }
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::TlsConfig("the system clock is before 1970".into()))?;
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    let at = |days: i64| {
        let offset = Duration::from_secs(days.unsigned_abs() * DAY);
        if days < 0 { now - offset } else { now + offset }
    };
    params.not_before = at(not_before_days);
    params.not_after = at(not_after_days);
    Ok(())
}

fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(rcgen_error("generating an ECDSA P-256 key"))
}

/// Leaf parameters: `names` as subject alternative names (IP addresses where a name parses as
/// one), `common_name`, `digitalSignature` and the given extended key usage.
fn leaf_params(
    names: &[&str],
    common_name: &str,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams> {
    for name in names {
        // A name a client could connect to: a DNS name or an IP address (a leading "*." wildcard
        // label is allowed).
        let host = name.strip_prefix("*.").unwrap_or(name);
        if ServerName::try_from(host).is_err() {
            return Err(Error::TlsConfig(format!(
                "development certificate name {name:?} is neither a DNS name nor an IP address"
            )));
        }
    }
    let sans: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(sans).map_err(rcgen_error(
        "development certificate subject alternative names",
    ))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    set_validity(&mut params, LEAF_NOT_BEFORE_DAYS, LEAF_NOT_AFTER_DAYS)?;
    Ok(params)
}

/// Server leaf parameters; the first name is also the common name.
fn server_params(names: &[&str]) -> Result<CertificateParams> {
    let Some(first) = names.first() else {
        return Err(Error::TlsConfig(
            "a development server certificate needs at least one name".into(),
        ));
    };
    leaf_params(names, first, ExtendedKeyUsagePurpose::ServerAuth)
}

/// A certificate and its ECDSA P-256 private key, generated in memory: self-signed by
/// [`generate`](Self::generate) or issued by a [`DevCa`].
///
/// `Debug` shows the fingerprint, never the key.
#[derive(Clone)]
pub struct DevCertificate {
    cert: CertificateDer<'static>,
    /// PKCS#8 DER, wiped when dropped.
    key: Zeroizing<Vec<u8>>,
    fingerprint: [u8; 32],
}

impl DevCertificate {
    /// Generates a self-signed server certificate for `names` (DNS names, or IP addresses
    /// where a name parses as one), valid from a day ago to 90 days from now. Clients trust it
    /// by its [`fingerprint`](Self::fingerprint) with
    /// [`ClientTlsBuilder::pin_only`](super::ClientTlsBuilder::pin_only).
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if `names` is empty or a name is not a valid DNS name.
    pub fn generate(names: &[&str]) -> Result<Self> {
        let params = server_params(names)?;
        let key = new_key()?;
        let cert = params
            .self_signed(&key)
            .map_err(rcgen_error("signing the development certificate"))?;
        Ok(Self::new(cert.der().clone(), key))
    }

    fn new(cert: CertificateDer<'static>, key: KeyPair) -> Self {
        let fingerprint = sha256_fingerprint(&cert);
        Self {
            cert,
            key: Zeroizing::new(key.serialize_der()),
            fingerprint,
        }
    }

    /// The certificate, PEM-encoded.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert).to_string()
    }

    /// The private key, PEM-encoded (PKCS#8, `-----BEGIN PRIVATE KEY-----`), in a string that
    /// is wiped when dropped.
    pub fn key_pem(&self) -> Zeroizing<String> {
        pem_encode("PRIVATE KEY", &self.key)
    }

    /// The certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The SHA-256 of the certificate's DER encoding (what clients pin).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// A server configuration presenting this certificate.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if the provider refuses the key (not expected).
    pub fn server_tls(&self) -> Result<ServerTls> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.as_slice()));
        ServerTls::build(vec![self.cert.clone()], &key)
    }
}

impl fmt::Debug for DevCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCertificate")
            .field("sha256", &fingerprint_hex(&self.fingerprint))
            .finish_non_exhaustive()
    }
}

/// A development/test certificate authority: an ECDSA P-256 CA certificate and key, generated
/// in memory, that issues server and client certificates.
///
/// `Debug` shows the CA certificate's fingerprint, never the key.
pub struct DevCa {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl DevCa {
    /// Generates a CA named `common_name`, valid from a day ago to ten years from now, that
    /// may issue end-entity certificates only (path length 0).
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if generation fails (not expected).
    pub fn generate(common_name: &str) -> Result<Self> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, LEAF_NOT_BEFORE_DAYS, CA_NOT_AFTER_DAYS)?;
        let key = new_key()?;
        let cert = params
            .self_signed(&key)
            .map_err(rcgen_error("signing the development CA certificate"))?;
        Ok(Self {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM-encoded: what clients pass to
    /// [`ClientTlsBuilder::ca_pem`](super::ClientTlsBuilder::ca_pem) and servers to
    /// [`ServerTls::with_client_ca_pem`].
    pub fn ca_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert).to_string()
    }

    /// The CA certificate, DER-encoded.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// Issues a server certificate (extended key usage `serverAuth`) for `names`, valid from a
    /// day ago to 90 days from now.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if `names` is empty or a name is not a valid DNS name.
    pub fn issue_server(&self, names: &[&str]) -> Result<DevCertificate> {
        self.issue_server_with_validity(names, LEAF_NOT_BEFORE_DAYS, LEAF_NOT_AFTER_DAYS)
    }

    /// Issues a server certificate valid from `not_before_days` to `not_after_days` relative
    /// to now (negative values are in the past), for example `(-30, -1)` for an expired one.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if `names` is empty, a name is not a valid DNS name, or
    /// `not_before_days` is not before `not_after_days` (or either is beyond ±100 years).
    pub fn issue_server_with_validity(
        &self,
        names: &[&str],
        not_before_days: i64,
        not_after_days: i64,
    ) -> Result<DevCertificate> {
        let mut params = server_params(names)?;
        set_validity(&mut params, not_before_days, not_after_days)?;
        self.sign(params)
    }

    /// Issues a client certificate (extended key usage `clientAuth`) with this common name and
    /// no subject alternative names, valid from a day ago to 90 days from now.
    ///
    /// # Errors
    ///
    /// [`Error::TlsConfig`] if generation fails (not expected).
    pub fn issue_client(&self, common_name: &str) -> Result<DevCertificate> {
        let params = leaf_params(&[], common_name, ExtendedKeyUsagePurpose::ClientAuth)?;
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Result<DevCertificate> {
        params.use_authority_key_identifier_extension = true;
        let key = new_key()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_error("signing a certificate with the development CA"))?;
        Ok(DevCertificate::new(cert.der().clone(), key))
    }
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("sha256", &fingerprint_hex(&sha256_fingerprint(&self.cert)))
            .finish_non_exhaustive()
    }
}

/// PEM-encodes `der` with 64-character lines into a string that is wiped when dropped (its
/// capacity is reserved up front, so no partial copy is left behind by reallocation).
fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64_len = der.len().div_ceil(3) * 4;
    let mut b64 = Zeroizing::new(String::with_capacity(b64_len));
    BASE64.encode_string(der, &mut b64);
    let lines = b64_len.div_ceil(64);
    let capacity = 2 * (label.len() + 17) + b64_len + lines;
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
