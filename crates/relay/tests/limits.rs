//! Denial-of-service limits and observability over real WSS on 127.0.0.1: per-address
//! connection caps, connection rate, per-connection message throttling, and the metrics that
//! count them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sealwire_transport::client::Event;
use support::*;

/// Whether `client` connects within `within`.
async fn connects_within(
    client: &mut sealwire_transport::client::Client,
    within: Duration,
) -> bool {
    tokio::time::timeout(within, async {
        loop {
            if let Event::Connected(_) = next_event(client).await {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_dropped_and_counted() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.admission.max_connections_per_ip = 2;
    let relay = start(&pki, config).await;
    let addr = relay.local_addr();
    let admin = relay.admin_addr().unwrap();

    let mut first = client(&pki, addr, identity());
    let mut second = client(&pki, addr, identity());
    connected(&mut first).await;
    connected(&mut second).await;
    let mut third = client(&pki, addr, identity());
    assert!(!connects_within(&mut third, Duration::from_millis(500)).await);
    assert!(
        metric(
            admin,
            "sealwire_relay_limit_rejections_total{limit=\"max_connections_per_ip\"}"
        )
        .await
            >= 1.0
    );

    // The two admitted clients still work.
    first
        .send(vec![second.mailbox()], b"still here".to_vec())
        .await
        .unwrap();
    assert_eq!(
        wait_for(&mut second, delivered).await.payload,
        b"still here"
    );

    // Once one leaves, the third gets in (it keeps retrying with backoff).
    first.close().await;
    assert!(connects_within(&mut third, WAIT).await);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_fast_sender_is_throttled_to_its_rate_and_loses_nothing() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // In memory, so that commits do not space the sends out by themselves: 12 sends against a
    // burst of 2 at 5 per second must wait about 2 s in all.
    config.store = sealwire_relay::config::StoreKind::Memory;
    config.rates.messages_per_second = 5.0;
    config.rates.message_burst = 2.0;
    let relay = start(&pki, config).await;
    let addr = relay.local_addr();
    let admin = relay.admin_addr().unwrap();
    let mut bob = client(&pki, addr, identity());
    connected(&mut bob).await;
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;
    for i in 0..12u32 {
        alice
            .send(vec![bob.mailbox()], i.to_be_bytes().to_vec())
            .await
            .unwrap();
    }
    for i in 0..12u32 {
        assert_eq!(wait_for(&mut bob, delivered).await.payload, i.to_be_bytes());
    }
    let throttled = metric(
        admin,
        "sealwire_relay_limit_rejections_total{limit=\"message_rate\"}",
    )
    .await;
    assert!(throttled >= 5.0, "throttled {throttled} times");
    relay.shutdown().await;
}

#[tokio::test]
async fn the_admin_listener_serves_metrics_health_and_readiness() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&pki, config(dir.path())).await;
    let admin = relay.admin_addr().unwrap();
    let mut bob = client(&pki, relay.local_addr(), identity());
    connected(&mut bob).await;
    let mut alice = client(&pki, relay.local_addr(), identity());
    connected(&mut alice).await;
    alice.send(vec![bob.mailbox()], vec![0; 300]).await.unwrap();
    let delivery = wait_for(&mut bob, delivered).await;
    bob.ack(vec![delivery.delivery]).await.unwrap();

    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    assert_eq!(http_get(admin, "/readyz").await.0, 200);
    assert_eq!(http_get(admin, "/nope").await.0, 404);
    assert_eq!(
        metric(admin, "sealwire_relay_messages_accepted_total").await,
        1.0
    );
    assert_eq!(
        metric(admin, "sealwire_relay_received_bytes_total").await,
        300.0
    );
    assert_eq!(metric(admin, "sealwire_relay_connections").await, 2.0);
    let mut acked = 0.0;
    for _ in 0..100 {
        acked = metric(admin, "sealwire_relay_messages_acked_total").await;
        if acked >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(acked, 1.0);
    let (_, body) = http_get(admin, "/metrics").await;
    for name in [
        "sealwire_relay_messages_delivered_total",
        "sealwire_relay_delivery_latency_seconds",
        "sealwire_relay_store_commit_seconds",
        "sealwire_relay_auth_successes_total",
    ] {
        assert!(body.contains(name), "{name} missing from\n{body}");
    }
    // Blindness: no mailbox id and no address in any series.
    assert!(!body.contains(&bob.mailbox().to_hex()));
    assert!(!body.contains("127.0.0.1"));
    // The gauge follows connections down again.
    bob.close().await;
    alice.close().await;
    let mut open = -1.0;
    for _ in 0..100 {
        open = metric(admin, "sealwire_relay_connections").await;
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0.0);
    relay.shutdown().await;
}
