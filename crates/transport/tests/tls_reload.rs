//! Certificate hot reload over real TLS on 127.0.0.1: `ServerTls::reloadable_from_pem_files`
//! and `CertificateReloader`. New handshakes get the new certificate, established connections
//! keep working, invalid files leave the old certificate in service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "dev-cert")]

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::{CertificateDer, ServerName};
use sealwire_transport::Error;
use sealwire_transport::frame::{ClientFrame, MessageId, Send, ServerFrame};
use sealwire_transport::tls::{ClientTls, DevCa, DevCertificate, ServerTls, fingerprint_hex};
use support::*;
use tokio::net::{TcpListener, TcpStream};

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "sealwire-tls-reload-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces `path`'s contents atomically (write a sibling, rename over), as deploy tools do.
fn write_atomically(path: &Path, contents: &[u8]) {
    let staging = path.with_extension("staging");
    std::fs::write(&staging, contents).unwrap();
    std::fs::rename(&staging, path).unwrap();
}

fn write_pair(cert_path: &Path, key_path: &Path, certificate: &DevCertificate) {
    write_atomically(cert_path, certificate.cert_pem().as_bytes());
    write_atomically(key_path, certificate.key_pem().as_bytes());
}

fn issue(ca: &DevCa) -> DevCertificate {
    ca.issue_server(&[SERVER_NAME, "127.0.0.1"]).unwrap()
}

/// A client trusting the CA, pinning `pin` if given.
fn client(ca: &DevCa, pin: Option<[u8; 32]>) -> ClientTls {
    let builder = ClientTls::builder().ca_pem(ca.ca_pem().as_bytes()).unwrap();
    match pin {
        Some(pin) => builder.pin_sha256(pin).build().unwrap(),
        None => builder.build().unwrap(),
    }
}

/// A full TLS handshake (each `ClientTls` has its own session cache, and every call builds a
/// new one, so nothing is resumed); returns the leaf certificate the server presented.
async fn leaf(
    client: &ClientTls,
    addr: std::net::SocketAddr,
) -> std::io::Result<CertificateDer<'static>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let tls = tokio::time::timeout(WAIT, client.connector().connect(name, tcp))
        .await
        .expect("TLS handshake timed out")?;
    let certificates = tls.get_ref().1.peer_certificates().unwrap();
    Ok(certificates[0].clone().into_owned())
}

