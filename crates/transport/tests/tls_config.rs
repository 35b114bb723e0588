//! TLS configuration tests without a network: what the builders accept and refuse, the suites
//! and groups configured, dev certificates, and that keys never reach Debug output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "dev-cert")]

use std::path::PathBuf;

use sealwire_transport::Error;
use sealwire_transport::tls::{
    ClientTls, DevCa, DevCertificate, ServerTls, fingerprint_hex, parse_fingerprint,
};

fn tls_config_message<T: std::fmt::Debug>(result: sealwire_transport::Result<T>) -> String {
    match result {
        Err(Error::TlsConfig(message)) => message,
        other => panic!("expected a TlsConfig error, got {other:?}"),
    }
}

#[test]
fn pin_only_needs_a_pin_and_no_custom_ca() {
    let message = tls_config_message(ClientTls::builder().pin_only().build());
    assert!(message.contains("pin"), "{message}");
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let message = tls_config_message(
        ClientTls::builder()
            .ca_pem(ca.ca_pem().as_bytes())
            .unwrap()
            .pin_sha256([1u8; 32])
            .pin_only()
            .build(),
    );
    assert!(message.contains("ca_pem"), "{message}");
}

#[test]
fn only_aead_suites_and_the_chosen_groups_are_configured() {
    use rustls::CipherSuite as S;
    use rustls::NamedGroup;
    let expected = [
        S::TLS13_AES_256_GCM_SHA384,
        S::TLS13_AES_128_GCM_SHA256,
        S::TLS13_CHACHA20_POLY1305_SHA256,
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    let groups = [
        NamedGroup::X25519,
        NamedGroup::secp256r1,
        NamedGroup::secp384r1,
    ];

    let server = DevCertificate::generate(&["localhost"])
        .unwrap()
        .server_tls()
        .unwrap();
    let client = ClientTls::builder().build().unwrap();
    for provider in [
        server.config().crypto_provider().clone(),
        client.config().crypto_provider().clone(),
    ] {
        let suites: Vec<S> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites, expected);
        let kx: Vec<NamedGroup> = provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(kx, groups);
    }
    assert_eq!(server.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert_eq!(client.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn mismatched_or_missing_material_is_a_config_error() {
    let a = DevCertificate::generate(&["localhost"]).unwrap();
    let b = DevCertificate::generate(&["localhost"]).unwrap();
    let message = tls_config_message(ServerTls::from_pem(
        a.cert_pem().as_bytes(),
        b.key_pem().as_bytes(),
    ));
    assert!(message.contains("does not match"), "{message}");

    ServerTls::from_pem(a.cert_pem().as_bytes(), a.key_pem().as_bytes()).unwrap();

    let message = tls_config_message(ServerTls::from_pem(b"", a.key_pem().as_bytes()));
    assert!(message.contains("no certificate"), "{message}");
    let message = tls_config_message(ServerTls::from_pem(a.cert_pem().as_bytes(), b""));
    assert!(message.contains("no unencrypted private key"), "{message}");
    let message = tls_config_message(ServerTls::from_pem(
        a.cert_pem().as_bytes(),
        a.cert_pem().as_bytes(),
    ));
    assert!(message.contains("private key"), "{message}");

    let key = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::PrivateKeyDer::from_pem_slice(a.key_pem().as_bytes()).unwrap()
    };
    let message = tls_config_message(ServerTls::from_der(Vec::new(), key));
    assert!(message.contains("empty"), "{message}");

    let client =
        ClientTls::builder().client_certificate(a.cert_pem().as_bytes(), b.key_pem().as_bytes());
    let message = tls_config_message(client);
    assert!(message.contains("does not match"), "{message}");
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sealwire-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pem_files_with_garbage_are_config_errors_naming_the_file() {
    let dir = TempDir::new("files");
    let dev = DevCertificate::generate(&["localhost"]).unwrap();
    let cert = dir.file("cert.pem", dev.cert_pem().as_bytes());
    let key = dir.file("key.pem", dev.key_pem().as_bytes());
    let garbage = dir.file("garbage.pem", b"this is not PEM at all\n\x00\xff");
    let broken = dir.file(
        "broken.pem",
        b"-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
    );
    let missing = dir.0.join("missing.pem");

    let server = ServerTls::from_pem_files(&cert, &key).unwrap();
    assert_eq!(server.certificate_fingerprint(), dev.fingerprint());

    for (cert_path, key_path, bad, needle) in [
        (&garbage, &key, &garbage, "no certificate"),
        (&broken, &key, &broken, "not valid PEM"),
        (&cert, &garbage, &garbage, "no unencrypted private key"),
        (&missing, &key, &missing, "cannot read"),
        (&cert, &missing, &missing, "cannot read"),
    ] {
        let message = tls_config_message(ServerTls::from_pem_files(cert_path, key_path));
        assert!(message.contains(&bad.display().to_string()), "{message}");
        assert!(message.contains(needle), "{message}");
    }

    let message = tls_config_message(server.clone().with_client_ca_file(&garbage));
    assert!(
        message.contains(&garbage.display().to_string()),
        "{message}"
    );
    let message = tls_config_message(ClientTls::builder().ca_file(&broken));
    assert!(message.contains(&broken.display().to_string()), "{message}");
    let message =
        tls_config_message(ClientTls::builder().client_certificate_files(&cert, &garbage));
    assert!(
        message.contains(&garbage.display().to_string()),
        "{message}"
    );
    let message = tls_config_message(ServerTls::from_pem(b"garbage", b"garbage"));
    assert!(message.contains("no certificate"), "{message}");
}

#[test]
fn debug_output_contains_no_private_key() {
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let dev = ca.issue_server(&["localhost"]).unwrap();
    let key_pem = dev.key_pem();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let key_body: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();

    let server = dev.server_tls().unwrap();
    let client = ClientTls::builder()
        .ca_pem(ca.ca_pem().as_bytes())
        .unwrap()
        .client_certificate(dev.cert_pem().as_bytes(), key_pem.as_bytes())
        .unwrap();
    let outputs = [
        format!("{server:?}"),
        format!("{dev:?}"),
        format!("{ca:?}"),
        format!("{client:?}"),
        format!("{:?}", client_build(&ca, &dev)),
    ];
    for output in &outputs {
        assert!(!output.contains("PRIVATE KEY"), "{output}");
        for line in &key_body {
            assert!(!output.contains(line), "{output}");
        }
    }
    assert!(outputs[0].contains(&fingerprint_hex(&dev.fingerprint())));
}

fn client_build(ca: &DevCa, dev: &DevCertificate) -> ClientTls {
    ClientTls::builder()
        .ca_pem(ca.ca_pem().as_bytes())
        .unwrap()
        .client_certificate(dev.cert_pem().as_bytes(), dev.key_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn dev_certificates_are_well_formed() {
    let dev = DevCertificate::generate(&["localhost", "127.0.0.1"]).unwrap();
    assert!(dev.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(dev.cert_pem().ends_with("-----END CERTIFICATE-----\n"));
    assert!(dev.cert_pem().lines().all(|l| l.len() <= 64));
    assert_eq!(
        parse_fingerprint(&fingerprint_hex(&dev.fingerprint())).unwrap(),
        dev.fingerprint()
    );
    let parsed = {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(dev.cert_pem().as_bytes()).unwrap()
    };
    assert_eq!(&parsed, dev.cert_der());

    assert!(DevCertificate::generate(&[]).is_err());
    assert!(DevCertificate::generate(&["not a valid name!"]).is_err());
    let ca = DevCa::generate("ca").unwrap();
    assert!(ca.issue_server_with_validity(&["localhost"], 5, 5).is_err());
    assert!(
        ca.issue_server_with_validity(&["localhost"], 0, 1_000_000)
            .is_err()
    );
}
