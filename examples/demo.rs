//! The sealwire demo: a real relay and three clients in one process, and what each side sees.
//!
//! It starts a relay on 127.0.0.1 (a fresh self-signed certificate, an in-memory store wrapped
//! so that it records everything the relay stores), and three users, Alice, Bob and Carol, each
//! with an encrypted store in a temporary directory. They exchange 1:1 messages, Alice writes
//! Carol while she is offline, the three form a group, Carol comes back and catches up, and
//! Alice removes her from the group. For every step it prints what the relay saw (mailbox ids,
//! sizes, opaque bytes) beside what the clients read, then checks that no plaintext appears in
//! anything the relay stored, and that Alice and Bob see the same safety number.
//!
//! Run with `cargo run --example demo`: no setup, nothing left behind, a few seconds.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sealwire::client::{Client, ClientOptions, Conversation, Event, Incoming, Profile};
use sealwire::core::{OneTimePrekey, PublicIdentity, SignedPrekey};
use sealwire::relay::config::Config;
use sealwire::relay::server::{Certificate, RelayServer};
use sealwire::relay::store::{
    Appended, Expired, MemoryStore, NewMessage, Quotas, Store, StoreStats, StoredMessage,
    TakenBundle,
};
use sealwire::store::{KdfParams, LocalStore, StoreKey};
use sealwire::transport::client::ClientConfig;
use sealwire::transport::frame::MailboxId;
use sealwire::transport::tls::{ClientTls, DevCertificate};
use tokio::time::{sleep, timeout};

type DemoResult<T = ()> = Result<T, Box<dyn Error>>;
type RelayResult<T> = sealwire::relay::Result<T>;

/// Every wait is bounded by this.
const WAIT: Duration = Duration::from_secs(20);
/// How long Carol is watched for anything after her removal from the group.
const QUIET: Duration = Duration::from_millis(500);

/// One thing the relay was given to store.
#[derive(Clone)]
enum Seen {
    /// An envelope: the sender's mailbox, the recipients' mailboxes, the bytes.
    Envelope(MailboxId, Vec<MailboxId>, Vec<u8>),
    /// A prekey upload: whose, how many one-time prekeys, how many bytes.
    Prekeys(MailboxId, usize, usize),
    /// A prekey bundle handed out: whose, how many bytes, whether with a one-time prekey.
    Bundle(MailboxId, usize, bool),
}

/// The relay's store: a [`MemoryStore`] that also records what it is given.
struct Recording {
    inner: MemoryStore,
    seen: Mutex<Vec<Seen>>,
}

