//! Asynchronous session setup: an X3DH-style key agreement that the initiator runs from the
//! responder's prekey bundle alone, while the responder is offline.
//!
//! ```text
//! DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B) (if any)
//! transcript = IK_A keys ‖ IK_B keys ‖ be32(spk id) ‖ SPK_B ‖ [0x01 ‖ be32(opk id) ‖ OPK_B | 0x00] ‖ EK_A ‖ session id
//! RK_setup   = HKDF(salt 0^32, 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], "sealwire/v1/setup/root" ‖ transcript)
//! ```
//!
//! *Identity hiding.* The initial message must tell the responder who the initiator is, but
//! nothing in a header may identify the sender to a relay. So the initiator's public identity
//! travels sealed: AES-256-GCM (empty associated data; the context is bound in the key
//! derivation's info) under a key derived from `DH2 ‖ DH3 [‖ DH4]`, which only the holder of the
//! responder's identity and signed prekey can compute. The responder opens it,
//! verifies the identity's binding signature, and only then computes `DH1`.
//!
//! *Authentication.* `RK_setup` depends on `DH1` (needs the initiator's identity key or the
//! responder's signed prekey) and `DH2` (the responder's identity key or the ephemeral key), and
//! the session AD binds both identities; so a message that opens under the session proves its
//! sender holds the corresponding identity key (implicit mutual authentication).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

use crate::envelope::{SEALED_IDENTITY_LEN, SetupHeader};
use crate::error::{Error, Result};
use crate::identity::{IdentityKeyPair, PUBLIC_IDENTITY_LEN, PublicIdentity};
use crate::kdf;
use crate::prekey::VerifiedBundle;
use crate::secret::{DhKeyPair, Secret32};

/// What the initiator ends setup with.
pub(crate) struct InitiatorSetup {
    pub(crate) base_key: DhKeyPair,
    pub(crate) header: SetupHeader,
    pub(crate) root: Secret32,
    pub(crate) session_ad: [u8; 32],
    pub(crate) peer: PublicIdentity,
    pub(crate) peer_signed_prekey: [u8; 32],
}

/// What the responder ends setup with.
pub(crate) struct ResponderSetup {
    pub(crate) root: Secret32,
    pub(crate) session_ad: [u8; 32],
    pub(crate) peer: PublicIdentity,
}

/// The public values both sides hash into `RK_setup`.
pub(crate) struct Transcript<'a> {
    pub(crate) initiator: &'a PublicIdentity,
    pub(crate) responder: &'a PublicIdentity,
    pub(crate) signed_prekey_id: u32,
    pub(crate) signed_prekey: &'a [u8; 32],
    pub(crate) one_time_prekey: Option<(u32, &'a [u8; 32])>,
    pub(crate) base_key: &'a [u8; 32],
    pub(crate) session_id: &'a [u8; 16],
}

impl Transcript<'_> {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * 2 + 4 + 32 + 37 + 32 + 16);
        out.extend_from_slice(&self.initiator.key_bytes());
        out.extend_from_slice(&self.responder.key_bytes());
        out.extend_from_slice(&self.signed_prekey_id.to_be_bytes());
        out.extend_from_slice(self.signed_prekey);
        match self.one_time_prekey {
            Some((id, key)) => {
                out.push(1);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(key);
            }
            None => out.push(0),
        }
        out.extend_from_slice(self.base_key);
        out.extend_from_slice(self.session_id);
        out
    }
}

fn concat(parts: &[&Secret32]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(32 * parts.len()));
    for part in parts {
        out.extend_from_slice(part.expose());
    }
    out
}

fn seal_context<'a>(
    base_key: &'a [u8; 32],
    responder_keys: &'a [u8; 64],
    signed_prekey: &'a [u8; 32],
) -> [&'a [u8]; 3] {
    [base_key, responder_keys, signed_prekey]
}

