//! The relay protocol's frames: what travels inside binary WebSocket messages.
//!
//! Every WebSocket message of protocol version 1 is one binary message holding one frame,
//! encoded with [postcard](https://docs.rs/postcard) (an enum is a varint variant index followed
//! by its fields in order; integers are varints, byte arrays of fixed size are raw bytes,
//! `Vec<u8>` and strings are a varint length then the bytes, `Option` is a `0`/`1` byte then
//! the value). The version is carried by the WebSocket subprotocol name
//! ([`SUBPROTOCOL`]); frames have no version field of their own.
//!
//! A frame must be *canonical*: decoding it and encoding the result gives back exactly the
//! same bytes (so no trailing bytes and no over-long varints). Anything else is
//! [`Error::MalformedFrame`].
//!
//! The byte-level layout of every frame is in spec/relay-protocol.md.

use core::fmt;

use sealwire_core::encoding::fixed;
use sealwire_core::{OneTimePrekey, PublicIdentity, SignedPrekey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The WebSocket subprotocol of relay protocol version 1. A client offers it in
/// `Sec-WebSocket-Protocol`; a server that does not select it did not agree to version 1.
pub const SUBPROTOCOL: &str = "sealwire.relay.v1";

/// Domain-separation prefix of [`MailboxId::of`].
pub const MAILBOX_LABEL: &[u8] = b"sealwire/v1/relay/mailbox";

/// A mailbox: where the relay queues envelopes for one identity (one device).
///
/// `SHA-256("sealwire/v1/relay/mailbox" ‖ signing key ‖ agreement key)` of the identity, so
/// that anyone holding a contact's public identity can address it, and the relay can bind an
/// authenticated connection to exactly one mailbox.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MailboxId(pub [u8; 32]);

impl MailboxId {
    /// The mailbox of `identity`.
    pub fn of(identity: &PublicIdentity) -> MailboxId {
        let mut hash = Sha256::new();
        hash.update(MAILBOX_LABEL);
        hash.update(identity.key_bytes());
        MailboxId(hash.finalize().into())
    }

    /// Lowercase hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `text` is not 64 hex characters.
    pub fn from_hex(text: &str) -> Result<MailboxId> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map(|()| MailboxId(out))
            .map_err(|_| Error::InvalidConfig(format!("mailbox id {text:?} is not 64 hex digits")))
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A message id, chosen at random by the sender for each `send`. A retry of the same send
/// (after a reconnect) reuses it, so that the relay stores the message once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A fresh random id.
    pub fn random() -> MessageId {
        MessageId(rand::random())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", hex::encode(self.0))
    }
}

/// Frames from a client to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// 0: the answer to the server's challenge; the first and only first frame.
    Hello(Hello),
    /// 1: store or deliver `payload` to each recipient.
    Send(Send),
    /// 2: these deliveries were processed; the relay may forget them.
    Ack(Ack),
    /// 3: replace the signed prekey and add one-time prekeys, for the connection's own mailbox.
    UploadPrekeys(PrekeyUpload),
    /// 4: ask for a mailbox's prekey bundle (consumes one of its one-time prekeys).
    FetchBundle(FetchBundle),
}

/// The client's answer to a [`ServerFrame::Challenge`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's encoded [`PublicIdentity`] (128 bytes).
    #[serde(with = "fixed")]
    pub identity: [u8; 128],
    /// The server name the client connected to (the host of its URL), 1 to 255 bytes.
    pub server_name: String,
    /// A bearer token from the application's backend, if the relay requires one.
    pub token: Option<String>,
    /// Ed25519 signature by the identity over the authentication transcript
    /// ([`crate::auth`]).
    #[serde(with = "fixed")]
    pub signature: [u8; 64],
}

