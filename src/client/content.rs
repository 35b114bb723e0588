//! What a client puts inside an envelope: the *content* layer (`spec/client.md` §3).
//!
//! Pairwise and group envelopes carry opaque plaintext; clients agree on this encoding of it:
//! a version byte, then a postcard-encoded [`Content`]. Decoding is strict (no trailing bytes,
//! minimal varints), so every content has one encoding.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The content format's version, the first byte of every content.
pub const CONTENT_VERSION: u8 = 1;

/// The largest message body a client sends. A pairwise envelope holds at most
/// [`MAX_PLAINTEXT_LEN`](sealwire_core::MAX_PLAINTEXT_LEN) bytes of plaintext; this leaves room
/// for the content header.
pub const MAX_BODY_LEN: usize = 65_000;

/// One content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// 0: a message for the user, in a pairwise session or a group.
    Message {
        /// When the sender sealed it, in Unix seconds by the sender's clock (not verified).
        sent_at: u64,
        /// The body: opaque bytes (UTF-8 text for the `sealwire` command).
        body: Vec<u8>,
    },
    /// 1: a group control message (welcome, commit or sender key) from `sealwire-core`'s
    /// [`Group`](sealwire_core::Group). Only valid inside a pairwise session.
    GroupControl {
        /// The control message.
        control: Vec<u8>,
    },
}

impl core::fmt::Debug for Content {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Content::Message { sent_at, body } => f
                .debug_struct("Message")
                .field("sent_at", sent_at)
                .field("body", &format_args!("<{} bytes>", body.len()))
                .finish(),
            Content::GroupControl { control } => f
                .debug_struct("GroupControl")
                .field("control", &format_args!("<{} bytes>", control.len()))
                .finish(),
        }
    }
}

impl Drop for Content {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match self {
            Content::Message { body, .. } => body.zeroize(),
            Content::GroupControl { control } => control.zeroize(),
        }
    }
}

impl Content {
    /// Encodes: [`CONTENT_VERSION`] then the postcard encoding. The buffer is zeroized on drop
    /// (a sender-key control message holds a chain key).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![CONTENT_VERSION]);
        // Serializing into a Vec cannot fail for this type.
        if let Ok(encoded) = postcard::to_allocvec(self) {
            let encoded = Zeroizing::new(encoded);
            out.extend_from_slice(&encoded);
        }
        out
    }

    /// Decodes a content.
    ///
    /// # Errors
    /// [`ContentError::UnsupportedVersion`] for a first byte other than [`CONTENT_VERSION`];
    /// [`ContentError::Malformed`] for anything that is not exactly one encoded content.
    pub fn decode(bytes: &[u8]) -> Result<Content, ContentError> {
        let (&version, rest) = bytes.split_first().ok_or(ContentError::Malformed)?;
        if version != CONTENT_VERSION {
            return Err(ContentError::UnsupportedVersion(version));
        }
        let (content, trailing) =
            postcard::take_from_bytes::<Content>(rest).map_err(|_| ContentError::Malformed)?;
        if !trailing.is_empty() {
            return Err(ContentError::Malformed);
        }
        // postcard accepts non-minimal varints; re-encoding catches them.
        if content.encode().as_slice() != bytes {
            return Err(ContentError::Malformed);
        }
        Ok(content)
    }
}

/// Why a content did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The first byte is not a known version.
    #[error("unsupported content version {0}")]
    UnsupportedVersion(u8),
    /// Not exactly one encoded content.
    #[error("malformed content")]
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_bytes() {
        let message = Content::Message {
            sent_at: 300,
            body: b"hi".to_vec(),
        };
        let encoded = message.encode();
        // version 1, variant 0, varint 300 = ac 02, length 2, "hi"
        assert_eq!(encoded.as_slice(), &[1, 0, 0xac, 0x02, 2, b'h', b'i']);
        assert_eq!(Content::decode(&encoded).unwrap(), message);
        let control = Content::GroupControl {
            control: vec![9; 3],
        };
        assert_eq!(control.encode().as_slice(), &[1, 1, 3, 9, 9, 9]);
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(Content::decode(&[]), Err(ContentError::Malformed));
        assert_eq!(
            Content::decode(&[2, 0, 0, 0]),
            Err(ContentError::UnsupportedVersion(2))
        );
        // trailing byte
        assert_eq!(
            Content::decode(&[1, 0, 0, 0, 7]),
            Err(ContentError::Malformed)
        );
        // unknown variant
        assert_eq!(Content::decode(&[1, 2, 0]), Err(ContentError::Malformed));
        // non-minimal varint for sent_at (0 as 0x80 0x00)
        assert_eq!(
            Content::decode(&[1, 0, 0x80, 0x00, 0]),
            Err(ContentError::Malformed)
        );
        // truncated body
        assert_eq!(
            Content::decode(&[1, 0, 0, 5, 1]),
            Err(ContentError::Malformed)
        );
    }
}
