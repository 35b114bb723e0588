//! Pairwise sessions: seal and open envelopes.
//!
//! A [`Session`] is created by the initiator with [`Session::initiate`] from a verified prekey
//! bundle, and by the responder with [`Account::accept`](crate::Account::accept) from the first
//! envelope it receives. From then on both sides are the same type.
//!
//! [`Session::open`] is all-or-nothing: the envelope is parsed, its key resolved, and its
//! HMAC tag and AES-GCM tag verified before any state changes. A failed open, whatever the
//! reason, leaves the session exactly as it was (byte for byte, as [`Session::to_bytes`]
//! shows).

use serde::{Deserialize, Serialize};

use crate::config::SessionConfig;
use crate::envelope::{self, EnvelopeKind, MessageHeader, SetupHeader};
use crate::epoch::{ChildSeeds, OwnEpoch, PeerLatest};
use crate::error::{Error, Result};
use crate::handshake;
use crate::identity::{IdentityKeyPair, PUBLIC_IDENTITY_LEN, PublicIdentity};
use crate::kdf;
use crate::prekey::VerifiedBundle;
use crate::ratchet::{Ratchet, Role};
use crate::replay::SkippedKeys;
use crate::secret::{DhKeyPair, SecretBytes};
use crate::time::Timestamp;

/// Format version of serialized [`Session`] state.
const SESSION_STATE_VERSION: u16 = 1;

/// The opaque random identifier of a session, carried in every envelope header so that the
/// recipient can find the session. It says nothing about who the parties are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// From its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        SessionId(bytes)
    }

    /// Its 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl core::fmt::Display for SessionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&crate::fmt_hex(&self.0))
    }
}

impl core::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Setup data a session keeps.
#[derive(Clone, Serialize, Deserialize)]
enum SetupRecord {
    /// Initiator: the setup header to attach to every message until the responder answers.
    Initiator { pending: Option<SetupHeader> },
    /// Responder: the setup header the session was created from, to recognise repeats of it.
    Responder { received: SetupHeader },
}

#[derive(Clone, Serialize, Deserialize)]
struct SessionState {
    version: u16,
    #[serde(with = "crate::encoding::fixed")]
    session_id: [u8; 16],
    #[serde(with = "crate::encoding::fixed")]
    peer: [u8; PUBLIC_IDENTITY_LEN],
    #[serde(with = "crate::encoding::fixed")]
    session_ad: [u8; 32],
    setup: SetupRecord,
    ratchet: Ratchet,
    config: SessionConfig,
}

/// An end-to-end encrypted pairwise session.
///
/// Holds secret keys: they zeroize on drop and never appear in `Debug`.
pub struct Session {
    state: SessionState,
    peer: PublicIdentity,
}