impl Recording {
    /// Everything recorded so far.
    fn log(&self) -> MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for Recording {
    async fn register(&self, mailbox: MailboxId) -> RelayResult<()> {
        self.inner.register(mailbox).await
    }
    async fn append(&self, message: NewMessage) -> RelayResult<Appended> {
        let seen = Seen::Envelope(message.from, message.to.clone(), message.payload.clone());
        let appended = self.inner.append(message).await?;
        if let Appended::Stored(_) = appended {
            self.log().push(seen);
        }
        Ok(appended)
    }
    async fn pending(
        &self,
        to: MailboxId,
        after: u64,
        n: usize,
    ) -> RelayResult<Vec<StoredMessage>> {
        self.inner.pending(to, after, n).await
    }
    async fn ack(&self, mailbox: MailboxId, deliveries: Vec<u64>) -> RelayResult<u64> {
        self.inner.ack(mailbox, deliveries).await
    }
    async fn expire(&self, cutoff: u64) -> RelayResult<Expired> {
        self.inner.expire(cutoff).await
    }
    async fn put_prekeys(
        &self,
        mailbox: MailboxId,
        identity: PublicIdentity,
        signed_prekey: SignedPrekey,
        one_time: Vec<OneTimePrekey>,
    ) -> RelayResult<u32> {
        let keys = postcard::to_allocvec(&(&signed_prekey, &one_time)).map_or(0, |v| v.len());
        let seen = Seen::Prekeys(mailbox, one_time.len(), identity.to_bytes().len() + keys);
        let pool = self
            .inner
            .put_prekeys(mailbox, identity, signed_prekey, one_time)
            .await?;
        self.log().push(seen);
        Ok(pool)
    }
    async fn take_bundle(&self, mailbox: MailboxId) -> RelayResult<Option<TakenBundle>> {
        let taken = self.inner.take_bundle(mailbox).await?;
        if let Some(TakenBundle { bundle, .. }) = &taken {
            let one_time = bundle.one_time_prekey.is_some();
            self.log()
                .push(Seen::Bundle(mailbox, bundle.to_bytes().len(), one_time));
        }
        Ok(taken)
    }
    async fn prekey_count(&self, mailbox: MailboxId) -> RelayResult<u32> {
        self.inner.prekey_count(mailbox).await
    }
    async fn stats(&self) -> RelayResult<StoreStats> {
        self.inner.stats().await
    }
    async fn flush(&self) -> RelayResult<()> {
        self.inner.flush().await
    }
}

/// A mailbox id as the demo prints it: its first 4 bytes.
fn short(mailbox: &MailboxId) -> String {
    format!("{}…", &mailbox.to_hex()[..8])
}

impl Seen {
    fn describe(&self) -> String {
        match self {
            Seen::Envelope(from, to, bytes) => {
                let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
                let to_list: Vec<String> = to.iter().map(short).collect();
                let (n, s) = (to.len(), if to.len() == 1 { "" } else { "es" });
                let (from, to_list, len) = (short(from), to_list.join(", "), bytes.len());
                format!(
                    "{from} → {n} mailbox{s} ({to_list}), {len} bytes: {} …",
                    head.join(" ")
                )
            }
            Seen::Prekeys(mailbox, n, bytes) => {
                let whose = short(mailbox);
                format!("prekeys of {whose}: identity, signed prekey, {n} one-time ({bytes} bytes)")
            }
            Seen::Bundle(mailbox, bytes, true) => {
                format!(
                    "bundle of {}, with a one-time prekey ({bytes} bytes)",
                    short(mailbox)
                )
            }
            Seen::Bundle(mailbox, bytes, false) => {
                format!("bundle of {} ({bytes} bytes)", short(mailbox))
            }
        }
    }
}

/// What each step shows: what the relay saw since the previous step, and what clients read.
struct Report {
    store: Arc<Recording>,
    shown: usize,
    reads: Vec<String>,
    plaintexts: Vec<&'static str>,
}

impl Report {
    fn new(store: Arc<Recording>) -> Report {
        let (shown, reads, plaintexts) = (0, Vec::new(), Vec::new());
        Report {
            store,
            shown,
            reads,
            plaintexts,
        }
    }

    /// A message body, remembered for the final check.
    fn said(&mut self, text: &'static str) -> Vec<u8> {
        self.plaintexts.push(text);
        text.as_bytes().to_vec()
    }

    fn note(&mut self, line: &str) {
        self.reads.push(line.to_owned());
    }

    fn show(&mut self, title: &str) {
        let seen = self.store.log().clone();
        println!("\n── {title}\n   relay saw:");
        for item in &seen[self.shown..] {
            println!("     {}", item.describe());
        }
        if seen.len() == self.shown {
            println!("     (nothing new stored)");
        }
        self.shown = seen.len();
        println!("   client read:");
        for line in self.reads.drain(..) {
            println!("     {line}");
        }
    }
}

/// A user: an encrypted store in a directory, and the raw key that opens it.
struct User {
    name: &'static str,
    dir: PathBuf,
    key: [u8; 32],
    identity: PublicIdentity,
}

impl User {
    fn create(root: &Path, name: &'static str) -> DemoResult<User> {
        let dir = root.join(name);
        let key: [u8; 32] = rand::random();
        let store = LocalStore::create(&dir, &StoreKey::from_bytes(key), KdfParams::default())?;
        let identity = Profile::create(store)?.identity().clone();
        Ok(User {
            name,
            dir,
            key,
            identity,
        })
    }

    fn profile(&self) -> DemoResult<Profile> {
        let store = LocalStore::open(&self.dir, &StoreKey::from_bytes(self.key))?;
        Ok(Profile::open(store)?)
    }

    fn mailbox(&self) -> MailboxId {
        MailboxId::of(&self.identity)
    }

