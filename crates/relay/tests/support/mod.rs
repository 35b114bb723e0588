//! Shared setup for the relay's tests: a CA per test, a relay on 127.0.0.1 with free ports and
//! a temporary data directory, clients, and a metrics scraper.
#![allow(dead_code, unreachable_pub)]

pub(crate) mod raw;

use std::net::SocketAddr;
use std::time::Duration;

use sealwire_core::IdentityKeyPair;
use sealwire_relay::config::{Config, StoreKind};
use sealwire_relay::server::{Certificate, RelayServer};
use sealwire_transport::client::{Client, ClientConfig, Event};
use sealwire_transport::frame::{Delivery, MailboxId};
use sealwire_transport::tls::{ClientTls, DevCa, DevCertificate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every wait in these tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

pub(crate) const SERVER_NAME: &str = "localhost";

/// A CA and a server certificate for `localhost` and 127.0.0.1, fresh for each test.
pub(crate) struct Pki {
    pub(crate) ca: DevCa,
    pub(crate) server: DevCertificate,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let ca = DevCa::generate("sealwire relay test CA").unwrap();
        let server = ca.issue_server(&[SERVER_NAME, "127.0.0.1"]).unwrap();
        Pki { ca, server }
    }

    pub(crate) fn client_tls(&self) -> ClientTls {
        ClientTls::builder()
            .ca_pem(self.ca.ca_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap()
    }

    /// Writes the server certificate and key into `dir`; returns their paths.
    pub(crate) fn write_files(
        &self,
        dir: &std::path::Path,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, self.server.cert_pem()).unwrap();
        std::fs::write(&key, self.server.key_pem().as_bytes()).unwrap();
        (cert, key)
    }
}

/// A relay configuration for tests: loopback, free ports, `data_dir`, the durable store.
pub(crate) fn config(data_dir: &std::path::Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        server_names: vec![SERVER_NAME.into()],
        store: StoreKind::Redb,
        ..Config::default()
    };
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// Starts a relay serving the test certificate.
pub(crate) async fn start(pki: &Pki, config: Config) -> RelayServer {
    let tls = pki.server.server_tls().unwrap();
    RelayServer::start(config, Certificate::Fixed(tls))
        .await
        .unwrap()
}

pub(crate) fn identity() -> IdentityKeyPair {
    IdentityKeyPair::generate(&mut rand::rng())
}

/// A second copy of an identity key pair (the type is deliberately not `Clone`).
pub(crate) fn duplicate(identity: &IdentityKeyPair) -> IdentityKeyPair {
    IdentityKeyPair::from_bytes(identity.to_bytes().expose_secret()).unwrap()
}

/// A client config for `addr` trusting the test CA, with quick reconnects.
pub(crate) fn client_config(pki: &Pki, addr: SocketAddr) -> ClientConfig {
    let mut config = ClientConfig::new(
        format!("wss://{SERVER_NAME}:{}/", addr.port()),
        pki.client_tls(),
    );
    config.backoff.initial = Duration::from_millis(20);
    config.backoff.max = Duration::from_millis(250);
    config
}

/// A started client (not yet waited for).
pub(crate) fn client(pki: &Pki, addr: SocketAddr, identity: IdentityKeyPair) -> Client {
    Client::start(client_config(pki, addr), identity).unwrap()
}

/// The next event, within [`WAIT`].
pub(crate) async fn next_event(client: &mut Client) -> Event {
    tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("no event in time")
        .expect("client task ended")
}

/// Skips events until `pick` returns something.
pub(crate) async fn wait_for<T>(
    client: &mut Client,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    loop {
        if let Some(found) = pick(next_event(client).await) {
            return found;
        }
    }
}

/// Waits for [`Event::Connected`]; returns the one-time prekey count from `ready`.
pub(crate) async fn connected(client: &mut Client) -> u32 {
    wait_for(client, |event| match event {
        Event::Connected(ready) => Some(ready.one_time_prekeys),
        _ => None,
    })
    .await
}

/// Picks deliveries.
pub(crate) fn delivered(event: Event) -> Option<Delivery> {
    match event {
        Event::Delivered(delivery) => Some(delivery),
        _ => None,
    }
}

/// Connects `identity` once so that the relay knows its mailbox, then disconnects.
pub(crate) async fn register(pki: &Pki, addr: SocketAddr, identity: &IdentityKeyPair) -> MailboxId {
    let mut client = client(pki, addr, duplicate(identity));
    connected(&mut client).await;
    let mailbox = client.mailbox();
    client.close().await;
    mailbox
}

/// `GET path` on the admin listener; returns the status code and body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the metric line starting with `series` (name and labels), or 0.
pub(crate) async fn metric(admin: SocketAddr, series: &str) -> f64 {
    let (_, body) = http_get(admin, "/metrics").await;
    body.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            rest.strip_prefix(' ')?.split(' ').next()?.parse().ok()
        })
        .unwrap_or(0.0)
}
