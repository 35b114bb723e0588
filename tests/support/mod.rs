//! Shared setup for the end-to-end tests: a relay on 127.0.0.1 (free port, temporary data
//! directory, a dev CA made for the test) and clients with their own encrypted stores.
#![allow(dead_code, unreachable_pub)]

pub mod evil;
pub mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sealwire::client::{Client, ClientOptions, Event, Incoming, Profile};
use sealwire::core::PublicIdentity;
use sealwire::relay::config::{Config, StoreKind};
use sealwire::relay::server::{Certificate, RelayServer};
use sealwire::store::{KdfParams, LocalStore, StoreKey};
use sealwire::transport::client::{Backoff, ClientConfig};
use sealwire::transport::tls::{ClientTls, DevCa, DevCertificate};

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(30);

pub const SERVER_NAME: &str = "localhost";

/// A CA and a server certificate for `localhost`, fresh for each test.
pub struct Pki {
    pub ca: DevCa,
    pub server: DevCertificate,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = DevCa::generate("sealwire e2e test CA").unwrap();
        let server = ca.issue_server(&[SERVER_NAME, "127.0.0.1"]).unwrap();
        Pki { ca, server }
    }

    pub fn client_tls(&self) -> ClientTls {
        ClientTls::builder()
            .ca_pem(self.ca.ca_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap()
    }
}

/// A relay configuration: loopback, a free port, `data_dir`, the durable store, no admin.
pub fn relay_config(data_dir: &Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        server_names: vec![SERVER_NAME.into()],
        store: StoreKind::Redb,
        ..Config::default()
    };
    config.admin.enabled = false;
    config
}

/// A relay as most tests want it: a fresh [`Pki`], a temporary directory (the relay's data in
/// `root/relay`, users beside it), the durable store, a free port on 127.0.0.1.
pub struct LocalRelay {
    pub pki: Pki,
    pub root: tempfile::TempDir,
    pub relay: RelayServer,
    pub port: u16,
}

impl LocalRelay {
    pub async fn start() -> LocalRelay {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        let relay = start_relay(&pki, relay_config(&root.path().join("relay"))).await;
        let port = relay.local_addr().port();
        LocalRelay {
            pki,
            root,
            relay,
            port,
        }
    }
}

pub async fn start_relay(pki: &Pki, config: Config) -> RelayServer {
    RelayServer::start(config, Certificate::Fixed(pki.server.server_tls().unwrap()))
        .await
        .unwrap()
}

/// A user: a directory holding an encrypted store, and how to open it.
pub struct User {
    pub name: String,
    pub dir: PathBuf,
    key: [u8; 32],
    pub identity: PublicIdentity,
}

impl User {
    /// Creates the user's store and identity under `root/name`.
    pub fn create(root: &Path, name: &str) -> User {
        let dir = root.join(name);
        let key: [u8; 32] = rand::random();
        let store = LocalStore::create(
            &dir,
            &StoreKey::from_bytes(key),
            KdfParams::insecure_fast_for_tests(),
        )
        .unwrap();
        let profile = Profile::create(store).unwrap();
        User {
            name: name.to_owned(),
            dir,
            key,
            identity: profile.identity().clone(),
        }
    }

    pub fn profile(&self) -> Profile {
        let store = LocalStore::open(&self.dir, &StoreKey::from_bytes(self.key)).unwrap();
        Profile::open(store).unwrap()
    }

    /// Adds `others` as contacts under their names (offline).
    pub fn add_contacts(&self, others: &[&User]) {
        let mut profile = self.profile();
        for other in others {
            profile.add_contact(&other.name, &other.identity).unwrap();
        }
    }

    /// Starts a client against the relay at `port`.
    pub fn start(&self, pki: &Pki, port: u16) -> Client {
        self.start_with(pki, port, |_| {})
    }

    /// Starts a client with adjusted options.
    pub fn start_with(
        &self,
        pki: &Pki,
        port: u16,
        adjust: impl FnOnce(&mut ClientOptions),
    ) -> Client {
        let url = format!("wss://{SERVER_NAME}:{port}/");
        let mut transport = ClientConfig::new(url, pki.client_tls());
        transport.backoff = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        };
        let mut options = ClientOptions::new(transport);
        adjust(&mut options);
        Client::start(self.profile(), options).unwrap()
    }
}

/// Creates users `names` under `root`, each a contact of every other.
pub fn users(root: &Path, names: &[&str]) -> Vec<User> {
    let users: Vec<User> = names.iter().map(|name| User::create(root, name)).collect();
    for user in &users {
        let others: Vec<&User> = users.iter().filter(|u| u.name != user.name).collect();
        user.add_contacts(&others);
    }
    users
}

/// Connects `user` once, so that the relay has their prekeys, and disconnects.
pub async fn publish_prekeys(user: &User, pki: &Pki, port: u16) {
    let mut client = user.start(pki, port);
    connected(&mut client).await;
    tokio::time::timeout(WAIT, client.flush())
        .await
        .unwrap()
        .unwrap();
    client.close().await;
}

/// Waits for the next event matching `pick`, failing after [`WAIT`].
pub async fn wait_for<T>(client: &mut Client, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .expect("timed out waiting for an event")
            .expect("the client stopped");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

/// Waits for the next message, confirms it, returns it.
pub async fn next_message(client: &mut Client) -> Incoming {
    let message = wait_for(client, |event| match event {
        Event::Message(message) => Some(message),
        Event::Dropped { error, .. } => panic!("a message was dropped: {error}"),
        _ => None,
    })
    .await;
    client.confirm(message.seq).await.unwrap();
    message
}

/// Waits until `client` is connected and what it had to do on connecting is answered, its
/// prekey upload included. `Event::Connected` comes before that upload: a peer that fetched the
/// bundle right after it could find no prekeys yet (`SendFailed`), which loaded machines did.
pub async fn connected(client: &mut Client) {
    wait_for(client, |event| {
        matches!(event, Event::Connected).then_some(())
    })
    .await;
    tokio::time::timeout(WAIT, client.flush())
        .await
        .expect("timed out waiting for the prekey upload")
        .unwrap();
}

pub fn text(message: &Incoming) -> String {
    String::from_utf8(message.body.clone()).unwrap()
}
