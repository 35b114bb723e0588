//! Operations over real WSS on 127.0.0.1: a renewed certificate is picked up without a
//! restart, and a broken renewal leaves the old certificate in service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sealwire_relay::server::{Certificate, RelayServer};
use sealwire_transport::client::{Client, ClientConfig, Event};
use sealwire_transport::tls::ClientTls;
use support::*;

/// A client that trusts the test CA and additionally pins `fingerprint`.
fn pinned(pki: &Pki, addr: std::net::SocketAddr, fingerprint: [u8; 32]) -> Client {
    let tls = ClientTls::builder()
        .ca_pem(pki.ca.ca_pem().as_bytes())
        .unwrap()
        .pin_sha256(fingerprint)
        .build()
        .unwrap();
    let mut config = ClientConfig::new(format!("wss://{SERVER_NAME}:{}/", addr.port()), tls);
    config.backoff.initial = Duration::from_millis(20);
    config.backoff.max = Duration::from_millis(100);
    Client::start(config, identity()).unwrap()
}

/// Whether the client authenticates (`true`) or stops on the certificate (`false`).
async fn outcome(client: &mut Client) -> bool {
    loop {
        match next_event(client).await {
            Event::Connected(_) => return true,
            Event::Stopped { .. } => return false,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_a_reload_without_a_restart() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.write_files(dir.path());
    let mut config = config(&dir.path().join("data"));
    config.tls.cert = Some(cert.clone());
    config.tls.key = Some(key.clone());
    config.tls.reload_interval_secs = 3600; // only the explicit reload below
    let relay = RelayServer::start(config, Certificate::Files)
        .await
        .unwrap();
    let addr = relay.local_addr();
    let old = pki.server.fingerprint();
    assert_eq!(relay.certificate_fingerprint(), Some(old));
    let mut before = pinned(&pki, addr, old);
    assert!(outcome(&mut before).await);

    // A renewal: new certificate and key written in place, then SIGHUP (here: the same call).
    let renewed = pki.ca.issue_server(&[SERVER_NAME, "127.0.0.1"]).unwrap();
    std::fs::write(&cert, renewed.cert_pem()).unwrap();
    std::fs::write(&key, renewed.key_pem().as_bytes()).unwrap();
    relay.reload_certificate();
    let mut swapped = false;
    for _ in 0..100 {
        let mut client = pinned(&pki, addr, renewed.fingerprint());
        if outcome(&mut client).await {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(swapped, "the renewed certificate was never served");
    let mut stale = pinned(&pki, addr, old);
    assert!(
        !outcome(&mut stale).await,
        "the old certificate is still served"
    );
    // The connection made before the renewal is undisturbed.
    before
        .send(vec![before.mailbox()], b"still here".to_vec())
        .await
        .unwrap();
    assert_eq!(
        wait_for(&mut before, delivered).await.payload,
        b"still here"
    );

    // A broken renewal (garbage key): the relay keeps serving the renewed certificate.
    std::fs::write(&key, b"not a key").unwrap();
    relay.reload_certificate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut client = pinned(&pki, addr, renewed.fingerprint());
    assert!(outcome(&mut client).await);
    relay.shutdown().await;
}