impl Session {
    /// Starts a session with the owner of `bundle`. The session can seal immediately; its
    /// envelopes are [`EnvelopeKind::Initial`] until the responder's first reply is opened.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`]; [`Error::WeakKey`] if a bundle key is a low-order point.
    pub fn initiate<R: rand_core::CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        bundle: &VerifiedBundle,
        config: SessionConfig,
        rng: &mut R,
        now: Timestamp,
    ) -> Result<Session> {
        config.validate()?;
        let mut session_id = [0u8; 16];
        rng.fill_bytes(&mut session_id);
        let base_key = DhKeyPair::generate(rng);
        let setup = handshake::initiate(identity, bundle, base_key, &session_id)?;
        let mut ratchet = Ratchet {
            role: Role::Initiator,
            own: Vec::new(),
            peer: Some(PeerLatest {
                number: 0,
                ratchet_key: setup.peer_signed_prekey,
                children: ChildSeeds::new(0, setup.root),
            }),
            sending: None,
            receiving: Vec::new(),
            acknowledged: None,
            skipped: SkippedKeys::default(),
            quiet_until: None,
        };
        // Epoch 1 uses the setup's base key as its ratchet key.
        ratchet.start_epoch(Some(setup.base_key), rng, now)?;
        Ok(Session {
            state: SessionState {
                version: SESSION_STATE_VERSION,
                session_id,
                peer: setup.peer.to_bytes(),
                session_ad: setup.session_ad,
                setup: SetupRecord::Initiator {
                    pending: Some(setup.header),
                },
                ratchet,
                config,
            },
            peer: setup.peer,
        })
    }

    /// The responder's session, before its first message is opened.
    pub(crate) fn from_responder_setup(
        setup: handshake::ResponderSetup,
        header: SetupHeader,
        session_id: [u8; 16],
        signed_prekey: &DhKeyPair,
        config: SessionConfig,
    ) -> Session {
        let ratchet = Ratchet {
            role: Role::Responder,
            own: vec![OwnEpoch {
                number: 0,
                key: signed_prekey.clone(),
                children: ChildSeeds::new(0, setup.root),
                superseded_at: None,
            }],
            peer: None,
            sending: None,
            receiving: Vec::new(),
            acknowledged: None,
            skipped: SkippedKeys::default(),
            quiet_until: None,
        };
        Session {
            state: SessionState {
                version: SESSION_STATE_VERSION,
                session_id,
                peer: setup.peer.to_bytes(),
                session_ad: setup.session_ad,
                setup: SetupRecord::Responder { received: header },
                ratchet,
                config,
            },
            peer: setup.peer,
        }
    }

    /// Seals `plaintext` into an envelope for the peer.
    ///
    /// Starts a new epoch first when the peer has moved to a newer epoch, or when the rotation
    /// policy says so (message count or age of the current epoch, measured with `now`).
    ///
    /// # Errors
    /// [`Error::PlaintextTooLarge`]; [`Error::SessionExhausted`]; [`Error::WeakKey`].
    pub fn seal<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
        now: Timestamp,
    ) -> Result<Vec<u8>> {
        if plaintext.len() > envelope::MAX_PLAINTEXT_LEN {
            return Err(Error::PlaintextTooLarge {
                len: plaintext.len(),
                max: envelope::MAX_PLAINTEXT_LEN,
            });
        }
        let state = &mut self.state;
        if state.ratchet.needs_new_epoch(&state.config, now) {
            state.ratchet.start_epoch(None, rng, now)?;
        }
        let (keys, position) = state.ratchet.next_message_keys()?;
        let message = MessageHeader {
            session_id: state.session_id,
            epoch: position.epoch,
            parent: position.parent,
            counter: position.counter,
            previous: position.previous,
            ratchet_key: position.ratchet_key,
        };
        let setup = match &state.setup {
            SetupRecord::Initiator { pending } => pending.as_ref(),
            SetupRecord::Responder { .. } => None,
        };
        let sealed = envelope::seal(message, setup, &keys, &state.session_ad, plaintext)?;
        state.ratchet.prune(&state.config, now);
        Ok(sealed)
    }

    /// Opens an envelope from the peer and returns its plaintext.
    ///
    /// # Errors
    /// Framing: [`Error::TooLarge`], [`Error::Malformed`], [`Error::UnsupportedVersion`],
    /// [`Error::UnsupportedSuite`]. Routing: [`Error::WrongSession`], [`Error::UnexpectedKind`].
    /// Delivery: [`Error::Replay`], [`Error::StaleMessage`], [`Error::UnknownEpoch`],
    /// [`Error::TooFarAhead`]. Authentication: [`Error::DecryptFailed`]. On every error the
    /// session is unchanged.
    pub fn open(&mut self, envelope: &[u8], now: Timestamp) -> Result<Vec<u8>> {
        let parsed = envelope::parse(envelope)?;
        let message = parsed.header.message();
        if message.session_id != self.state.session_id {
            return Err(Error::WrongSession(SessionId(message.session_id)));
        }
        match (&self.state.setup, parsed.header.setup()) {
            (SetupRecord::Initiator { .. }, Some(_)) => {
                return Err(Error::UnexpectedKind(
                    "an initial message for a session this party initiated",
                ));
            }
            (SetupRecord::Responder { received }, Some(setup)) if received != setup => {
                return Err(Error::DecryptFailed);
            }
            _ => {}
        }
        let state = &mut self.state;
        let resolution = state.ratchet.resolve(message, &state.config, now)?;
        let keys = kdf::message_keys(&resolution.message_key);
        let plaintext = envelope::open(&parsed, &keys, &state.session_ad)?;
        state
            .ratchet
            .commit(resolution, message, &state.config, now);
        if let SetupRecord::Initiator { pending } = &mut state.setup {
            *pending = None;
        }
        Ok(plaintext)
    }

    /// This session's id.
    pub fn session_id(&self) -> SessionId {
        SessionId(self.state.session_id)
    }

    /// The peer's identity. Compare its [`safety number`](PublicIdentity::safety_number) out
    /// of band before trusting it.
    pub fn peer_identity(&self) -> &PublicIdentity {
        &self.peer
    }

    /// Which side of the setup this party was on.
    pub fn role(&self) -> Role {
        self.state.ratchet.role
    }

    /// The current sending epoch, if this party has sent yet.
    pub fn sending_epoch(&self) -> Option<u32> {
        self.state.ratchet.sending.as_ref().map(|s| s.epoch)
    }

    /// The peer's latest epoch seen, if any.
    pub fn peer_epoch(&self) -> Option<u32> {
        self.state.ratchet.peer.as_ref().map(|p| p.number)
    }

    /// True once the peer is known to hold the session: always for the responder; for the
    /// initiator, once a reply has been opened (until then envelopes are initial messages).
    pub fn is_established(&self) -> bool {
        !matches!(
            self.state.setup,
            SetupRecord::Initiator { pending: Some(_) }
        )
    }

    /// The kind of envelope the next [`Session::seal`] produces.
    pub fn next_envelope_kind(&self) -> EnvelopeKind {
        if self.is_established() {
            EnvelopeKind::Message
        } else {
            EnvelopeKind::Initial
        }
    }

    /// Number of skipped message keys currently held.
    pub fn skipped_key_count(&self) -> usize {
        self.state.ratchet.skipped.len()
    }

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.state.config
    }

    /// Replaces the configuration (bounds apply from the next operation).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn set_config(&mut self, config: SessionConfig) -> Result<()> {
        config.validate()?;
        self.state.config = config;
        self.state.ratchet.invalidate_prune();
        Ok(())
    }

    /// Serializes the session (versioned). The result is secret: store it encrypted.
    pub fn to_bytes(&self) -> SecretBytes {
        SecretBytes::new(crate::state::encode(&self.state))
    }

    /// Restores a session serialized by [`Session::to_bytes`].
    ///
    /// # Errors
    /// [`Error::InvalidState`] or [`Error::UnsupportedStateVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Session> {
        let state: SessionState = crate::state::decode(bytes, SESSION_STATE_VERSION)?;
        state
            .config
            .validate()
            .map_err(|_| Error::InvalidState("session configuration out of range"))?;
        if !state.ratchet.is_consistent() {
            return Err(Error::InvalidState("inconsistent ratchet state"));
        }
        let peer = PublicIdentity::from_bytes(&state.peer)
            .map_err(|_| Error::InvalidState("peer identity"))?;
        Ok(Session { state, peer })
    }
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.session_id())
            .field("role", &self.role())
            .field("peer", &self.peer)
            .field("sending_epoch", &self.sending_epoch())
            .field("peer_epoch", &self.peer_epoch())
            .field("established", &self.is_established())
            .field("skipped_keys", &self.skipped_key_count())
            .finish_non_exhaustive()
    }
}
