//! What a connection does while one of its requests waits for the store, over real WSS on
//! 127.0.0.1 (relay-protocol 3): an `ack` does not hold up the connection's next request while
//! its commit runs, one ack operation per connection is in the store at a time and acks
//! arriving meanwhile merge into the next (up to a bound, beyond which they wait); a `send`
//! waiting for its commit does not hold up the deliveries and answers to its connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sealwire_core::{OneTimePrekey, PublicIdentity, SignedPrekey};
use sealwire_relay::Result;
use sealwire_relay::server::{Certificate, RelayServer};
use sealwire_relay::store::{
    Appended, Expired, MemoryStore, NewMessage, Quotas, Store, StoreStats, StoredMessage,
    TakenBundle,
};
use sealwire_transport::client::{Client, Event};
use sealwire_transport::frame::MailboxId;
use support::*;
use tokio::sync::{Notify, Semaphore};

/// A memory store whose `ack`s, or appends from one sender, wait at a gate the test opens,
/// counting the operations inside.
struct Gated {
    inner: MemoryStore,
    /// Gate acks (else appends from `sender`).
    acks: bool,
    sender: std::sync::Mutex<Option<MailboxId>>,
    gate: Semaphore,
    entered: Notify,
    inside: AtomicUsize,
    most_inside: AtomicUsize,
    /// The ids of every ack call, in order.
    calls: std::sync::Mutex<Vec<Vec<u64>>>,
}

impl Gated {
    fn new(acks: bool) -> Gated {
        Gated {
            inner: MemoryStore::new(Quotas::default()),
            acks,
            sender: std::sync::Mutex::new(None),
            gate: Semaphore::new(0),
            entered: Notify::new(),
            inside: AtomicUsize::new(0),
            most_inside: AtomicUsize::new(0),
            calls: std::sync::Mutex::default(),
        }
    }

