//! The prekey directory and mailbox ownership over real WSS: one-time prekeys handed out at
//! most once, the low-water notice, and a client that tries to act on a mailbox not its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use sealwire_core::{Account, BundlePolicy, PrekeyBundle, Timestamp};
use sealwire_transport::client::Event;
use sealwire_transport::code::ErrorCode;
use sealwire_transport::error::Error;
use sealwire_transport::frame::{MailboxId, PrekeyUpload};
use support::*;

fn now() -> Timestamp {
    Timestamp::from_unix_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

#[tokio::test]
async fn each_one_time_prekey_is_handed_out_once_and_the_owner_hears_when_they_run_low() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.prekeys.low_water = 2;
    let relay = start(&pki, config).await;
    let addr = relay.local_addr();
    let mut rng = rand::rng();
    let mut account = Account::new(identity(), &mut rng, now());
    let one_time = account.generate_one_time_prekeys(3, &mut rng).unwrap();
    let mut bob = client(&pki, addr, duplicate(account.identity()));
    assert_eq!(connected(&mut bob).await, 0);
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;

    assert!(matches!(
        alice.fetch_bundle(bob.mailbox()).await,
        Err(Error::Refused {
            code: ErrorCode::NoBundle
        })
    ));
    let upload = PrekeyUpload {
        request: 1,
        signed_prekey: account.signed_prekey().clone(),
        one_time: one_time.clone(),
    };
    let status = bob.upload_prekeys(upload.clone()).await.unwrap();
    assert_eq!((status.one_time_prekeys, status.low), (3, false));
    // A resent upload (same keys) adds nothing.
    let status = bob.upload_prekeys(upload).await.unwrap();
    assert_eq!(status.one_time_prekeys, 3);

    let mut handed_out = Vec::new();
    for _ in 0..4 {
        let bytes = alice.fetch_bundle(bob.mailbox()).await.unwrap();
        let bundle = PrekeyBundle::from_bytes(&bytes).unwrap();
        assert_eq!(MailboxId::of(&bundle.identity), bob.mailbox());
        let verified = bundle.verify(&BundlePolicy::default(), now()).unwrap();
        handed_out.push(verified.bundle().one_time_prekey.as_ref().map(|key| key.id));
    }
    let uploaded: Vec<_> = one_time.iter().map(|key| Some(key.id)).collect();
    assert_eq!(handed_out[..3], uploaded[..], "each once, oldest first");
    assert_eq!(
        handed_out[3], None,
        "then bundles without a one-time prekey"
    );

    // The pool fell below 2: Bob was told, unprompted.
    let low = wait_for(&mut bob, |event| match event {
        Event::PrekeysLow(status) => Some(status),
        _ => None,
    })
    .await;
    assert!(low.low && low.one_time_prekeys < 2 && low.request.is_none());
    // And the next connect announces the pool size.
    bob.close().await;
    let mut bob = client(&pki, addr, duplicate(account.identity()));
    assert_eq!(connected(&mut bob).await, 0);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_client_cannot_ack_or_upload_for_another_mailbox() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&pki, config(dir.path())).await;
    let addr = relay.local_addr();
    let mut rng = rand::rng();
    let bob_account = Account::new(identity(), &mut rng, now());
    let bob_mailbox = register(&pki, addr, bob_account.identity()).await;
    {
        let mut bob = client(&pki, addr, duplicate(bob_account.identity()));
        connected(&mut bob).await;
        let upload = PrekeyUpload {
            request: 1,
            signed_prekey: bob_account.signed_prekey().clone(),
            one_time: Vec::new(),
        };
        bob.upload_prekeys(upload).await.unwrap();
        bob.close().await;
    }
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;
    for i in 0..3u8 {
        alice.send(vec![bob_mailbox], vec![i]).await.unwrap();
    }
    // Mallory acknowledges every delivery id Bob's messages could have (they are small
    // numbers) and uploads her own prekeys: acks and uploads only ever act on the sender's
    // own mailbox.
    let mallory_account = Account::new(identity(), &mut rng, now());
    let mut mallory = client(&pki, addr, duplicate(mallory_account.identity()));
    connected(&mut mallory).await;
    mallory.ack((0..64).collect()).await.unwrap();
    let upload = PrekeyUpload {
        request: 2,
        signed_prekey: mallory_account.signed_prekey().clone(),
        one_time: Vec::new(),
    };
    mallory.upload_prekeys(upload).await.unwrap();
    // Mallory gets nothing of Bob's.
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        wait_for(&mut mallory, delivered).await
    })
    .await;
    assert!(nothing.is_err(), "Mallory received {nothing:?}");

    // Bob's messages are all still there, and his bundle is still his.
    let mut bob = client(&pki, addr, duplicate(bob_account.identity()));
    connected(&mut bob).await;
    for i in 0..3u8 {
        assert_eq!(wait_for(&mut bob, delivered).await.payload, vec![i]);
    }
    let bundle = PrekeyBundle::from_bytes(&alice.fetch_bundle(bob_mailbox).await.unwrap()).unwrap();
    assert_eq!(MailboxId::of(&bundle.identity), bob_mailbox);
    assert_eq!(bundle.signed_prekey, *bob_account.signed_prekey());
    relay.shutdown().await;
}
