//! Writing to the relay: frames are fed into the WebSocket sink and flushed once per batch, so
//! that a burst of frames costs one socket write (and few TLS records), not one per frame.

use futures_util::SinkExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::connect::Socket;
use crate::error::{Error, Result};
use crate::frame::{self, Ack, ClientFrame};
use crate::limits::Limits;

/// Bytes of an `ack` frame besides its delivery ids: the tag and the longest varint length.
const ACK_OVERHEAD: usize = 1 + 10;

/// The longest varint of a `u64` delivery id.
const MAX_DELIVERY_LEN: usize = 10;

/// Most delivery ids in one `ack` frame: as many as fit in one WebSocket message and frame
/// whatever the ids (10 bytes each at most), `(min(max_message_size, max_frame_size) - 11) / 10`
/// and at least one; 9 829 with the default limits. The relay announces no limit of its own
/// for acks; it closes a connection whose message exceeds its `max_message_size` (1009).
pub(crate) fn max_acks_per_frame(limits: &Limits) -> usize {
    let largest = limits.max_message_size.min(limits.max_frame_size);
    (largest.saturating_sub(ACK_OVERHEAD) / MAX_DELIVERY_LEN).max(1)
}

/// The socket's write half, every step bounded by the write timeout.
pub(super) struct Writer<'a> {
    pub(super) ws: &'a mut Socket,
    limits: &'a Limits,
}

impl<'a> Writer<'a> {
    pub(super) fn new(ws: &'a mut Socket, limits: &'a Limits) -> Writer<'a> {
        Writer { ws, limits }
    }

    /// Queues `frame` in the sink. The sink writes to the socket only when its buffer passes
    /// `write_buffer_size` (or waits for an earlier write that would block); nothing is
    /// flushed.
    pub(super) async fn feed(&mut self, frame: Bytes) -> Result<()> {
        let write_timeout = self.limits.write_timeout;
        bounded(write_timeout, self.ws.feed(Message::Binary(frame))).await
    }

    /// Encodes and queues `frame`.
    pub(super) async fn feed_frame(&mut self, frame: &ClientFrame) -> Result<()> {
        self.feed(frame::encode(frame)?.into()).await
    }

    /// Queues `deliveries` in as few `ack` frames as [`max_acks_per_frame`] allows, in order.
    pub(super) async fn feed_acks(&mut self, deliveries: &[u64]) -> Result<()> {
        for chunk in deliveries.chunks(max_acks_per_frame(self.limits)) {
            let ack = ClientFrame::Ack(Ack {
                deliveries: chunk.to_vec(),
            });
            self.feed_frame(&ack).await?;
        }
        Ok(())
    }

    /// Writes out everything queued.
    pub(super) async fn flush(&mut self) -> Result<()> {
        let write_timeout = self.limits.write_timeout;
        bounded(write_timeout, self.ws.flush()).await
    }
}

async fn bounded(
    write_timeout: std::time::Duration,
    write: impl Future<Output = core::result::Result<(), tokio_tungstenite::tungstenite::Error>>,
) -> Result<()> {
    match timeout(write_timeout, write).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout {
            what: "write",
            after: write_timeout,
        }),
    }
}
