//! The bounds on what the client keeps aside (`spec/client.md` 8.5 and 11.6), attacked through a
//! real relay on 127.0.0.1: accounts that are not members of anything flood the victim with
//! well-formed group envelopes for groups it does not hold, which it can only keep aside.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use sealwire::Error;
use sealwire::client::{Client, Event};
use sealwire::core::{Group, GroupConfig, IdentityKeyPair, Timestamp};
use sealwire::transport::client::{self as transport, ClientConfig};
use sealwire::transport::frame::MailboxId;
use support::{LocalRelay, Pki, User, WAIT, next_message, text, users, wait_for};

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_unix_secs(secs)
}

/// An account of the relay with no contact and no group in common with its victim.
struct Flooder {
    client: transport::Client,
    mailbox: MailboxId,
    group: Group,
}

impl Flooder {
    async fn connect(pki: &Pki, port: u16) -> Flooder {
        let identity = IdentityKeyPair::generate(&mut rand::rng());
        let group =
            Group::create(&identity, GroupConfig::default(), &mut rand::rng(), now()).unwrap();
        let url = format!("wss://{}:{port}/", support::SERVER_NAME);
        let mut client =
            transport::Client::start(ClientConfig::new(url, pki.client_tls()), identity).unwrap();
        let mailbox = client.mailbox();
        loop {
            match tokio::time::timeout(WAIT, client.next_event())
                .await
                .unwrap()
            {
                Some(transport::Event::Connected(_)) => break,
                Some(_) => {}
                None => panic!("the flooder's client stopped"),
            }
        }
        Flooder {
            client,
            mailbox,
            group,
        }
    }

    /// Sends `count` group envelopes of its own group to `victim`, and waits until the relay
    /// has stored them all.
    async fn flood(&mut self, victim: MailboxId, count: usize) {
        let mut waiting = Vec::new();
        for i in 0..count {
            let sealed = self
                .group
                .seal(format!("junk {i}").as_bytes(), &mut rand::rng(), now())
                .unwrap();
            waiting.push(
                self.client
                    .send(vec![victim], sealed.envelope)
                    .await
                    .unwrap(),
            );
        }
        while !waiting.is_empty() {
            match tokio::time::timeout(WAIT, self.client.next_event())
                .await
                .unwrap()
            {
                Some(transport::Event::Accepted(id)) => waiting.retain(|w| *w != id),
                Some(transport::Event::Rejected { code, .. }) => panic!("refused: {code:?}"),
                Some(_) => {}
                None => panic!("the flooder's client stopped"),
            }
        }
    }
}

/// Sends a message from Alice to Bob and collects, per sender, every item Bob gave up until it
/// arrives. The relay delivers one mailbox's messages in order, so everything sent to Bob
/// before it has been processed by then.
async fn given_up_before_marker(
    alice: &mut Client,
    bob: &mut Client,
    marker: &str,
) -> HashMap<MailboxId, usize> {
    alice.send("bob", marker.as_bytes().to_vec()).await.unwrap();
    let mut given_up = HashMap::new();
    let message = wait_for(bob, |event| match event {
        Event::Message(message) => Some(message),
        Event::Dropped {
            from,
            error: Error::ParkedTooLong,
        } => {
            *given_up.entry(from).or_insert(0) += 1;
            None
        }
        Event::Dropped { error, .. } => panic!("unexpected drop: {error}"),
        _ => None,
    })
    .await;
    assert_eq!(text(&message), marker);
    bob.confirm(message.seq).await.unwrap();
    given_up
}

async fn setup(
    dir: &std::path::Path,
    pki: &Pki,
    port: u16,
    adjust: impl FnOnce(&mut sealwire::client::ClientOptions),
) -> (Client, Client) {
    let people = users(dir, &["alice", "bob"]);
    let [alice, bob]: [User; 2] = people.try_into().ok().unwrap();
    let mut bob = bob.start_with(pki, port, adjust);
    support::connected(&mut bob).await;
    let mut alice = alice.start(pki, port);
    support::connected(&mut alice).await;
    // A first round trip, so that later markers need no bundle fetch.
    alice.send("bob", b"hello".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut bob).await), "hello");
    (alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flooding_account_pushes_out_only_its_own_kept_aside_items() {
    let LocalRelay {
        pki,
        root: dir,
        relay,
        port,
    } = LocalRelay::start().await;
    let (mut alice, mut bob) = setup(dir.path(), &pki, port, |options| {
        options.max_parked = 10;
        options.max_parked_per_sender = 4;
    })
    .await;
    let victim = bob.mailbox();

    // An early item from one sender, standing for a legitimate one waiting for its welcome.
    let mut early = Flooder::connect(&pki, port).await;
    early.flood(victim, 3).await;
    assert!(
        given_up_before_marker(&mut alice, &mut bob, "one")
            .await
            .is_empty()
    );

    // A flood from another account gives up only the flooder's own items beyond its share.
    let mut flooder = Flooder::connect(&pki, port).await;
    flooder.flood(victim, 30).await;
    let given_up = given_up_before_marker(&mut alice, &mut bob, "two").await;
    assert_eq!(given_up.get(&flooder.mailbox), Some(&26), "{given_up:?}");
    assert_eq!(given_up.get(&early.mailbox), None, "{given_up:?}");

    // Three accounts together reach the total bound (3 + 4 + 4 > 10): the oldest of all goes.
    let mut third = Flooder::connect(&pki, port).await;
    third.flood(victim, 4).await;
    let given_up = given_up_before_marker(&mut alice, &mut bob, "three").await;
    assert_eq!(given_up, HashMap::from([(early.mailbox, 1)]));

    // Bob is still fully usable, both ways.
    bob.send("alice", b"still here".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(&mut alice).await), "still here");
    alice.close().await;
    bob.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_aside_items_are_given_up_after_park_for() {
    let LocalRelay {
        pki,
        root: dir,
        relay,
        port,
    } = LocalRelay::start().await;
    let (mut alice, mut bob) = setup(dir.path(), &pki, port, |options| {
        options.park_for = Duration::from_secs(1);
        options.housekeeping = Duration::from_millis(200);
    })
    .await;
    let mut flooder = Flooder::connect(&pki, port).await;
    flooder.flood(bob.mailbox(), 3).await;
    assert!(
        given_up_before_marker(&mut alice, &mut bob, "marker")
            .await
            .is_empty()
    );

    // Ages are counted in whole seconds: given up within about two seconds.
    let mut given_up = 0;
    while given_up < 3 {
        wait_for(&mut bob, |event| match event {
            Event::Dropped {
                from,
                error: Error::ParkedTooLong,
            } if from == flooder.mailbox => Some(()),
            Event::Dropped { error, .. } => panic!("unexpected drop: {error}"),
            _ => None,
        })
        .await;
        given_up += 1;
    }
    alice.close().await;
    bob.close().await;
    relay.shutdown().await;
}
