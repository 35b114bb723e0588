//! The bare forwarder's wire format, shared by `src/bin/bare_forwarder.rs` and the load
//! generator's bare clients.
//!
//! A client names itself in the URL path (`wss://127.0.0.1:PORT/<id>`, `id` a `u32`). Every
//! binary message it sends is `count u16 | count × dest u32 | payload` (little endian): the
//! forwarder passes `payload` unchanged to each destination connection. There is no
//! authentication, no acknowledgement, no storage and no crypto beyond TLS: this is the ceiling
//! the relay is compared with.

use tokio_tungstenite::tungstenite::Bytes;

/// Encodes a message for `destinations`.
pub fn encode(destinations: &[u32], payload: &[u8]) -> Vec<u8> {
    let count = u16::try_from(destinations.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(2 + 4 * usize::from(count) + payload.len());
    out.extend_from_slice(&count.to_le_bytes());
    for dest in destinations.iter().take(usize::from(count)) {
        out.extend_from_slice(&dest.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// Splits a message into its destinations and payload (a zero-copy slice of `message`);
/// `None` if it is too short for its destination list.
pub fn decode(message: &Bytes) -> Option<(Vec<u32>, Bytes)> {
    let count = usize::from(u16::from_le_bytes(message.get(0..2)?.try_into().ok()?));
    let header = 2 + 4 * count;
    if message.len() < header {
        return None;
    }
    let destinations = message
        .get(2..header)?
        .chunks_exact(4)
        .filter_map(|chunk| chunk.try_into().ok().map(u32::from_le_bytes))
        .collect();
    Some((destinations, message.slice(header..)))
}

/// The connection id in a request path such as `/42`.
pub fn id_from_path(path: &str) -> Option<u32> {
    path.trim_start_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let message = Bytes::from(encode(&[3, 70_000], b"payload"));
        let (destinations, payload) = decode(&message).unwrap();
        assert_eq!(destinations, [3, 70_000]);
        assert_eq!(&payload[..], b"payload");
        assert!(decode(&Bytes::from_static(&[2, 0, 1])).is_none());
        assert_eq!(id_from_path("/17"), Some(17));
        assert_eq!(id_from_path("/x"), None);
    }
}
