//! Tests of the metrics: names, values, bounded labels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use super::*;

/// The sample names of the module docs' table, which every exposition must carry.
const NAMES: &[&str] = &[
    "sealwire_relay_connections ",
    "sealwire_relay_tcp_connections ",
    "sealwire_relay_disconnects_total{",
    "sealwire_relay_handshake_failures_total{",
    "sealwire_relay_auth_failures_total{",
    "sealwire_relay_auth_successes_total ",
    "sealwire_relay_limit_rejections_total{",
    "sealwire_relay_messages_accepted_total ",
    "sealwire_relay_recipients_total ",
    "sealwire_relay_received_bytes_total ",
    "sealwire_relay_messages_duplicate_total ",
    "sealwire_relay_messages_delivered_total ",
    "sealwire_relay_delivered_bytes_total ",
    "sealwire_relay_delivery_latency_seconds_bucket{",
    "sealwire_relay_delivery_latency_seconds_sum ",
    "sealwire_relay_delivery_latency_seconds_count ",
    "sealwire_relay_messages_acked_total ",
    "sealwire_relay_messages_expired_total ",
    "sealwire_relay_request_errors_total{",
    "sealwire_relay_store_commit_seconds_bucket{",
    "sealwire_relay_store_commit_operations_bucket{",
    "sealwire_relay_store_errors_total ",
    "sealwire_relay_mailboxes ",
    "sealwire_relay_stored_messages ",
    "sealwire_relay_stored_bytes ",
    "sealwire_relay_bundles_served_total{",
    "sealwire_relay_prekeys_low_total ",
];

fn exercise(metrics: &Metrics) {
    metrics.connection_opened();
    metrics.connection_opened();
    metrics.connection_closed(CloseCode::SLOW_CONSUMER);
    metrics.set_tcp_connections(5);
    metrics.handshake_failed("tls");
    metrics.auth_failed(CloseCode::TOKEN_EXPIRED);
    metrics.auth_succeeded();
    metrics.limit_hit(Limit::ConnectionRate);
    metrics.message_accepted(3, 100);
    metrics.message_accepted(1, 50);
    metrics.message_duplicate();
    metrics.message_delivered(100, Some(Duration::from_millis(3)));
    metrics.message_delivered(50, None);
    metrics.messages_acked(2);
    metrics.messages_expired(1);
    metrics.request_refused(ErrorCode::QuotaExceeded);
    metrics.store_commit(3, Duration::from_micros(700));
    metrics.store_error();
    metrics.set_stored(2, 4, 350);
    metrics.bundle_served(true);
    metrics.prekeys_low();
}

#[test]
fn every_documented_metric_is_exposed_with_its_value() {
    let metrics = Metrics::new();
    exercise(&metrics.clone());
    let text = metrics.encode();
    for name in NAMES {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    for line in [
        "sealwire_relay_connections 1\n",
        "sealwire_relay_tcp_connections 5\n",
        "sealwire_relay_disconnects_total{code=\"4005\",reason=\"slow_consumer\"} 1\n",
        "sealwire_relay_handshake_failures_total{stage=\"tls\"} 1\n",
        "sealwire_relay_auth_failures_total{reason=\"token_expired\"} 1\n",
        "sealwire_relay_auth_successes_total 1\n",
        "sealwire_relay_limit_rejections_total{limit=\"connection_rate_per_ip\"} 1\n",
        "sealwire_relay_limit_rejections_total{limit=\"quota_bytes\"} 0\n",
        "sealwire_relay_messages_accepted_total 2\n",
        "sealwire_relay_recipients_total 4\n",
        "sealwire_relay_received_bytes_total 150\n",
        "sealwire_relay_messages_duplicate_total 1\n",
        "sealwire_relay_messages_delivered_total 2\n",
        "sealwire_relay_delivered_bytes_total 150\n",
        "sealwire_relay_delivery_latency_seconds_count 1\n",
        "sealwire_relay_messages_acked_total 2\n",
        "sealwire_relay_messages_expired_total 1\n",
        "sealwire_relay_request_errors_total{code=\"quota_exceeded\"} 1\n",
        "sealwire_relay_store_commit_seconds_count 1\n",
        "sealwire_relay_store_commit_operations_sum 3.0\n",
        "sealwire_relay_store_errors_total 1\n",
        "sealwire_relay_mailboxes 2\n",
        "sealwire_relay_stored_messages 4\n",
        "sealwire_relay_stored_bytes 350\n",
        "sealwire_relay_bundles_served_total{one_time_prekey=\"true\"} 1\n",
        "sealwire_relay_bundles_served_total{one_time_prekey=\"false\"} 0\n",
        "sealwire_relay_prekeys_low_total 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
    // Only this registry's metrics are in the exposition.
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        assert!(line.starts_with("sealwire_relay_"), "{line}");
    }
}

#[test]
fn label_values_are_bounded() {
    let names: HashSet<&str> = Limit::ALL.iter().map(|limit| limit.as_str()).collect();
    assert_eq!(names.len(), Limit::ALL.len());
    for name in names {
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}"
        );
    }

    // Close codes a peer makes up share one series; 1005 and 1006 have names.
    let metrics = Metrics::new();
    for code in 3000..5000 {
        metrics.connection_closed(CloseCode(code));
    }
    metrics.connection_closed(CloseCode(1006));
    metrics.connection_closed(CloseCode(1005));
    metrics.auth_failed(CloseCode(4999));
    metrics.request_refused(ErrorCode::Unknown(77));
    metrics.request_refused(ErrorCode::Unknown(78));
    // The 10 named codes in 3000..5000 (4000-4008, 4029), "other", 1005 and 1006.
    let text = metrics.encode();
    let series = text
        .lines()
        .filter(|line| line.starts_with("sealwire_relay_disconnects_total{"))
        .count();
    assert_eq!(series, 10 + 1 + 2);
    assert!(
        text.contains("{code=\"other\",reason=\"unknown\"} 1990\n"),
        "{text}"
    );
    assert!(text.contains("{code=\"1006\",reason=\"abnormal\"} 1\n"));
    assert!(text.contains("{code=\"1005\",reason=\"no_status\"} 1\n"));
    assert!(text.contains("sealwire_relay_auth_failures_total{reason=\"unknown\"} 1\n"));
    assert!(text.contains("sealwire_relay_request_errors_total{code=\"unknown\"} 2\n"));
}

#[test]
fn clones_share_series() {
    let metrics = Metrics::default();
    let clone = metrics.clone();
    clone.message_accepted(1, 1);
    assert!(
        metrics
            .encode()
            .contains("sealwire_relay_messages_accepted_total 1\n")
    );
    assert!(format!("{metrics:?}").starts_with("Metrics"));
}
