//! The relay frame target.

use sealwire_transport::frame::{self, ClientFrame, ServerFrame};

/// Decodes `data` as a client frame and as a server frame.
///
/// Checks: no panic; whatever decodes re-encodes to exactly `data` (spec/relay-protocol.md,
/// "Canonical decoding": a receiver must reject a frame unless re-encoding the decoded value
/// gives back the same bytes); decoding is deterministic.
pub fn relay_frame(data: &[u8]) {
    if let Ok(decoded) = frame::decode::<ClientFrame>(data) {
        let encoded = frame::encode(&decoded).expect("a decoded client frame encodes");
        assert!(
            encoded == data,
            "client frame {decoded:?} is not canonical: re-encoded {encoded:02x?}"
        );
        assert_eq!(frame::decode::<ClientFrame>(&encoded).ok(), Some(decoded));
    }
    if let Ok(decoded) = frame::decode::<ServerFrame>(data) {
        let encoded = frame::encode(&decoded).expect("a decoded server frame encodes");
        assert!(
            encoded == data,
            "server frame {decoded:?} is not canonical: re-encoded {encoded:02x?}"
        );
        assert_eq!(frame::decode::<ServerFrame>(&encoded).ok(), Some(decoded));
    }
}