    /// Starts a client on the user's store and waits until it is connected.
    async fn start(&self, url: &str, tls: &ClientTls) -> DemoResult<Client> {
        let options = ClientOptions::new(ClientConfig::new(url, tls.clone()));
        let mut client = Client::start(self.profile()?, options)?;
        let connected = |event| Ok(matches!(event, Event::Connected).then_some(()));
        wait_for(&mut client, self.name, connected).await?;
        Ok(client)
    }
}

/// Waits (at most [`WAIT`]) for the first event that `pick` picks.
async fn wait_for<T>(
    client: &mut Client,
    who: &str,
    mut pick: impl FnMut(Event) -> DemoResult<Option<T>>,
) -> DemoResult<T> {
    let waiting = async {
        loop {
            match client.next_event().await {
                Some(Event::Stopped(error)) => return Err(format!("{who}: {error}").into()),
                Some(event) => {
                    if let Some(found) = pick(event)? {
                        return Ok(found);
                    }
                }
                None => return Err(format!("{who}'s client stopped").into()),
            }
        }
    };
    let waited = timeout(WAIT, waiting).await;
    waited.map_err(|_| format!("{who} waited {WAIT:?} in vain"))?
}

/// The next message, not yet confirmed. A message that cannot be read is an error.
async fn next_message(client: &mut Client, who: &str) -> DemoResult<Incoming> {
    wait_for(client, who, |event| match event {
        Event::Message(message) => Ok(Some(message)),
        Event::Dropped { error, .. } | Event::SendFailed { error, .. } => Err(error.into()),
        _ => Ok(None),
    })
    .await
}

/// Reads the next message, confirms it and reports it.
async fn read(client: &mut Client, who: &str, report: &mut Report) -> DemoResult {
    let message = next_message(client, who).await?;
    client.confirm(message.seq).await?;
    let from = message.contact.as_deref().unwrap_or("an unknown sender");
    let place = match message.conversation {
        Conversation::Direct => "",
        Conversation::Group(_) => " (in the group)",
    };
    let body = String::from_utf8_lossy(&message.body);
    report.note(&format!("{who} read from {from}{place}: {body:?}"));
    Ok(())
}

/// Waits until the relay has `mailbox`'s prekeys, so that others can write to it offline.
async fn prekeys_published(store: &Recording, mailbox: MailboxId) -> DemoResult {
    let is_upload = |s: &Seen| matches!(s, Seen::Prekeys(m, ..) if *m == mailbox);
    let published = || store.log().iter().any(is_upload);
    let waiting = async {
        while !published() {
            sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(WAIT, waiting)
        .await
        .map_err(|_| "no prekey upload in time".into())
}

#[tokio::main]
async fn main() -> DemoResult {
    let started = Instant::now();

    // The relay: loopback, any free port, a fresh certificate, the recording store, no admin.
    let certificate = DevCertificate::generate(&["localhost"])?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        server_names: vec!["localhost".into()],
        ..Config::default()
    };
    config.admin.enabled = false;
    let (inner, seen) = (MemoryStore::new(Quotas::default()), Mutex::default());
    let store = Arc::new(Recording { inner, seen });
    let server_tls = Certificate::Fixed(certificate.server_tls()?);
    let relay = RelayServer::start_with_store(config, server_tls, store.clone()).await?;
    let url = format!("wss://localhost:{}/", relay.local_addr().port());
    // The certificate is self-signed: the clients trust exactly it, by its SHA-256 pin.
    let pin = certificate.fingerprint();
    let tls = ClientTls::builder().pin_sha256(pin).pin_only().build()?;
    println!("relay listening on {url} (certificate pinned by the clients)");

    // Three users, each with the other two as contacts.
    let root = tempfile::tempdir()?;
    let users = ["alice", "bob", "carol"].map(|name| User::create(root.path(), name));
    let [alice_user, bob_user, carol_user] = users;
    let users = [alice_user?, bob_user?, carol_user?];
    println!("mailboxes (a hash of each identity key: all the relay knows of a user):");
    for user in &users {
        let mut profile = user.profile()?;
        for other in users.iter().filter(|o| o.name != user.name) {
            profile.add_contact(other.name, &other.identity)?;
        }
        println!("  {:<6} {}", user.name, short(&user.mailbox()));
    }
    let [alice_user, bob_user, carol_user] = &users;
    // Each side computes the safety number from both identity keys; users compare them.
    let by_alice = alice_user.profile()?.contact("bob")?.safety_number();
    let by_bob = bob_user.profile()?.contact("alice")?.safety_number();
    println!("safety number of Alice and Bob\n  Alice sees {by_alice}\n  Bob sees   {by_bob}");
    if by_alice != by_bob {
        return Err("the safety numbers differ".into());
    }
    let mut report = Report::new(store.clone());

    // 1. Everyone connects once, which publishes their prekeys; then Carol goes offline.
    let mut alice = alice_user.start(&url, &tls).await?;
    let mut bob = bob_user.start(&url, &tls).await?;
    let carol = carol_user.start(&url, &tls).await?;
    for user in &users {
        prekeys_published(&store, user.mailbox()).await?;
    }
    carol.close().await;
    report.note("(nothing: Carol is offline now)");
    report.show("1. Alice, Bob and Carol connect and publish prekeys; Carol goes offline");

    // 2. Alice and Bob talk: the first message sets up a session from Bob's prekey bundle.
    for text in ["Hi Bob, it's Alice.", "Lunch on Friday?"] {
        alice.send("bob", report.said(text)).await?;
        read(&mut bob, "Bob", &mut report).await?;
    }
    bob.send("alice", report.said("Friday works, see you at noon."))
        .await?;
    read(&mut alice, "Alice", &mut report).await?;
    report.show("2. Alice sends Bob two messages, Bob replies");

    // 3. Alice writes Carol, who is offline: the relay keeps it for her.
    alice
        .send("carol", report.said("Carol, are you coming on Friday too?"))
        .await?;
    alice.flush().await?;
    report.note("(nothing: Carol is offline, the relay holds the message)");
    report.show("3. Alice writes Carol while she is offline");

    // 4. A group: control messages go over the 1:1 sessions; a group message is one envelope
    // that the relay fans out.
    let group = alice.create_group("friends", &["bob", "carol"]).await?;
    alice
        .send_group(group, report.said("Welcome to friends, everyone!"))
        .await?;
    read(&mut bob, "Bob", &mut report).await?;
    bob.send_group(group, report.said("Thanks Alice, glad to be here."))
        .await?;
    read(&mut alice, "Alice", &mut report).await?;
    alice.flush().await?;
    bob.flush().await?;
    report.show("4. Alice creates the group \"friends\" with Bob and Carol; Bob answers");

    // 5. Carol's client restarts from her store and catches up on what the relay kept.
    let mut carol = carol_user.start(&url, &tls).await?;
    for _ in 0..3 {
        read(&mut carol, "Carol", &mut report).await?;
    }
    report.show("5. Carol comes back online and reads everything");

    // 6. Alice removes Carol; the next group message is not even addressed to her mailbox.
    alice.remove_members(group, &["carol"]).await?;
    wait_for(&mut carol, "Carol", |event| match event {
        Event::RemovedFromGroup { .. } => Ok(Some(())),
        Event::Message(_) => Err("Carol got a message after her removal".into()),
        _ => Ok(None),
    })
    .await?;
    report.note("Carol learns she was removed from the group");
    alice
        .send_group(group, report.said("Just the two of us now, Bob."))
        .await?;
    read(&mut bob, "Bob", &mut report).await?;
    alice.flush().await?;
    let quiet = timeout(QUIET, next_message(&mut carol, "Carol")).await;
    if quiet.is_ok() {
        return Err("Carol got something after her removal".into());
    }
    report.note(&format!("Carol reads nothing more (waited {QUIET:?})"));
    report.show("6. Alice removes Carol from the group and writes to it again");

    // What the relay ended up with, and the check that no plaintext is in any of it.
    let seen = store.log().clone();
    let mut mailboxes = BTreeSet::new();
    let mut envelopes: Vec<&[u8]> = Vec::new();
    let (mut deliveries, mut bytes) = (0, 0);
    for item in &seen {
        match item {
            Seen::Envelope(from, to, payload) => {
                mailboxes.extend(to.iter().chain([from]).copied());
                envelopes.push(payload);
                deliveries += to.len();
                bytes += to.len() * payload.len();
            }
            Seen::Prekeys(mailbox, ..) | Seen::Bundle(mailbox, ..) => {
                mailboxes.insert(*mailbox);
            }
        }
    }
    let (n, ids) = (
        envelopes.len(),
        mailboxes.iter().map(short).collect::<Vec<_>>(),
    );
    println!("\nthe relay stored {n} envelopes, {deliveries} deliveries, {bytes} bytes");
    println!("it saw {} mailbox ids: {}", ids.len(), ids.join(", "));
    let contains =
        |payload: &[u8], text: &str| payload.windows(text.len()).any(|w| w == text.as_bytes());
    for text in &report.plaintexts {
        if envelopes.iter().any(|payload| contains(payload, text)) {
            return Err(format!("the relay saw the plaintext {text:?}").into());
        }
    }
    let n = report.plaintexts.len();
    println!("searched it for each of the {n} plaintexts: no plaintext seen by the relay");

    for client in [alice, bob, carol] {
        client.close().await;
    }
    relay.shutdown().await;
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
