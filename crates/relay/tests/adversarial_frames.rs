//! Adversarial frames against the real relay over WSS on 127.0.0.1 (issue 7): malformed
//! messages and WebSocket framing violations after authentication, requests before
//! authentication, requests aimed at another mailbox, and relay-level replays. As in
//! `adversarial.rs`, every attack runs while two honest clients exchange messages, and the
//! test then checks the close code, the metrics, that nothing was stored, that a victim's
//! state is intact, and that the honest clients lost nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/attack.rs"]
mod attack;
mod support;

use std::time::{Duration, Instant};

use attack::*;
use sealwire_core::{Account, BundlePolicy, OneTimePrekey, PrekeyBundle, Timestamp};
use sealwire_transport::client::Event;
use sealwire_transport::code::ErrorCode;
use sealwire_transport::error::Error;
use sealwire_transport::frame::{
    self, Accepted, Ack, ClientFrame, FetchBundle, Hello, MailboxId, MessageId, PrekeyStatus,
    PrekeyUpload, Send, ServerFrame,
};
use support::*;

fn now() -> Timestamp {
    let since_epoch = std::time::UNIX_EPOCH.elapsed().unwrap();
    Timestamp::from_unix_secs(since_epoch.as_secs())
}

/// The series of `sealwire_relay_auth_failures_total` for a reason.
fn auth_failures(reason: &str) -> String {
    format!("sealwire_relay_auth_failures_total{{reason=\"{reason}\"}}")
}

/// A valid `send` of `payload` to `to`, encoded.
fn send_to(to: MailboxId, payload: &[u8]) -> Vec<u8> {
    frame::encode(&ClientFrame::Send(Send {
        id: MessageId::random(),
        to: vec![to],
        payload: payload.to_vec(),
    }))
    .unwrap()
}

/// An account whose identity has uploaded its signed prekey and `n` one-time prekeys.
async fn with_prekeys(arena: &Arena, n: usize) -> (Account, Vec<OneTimePrekey>) {
    let mut rng = rand::rng();
    let mut account = Account::new(identity(), &mut rng, now());
    let one_time = account.generate_one_time_prekeys(n, &mut rng).unwrap();
    let owner = arena.online(duplicate(account.identity())).await;
    let status = owner
        .upload_prekeys(PrekeyUpload {
            request: 1,
            signed_prekey: account.signed_prekey().clone(),
            one_time: one_time.clone(),
        })
        .await
        .unwrap();
    assert_eq!(status.one_time_prekeys as usize, n);
    owner.close().await;
    (account, one_time)
}

/// Writes `bytes` on `wire` as they are; returns the code the relay closes it with.
async fn close_code(mut wire: Wire, bytes: &[u8]) -> u16 {
    wire.writer.raw(bytes).await.unwrap();
    wire.closed().await
}

#[tokio::test]
async fn malformed_binary_messages_close_with_1007_and_store_nothing() {
    let arena = Arena::start().await;
    let backlog = Backlog::store(&arena, identity(), 3).await;
    let traffic = arena.traffic().await;

    let valid = send_to(backlog.mailbox, b"mallory was here");
    let mut random: Vec<u8> = (0..200).map(|_| rand::random()).collect();
    // An unknown variant index (0..=4 are the client frames), then noise.
    random[0] = 5 + rand::random::<u8>() % 123;
    let mut trailing = valid.clone();
    trailing.push(0);
    let mut unknown_variant = valid.clone();
    unknown_variant[0] = 5;
    let cases: [(&str, Vec<u8>); 6] = [
        ("random bytes", random),
        ("a truncated send", valid[..valid.len() - 1].to_vec()),
        ("a send with a trailing byte", trailing),
        ("an unknown variant", unknown_variant),
        // `ack [1]` with the 1 as the non-minimal varint 0x81 0x00.
        ("a non-canonical varint", vec![2, 1, 0x81, 0x00]),
        ("an empty message", Vec::new()),
    ];
    let mallory = identity();
    for (what, bytes) in &cases {
        let (wire, _) = Wire::connect(&arena, &mallory).await;
        let bytes = masked(FIN | BINARY, bytes);
        assert_eq!(close_code(wire, &bytes).await, 1007, "{what}");
    }

    let malformed = disconnects(1007, "malformed_frame");
    arena.expect_metric(&malformed, 6.0).await;
    arena.finish(traffic, backlog, 3.0).await;
}

