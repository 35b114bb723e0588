//! The envelope: the only bytes that cross the network.
//!
//! ```text
//! envelope   = header ‖ varint(len) ‖ ct ‖ tag
//! header     = version:u8 ‖ suite:u8 ‖ kind:varint ‖ message-header [‖ setup]     (postcard)
//! ct         = AES-256-GCM(key, nonce, padded plaintext, aad) ‖ GCM tag(16)       (len bytes)
//! tag        = HMAC-SHA256(mac key, header ‖ session AD ‖ nonce ‖ ct)              (32 bytes)
//! aad        = header ‖ session AD
//! ```
//!
//! The HMAC covers `ct` itself, not its varint length prefix (the prefix is fixed by the header
//! and tag framing, and a non-canonical prefix is rejected when parsing).
//!
//! The header is authenticated as the exact bytes received, never re-encoded; the decoder also
//! rejects any header that is not in canonical postcard form, so that one header has exactly one
//! encoding. The HMAC tag is checked first, in constant time, before AES-GCM runs: with a key
//! derived from the same message secret as the AES key, it commits the envelope to that key,
//! which AES-GCM alone does not (see the spec, "Why an HMAC tag as well as GCM").

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes256Enc;
use aes_gcm::{AesGcm, Nonce, Tag};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::kdf::{self, MessageKeys};
use crate::padding;
use crate::session::SessionId;

/// Protocol version carried in every envelope.
pub const PROTOCOL_VERSION: u8 = 1;
/// Cipher suite 1: X25519, Ed25519, HKDF-SHA256, AES-256-GCM, HMAC-SHA256.
pub const SUITE_V1: u8 = 1;
/// Largest plaintext one envelope carries (64 KiB − 1, so that it pads to exactly 64 KiB).
pub const MAX_PLAINTEXT_LEN: usize = 65_535;
/// Largest envelope accepted: 64 KiB of padded ciphertext plus 512 bytes of framing.
pub const MAX_ENVELOPE_LEN: usize = 65_536 + 512;
/// Length of the sealed initiator identity in an initial message (128-byte identity + GCM tag).
pub const SEALED_IDENTITY_LEN: usize = 144;
/// Length of the HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;
/// The header kind value of a group message (0 and 1 are the pairwise kinds).
pub(crate) const GROUP_KIND: u8 = 2;
/// Length of the AES-GCM authentication tag.
const GCM_TAG_LEN: usize = 16;
/// Longest possible encoded header: an initial header with every varint at its maximum
/// (3 bytes fixed + 16 session id + 3 × 5 varints + 11 previous + 32 ratchet key, then
/// 32 base key + 5 + 6 prekey ids + 144 sealed identity).
const MAX_HEADER_LEN: usize = 264;

/// AES-256-GCM with 96-bit nonces (the same cipher as `aes_gcm::Aes256Gcm`), over the
/// encrypt-only AES-256 key schedule: GCM only ever runs AES forwards (CTR mode and the GHASH
/// key), so the decryption round keys `Aes256Gcm` also derives are wasted on a per-message key.
type MessageCipher = AesGcm<Aes256Enc, U12>;

/// What the envelope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeKind {
    /// Sent by a session's initiator until the responder has answered: carries the setup data
    /// the responder needs to create the session ([`Account::accept`](crate::Account::accept)).
    Initial,
    /// Any other message of an established session.
    Message,
}

/// The sender's previous sending epoch and how many messages it sent in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Previous {
    pub(crate) epoch: u32,
    pub(crate) length: u32,
}

/// Header fields every message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MessageHeader {
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) session_id: [u8; 16],
    pub(crate) epoch: u32,
    pub(crate) parent: u32,
    pub(crate) counter: u32,
    pub(crate) previous: Option<Previous>,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) ratchet_key: [u8; 32],
}

