//! The benchmark payload: 256 bytes that the relay treats as an opaque envelope, carrying who
//! sent it, its sequence number and its send time (the *scheduled* send time in open-loop
//! runs), and the message ids derived from the same numbers.
//!
//! Layout (little endian): `magic u32 | sender u32 | seq u64 | sent_nanos u64 | filler`.
//! `sent_nanos` counts from a base [`std::time::Instant`] of the load generator process: sender
//! and receiver live in the same process, so no clock synchronisation is involved.

use sealwire_transport::frame::MessageId;

/// Bytes of every benchmark payload (the message size).
pub const PAYLOAD_LEN: usize = 256;

/// Marks a benchmark payload ("SWLG").
const MAGIC: u32 = 0x474c_5753;

/// Bytes used by the header; the rest is filler.
const HEADER_LEN: usize = 24;

/// What a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sending client in the scenario.
    pub sender: u32,
    /// The sender's sequence number (0, 1, 2, ...).
    pub seq: u64,
    /// Send time (scheduled, in open loop), nanoseconds since the process's base instant.
    pub sent_nanos: u64,
}

impl Stamp {
    /// The 256-byte payload. The filler is a fixed pattern: the relay never looks inside.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0xA5u8; PAYLOAD_LEN];
        out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&self.sender.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.sent_nanos.to_le_bytes());
        out
    }

    /// Reads a payload written by [`encode`](Self::encode); `None` for anything else.
    pub fn decode(payload: &[u8]) -> Option<Stamp> {
        if payload.len() < HEADER_LEN {
            return None;
        }
        let u32_at = |at: usize| {
            payload
                .get(at..at + 4)?
                .try_into()
                .ok()
                .map(u32::from_le_bytes)
        };
        let u64_at = |at: usize| {
            payload
                .get(at..at + 8)?
                .try_into()
                .ok()
                .map(u64::from_le_bytes)
        };
        if u32_at(0)? != MAGIC {
            return None;
        }
        Some(Stamp {
            sender: u32_at(4)?,
            seq: u64_at(8)?,
            sent_nanos: u64_at(16)?,
        })
    }
}

/// A message id unique per sender and run: `sender u32 | seq u64 | chunk u16 | salt u16`. The
/// relay deduplicates by (sender mailbox, id), so ids only need to be unique per sender; the
/// salt keeps two runs against one store apart. A send split into several chunks (more
/// recipients than `max_recipients`) uses one id per chunk.
pub fn message_id(salt: u16, sender: u32, seq: u64, chunk: u16) -> MessageId {
    let mut id = [0u8; 16];
    id[0..4].copy_from_slice(&sender.to_le_bytes());
    id[4..12].copy_from_slice(&seq.to_le_bytes());
    id[12..14].copy_from_slice(&chunk.to_le_bytes());
    id[14..16].copy_from_slice(&salt.to_le_bytes());
    MessageId(id)
}

/// The chunk index of an id made by [`message_id`].
pub fn chunk_of(id: &MessageId) -> u16 {
    u16::from_le_bytes([id.0[12], id.0[13]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_is_256_bytes() {
        let stamp = Stamp {
            sender: 7,
            seq: u64::MAX - 3,
            sent_nanos: 123_456_789_012,
        };
        let payload = stamp.encode();
        assert_eq!(payload.len(), PAYLOAD_LEN);
        assert_eq!(Stamp::decode(&payload), Some(stamp));
    }

    #[test]
    fn foreign_payloads_are_refused() {
        assert_eq!(Stamp::decode(&[0u8; 10]), None);
        assert_eq!(Stamp::decode(&[0u8; PAYLOAD_LEN]), None);
        let mut payload = Stamp {
            sender: 1,
            seq: 2,
            sent_nanos: 3,
        }
        .encode();
        payload[0] ^= 1;
        assert_eq!(Stamp::decode(&payload), None);
    }

    #[test]
    fn ids_are_distinct_and_carry_the_chunk() {
        let a = message_id(9, 1, 2, 0);
        let b = message_id(9, 1, 2, 1);
        let c = message_id(9, 2, 2, 0);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(chunk_of(&b), 1);
    }
}