#[tokio::test]
async fn websocket_framing_violations_close_with_their_codes_and_store_nothing() {
    let arena = Arena::start().await;
    let backlog = Backlog::store(&arena, identity(), 3).await;
    let traffic = arena.traffic().await;

    // Each case carries a valid `send` to the victim where it can, so that a relay that let
    // the violation pass would store it.
    let valid = send_to(backlog.mailbox, b"mallory was here");
    let mut started_twice = masked(BINARY, &valid[..10]);
    started_twice.extend(masked(FIN | BINARY, &valid));
    let second_hello = frame::encode(&ClientFrame::Hello(Hello {
        identity: [0; 128],
        server_name: SERVER_NAME.into(),
        token: None,
        signature: [0; 64],
    }))
    .unwrap();
    let cases: [(&str, Vec<u8>, u16); 10] = [
        ("a reserved bit", masked(FIN | RSV1 | BINARY, &valid), 1002),
        ("a reserved data opcode", masked(FIN | 0x3, &valid), 1002),
        ("a reserved control opcode", masked(FIN | 0xB, b""), 1002),
        (
            "an unmasked frame",
            frame_bytes(FIN | BINARY, None, &valid),
            1002,
        ),
        (
            "a continuation without a start",
            masked(FIN | CONTINUATION, &valid),
            1002,
        ),
        ("a fragmented ping", masked(PING, b"ping"), 1002),
        ("a ping over 125 bytes", masked(FIN | PING, &[0; 126]), 1002),
        ("a new message inside a fragmented one", started_twice, 1002),
        ("a text message", masked(FIN | TEXT, b"hello"), 1003),
        ("a second hello", masked(FIN | BINARY, &second_hello), 1008),
    ];
    let mallory = identity();
    for (what, bytes, code) in &cases {
        let (wire, _) = Wire::connect(&arena, &mallory).await;
        assert_eq!(close_code(wire, bytes).await, *code, "{what}");
    }

    for (code, reason, count) in [
        (1002, "protocol_error", 8.0),
        (1003, "unsupported_data", 1.0),
        (1008, "policy_violation", 1.0),
    ] {
        arena.expect_metric(&disconnects(code, reason), count).await;
    }
    arena.finish(traffic, backlog, 3.0).await;
}