/// What the responder needs to set up the session (initial messages only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SetupHeader {
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) base_key: [u8; 32],
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    #[serde(with = "crate::encoding::fixed")]
    pub(crate) sealed_identity: [u8; SEALED_IDENTITY_LEN],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HeaderBody {
    /// kind 0 (the setup data is boxed: it is large, and only initial messages carry it, so
    /// the common header stays small to move around)
    Initial {
        message: MessageHeader,
        setup: Box<SetupHeader>,
    },
    /// kind 1
    Message { message: MessageHeader },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireHeader {
    pub(crate) version: u8,
    pub(crate) suite: u8,
    pub(crate) body: HeaderBody,
}

impl WireHeader {
    pub(crate) fn message(&self) -> &MessageHeader {
        match &self.body {
            HeaderBody::Initial { message, .. } | HeaderBody::Message { message } => message,
        }
    }

    pub(crate) fn setup(&self) -> Option<&SetupHeader> {
        match &self.body {
            HeaderBody::Initial { setup, .. } => Some(setup.as_ref()),
            HeaderBody::Message { .. } => None,
        }
    }

    pub(crate) fn kind(&self) -> EnvelopeKind {
        match self.body {
            HeaderBody::Initial { .. } => EnvelopeKind::Initial,
            HeaderBody::Message { .. } => EnvelopeKind::Message,
        }
    }
}

/// An envelope split into its parts, with the header bytes exactly as received.
pub(crate) struct ParsedEnvelope<'a> {
    pub(crate) header: WireHeader,
    pub(crate) header_bytes: &'a [u8],
    pub(crate) ciphertext: &'a [u8],
    pub(crate) tag: &'a [u8; MAC_LEN],
}

/// Splits and checks the framing of an envelope. Never panics, whatever the input.
pub(crate) fn parse(bytes: &[u8]) -> Result<ParsedEnvelope<'_>> {
    check_prefix(bytes)?;
    if bytes.get(2) == Some(&GROUP_KIND) {
        return Err(Error::UnexpectedKind(
            "a group message: open it with Group::open",
        ));
    }
    let (header, rest) = postcard::take_from_bytes::<WireHeader>(bytes)
        .map_err(|_| Error::Malformed("envelope header"))?;
    let header_bytes = &bytes[..bytes.len() - rest.len()];
    let mut canonical = [0u8; MAX_HEADER_LEN];
    let canonical = postcard::to_slice(&header, &mut canonical)
        .map_err(|_| Error::Malformed("envelope header"))?;
    if *canonical != *header_bytes {
        return Err(Error::Malformed("envelope header (not canonical)"));
    }
    let (ciphertext, after) = split_ciphertext(rest)?;
    let tag: &[u8; MAC_LEN] = after
        .try_into()
        .map_err(|_| Error::Malformed("envelope tag (must be the last 32 bytes)"))?;
    Ok(ParsedEnvelope {
        header,
        header_bytes,
        ciphertext,
        tag,
    })
}

/// Checks the size, version and suite bytes shared by every envelope (pairwise and group).
pub(crate) fn check_prefix(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(Error::TooLarge {
            what: "envelope",
            len: bytes.len(),
            max: MAX_ENVELOPE_LEN,
        });
    }
    match bytes {
        [] | [_] => Err(Error::Malformed("envelope (truncated header)")),
        [version, ..] if *version != PROTOCOL_VERSION => Err(Error::UnsupportedVersion(*version)),
        [_, suite, ..] if *suite != SUITE_V1 => Err(Error::UnsupportedSuite(*suite)),
        _ => Ok(()),
    }
}

/// Splits `varint(len) ‖ ct ‖ rest` after a header: checks that the length prefix is canonical
/// and that `ct` has a padded length plus the GCM tag. Returns `(ct, rest)`.
pub(crate) fn split_ciphertext(after_header: &[u8]) -> Result<(&[u8], &[u8])> {
    let (ciphertext, after) = postcard::take_from_bytes::<&[u8]>(after_header)
        .map_err(|_| Error::Malformed("envelope ciphertext"))?;
    let prefix_len = after_header.len() - after.len() - ciphertext.len();
    if prefix_len != varint_len(ciphertext.len()) {
        return Err(Error::Malformed(
            "envelope ciphertext length (not canonical)",
        ));
    }
    if ciphertext.len() < GCM_TAG_LEN || !padding::is_padded_len(ciphertext.len() - GCM_TAG_LEN) {
        return Err(Error::Malformed(
            "envelope ciphertext length (not a padded length)",
        ));
    }
    Ok((ciphertext, after))
}

