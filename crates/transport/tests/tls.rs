//! TLS configuration tests over real TCP connections on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "dev-cert")]

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, ProtocolVersion, RootCertStore};
use sealwire_transport::tls::{ClientTls, DevCa, DevCertificate, ServerTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const TIMEOUT: Duration = Duration::from_secs(5);

/// What one side saw of a successful connection.
#[derive(Debug)]
struct Outcome {
    version: ProtocolVersion,
    alpn: Option<Vec<u8>>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "test step timed out")
}

/// Accepts one connection, completes the handshake and echoes four bytes.
async fn start_server(acceptor: TlsAcceptor) -> (SocketAddr, JoinHandle<io::Result<Outcome>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        timeout(TIMEOUT, async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await?;
            tls.write_all(&buf).await?;
            tls.flush().await?;
            let (_, conn) = tls.get_ref();
            let outcome = Outcome {
                version: conn.protocol_version().unwrap(),
                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            };
            let _ = tls.shutdown().await;
            Ok(outcome)
        })
        .await
        .map_err(|_| timed_out())?
    });
    (addr, handle)
}

/// Connects, sends "ping" and expects it echoed.
async fn client_exchange(
    connector: TlsConnector,
    name: &str,
    addr: SocketAddr,
) -> io::Result<Outcome> {
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    timeout(TIMEOUT, async move {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = connector.connect(server_name, tcp).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        let (_, conn) = tls.get_ref();
        Ok(Outcome {
            version: conn.protocol_version().unwrap(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        })
    })
    .await
    .map_err(|_| timed_out())?
}

/// Runs one connection; returns (client result, server result).
async fn run(
    server: &ServerTls,
    connector: TlsConnector,
    name: &str,
) -> (io::Result<Outcome>, io::Result<Outcome>) {
    let (addr, handle) = start_server(server.acceptor()).await;
    let client = client_exchange(connector, name, addr).await;
    let server = timeout(TIMEOUT, handle)
        .await
        .expect("server task timed out")
        .unwrap();
    (client, server)
}

fn rustls_error(error: &io::Error) -> &rustls::Error {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {error:?}"))
}

fn certificate_error(error: &io::Error) -> &CertificateError {
    match rustls_error(error) {
        rustls::Error::InvalidCertificate(e) => e,
        other => panic!("not a certificate error: {other:?}"),
    }
}

fn ca_client(ca: &DevCa) -> ClientTls {
    ClientTls::builder()
        .ca_pem(ca.ca_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test]
async fn ca_issued_certificate_is_trusted_and_negotiates_tls13_with_alpn() {
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let server = ca
        .issue_server(&["localhost", "127.0.0.1"])
        .unwrap()
        .server_tls()
        .unwrap();
    let client = ca_client(&ca);
    for name in ["localhost", "127.0.0.1"] {
        let (client_result, server_result) = run(&server, client.connector(), name).await;
        let client_outcome = client_result.unwrap();
        let server_outcome = server_result.unwrap();
        assert_eq!(client_outcome.version, ProtocolVersion::TLSv1_3);
        assert_eq!(server_outcome.version, ProtocolVersion::TLSv1_3);
        assert_eq!(client_outcome.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(server_outcome.alpn.as_deref(), Some(&b"http/1.1"[..]));
    }
}

#[tokio::test]
async fn webpki_roots_refuse_the_dev_ca() {
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let server = ca
        .issue_server(&["localhost"])
        .unwrap()
        .server_tls()
        .unwrap();
    let client = ClientTls::builder().webpki_roots().build().unwrap();
    let (client_result, server_result) = run(&server, client.connector(), "localhost").await;
    let error = client_result.unwrap_err();
    assert_eq!(certificate_error(&error), &CertificateError::UnknownIssuer);
    assert!(server_result.is_err());

    // The default builder is the same.
    let client = ClientTls::builder().build().unwrap();
    let (client_result, _) = run(&server, client.connector(), "localhost").await;
    let error = client_result.unwrap_err();
    assert_eq!(certificate_error(&error), &CertificateError::UnknownIssuer);
}

#[tokio::test]
async fn wrong_server_name_is_refused() {
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let server = ca
        .issue_server(&["localhost"])
        .unwrap()
        .server_tls()
        .unwrap();
    let (client_result, _) = run(&server, ca_client(&ca).connector(), "relay.example").await;
    let error = client_result.unwrap_err();
    assert!(
        matches!(
            certificate_error(&error),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let expired = ca
        .issue_server_with_validity(&["localhost"], -30, -1)
        .unwrap();
    let server = expired.server_tls().unwrap();
    let (client_result, _) = run(&server, ca_client(&ca).connector(), "localhost").await;
    let error = client_result.unwrap_err();
    assert!(
        matches!(
            certificate_error(&error),
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{error:?}"
    );

    let not_yet = ca
        .issue_server_with_validity(&["localhost"], 2, 30)
        .unwrap();
    let (client_result, _) = run(
        &not_yet.server_tls().unwrap(),
        ca_client(&ca).connector(),
        "localhost",
    )
    .await;
    let error = client_result.unwrap_err();
    assert!(
        matches!(
            certificate_error(&error),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn pins_in_addition_to_the_chain() {
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let cert = ca.issue_server(&["localhost"]).unwrap();
    let server = cert.server_tls().unwrap();
    assert_eq!(server.certificate_fingerprint(), cert.fingerprint());

    // Matching pin (among several, as during a renewal).
    let client = ClientTls::builder()
        .ca_pem(ca.ca_pem().as_bytes())
        .unwrap()
        .pin_sha256([7u8; 32])
        .pin_sha256(server.certificate_fingerprint())
        .build()
        .unwrap();
    let (client_result, server_result) = run(&server, client.connector(), "localhost").await;
    client_result.unwrap();
    server_result.unwrap();

    // Mismatching pin: refused even though the CA is trusted and the name matches.
    let other = ca.issue_server(&["localhost"]).unwrap();
    let client = ClientTls::builder()
        .ca_pem(ca.ca_pem().as_bytes())
        .unwrap()
        .pin_sha256(other.fingerprint())
        .build()
        .unwrap();
    let (client_result, server_result) = run(&server, client.connector(), "localhost").await;
    let error = client_result.unwrap_err();
    assert!(error.to_string().contains("pin mismatch"), "{error}");
    assert!(matches!(
        certificate_error(&error),
        CertificateError::Other(_)
    ));
    assert!(server_result.is_err());

    // A pin does not replace chain verification.
    let client = ClientTls::builder()
        .webpki_roots()
        .pin_sha256(server.certificate_fingerprint())
        .build()
        .unwrap();
    let (client_result, _) = run(&server, client.connector(), "localhost").await;
    let error = client_result.unwrap_err();
    assert_eq!(certificate_error(&error), &CertificateError::UnknownIssuer);
}

#[tokio::test]
async fn pin_only_trusts_a_self_signed_certificate_by_its_pin() {
    let dev = DevCertificate::generate(&["localhost", "::1"]).unwrap();
    let server = dev.server_tls().unwrap();
    let client = ClientTls::builder()
        .pin_sha256(dev.fingerprint())
        .pin_only()
        .build()
        .unwrap();
    // Name verification is skipped: any name works.
    for name in ["localhost", "anything.example"] {
        let (client_result, server_result) = run(&server, client.connector(), name).await;
        assert_eq!(client_result.unwrap().version, ProtocolVersion::TLSv1_3);
        server_result.unwrap();
    }

    let other = DevCertificate::generate(&["localhost"]).unwrap();
    let client = ClientTls::builder()
        .pin_sha256(other.fingerprint())
        .pin_only()
        .build()
        .unwrap();
    let (client_result, _) = run(&server, client.connector(), "localhost").await;
    let error = client_result.unwrap_err();
    assert!(error.to_string().contains("pin mismatch"), "{error}");

    // Without pin_only the self-signed certificate is not trusted.
    let client = ClientTls::builder()
        .pin_sha256(dev.fingerprint())
        .build()
        .unwrap();
    let (client_result, _) = run(&server, client.connector(), "localhost").await;
    assert!(client_result.is_err());
}

#[tokio::test]
async fn pin_only_still_verifies_handshake_signatures() {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    use rustls::sign::{CertifiedKey, SingleCertAndKey};

    // An impostor presents the pinned certificate but signs with another key (rustls' config
    // builder would refuse the mismatch, so the certified key is assembled by hand).
    let genuine = DevCertificate::generate(&["localhost"]).unwrap();
    let impostor = DevCertificate::generate(&["localhost"]).unwrap();
    let key = PrivateKeyDer::from_pem_slice(impostor.key_pem().as_bytes()).unwrap();
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let certified = CertifiedKey::new(vec![genuine.cert_der().clone()], signing_key);
    let resolver = Arc::new(SingleCertAndKey::from(certified));
    let client = ClientTls::builder()
        .pin_sha256(genuine.fingerprint())
        .pin_only()
        .build()
        .unwrap();

    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
        let (addr, handle) = start_server(TlsAcceptor::from(Arc::new(config))).await;
        let error = client_exchange(client.connector(), "localhost", addr)
            .await
            .unwrap_err();
        assert!(!error.to_string().contains("pin mismatch"), "{error}");
        assert!(
            matches!(
                rustls_error(&error),
                rustls::Error::InvalidCertificate(_) | rustls::Error::PeerMisbehaved(_)
            ),
            "{error:?}"
        );
        assert!(timeout(TIMEOUT, handle).await.unwrap().unwrap().is_err());
    }
}

#[tokio::test]
async fn mutual_tls_requires_a_certificate_from_the_client_ca() {
    let server_ca = DevCa::generate("server CA").unwrap();
    let client_ca = DevCa::generate("client CA").unwrap();
    let other_ca = DevCa::generate("other CA").unwrap();
    let server = server_ca
        .issue_server(&["localhost"])
        .unwrap()
        .server_tls()
        .unwrap()
        .with_client_ca_pem(client_ca.ca_pem().as_bytes())
        .unwrap();
    assert!(server.requires_client_certificate());

    // No client certificate.
    let (client_result, server_result) =
        run(&server, ca_client(&server_ca).connector(), "localhost").await;
    assert!(client_result.is_err());
    let error = server_result.unwrap_err();
    assert!(
        matches!(rustls_error(&error), rustls::Error::NoCertificatesPresented),
        "{error:?}"
    );

    // A client certificate from another CA.
    let stranger = other_ca.issue_client("mallory").unwrap();
    let client = ClientTls::builder()
        .ca_pem(server_ca.ca_pem().as_bytes())
        .unwrap()
        .client_certificate(
            stranger.cert_pem().as_bytes(),
            stranger.key_pem().as_bytes(),
        )
        .unwrap()
        .build()
        .unwrap();
    let (client_result, server_result) = run(&server, client.connector(), "localhost").await;
    assert!(client_result.is_err());
    let error = server_result.unwrap_err();
    assert_eq!(certificate_error(&error), &CertificateError::UnknownIssuer);

    // A client certificate from the right CA.
    let alice = client_ca.issue_client("alice").unwrap();
    let client = ClientTls::builder()
        .ca_pem(server_ca.ca_pem().as_bytes())
        .unwrap()
        .client_certificate(alice.cert_pem().as_bytes(), alice.key_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let (client_result, server_result) = run(&server, client.connector(), "localhost").await;
    client_result.unwrap();
    server_result.unwrap();

    // A server certificate (EKU serverAuth only) is not a client certificate.
    let wrong_eku = client_ca.issue_server(&["alice"]).unwrap();
    let client = ClientTls::builder()
        .ca_pem(server_ca.ca_pem().as_bytes())
        .unwrap()
        .client_certificate(
            wrong_eku.cert_pem().as_bytes(),
            wrong_eku.key_pem().as_bytes(),
        )
        .unwrap()
        .build()
        .unwrap();
    let (client_result, server_result) = run(&server, client.connector(), "localhost").await;
    assert!(client_result.is_err());
    assert!(server_result.is_err());
}

#[tokio::test]
async fn tls12_is_the_minimum_and_tls13_is_preferred() {
    let ca = DevCa::generate("sealwire test CA").unwrap();
    let server = ca
        .issue_server(&["localhost"])
        .unwrap()
        .server_tls()
        .unwrap();

    let mut roots = RootCertStore::empty();
    roots.add(ca.ca_der().clone()).unwrap();
    let tls12_only =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let (client_result, server_result) = run(
        &server,
        TlsConnector::from(Arc::new(tls12_only)),
        "localhost",
    )
    .await;
    assert_eq!(client_result.unwrap().version, ProtocolVersion::TLSv1_2);
    assert_eq!(server_result.unwrap().version, ProtocolVersion::TLSv1_2);

    let (client_result, server_result) =
        run(&server, ca_client(&ca).connector(), "localhost").await;
    assert_eq!(client_result.unwrap().version, ProtocolVersion::TLSv1_3);
    assert_eq!(server_result.unwrap().version, ProtocolVersion::TLSv1_3);
}