#[tokio::test]
async fn requests_before_authentication_are_refused_and_change_nothing() {
    let arena = Arena::start().await;
    let (victim, _) = with_prekeys(&arena, 5).await;
    let backlog = Backlog::store(&arena, duplicate(victim.identity()), 3).await;
    let traffic = arena.traffic().await;

    let mut rng = rand::rng();
    let mut mallory = Account::new(identity(), &mut rng, now());
    let mallory_mailbox = MailboxId::of(mallory.identity().public());
    let requests = [
        send_to(backlog.mailbox, b"unauthenticated"),
        frame::encode(&ClientFrame::Ack(Ack {
            deliveries: vec![1, 2, 3],
        }))
        .unwrap(),
        frame::encode(&ClientFrame::UploadPrekeys(PrekeyUpload {
            request: 1,
            signed_prekey: mallory.signed_prekey().clone(),
            one_time: mallory.generate_one_time_prekeys(3, &mut rng).unwrap(),
        }))
        .unwrap(),
        frame::encode(&ClientFrame::FetchBundle(FetchBundle {
            request: 2,
            mailbox: backlog.mailbox,
        }))
        .unwrap(),
    ];
    for request in &requests {
        let (wire, _) = Wire::challenged(&arena).await;
        let bytes = masked(FIN | BINARY, request);
        // No answer (no bundle, no `accepted`): only the close.
        assert_eq!(close_code(wire, &bytes).await, 1008);
    }
    let (wire, _) = Wire::challenged(&arena).await;
    assert_eq!(
        close_code(wire, &masked(FIN | BINARY, &[0xFF; 40])).await,
        1007
    );
    let (wire, _) = Wire::challenged(&arena).await;
    assert_eq!(close_code(wire, &masked(FIN | TEXT, b"hi")).await, 1003);

    for (reason, count) in [
        ("policy_violation", 4.0),
        ("malformed_frame", 1.0),
        ("unsupported_data", 1.0),
    ] {
        arena.expect_metric(&auth_failures(reason), count).await;
    }
    let successes = arena.metric("sealwire_relay_auth_successes_total").await;
    assert_eq!(successes, 5.0);
    let mut pair = arena.stop_counting(traffic, 3.0).await;
    // Mallory's mailbox never came to exist: no mail for it, no bundle.
    pair.alice
        .send(vec![mallory_mailbox], b"anyone?".to_vec())
        .await
        .unwrap();
    let refused = wait_for(&mut pair.alice, |event| match event {
        Event::Rejected { code, .. } => Some(code),
        _ => None,
    })
    .await;
    assert_eq!(refused, ErrorCode::UnknownMailbox);
    assert!(matches!(
        pair.bob.fetch_bundle(mallory_mailbox).await,
        Err(Error::Refused {
            code: ErrorCode::NoBundle
        })
    ));
    // The victim's mail and one-time prekeys are untouched.
    let (_, prekeys) = backlog.check_intact(&arena).await;
    assert_eq!(prekeys, 5);
    arena.shutdown().await;
}

#[tokio::test]
async fn acks_and_uploads_act_only_on_the_own_mailbox_and_no_request_reads_another() {
    let arena = Arena::start().await;
    let (victim, victim_keys) = with_prekeys(&arena, 5).await;
    let traffic = arena.traffic().await;

    // The victim is online and has received three messages it has not acknowledged yet.
    let mut victim_client = arena.online(duplicate(victim.identity())).await;
    let victim_mailbox = victim_client.mailbox();
    let sam = arena.online(identity()).await;
    for i in 0..3u8 {
        sam.send(vec![victim_mailbox], vec![i; 10]).await.unwrap();
    }
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        deliveries.push(wait_for(&mut victim_client, delivered).await.delivery);
    }

    // Mallory acknowledges the victim's delivery ids (and every small one, and the largest).
    let mallory = identity();
    let (mut wire, ready) = Wire::connect(&arena, &mallory).await;
    let mut ids = deliveries.clone();
    ids.extend(0..64);
    ids.push(u64::MAX);
    wire.writer
        .send(&ClientFrame::Ack(Ack { deliveries: ids }))
        .await;
    // She uploads the victim's own signed prekey and one-time prekeys (public values): the
    // frame names no mailbox, so they land in hers.
    wire.writer
        .send(&ClientFrame::UploadPrekeys(PrekeyUpload {
            request: 7,
            signed_prekey: victim.signed_prekey().clone(),
            one_time: victim_keys.clone(),
        }))
        .await;
    assert_eq!(
        wire.reader.frame().await,
        Ok(ServerFrame::Prekeys(PrekeyStatus {
            request: Some(7),
            one_time_prekeys: 5,
            low: true,
        }))
    );
    wire.writer
        .send(&ClientFrame::FetchBundle(FetchBundle {
            request: 8,
            mailbox: ready.mailbox,
        }))
        .await;
    let Ok(ServerFrame::Bundle(bundle)) = wire.reader.frame().await else {
        panic!("no bundle")
    };
    let hers = PrekeyBundle::from_bytes(&bundle.bundle).unwrap();
    assert_eq!(MailboxId::of(&hers.identity), ready.mailbox);
    // The victim's signed prekey under Mallory's identity does not verify: useless to her.
    assert!(hers.verify(&BundlePolicy::default(), now()).is_err());
    // Nothing of the victim's reaches her: there is no request that reads another mailbox.
    assert!(wire.reader.quiet_for(Duration::from_millis(300)).await);
    drop(wire);

    // The victim's three messages are still stored: a reconnect delivers them again, with
    // the same delivery ids.
    victim_client.close().await;
    let mut victim_client = arena.client(duplicate(victim.identity()));
    assert_eq!(connected(&mut victim_client).await, 5, "pool untouched");
    for (i, id) in deliveries.iter().enumerate() {
        let again = wait_for(&mut victim_client, delivered).await;
        assert_eq!((again.delivery, &again.payload), (*id, &vec![i as u8; 10]));
    }
    // And the victim's bundle is still the victim's.
    let bytes = sam.fetch_bundle(victim_mailbox).await.unwrap();
    let theirs = PrekeyBundle::from_bytes(&bytes).unwrap();
    assert_eq!(MailboxId::of(&theirs.identity), victim_mailbox);
    assert_eq!(theirs.signed_prekey, *victim.signed_prekey());
    let theirs = theirs.verify(&BundlePolicy::default(), now()).unwrap();
    assert_eq!(
        theirs.bundle().one_time_prekey.as_ref().map(|key| key.id),
        Some(victim_keys[0].id)
    );

    let pair = traffic.stop().await;
    // Only the honest pair's acknowledgements removed anything.
    let acked = "sealwire_relay_messages_acked_total";
    arena.expect_metric(acked, f64::from(pair.exchanged)).await;
    arena.shutdown().await;
}

