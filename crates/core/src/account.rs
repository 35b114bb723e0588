//! The responder side of session setup: a party's identity and prekey secrets.
//!
//! An [`Account`] holds the identity key pair, the signed prekeys (the current one and retired
//! ones still within their grace period) and the unused one-time prekeys. It publishes their
//! public halves for a server to hand out, and turns an initial envelope into a [`Session`]
//! with [`Account::accept`].
//!
//! *Setup replay.* Each signed prekey keeps the base keys of the sessions set up under it, so a
//! replayed initial message is rejected even when it used no one-time prekey; when a signed
//! prekey's secret is finally deleted, every initial message naming it is rejected anyway.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::SessionConfig;
use crate::envelope;
use crate::error::{Error, Result};
use crate::handshake;
use crate::identity::{IdentityKeyPair, PublicIdentity};
use crate::prekey::{OneTimePrekey, PrekeyBundle, SignedPrekey};
use crate::secret::{DhKeyPair, Secret32, SecretBytes};
use crate::session::Session;
use crate::time::Timestamp;

/// Format version of serialized [`Account`] state.
const ACCOUNT_STATE_VERSION: u16 = 1;

/// Prekey lifecycle settings, with documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountConfig {
    /// How often the signed prekey should be rotated ([`Account::signed_prekey_due`]).
    /// Default: 7 days.
    pub signed_prekey_rotation_secs: u64,
    /// How long a retired signed prekey's secret is kept, so that initial messages sent to it
    /// before the rotation can still be accepted. Default: 30 days (the relay's default store
    /// time).
    pub signed_prekey_grace_secs: u64,
    /// Sessions one signed prekey may set up (the size of its replay cache) before it must be
    /// rotated. Default: 100 000.
    pub max_sessions_per_signed_prekey: u32,
    /// Unused one-time prekeys held at most. Default: 10 000.
    pub max_one_time_prekeys: u32,
    /// Configuration given to sessions created by [`Account::accept`].
    pub session: SessionConfig,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            signed_prekey_rotation_secs: 7 * 24 * 60 * 60,
            signed_prekey_grace_secs: 30 * 24 * 60 * 60,
            max_sessions_per_signed_prekey: 100_000,
            max_one_time_prekeys: 10_000,
            session: SessionConfig::default(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct SignedPrekeyRecord {
    public: SignedPrekey,
    key: DhKeyPair,
    retired_at: Option<Timestamp>,
    used_base_keys: BTreeSet<[u8; 32]>,
}

impl SignedPrekeyRecord {
    fn generate<R: rand_core::CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        id: u32,
        rng: &mut R,
        now: Timestamp,
    ) -> Self {
        let key = DhKeyPair::generate(rng);
        let message = SignedPrekey::signed_message(id, now, key.public());
        SignedPrekeyRecord {
            public: SignedPrekey {
                id,
                public_key: *key.public(),
                created_at: now,
                signature: identity.sign(&[&message]),
            },
            key,
            retired_at: None,
            used_base_keys: BTreeSet::new(),
        }
    }
}

/// The account's prekey material and settings (everything but the identity).
#[derive(Clone, Serialize, Deserialize)]
struct Prekeys {
    current_signed_prekey: SignedPrekeyRecord,
    /// Retired signed prekeys still within their grace period, oldest first.
    retired_signed_prekeys: Vec<SignedPrekeyRecord>,
    one_time_prekeys: BTreeMap<u32, DhKeyPair>,
    next_signed_prekey_id: u32,
    next_one_time_prekey_id: u32,
    config: AccountConfig,
}

#[derive(Serialize, Deserialize)]
struct AccountState {
    version: u16,
    identity_signing: Secret32,
    identity_agreement: Secret32,
    prekeys: Prekeys,
}

/// The result of accepting an initial envelope.
#[non_exhaustive]
pub struct Accepted {
    /// The new session; use it for every later envelope with the same session id.
    pub session: Session,
    /// The plaintext of the initial envelope.
    pub plaintext: Vec<u8>,
    /// Who started the session. Check it against your contacts; compare safety numbers.
    pub peer: PublicIdentity,
}

impl core::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The plaintext is the user's message: never print it, only its length.
        f.debug_struct("Accepted")
            .field("session", &self.session)
            .field("plaintext_len", &self.plaintext.len())
            .field("peer", &self.peer)
            .finish()
    }
}

/// A party's identity and prekey secrets.
pub struct Account {
    identity: IdentityKeyPair,
    prekeys: Prekeys,
}