fn config_error(result: sealwire_transport::Result<Option<[u8; 32]>>) -> String {
    match result {
        Err(Error::TlsConfig(message)) => message,
        other => panic!("expected a TLS configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reloaded_certificate_is_presented_to_new_connections_only() {
    let ca = DevCa::generate("sealwire reload CA").unwrap();
    let dir = TempDir::new();
    let (cert_path, key_path) = (dir.path("cert.pem"), dir.path("key.pem"));
    let first = issue(&ca);
    write_pair(&cert_path, &key_path, &first);

    let (tls, reloader) = ServerTls::reloadable_from_pem_files(&cert_path, &key_path).unwrap();
    assert!(tls.is_reloadable());
    assert_eq!(tls.certificate_fingerprint(), first.fingerprint());
    assert_eq!(reloader.fingerprint(), first.fingerprint());
    let debug = format!("{reloader:?}");
    assert!(
        debug.contains(&fingerprint_hex(&first.fingerprint())),
        "{debug}"
    );
    assert!(
        debug.contains("cert.pem") && debug.contains("key.pem"),
        "{debug}"
    );
    assert!(!debug.contains("PRIVATE"), "{debug}");

    let pki = Pki {
        ca,
        server: tls.clone(),
    };
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let addr = server.local_addr();

    // A client pinning the first certificate connects and sees it.
    let seen = leaf(&client(&pki.ca, Some(first.fingerprint())), addr)
        .await
        .unwrap();
    assert_eq!(&seen, first.cert_der());
    // An authenticated connection established before the reload.
    let (mut established, ready) = raw_authenticate(&pki, addr, &identity()).await;
    let Ok(ServerFrame::Ready(ready)) = ready else {
        panic!("not ready: {ready:?}")
    };

    // Unchanged files: nothing to do.
    assert_eq!(reloader.reload_if_changed().unwrap(), None);

    // Renewal: new files, a new certificate for new handshakes.
    let second = issue(&pki.ca);
    assert_ne!(second.fingerprint(), first.fingerprint());
    write_pair(&cert_path, &key_path, &second);
    assert_eq!(
        reloader.reload_if_changed().unwrap(),
        Some(second.fingerprint())
    );
    assert_eq!(reloader.fingerprint(), second.fingerprint());
    // The configuration (and its clones) report the certificate in service.
    assert_eq!(tls.certificate_fingerprint(), second.fingerprint());
    assert_eq!(pki.server.certificate_fingerprint(), second.fingerprint());
    assert_eq!(reloader.reload_if_changed().unwrap(), None);

    let seen = leaf(&client(&pki.ca, None), addr).await.unwrap();
    assert_eq!(&seen, second.cert_der());
    assert!(
        leaf(&client(&pki.ca, Some(first.fingerprint())), addr)
            .await
            .is_err(),
        "a client pinning only the old certificate must be refused"
    );
    let seen = leaf(&client(&pki.ca, Some(second.fingerprint())), addr)
        .await
        .unwrap();
    assert_eq!(&seen, second.cert_der());

    // The connection established before the reload is unaffected.
    let id = MessageId::random();
    let send = ClientFrame::Send(Send {
        id,
        to: vec![ready.mailbox],
        payload: b"after the reload".to_vec(),
    });
    raw_send(&mut established, &send).await;
    loop {
        match raw_read(&mut established).await {
            Ok(ServerFrame::Accepted(accepted)) if accepted.id == id => break,
            Ok(_) => {}
            Err(code) => panic!("the established connection ended: {code}"),
        }
    }
    // And a full connection works with the new certificate.
    let (_, ready) = raw_authenticate(&pki, addr, &identity()).await;
    assert!(matches!(ready, Ok(ServerFrame::Ready(_))), "{ready:?}");

    // An invalid certificate file: an error naming it, the old certificate stays.
    write_atomically(&cert_path, b"not a certificate");
    let message = config_error(reloader.reload_if_changed());
    assert!(
        message.contains(&cert_path.display().to_string()),
        "{message}"
    );
    assert_eq!(reloader.fingerprint(), second.fingerprint());
    let seen = leaf(&client(&pki.ca, None), addr).await.unwrap();
    assert_eq!(&seen, second.cert_der());
    // The failure is not remembered: the same broken files fail again.
    config_error(reloader.reload_if_changed());

    // A key that does not match the certificate (a renewal half written): both files named.
    let third = issue(&pki.ca);
    write_atomically(&cert_path, third.cert_pem().as_bytes());
    let message = config_error(reloader.reload_if_changed());
    assert!(
        message.contains(&cert_path.display().to_string())
            && message.contains(&key_path.display().to_string())
            && message.contains("does not match"),
        "{message}"
    );
    let seen = leaf(&client(&pki.ca, None), addr).await.unwrap();
    assert_eq!(&seen, second.cert_der());

    // A missing key file: an error naming it.
    std::fs::remove_file(&key_path).unwrap();
    let message = config_error(reloader.reload_if_changed());
    assert!(
        message.contains(&key_path.display().to_string()),
        "{message}"
    );

    // Once both files are right, the reload goes through.
    write_atomically(&key_path, third.key_pem().as_bytes());
    assert_eq!(
        reloader.reload_if_changed().unwrap(),
        Some(third.fingerprint())
    );
    let seen = leaf(&client(&pki.ca, Some(third.fingerprint())), addr)
        .await
        .unwrap();
    assert_eq!(&seen, third.cert_der());

    server.shutdown().await;
}

#[tokio::test]
async fn a_mutual_tls_configuration_follows_the_reloads() {
    let ca = DevCa::generate("sealwire reload CA").unwrap();
    let dir = TempDir::new();
    let (cert_path, key_path) = (dir.path("cert.pem"), dir.path("key.pem"));
    let first = issue(&ca);
    write_pair(&cert_path, &key_path, &first);
    let (tls, reloader) = ServerTls::reloadable_from_pem_files(&cert_path, &key_path).unwrap();
    let mtls = tls.with_client_ca_pem(ca.ca_pem().as_bytes()).unwrap();
    assert!(mtls.is_reloadable() && mtls.requires_client_certificate());

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = mtls.acceptor();
    let accept_task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    use tokio::io::AsyncWriteExt;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    let client_cert = ca.issue_client("reload test client").unwrap();
    let mtls_client = || {
        ClientTls::builder()
            .ca_pem(ca.ca_pem().as_bytes())
            .unwrap()
            .client_certificate(
                client_cert.cert_pem().as_bytes(),
                client_cert.key_pem().as_bytes(),
            )
            .unwrap()
            .build()
            .unwrap()
    };

    assert_eq!(&leaf(&mtls_client(), addr).await.unwrap(), first.cert_der());
    let second = issue(&ca);
    write_pair(&cert_path, &key_path, &second);
    assert_eq!(
        reloader.reload_if_changed().unwrap(),
        Some(second.fingerprint())
    );
    assert_eq!(mtls.certificate_fingerprint(), second.fingerprint());
    assert_eq!(
        &leaf(&mtls_client(), addr).await.unwrap(),
        second.cert_der()
    );
    accept_task.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_swap_is_seen() {
    use std::os::unix::fs::symlink;

    // certbot's layout: live/{cert,key}.pem are links into archive/.
    let ca = DevCa::generate("sealwire reload CA").unwrap();
    let dir = TempDir::new();
    let first = issue(&ca);
    let second = issue(&ca);
    for (n, certificate) in [(1, &first), (2, &second)] {
        std::fs::write(
            dir.path(&format!("cert{n}.pem")),
            certificate.cert_pem().as_bytes(),
        )
        .unwrap();
        std::fs::write(
            dir.path(&format!("key{n}.pem")),
            certificate.key_pem().as_bytes(),
        )
        .unwrap();
    }
    let (cert_link, key_link) = (dir.path("cert.pem"), dir.path("key.pem"));
    let relink = |n: u32| {
        for (link, name) in [(&cert_link, "cert"), (&key_link, "key")] {
            let staging = dir.path(&format!("{name}.link"));
            symlink(dir.path(&format!("{name}{n}.pem")), &staging).unwrap();
            std::fs::rename(&staging, link).unwrap();
        }
    };
    relink(1);
    let (tls, reloader) = ServerTls::reloadable_from_pem_files(&cert_link, &key_link).unwrap();
    assert_eq!(tls.certificate_fingerprint(), first.fingerprint());
    assert_eq!(reloader.reload_if_changed().unwrap(), None);
    relink(2);
    assert_eq!(
        reloader.reload_if_changed().unwrap(),
        Some(second.fingerprint())
    );
    assert_eq!(tls.certificate_fingerprint(), second.fingerprint());
}