#[tokio::test]
async fn fetching_a_victims_bundle_takes_one_one_time_prekey_per_fetch_at_the_addresss_fetch_rate()
{
    const POOL: usize = 6;
    const FETCHES: u32 = 8;
    let arena = Arena::start_with(|config| {
        // The per-address bucket is the one that binds here; each connection's own is larger.
        config.rates.fetches_per_second_per_address = 2.0;
        config.rates.fetch_burst_per_address = 3.0;
        config.prekeys.low_water = 1;
    })
    .await;
    let (victim, victim_keys) = with_prekeys(&arena, POOL).await;
    let victim_mailbox = MailboxId::of(victim.identity().public());
    let traffic = arena.traffic().await;

    // Mallory asks for the victim's bundle eight times, as fast as she can: four times on one
    // connection, then four times on a new connection under a new identity (reconnecting
    // must not buy a fresh burst: fetches are counted per address).
    let started = Instant::now();
    let mut handed_out = Vec::new();
    for batch in [0..FETCHES / 2, FETCHES / 2..FETCHES] {
        let (mut reader, mut writer) = Wire::connect(&arena, &identity()).await.0.into_split();
        for request in batch.clone() {
            writer
                .send(&ClientFrame::FetchBundle(FetchBundle {
                    request,
                    mailbox: victim_mailbox,
                }))
                .await;
        }
        for request in batch {
            let Ok(ServerFrame::Bundle(bundle)) = reader.frame().await else {
                panic!("no bundle")
            };
            let at = started.elapsed().as_secs_f64();
            assert_eq!(bundle.request, request);
            // The fetch rate bounds the answers: a burst of 3, then 2 per second (plus the
            // one request a bucket may run into debt).
            let answered = f64::from(request + 1);
            assert!(
                answered <= 3.0 + 2.0 * at + 1.0,
                "{answered} bundles after {at:.2} s"
            );
            let bundle = PrekeyBundle::from_bytes(&bundle.bundle).unwrap();
            assert_eq!(MailboxId::of(&bundle.identity), victim_mailbox);
            handed_out.push(bundle.one_time_prekey.map(|key| key.id));
        }
        assert!(reader.quiet_for(Duration::from_millis(200)).await);
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    // One one-time prekey per fetch, each once, oldest first, until the pool is empty.
    let mut expected: Vec<_> = victim_keys.iter().map(|key| Some(key.id)).collect();
    expected.resize(FETCHES as usize, None);
    assert_eq!(handed_out, expected);

    assert!(arena.metric(&limit("fetch_rate")).await >= 4.0);
    let served =
        |with: bool| format!("sealwire_relay_bundles_served_total{{one_time_prekey=\"{with}\"}}");
    assert_eq!(arena.metric(&served(true)).await, POOL as f64);
    let without = f64::from(FETCHES) - POOL as f64;
    assert_eq!(arena.metric(&served(false)).await, without);
    let mut owner = arena.client(duplicate(victim.identity()));
    assert_eq!(connected(&mut owner).await, 0);
    traffic.stop().await;
    arena.shutdown().await;
}

#[tokio::test]
async fn replayed_sends_are_stored_once_and_attributed_to_whoever_sent_them() {
    let arena = Arena::start().await;
    let victim = identity();
    let victim_mailbox = register(&arena.pki, arena.addr, &victim).await;
    let traffic = arena.traffic().await;

    let alice = identity();
    let id = MessageId::random();
    let captured = frame::encode(&ClientFrame::Send(Send {
        id,
        to: vec![victim_mailbox],
        payload: b"pay mallory 100".to_vec(),
    }))
    .unwrap();
    let accepted = Ok(ServerFrame::Accepted(Accepted { id }));
    let (mut first, ready) = Wire::connect(&arena, &alice).await;
    let alice_mailbox = ready.mailbox;
    first.writer.binary(&captured).await;
    assert_eq!(first.reader.frame().await, accepted);
    // The same bytes again on the same connection, then on a new one of the same sender.
    first.writer.binary(&captured).await;
    assert_eq!(first.reader.frame().await, accepted);
    drop(first);
    let (mut second, _) = Wire::connect(&arena, &alice).await;
    second.writer.binary(&captured).await;
    assert_eq!(second.reader.frame().await, accepted);
    // Mallory replays them on her own connection: it is her message now.
    let (mut mallory, ready) = Wire::connect(&arena, &identity()).await;
    let mallory_mailbox = ready.mailbox;
    mallory.writer.binary(&captured).await;
    assert_eq!(mallory.reader.frame().await, accepted);

    let mut victim_client = arena.online(duplicate(&victim)).await;
    let one = wait_for(&mut victim_client, delivered).await;
    let two = wait_for(&mut victim_client, delivered).await;
    assert_eq!((one.from, one.id), (alice_mailbox, id));
    assert_eq!((two.from, two.id), (mallory_mailbox, id), "never Alice's");
    let nothing = tokio::time::timeout(Duration::from_millis(300), async {
        wait_for(&mut victim_client, delivered).await
    })
    .await;
    assert!(nothing.is_err(), "delivered again: {nothing:?}");

    arena.stop_counting(traffic, 2.0).await;
    let duplicates = arena
        .metric("sealwire_relay_messages_duplicate_total")
        .await;
    assert_eq!(duplicates, 2.0);
    arena.shutdown().await;
}

#[tokio::test]
async fn a_replayed_auth_response_is_refused_and_leaves_the_original_connection_alone() {
    let arena = Arena::start().await;
    let traffic = arena.traffic().await;

    let alice = identity();
    let (mut original, challenge) = Wire::challenged(&arena).await;
    let captured = ClientFrame::Hello(original.hello(&alice, &challenge));
    original.writer.send(&captured).await;
    let Ok(ServerFrame::Ready(ready)) = original.reader.frame().await else {
        panic!("not ready")
    };
    // Replayed on a new connection (another nonce, another TLS session): refused.
    let (replay, _) = Wire::challenged(&arena).await;
    let bytes = masked(FIN | BINARY, &frame::encode(&captured).unwrap());
    assert_eq!(close_code(replay, &bytes).await, 4001);
    arena
        .expect_metric(&auth_failures("auth_failed"), 1.0)
        .await;
    // The original connection was not replaced: it still works.
    let bytes = send_to(ready.mailbox, b"still mine");
    original.writer.binary(&bytes).await;
    assert!(matches!(
        original.reader.frame().await,
        Ok(ServerFrame::Accepted(_))
    ));
    assert!(matches!(
        original.reader.frame().await,
        Ok(ServerFrame::Deliver(delivery)) if delivery.payload == b"still mine"
    ));
    assert_eq!(arena.metric(&disconnects(4008, "replaced")).await, 0.0);
    traffic.stop().await;
    arena.shutdown().await;
}