/// Runs the initiator's side of setup with `base_key` as the ephemeral key.
pub(crate) fn initiate(
    identity: &IdentityKeyPair,
    bundle: &VerifiedBundle,
    base_key: DhKeyPair,
    session_id: &[u8; 16],
) -> Result<InitiatorSetup> {
    let bundle = bundle.bundle();
    let responder = &bundle.identity;
    let spk = &bundle.signed_prekey;
    let dh1 = identity.agreement().diffie_hellman(&spk.public_key)?;
    let dh2 = base_key.diffie_hellman(responder.agreement_key())?;
    let dh3 = base_key.diffie_hellman(&spk.public_key)?;
    let dh4 = match &bundle.one_time_prekey {
        Some(opk) => Some(base_key.diffie_hellman(&opk.public_key)?),
        None => None,
    };

    let mut seal_ikm = vec![&dh2, &dh3];
    seal_ikm.extend(dh4.as_ref());
    let responder_keys = responder.key_bytes();
    let seal_key = kdf::identity_seal_key(
        &concat(&seal_ikm),
        &seal_context(base_key.public(), &responder_keys, &spk.public_key),
    );
    let mut sealed = [0u8; SEALED_IDENTITY_LEN];
    sealed[..PUBLIC_IDENTITY_LEN].copy_from_slice(&identity.public().to_bytes());
    let tag = Aes256Gcm::new(&seal_key.key.into())
        .encrypt_inout_detached(
            &Nonce::from(seal_key.nonce),
            &[],
            (&mut sealed[..PUBLIC_IDENTITY_LEN]).into(),
        )
        .map_err(|_| Error::Malformed("identity seal"))?;
    sealed[PUBLIC_IDENTITY_LEN..].copy_from_slice(&tag);

    let mut root_ikm = vec![&dh1, &dh2, &dh3];
    root_ikm.extend(dh4.as_ref());
    let one_time = bundle
        .one_time_prekey
        .as_ref()
        .map(|o| (o.id, &o.public_key));
    let transcript = Transcript {
        initiator: identity.public(),
        responder,
        signed_prekey_id: spk.id,
        signed_prekey: &spk.public_key,
        one_time_prekey: one_time,
        base_key: base_key.public(),
        session_id,
    };
    let root = kdf::setup_root(&concat(&root_ikm), &transcript.to_bytes());
    let header = SetupHeader {
        base_key: *base_key.public(),
        signed_prekey_id: spk.id,
        one_time_prekey_id: bundle.one_time_prekey.as_ref().map(|o| o.id),
        sealed_identity: sealed,
    };
    Ok(InitiatorSetup {
        base_key,
        header,
        root,
        session_ad: kdf::session_ad(&identity.public().key_bytes(), &responder_keys),
        peer: responder.clone(),
        peer_signed_prekey: spk.public_key,
    })
}

/// Runs the responder's side of setup: opens the sealed identity and derives `RK_setup`.
///
/// Failures caused by the (unauthenticated) message are [`Error::DecryptFailed`].
pub(crate) fn respond(
    identity: &IdentityKeyPair,
    signed_prekey: &DhKeyPair,
    one_time_prekey: Option<(u32, &DhKeyPair)>,
    header: &SetupHeader,
    session_id: &[u8; 16],
) -> Result<ResponderSetup> {
    let base_key = &header.base_key;
    let opaque = |_| Error::DecryptFailed;
    let dh2 = identity
        .agreement()
        .diffie_hellman(base_key)
        .map_err(opaque)?;
    let dh3 = signed_prekey.diffie_hellman(base_key).map_err(opaque)?;
    let dh4 = match one_time_prekey {
        Some((_, opk)) => Some(opk.diffie_hellman(base_key).map_err(opaque)?),
        None => None,
    };
    let mut seal_ikm = vec![&dh2, &dh3];
    seal_ikm.extend(dh4.as_ref());
    let responder_keys = identity.public().key_bytes();
    let seal_key = kdf::identity_seal_key(
        &concat(&seal_ikm),
        &seal_context(base_key, &responder_keys, signed_prekey.public()),
    );
    let mut opened = Zeroizing::new([0u8; PUBLIC_IDENTITY_LEN]);
    opened.copy_from_slice(&header.sealed_identity[..PUBLIC_IDENTITY_LEN]);
    let tag = Tag::try_from(&header.sealed_identity[PUBLIC_IDENTITY_LEN..])
        .map_err(|_| Error::DecryptFailed)?;
    Aes256Gcm::new(&seal_key.key.into())
        .decrypt_inout_detached(
            &Nonce::from(seal_key.nonce),
            &[],
            opened.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| Error::DecryptFailed)?;
    let peer = PublicIdentity::from_bytes(opened.as_ref()).map_err(|_| Error::DecryptFailed)?;

    let dh1 = signed_prekey
        .diffie_hellman(peer.agreement_key())
        .map_err(opaque)?;
    let mut root_ikm = vec![&dh1, &dh2, &dh3];
    root_ikm.extend(dh4.as_ref());
    let transcript = Transcript {
        initiator: &peer,
        responder: identity.public(),
        signed_prekey_id: header.signed_prekey_id,
        signed_prekey: signed_prekey.public(),
        one_time_prekey: one_time_prekey.map(|(id, key)| (id, key.public())),
        base_key,
        session_id,
    };
    let root = kdf::setup_root(&concat(&root_ikm), &transcript.to_bytes());
    Ok(ResponderSetup {
        root,
        session_ad: kdf::session_ad(&peer.key_bytes(), &responder_keys),
        peer,
    })
}