impl fmt::Debug for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("identity", &hex::encode(&self.identity[..8]))
            .field("server_name", &self.server_name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A `send` request.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    /// The sender's id for this message (reused on retries).
    pub id: MessageId,
    /// The recipients: at least one, no duplicates, at most the announced maximum.
    pub to: Vec<MailboxId>,
    /// The opaque envelope.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Send {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send")
            .field("id", &self.id)
            .field("recipients", &self.to.len())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// An `ack` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Delivery ids from [`Delivery::delivery`].
    pub deliveries: Vec<u64>,
}

/// An `upload_prekeys` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrekeyUpload {
    /// The client's id for this request, echoed in the answer.
    pub request: u32,
    /// The current signed prekey (replaces the stored one).
    pub signed_prekey: SignedPrekey,
    /// One-time prekeys to add to the pool.
    pub one_time: Vec<OneTimePrekey>,
}

/// A `fetch_bundle` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchBundle {
    /// The client's id for this request, echoed in the answer.
    pub request: u32,
    /// Whose bundle.
    pub mailbox: MailboxId,
}

/// Frames from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// 0: the first frame of every connection: sign this nonce.
    Challenge(Challenge),
    /// 1: authentication succeeded.
    Ready(Ready),
    /// 2: the message with this id is stored durably; the sender may forget it.
    Accepted(Accepted),
    /// 3: a message for the connection's mailbox.
    Deliver(Delivery),
    /// 4: the answer to a `fetch_bundle`.
    Bundle(Bundle),
    /// 5: the answer to an `upload_prekeys`, and a warning when the pool runs low.
    Prekeys(PrekeyStatus),
    /// 6: a request was refused; the connection stays open.
    Error(ErrorFrame),
}

/// The server's challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// 32 fresh random bytes, never reused.
    pub nonce: [u8; 32],
}

/// The server's acceptance of a `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// The mailbox this connection is bound to.
    pub mailbox: MailboxId,
    /// Largest `send` payload the server accepts, in bytes.
    pub max_payload: u32,
    /// Most recipients in one `send`.
    pub max_recipients: u32,
    /// One-time prekeys left in this mailbox's pool on the server.
    pub one_time_prekeys: u32,
}

/// The answer to a `send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The id of the accepted `send`.
    pub id: MessageId,
}