impl Account {
    /// A new account for `identity`, with a first signed prekey and the default configuration.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        identity: IdentityKeyPair,
        rng: &mut R,
        now: Timestamp,
    ) -> Account {
        let current_signed_prekey = SignedPrekeyRecord::generate(&identity, 1, rng, now);
        Account {
            identity,
            prekeys: Prekeys {
                current_signed_prekey,
                retired_signed_prekeys: Vec::new(),
                one_time_prekeys: BTreeMap::new(),
                next_signed_prekey_id: 2,
                next_one_time_prekey_id: 1,
                config: AccountConfig::default(),
            },
        }
    }

    /// Replaces the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn set_config(&mut self, config: AccountConfig) -> Result<()> {
        config.session.validate()?;
        if config.max_sessions_per_signed_prekey == 0 {
            return Err(Error::InvalidConfig(
                "max_sessions_per_signed_prekey must be positive",
            ));
        }
        self.prekeys.config = config;
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &AccountConfig {
        &self.prekeys.config
    }

    /// The identity key pair.
    pub fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }

    /// The current signed prekey, to publish.
    pub fn signed_prekey(&self) -> &SignedPrekey {
        &self.prekeys.current_signed_prekey.public
    }

    /// True when the current signed prekey is older than the rotation interval.
    pub fn signed_prekey_due(&self, now: Timestamp) -> bool {
        now.secs_since(self.signed_prekey().created_at)
            >= self.prekeys.config.signed_prekey_rotation_secs
    }

    /// Creates a new current signed prekey and retires the previous one (its secret is kept
    /// for the grace period). Returns the new prekey, to publish.
    pub fn rotate_signed_prekey<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: Timestamp,
    ) -> SignedPrekey {
        let id = self.prekeys.next_signed_prekey_id;
        self.prekeys.next_signed_prekey_id = id.wrapping_add(1).max(1);
        let fresh = SignedPrekeyRecord::generate(&self.identity, id, rng, now);
        let mut retired = core::mem::replace(&mut self.prekeys.current_signed_prekey, fresh);
        retired.retired_at = Some(now);
        self.prekeys.retired_signed_prekeys.push(retired);
        self.prekeys.current_signed_prekey.public.clone()
    }

    fn signed_prekeys(&self) -> impl Iterator<Item = &SignedPrekeyRecord> {
        core::iter::once(&self.prekeys.current_signed_prekey)
            .chain(&self.prekeys.retired_signed_prekeys)
    }

    fn signed_prekey_mut(&mut self, id: u32) -> Option<&mut SignedPrekeyRecord> {
        core::iter::once(&mut self.prekeys.current_signed_prekey)
            .chain(&mut self.prekeys.retired_signed_prekeys)
            .find(|r| r.public.id == id)
    }

    /// Generates `count` one-time prekeys and returns their public halves, to publish.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if that would hold more than `max_one_time_prekeys`.
    pub fn generate_one_time_prekeys<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> Result<Vec<OneTimePrekey>> {
        let held = self.prekeys.one_time_prekeys.len();
        if held.saturating_add(count) > self.prekeys.config.max_one_time_prekeys as usize {
            return Err(Error::InvalidConfig(
                "too many one-time prekeys: raise max_one_time_prekeys or publish fewer",
            ));
        }
        let mut published = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.prekeys.next_one_time_prekey_id;
            self.prekeys.next_one_time_prekey_id = id.wrapping_add(1).max(1);
            let key = DhKeyPair::generate(rng);
            published.push(OneTimePrekey {
                id,
                public_key: *key.public(),
            });
            self.prekeys.one_time_prekeys.insert(id, key);
        }
        Ok(published)
    }

    /// Number of one-time prekeys not yet used.
    pub fn one_time_prekey_count(&self) -> usize {
        self.prekeys.one_time_prekeys.len()
    }

    /// A bundle built from this account's own keys (as a server would hand it out), with the
    /// one-time prekey `one_time_prekey_id` if given.
    ///
    /// # Errors
    /// [`Error::UnknownOneTimePrekey`] if that prekey is not held.
    pub fn bundle(&self, one_time_prekey_id: Option<u32>) -> Result<PrekeyBundle> {
        let one_time_prekey = match one_time_prekey_id {
            Some(id) => {
                let key = self
                    .prekeys
                    .one_time_prekeys
                    .get(&id)
                    .ok_or(Error::UnknownOneTimePrekey(id))?;
                Some(OneTimePrekey {
                    id,
                    public_key: *key.public(),
                })
            }
            None => None,
        };
        Ok(PrekeyBundle {
            identity: self.identity.public().clone(),
            signed_prekey: self.signed_prekey().clone(),
            one_time_prekey,
        })
    }

    /// Creates the session an initial envelope starts, and opens that envelope.
    ///
    /// Route envelopes by [`EnvelopeHeader::session_id`](crate::EnvelopeHeader::session_id)
    /// first: only an initial envelope for a session you do not hold belongs here. On success
    /// the one-time prekey it used is consumed; on any error the account is unchanged.
    ///
    /// Persist the returned session and the updated account together (or the session first):
    /// once the account records this setup, the same initial envelope is refused as a replay,
    /// so a session lost before it was saved cannot be recreated from it.
    ///
    /// # Errors
    /// Framing errors as for [`Session::open`]; [`Error::UnexpectedKind`] for a follow-up
    /// message; [`Error::UnknownSignedPrekey`], [`Error::UnknownOneTimePrekey`];
    /// [`Error::Replay`] if this setup was already accepted; [`Error::PrekeyExhausted`];
    /// [`Error::DecryptFailed`] if the envelope is not authentic.
    pub fn accept(&mut self, envelope: &[u8], now: Timestamp) -> Result<Accepted> {
        let parsed = envelope::parse(envelope)?;
        let setup = parsed.header.setup().ok_or(Error::UnexpectedKind(
            "a follow-up message: open it with the session its id names",
        ))?;
        let grace = self.prekeys.config.signed_prekey_grace_secs;
        let record = self
            .signed_prekeys()
            .find(|r| {
                r.public.id == setup.signed_prekey_id
                    && r.retired_at.is_none_or(|t| now.secs_since(t) < grace)
            })
            .ok_or(Error::UnknownSignedPrekey(setup.signed_prekey_id))?;
        if record.used_base_keys.contains(&setup.base_key) {
            return Err(Error::Replay);
        }
        if record.used_base_keys.len()
            >= self.prekeys.config.max_sessions_per_signed_prekey as usize
        {
            return Err(Error::PrekeyExhausted(record.public.id));
        }
        let one_time = match setup.one_time_prekey_id {
            Some(id) => Some((
                id,
                self.prekeys
                    .one_time_prekeys
                    .get(&id)
                    .ok_or(Error::UnknownOneTimePrekey(id))?,
            )),
            None => None,
        };
        let session_id = parsed.header.message().session_id;
        let responder =
            handshake::respond(&self.identity, &record.key, one_time, setup, &session_id)?;
        let peer = responder.peer.clone();
        let mut session = Session::from_responder_setup(
            responder,
            setup.clone(),
            session_id,
            &record.key,
            self.prekeys.config.session.clone(),
        );
        let plaintext = session.open(envelope, now)?;

        // Authentic: commit.
        let spk_id = record.public.id;
        if let Some(record) = self.signed_prekey_mut(spk_id) {
            record.used_base_keys.insert(setup.base_key);
        }
        if let Some(id) = setup.one_time_prekey_id {
            self.prekeys.one_time_prekeys.remove(&id);
        }
        Ok(Accepted {
            session,
            plaintext,
            peer,
        })
    }

    /// Deletes retired signed prekeys whose grace period has passed (with their replay
    /// caches). Initial messages naming them are rejected from then on.
    pub fn prune(&mut self, now: Timestamp) {
        let grace = self.prekeys.config.signed_prekey_grace_secs;
        self.prekeys
            .retired_signed_prekeys
            .retain(|r| r.retired_at.is_none_or(|t| now.secs_since(t) < grace));
    }

    /// Serializes the account (versioned). The result is secret: store it encrypted.
    pub fn to_bytes(&self) -> SecretBytes {
        let mut seed = self.identity.signing_seed();
        let state = AccountState {
            version: ACCOUNT_STATE_VERSION,
            identity_signing: Secret32::take(&mut seed),
            identity_agreement: self.identity.agreement().secret().clone(),
            prekeys: self.prekeys.clone(),
        };
        SecretBytes::new(crate::state::encode(&state))
    }

    /// Restores an account serialized by [`Account::to_bytes`].
    ///
    /// # Errors
    /// [`Error::InvalidState`] or [`Error::UnsupportedStateVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Account> {
        let state: AccountState = crate::state::decode(bytes, ACCOUNT_STATE_VERSION)?;
        let AccountState {
            identity_signing,
            identity_agreement,
            prekeys,
            ..
        } = state;
        let retired_ok = prekeys
            .retired_signed_prekeys
            .iter()
            .all(|r| r.retired_at.is_some());
        if prekeys.current_signed_prekey.retired_at.is_some() || !retired_ok {
            return Err(Error::InvalidState("signed prekeys"));
        }
        prekeys
            .config
            .session
            .validate()
            .map_err(|_| Error::InvalidState("session configuration out of range"))?;
        let identity = IdentityKeyPair::from_secrets(&identity_signing, identity_agreement);
        Ok(Account { identity, prekeys })
    }
}

impl core::fmt::Debug for Account {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Account")
            .field("identity", self.identity.public())
            .field("signed_prekey_id", &self.signed_prekey().id)
            .field(
                "retired_signed_prekeys",
                &self.prekeys.retired_signed_prekeys.len(),
            )
            .field("one_time_prekeys", &self.prekeys.one_time_prekeys.len())
            .finish_non_exhaustive()
    }
}