/// The canonical encoding of a header (the test-vector generator builds headers with it).
#[cfg(test)]
pub(crate) fn encode_header(header: &WireHeader) -> Result<Vec<u8>> {
    crate::encoding::to_exact_vec(header).map_err(|_| Error::Malformed("envelope header"))
}

/// Length of the postcard (LEB128) varint encoding of `value`.
fn varint_len(value: usize) -> usize {
    let bits = usize::BITS - value.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

fn push_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `header ‖ session AD` in a stack buffer; returns the used length.
fn aad(
    header_bytes: &[u8],
    session_ad: &[u8; 32],
    buf: &mut [u8; MAX_HEADER_LEN + 32],
) -> Result<usize> {
    let len = header_bytes.len() + 32;
    if len > buf.len() {
        return Err(Error::Malformed("envelope header (too long)"));
    }
    buf[..header_bytes.len()].copy_from_slice(header_bytes);
    buf[header_bytes.len()..len].copy_from_slice(session_ad);
    Ok(len)
}

/// Seals `plaintext` under `keys` into a complete envelope, whose header is made of `message`
/// and, for an initial message, `setup`.
pub(crate) fn seal(
    message: MessageHeader,
    setup: Option<&SetupHeader>,
    keys: &MessageKeys,
    session_ad: &[u8; 32],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let ciphertext_len = padding::padded_len(plaintext.len().min(MAX_PLAINTEXT_LEN)) + GCM_TAG_LEN;
    let body = match setup {
        Some(setup) => HeaderBody::Initial {
            message,
            setup: Box::new(setup.clone()),
        },
        None => HeaderBody::Message { message },
    };
    let header = WireHeader {
        version: PROTOCOL_VERSION,
        suite: SUITE_V1,
        body,
    };
    let out = Vec::with_capacity(MAX_HEADER_LEN + 3 + ciphertext_len + MAC_LEN);
    let out = postcard::to_extend(&header, out).map_err(|_| Error::Malformed("envelope header"))?;
    seal_after_header(out, keys, session_ad, plaintext)
}

/// Appends `varint(len) ‖ ct ‖ tag` to `out`, which holds exactly the encoded header. `ad` is
/// the session AD (pairwise) or the epoch's state hash (group).
pub(crate) fn seal_after_header(
    mut out: Vec<u8>,
    keys: &MessageKeys,
    session_ad: &[u8; 32],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(Error::PlaintextTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        });
    }
    let ciphertext_len = padding::padded_len(plaintext.len()) + GCM_TAG_LEN;
    let header_len = out.len();
    let mut aad_buf = [0u8; MAX_HEADER_LEN + 32];
    let aad_len = aad(&out[..header_len], session_ad, &mut aad_buf)?;
    push_varint(&mut out, ciphertext_len);
    let start = out.len();
    out.extend_from_slice(plaintext);
    padding::pad_in_place(&mut out, start);

    let cipher = MessageCipher::new(&keys.aes_key.into());
    let nonce = Nonce::from(keys.nonce);
    let gcm_tag = cipher
        .encrypt_inout_detached(&nonce, &aad_buf[..aad_len], (&mut out[start..]).into())
        .map_err(|_| Error::PlaintextTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        })?;
    out.extend_from_slice(&gcm_tag);
    let tag = kdf::hmac(
        &keys.mac_key,
        &[&out[..header_len], session_ad, &keys.nonce, &out[start..]],
    );
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Authenticates and decrypts a parsed envelope under `keys`. The HMAC tag is verified first
/// (constant time); AES-GCM runs only on an envelope that passed it.
pub(crate) fn open(
    envelope: &ParsedEnvelope<'_>,
    keys: &MessageKeys,
    session_ad: &[u8; 32],
) -> Result<Vec<u8>> {
    if !tag_is_authentic(
        envelope.header_bytes,
        envelope.ciphertext,
        envelope.tag,
        keys,
        session_ad,
    ) {
        return Err(Error::DecryptFailed);
    }
    decrypt(envelope.header_bytes, envelope.ciphertext, keys, session_ad)
}

