//! Limits: timeouts, sizes, buffers and queues, with defaults chosen for a relay holding tens
//! of thousands of connections on a small machine.
//!
//! | limit | default | on breach |
//! |---|---|---|
//! | `handshake_timeout` | 10 s | TCP dropped (TLS and HTTP upgrade not finished: slowloris) |
//! | `auth_timeout` | 10 s | close 4000 `auth_timeout` |
//! | `max_message_size` | 96 KiB | close 1009 `message_too_big` |
//! | `max_frame_size` | 96 KiB | close 1009 `message_too_big` |
//! | `max_payload` | 70 KiB | error 2 `payload_too_large` (connection stays open) |
//! | `max_recipients` | 450 | error 3 `too_many_recipients` |
//! | `read_buffer_size` | 2 KiB | (memory per connection) |
//! | `write_buffer_size` | 4 KiB | (memory per connection) |
//! | `max_write_buffer_size` | 224 KiB | connection dropped, reported as 4005 `slow_consumer` |
//! | `outbound_queue` | 256 frames | close 4005 `slow_consumer` (reads pause at half full) |
//! | `write_timeout` | 10 s | close 4005 `slow_consumer` |
//! | `ping_interval` | 20 s | (a ping is sent) |
//! | `pong_timeout` | 10 s | close 4006 `heartbeat_timeout` |
//! | `idle_timeout` | 60 s | close 4007 `idle_timeout` (nothing at all received, not even a pong) |
//!
//! `max_payload` covers the largest sealwire envelope (`MAX_ENVELOPE_LEN`, 64.5 KiB) with room
//! for the group signature, and `max_message_size` covers a `send` of that payload to
//! `max_recipients` recipients (32 bytes each). tungstenite's default read buffer is 128 KiB per
//! connection; 4 KiB is enough for a frame header and grows only while a large message is read.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Error, Result};

/// The transport's limits. Both the server and the client use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Time from TCP accept (or connect) to a finished TLS handshake and WebSocket upgrade.
    pub handshake_timeout: Duration,
    /// Time from the upgrade to a verified `hello`.
    pub auth_timeout: Duration,
    /// Largest WebSocket message (after reassembling fragments).
    pub max_message_size: usize,
    /// Largest single WebSocket frame.
    pub max_frame_size: usize,
    /// Largest `send` payload (the envelope).
    pub max_payload: usize,
    /// Most recipients of one `send`.
    pub max_recipients: usize,
    /// Read buffer per connection: how much the WebSocket layer reads at a time. It is held
    /// for the connection's life, so it is most of what an idle connection costs beside the
    /// TLS layer's own buffer; the TLS layer already buffers whole records, so a small one
    /// costs only extra in-memory copies for large messages (2 KiB saved about 2 KiB of RSS
    /// per idle connection against 4 KiB, BENCHMARKS.md).
    pub read_buffer_size: usize,
    /// Bytes buffered before a write is issued.
    pub write_buffer_size: usize,
    /// Most bytes buffered for writing before the connection is considered stuck.
    pub max_write_buffer_size: usize,
    /// Frames queued for one connection before it is disconnected as a slow consumer.
    pub outbound_queue: usize,
    /// Longest a single write may block.
    pub write_timeout: Duration,
    /// Time between pings.
    pub ping_interval: Duration,
    /// Time a ping may stay unanswered.
    pub pong_timeout: Duration,
    /// Time without receiving anything at all before the connection is dropped.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            max_message_size: 96 * 1024,
            max_frame_size: 96 * 1024,
            max_payload: 70 * 1024,
            max_recipients: 450,
            read_buffer_size: 2 * 1024,
            write_buffer_size: 4 * 1024,
            max_write_buffer_size: 224 * 1024,
            outbound_queue: 256,
            write_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Bytes a `send` frame adds around its payload and recipients (tag, id, two length varints).
const SEND_OVERHEAD: usize = 1 + 16 + 3 + 3;

impl Limits {
    /// Checks that the limits are consistent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field: a zero size, timeout or queue; a message size
    /// that cannot hold a full `send`; a write buffer limit that cannot hold one message; an
    /// idle timeout not above the ping interval.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: &str| Err(Error::InvalidConfig(format!("limits: {what}")));
        let durations = [
            self.handshake_timeout,
            self.auth_timeout,
            self.write_timeout,
            self.ping_interval,
            self.pong_timeout,
            self.idle_timeout,
        ];
        if durations.iter().any(Duration::is_zero) {
            return invalid("timeouts and intervals must be positive");
        }
        if self.max_payload == 0 || self.max_recipients == 0 || self.outbound_queue == 0 {
            return invalid("max_payload, max_recipients and outbound_queue must be positive");
        }
        if self.read_buffer_size == 0 || self.max_frame_size == 0 {
            return invalid("read_buffer_size and max_frame_size must be positive");
        }
        let largest_send = self.max_payload + self.max_recipients * 32 + SEND_OVERHEAD;
        if self.max_message_size < largest_send {
            return invalid(&format!(
                "max_message_size {} cannot hold a send of max_payload to max_recipients ({largest_send} bytes)",
                self.max_message_size
            ));
        }
        if self.max_write_buffer_size <= self.write_buffer_size + self.max_message_size {
            return invalid(
                "max_write_buffer_size must exceed write_buffer_size + max_message_size",
            );
        }
        if self.idle_timeout <= self.ping_interval {
            return invalid("idle_timeout must be longer than ping_interval");
        }
        Ok(())
    }

    /// The tungstenite configuration for these limits.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_write_buffer_size(self.max_write_buffer_size)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
            .accept_unmasked_frames(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consistent_and_carry_the_largest_envelope() {
        let limits = Limits::default();
        limits.validate().unwrap();
        assert!(limits.max_payload >= sealwire_core::MAX_ENVELOPE_LEN + 64);
        assert!(limits.read_buffer_size <= 2048);
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let small_message = Limits {
            max_message_size: 1024,
            ..Limits::default()
        };
        assert!(small_message.validate().is_err());
        let zero_queue = Limits {
            outbound_queue: 0,
            ..Limits::default()
        };
        assert!(zero_queue.validate().is_err());
        let idle = Limits {
            idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        };
        assert!(idle.validate().is_err());
        let write = Limits {
            max_write_buffer_size: 1024,
            ..Limits::default()
        };
        assert!(write.validate().is_err());
    }
}