    fn open(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    /// Waits at the gate, counted.
    async fn pass(&self) {
        let inside = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(inside, Ordering::SeqCst);
        self.entered.notify_one();
        self.gate.acquire().await.unwrap().forget();
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Store for Gated {
    async fn register(&self, mailbox: MailboxId) -> Result<()> {
        self.inner.register(mailbox).await
    }
    async fn append(&self, message: NewMessage) -> Result<Appended> {
        if !self.acks && *self.sender.lock().unwrap() == Some(message.from) {
            self.pass().await;
        }
        self.inner.append(message).await
    }
    async fn pending(
        &self,
        mailbox: MailboxId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.inner.pending(mailbox, after, limit).await
    }
    async fn ack(&self, mailbox: MailboxId, deliveries: Vec<u64>) -> Result<u64> {
        if self.acks {
            self.calls.lock().unwrap().push(deliveries.clone());
            self.pass().await;
        }
        self.inner.ack(mailbox, deliveries).await
    }
    async fn expire(&self, cutoff: u64) -> Result<Expired> {
        self.inner.expire(cutoff).await
    }
    async fn put_prekeys(
        &self,
        mailbox: MailboxId,
        identity: PublicIdentity,
        signed_prekey: SignedPrekey,
        one_time: Vec<OneTimePrekey>,
    ) -> Result<u32> {
        self.inner
            .put_prekeys(mailbox, identity, signed_prekey, one_time)
            .await
    }
    async fn take_bundle(&self, mailbox: MailboxId) -> Result<Option<TakenBundle>> {
        self.inner.take_bundle(mailbox).await
    }
    async fn prekey_count(&self, mailbox: MailboxId) -> Result<u32> {
        self.inner.prekey_count(mailbox).await
    }
    async fn stats(&self) -> Result<StoreStats> {
        self.inner.stats().await
    }
    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }
}

fn accepted(event: Event) -> Option<()> {
    matches!(event, Event::Accepted(_)).then_some(())
}

/// A relay over a [`Gated`] store (gating acks, or else appends) with two connected clients.
struct Setup {
    relay: RelayServer,
    store: Arc<Gated>,
    alice: Client,
    bob: Client,
    _dir: tempfile::TempDir,
}

async fn setup(gate_acks: bool) -> Setup {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Gated::new(gate_acks));
    let tls = pki.server.server_tls().unwrap();
    let relay =
        RelayServer::start_with_store(config(dir.path()), Certificate::Fixed(tls), store.clone())
            .await
            .unwrap();
    let addr = relay.local_addr();
    let mut alice = client(&pki, addr, identity());
    let mut bob = client(&pki, addr, identity());
    connected(&mut alice).await;
    connected(&mut bob).await;
    Setup {
        relay,
        store,
        alice,
        bob,
        _dir: dir,
    }
}

#[tokio::test]
async fn acks_do_not_hold_up_the_next_request_and_merge_while_one_commits() {
    let Setup {
        relay,
        store,
        mut alice,
        mut bob,
        _dir,
    } = setup(true).await;
    for payload in [b"one", b"two", b"six"] {
        alice
            .send(vec![bob.mailbox()], payload.to_vec())
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(wait_for(&mut bob, delivered).await.delivery);
    }

    // Bob's first ack is stuck in the store; his next request is handled all the same.
    bob.ack(vec![ids[0]]).await.unwrap();
    tokio::time::timeout(WAIT, store.entered.notified())
        .await
        .expect("the ack reaches the store");
    bob.send(vec![alice.mailbox()], b"while the ack commits".to_vec())
        .await
        .unwrap();
    wait_for(&mut bob, accepted).await;

    // Two more acks are queued, not held: the next request is answered too.
    bob.ack(vec![ids[1]]).await.unwrap();
    bob.ack(vec![ids[2]]).await.unwrap();
    bob.send(vec![alice.mailbox()], b"after the queued acks".to_vec())
        .await
        .unwrap();
    wait_for(&mut bob, accepted).await;

    // Beyond the queue's bound an ack waits for the commit: nothing more is read meanwhile.
    bob.ack((1_000_000..1_005_000).collect()).await.unwrap();
    bob.send(vec![alice.mailbox()], b"after the flood".to_vec())
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), wait_for(&mut bob, accepted));
    assert!(
        early.await.is_err(),
        "the send overtook an ack over the bound"
    );
    assert_eq!(store.most_inside.load(Ordering::SeqCst), 1);

    store.open();
    wait_for(&mut bob, accepted).await;
    // One ack operation at a time, and the two queued acks went in one.
    assert_eq!(store.most_inside.load(Ordering::SeqCst), 1);
    let mut calls = Vec::new();
    for _ in 0..100 {
        calls = store.calls.lock().unwrap().clone();
        if calls.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0], vec![ids[0]]);
    assert_eq!(calls[1], vec![ids[1], ids[2]]);
    assert_eq!(calls[2].len(), 5_000);
    let left = store.inner.pending(bob.mailbox(), 0, 10).await.unwrap();
    assert!(left.is_empty(), "every acknowledged message is removed");
    assert_eq!(
        wait_for(&mut alice, delivered).await.payload,
        b"while the ack commits"
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn a_send_waiting_for_its_commit_does_not_hold_up_deliveries_to_its_connection() {
    let Setup {
        relay,
        store,
        mut alice,
        mut bob,
        _dir,
    } = setup(false).await;

    // Bob's send is stuck in the store.
    *store.sender.lock().unwrap() = Some(bob.mailbox());
    bob.send(vec![alice.mailbox()], b"stuck".to_vec())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, store.entered.notified())
        .await
        .expect("Bob's send reaches the store");
    // Alice's messages to Bob reach him meanwhile (his connection keeps writing).
    for payload in [b"one", b"two"] {
        alice
            .send(vec![bob.mailbox()], payload.to_vec())
            .await
            .unwrap();
    }
    assert_eq!(wait_for(&mut bob, delivered).await.payload, b"one");
    assert_eq!(wait_for(&mut bob, delivered).await.payload, b"two");
    assert_eq!(
        store.inside.load(Ordering::SeqCst),
        1,
        "Bob's send still waits"
    );

    store.open();
    wait_for(&mut bob, accepted).await;
    assert_eq!(wait_for(&mut alice, delivered).await.payload, b"stuck");
    relay.shutdown().await;
}