/// A message delivered to a mailbox.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The relay's id for this delivery, to acknowledge it. Stable across redeliveries.
    pub delivery: u64,
    /// The authenticated sender's mailbox.
    pub from: MailboxId,
    /// The sender's message id.
    pub id: MessageId,
    /// The opaque envelope.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("delivery", &self.delivery)
            .field("from", &self.from)
            .field("id", &self.id)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The answer to a `fetch_bundle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The request id from the `fetch_bundle`.
    pub request: u32,
    /// The bundle, encoded as `sealwire-core`'s `PrekeyBundle::to_bytes`. The client must
    /// verify it (`PrekeyBundle::from_bytes` then `verify`): the relay is not trusted with it.
    pub bundle: Vec<u8>,
}

/// How many one-time prekeys the server holds for the connection's mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrekeyStatus {
    /// The `upload_prekeys` this answers, or `None` for an unsolicited low-water warning.
    pub request: Option<u32>,
    /// One-time prekeys left.
    pub one_time_prekeys: u32,
    /// Whether the pool is below the server's low-water mark: upload more.
    pub low: bool,
}

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// The [`ErrorCode`](crate::code::ErrorCode) number.
    pub code: u16,
    /// What was refused.
    pub subject: Subject,
}

/// What an [`ErrorFrame`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// 0: the `send` with this id.
    Send(MessageId),
    /// 1: an `ack`.
    Ack,
    /// 2: the `upload_prekeys` with this request id.
    Upload(u32),
    /// 3: the `fetch_bundle` with this request id.
    Fetch(u32),
}

/// Encodes a frame.
///
/// # Errors
/// Never for frames built from this module's types (postcard fails only on unsupported serde
/// types); the `Result` keeps a future type from panicking.
pub fn encode<T: Serialize>(frame: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(frame).map_err(|_| Error::MalformedFrame("frame does not encode"))
}

/// Decodes one canonical frame that fills `bytes` exactly.
///
/// # Errors
/// [`Error::MalformedFrame`] if the bytes are not a frame, carry trailing bytes, or are not
/// canonical.
pub fn decode<'a, T: Serialize + Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    let (frame, rest): (T, _) =
        postcard::take_from_bytes(bytes).map_err(|_| Error::MalformedFrame("not a frame"))?;
    if !rest.is_empty() {
        return Err(Error::MalformedFrame("trailing bytes after the frame"));
    }
    // Comparing lengths is enough, without re-encoding (and copying the payload): postcard's
    // decoder already refuses bad tags, bools and UTF-8, and fixed-size fields have one length,
    // so the only freedom left is an over-long varint, which makes the input longer than the
    // canonical encoding of what it decodes to. (`frame_robustness` checks decode → encode
    // gives the input back.)
    if postcard::experimental::serialized_size(&frame).ok() != Some(bytes.len()) {
        return Err(Error::MalformedFrame("not canonical"));
    }
    Ok(frame)
}

/// Whether `mailboxes` lists no mailbox twice.
pub fn distinct(mailboxes: &[MailboxId]) -> bool {
    let mut sorted = mailboxes.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).all(|pair| pair[0] != pair[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send() -> ClientFrame {
        ClientFrame::Send(Send {
            id: MessageId([7; 16]),
            to: vec![MailboxId([1; 32]), MailboxId([2; 32])],
            payload: vec![0xAB; 300],
        })
    }

    #[test]
    fn frames_round_trip() {
        let frames = [
            send(),
            ClientFrame::Ack(Ack {
                deliveries: vec![1, 300, u64::MAX],
            }),
            ClientFrame::FetchBundle(FetchBundle {
                request: 9,
                mailbox: MailboxId([3; 32]),
            }),
        ];
        for frame in frames {
            let bytes = encode(&frame).unwrap();
            assert_eq!(decode::<ClientFrame>(&bytes).unwrap(), frame);
        }
    }

    #[test]
    fn the_send_layout_is_the_specified_one() {
        let bytes = encode(&send()).unwrap();
        // variant 1, 16-byte id, 2 recipients of 32 bytes, payload length 300 = varint ac 02.
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..17], &[7; 16]);
        assert_eq!(bytes[17], 2);
        assert_eq!(&bytes[18..50], &[1; 32]);
        assert_eq!(&bytes[82..84], &[0xAC, 0x02]);
        assert_eq!(bytes.len(), 84 + 300);
    }

    #[test]
    fn trailing_bytes_and_overlong_varints_are_rejected() {
        let mut bytes = encode(&send()).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<ClientFrame>(&bytes),
            Err(Error::MalformedFrame(_))
        ));

        // Ack with one delivery id 1 written as the over-long varint 0x81 0x00.
        let overlong = [2u8, 1, 0x81, 0x00];
        assert!(matches!(
            decode::<ClientFrame>(&overlong),
            Err(Error::MalformedFrame(_))
        ));
        assert!(decode::<ClientFrame>(&[2u8, 1, 1]).is_ok());
    }

    #[test]
    fn truncated_frames_and_unknown_variants_are_rejected() {
        let bytes = encode(&send()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode::<ClientFrame>(&bytes[..len]).is_err(),
                "prefix of {len}"
            );
        }
        assert!(decode::<ClientFrame>(&[5]).is_err());
        assert!(decode::<ServerFrame>(&[7]).is_err());
    }

    #[test]
    fn mailbox_hex_round_trips_and_debug_shows_no_payload() {
        let mailbox = MailboxId([0xA5; 32]);
        assert_eq!(MailboxId::from_hex(&mailbox.to_hex()).unwrap(), mailbox);
        assert!(MailboxId::from_hex("zz").is_err());
        let debug = format!("{:?}", send());
        assert!(debug.contains("payload_len: 300") && !debug.contains("171"));
    }
}