/// Checks the HMAC tag over `header ‖ ad ‖ nonce ‖ ct` in constant time.
pub(crate) fn tag_is_authentic(
    header_bytes: &[u8],
    ciphertext: &[u8],
    tag: &[u8; MAC_LEN],
    keys: &MessageKeys,
    ad: &[u8; 32],
) -> bool {
    kdf::hmac_verify(
        &keys.mac_key,
        &[header_bytes, ad, &keys.nonce, ciphertext],
        tag,
    )
}

/// AES-GCM decryption and unpadding of `ct` (after the HMAC tag has been checked).
pub(crate) fn decrypt(
    header_bytes: &[u8],
    ciphertext: &[u8],
    keys: &MessageKeys,
    session_ad: &[u8; 32],
) -> Result<Vec<u8>> {
    let split = ciphertext.len() - GCM_TAG_LEN;
    let mut buf = ciphertext[..split].to_vec();
    let gcm_tag = Tag::try_from(&ciphertext[split..]).map_err(|_| Error::DecryptFailed)?;
    let cipher = MessageCipher::new(&keys.aes_key.into());
    let nonce = Nonce::from(keys.nonce);
    let mut aad_buf = [0u8; MAX_HEADER_LEN + 32];
    let aad_len = aad(header_bytes, session_ad, &mut aad_buf)?;
    if cipher
        .decrypt_inout_detached(
            &nonce,
            &aad_buf[..aad_len],
            buf.as_mut_slice().into(),
            &gcm_tag,
        )
        .is_err()
    {
        buf.zeroize();
        return Err(Error::DecryptFailed);
    }
    if let Err(err) = padding::unpad_in_place(&mut buf) {
        buf.zeroize();
        return Err(err);
    }
    Ok(buf)
}

/// The public header of an envelope, for routing: which session it belongs to, and whether it
/// is an initial message (to be given to [`Account::accept`](crate::Account::accept) when no
/// session with that id exists yet).
///
/// Parsing checks only the framing; nothing here is authenticated until the envelope is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader {
    kind: EnvelopeKind,
    session_id: SessionId,
    epoch: u32,
    counter: u32,
}

impl EnvelopeHeader {
    /// Parses the framing of `envelope` and returns its public header.
    ///
    /// # Errors
    /// The same framing errors as opening it: [`Error::TooLarge`], [`Error::Malformed`],
    /// [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`].
    pub fn parse(envelope: &[u8]) -> Result<Self> {
        let parsed = parse(envelope)?;
        let message = parsed.header.message();
        Ok(EnvelopeHeader {
            kind: parsed.header.kind(),
            session_id: SessionId::from_bytes(message.session_id),
            epoch: message.epoch,
            counter: message.counter,
        })
    }

    /// Initial or follow-up message.
    pub fn kind(&self) -> EnvelopeKind {
        self.kind
    }

    /// The session this envelope belongs to.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// The sender's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The message counter within the epoch.
    pub fn counter(&self) -> u32 {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MAX_HEADER_LEN` is exact: the largest possible header fits, byte for byte.
    #[test]
    fn largest_header_fits_max_header_len_exactly() {
        let message = MessageHeader {
            session_id: [0xAA; 16],
            epoch: u32::MAX,
            parent: u32::MAX,
            counter: u32::MAX,
            previous: Some(Previous {
                epoch: u32::MAX,
                length: u32::MAX,
            }),
            ratchet_key: [0xBB; 32],
        };
        let header = WireHeader {
            version: PROTOCOL_VERSION,
            suite: SUITE_V1,
            body: HeaderBody::Initial {
                message,
                setup: Box::new(SetupHeader {
                    base_key: [0xCC; 32],
                    signed_prekey_id: u32::MAX,
                    one_time_prekey_id: Some(u32::MAX),
                    sealed_identity: [0xDD; SEALED_IDENTITY_LEN],
                }),
            },
        };
        assert_eq!(encode_header(&header).unwrap().len(), MAX_HEADER_LEN);
        let mut buf = [0u8; MAX_HEADER_LEN];
        assert!(postcard::to_slice(&header, &mut buf).is_ok());
    }
}
