//! Pairwise targets: envelope parsing, opening on an established session, and accepting
//! initial messages with the responder's account.

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sealwire_core::{
    Account, BundlePolicy, ControlMessage, EnvelopeHeader, GroupEnvelopeHeader, IdentityKeyPair,
    MAX_ENVELOPE_LEN, SecretBytes, Session, SessionConfig, Timestamp,
};

use crate::{mutate, split_mutation};

/// The fixed time of every fixture and every call.
pub(crate) const NOW: Timestamp = Timestamp::from_unix_secs(1_780_000_000);

/// Plain bytes of a serialized state.
pub(crate) fn plain(secret: &SecretBytes) -> Vec<u8> {
    secret.expose_secret().to_vec()
}

/// Alice and Carol start sessions with Bob; Bob and Alice then talk. Everything is built once
/// from a seeded generator, so it is the same in every run.
pub(crate) struct Pairwise {
    /// Bob's account before any initial message arrived.
    pub(crate) account: Vec<u8>,
    /// Genuine initial envelopes for that account (Alice's two, with a one-time prekey; then
    /// Carol's, without one).
    pub(crate) initials: Vec<Vec<u8>>,
    /// What accepting each of `initials` gives: account after, session, plaintext.
    accepted: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// Bob's established session with Alice.
    pub(crate) session: Vec<u8>,
    /// Genuine envelopes from Alice that this session has not opened yet (each opens).
    pub(crate) pending: Vec<Vec<u8>>,
    /// What opening each of `pending` gives: session after, plaintext.
    opened: Vec<(Vec<u8>, Vec<u8>)>,
    /// Genuine envelopes this session refuses (already opened, or Bob's own).
    pub(crate) refused: Vec<Vec<u8>>,
}

/// The pairwise fixture (built on first use).
pub(crate) fn fixture() -> &'static Pairwise {
    static FIXTURE: OnceLock<Pairwise> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Pairwise {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1_0001);
    let alice = IdentityKeyPair::generate(&mut rng);
    let carol = IdentityKeyPair::generate(&mut rng);
    let mut bob = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, NOW);
    let one_time = bob.generate_one_time_prekeys(2, &mut rng).unwrap();
    let account = plain(&bob.to_bytes());
    let policy = BundlePolicy::default();

    let to_alice = bob.bundle(Some(one_time[0].id)).unwrap();
    let to_alice = to_alice.verify(&policy, NOW).unwrap();
    let mut a =
        Session::initiate(&alice, &to_alice, SessionConfig::default(), &mut rng, NOW).unwrap();
    let i1 = a.seal(b"initial 1", &mut rng, NOW).unwrap();
    let i2 = a.seal(b"initial 2", &mut rng, NOW).unwrap();
    let to_carol = bob.bundle(None).unwrap().verify(&policy, NOW).unwrap();
    let mut c =
        Session::initiate(&carol, &to_carol, SessionConfig::default(), &mut rng, NOW).unwrap();
    let j1 = c.seal(b"initial from carol", &mut rng, NOW).unwrap();
    let initials = vec![i1.clone(), i2.clone(), j1];
    let accepted = initials
        .iter()
        .map(|envelope| {
            let mut account = Account::from_bytes(&account).unwrap();
            let accepted = account.accept(envelope, NOW).unwrap();
            (
                plain(&account.to_bytes()),
                plain(&accepted.session.to_bytes()),
                accepted.plaintext,
            )
        })
        .collect();

    // Bob accepts Alice's first message and they talk, through two epochs.
    let mut b = Account::from_bytes(&account)
        .unwrap()
        .accept(&i1, NOW)
        .unwrap()
        .session;
    let r1 = b.seal(b"reply 1", &mut rng, NOW).unwrap();
    a.open(&r1, NOW).unwrap();
    let m1 = a.seal(b"message 1", &mut rng, NOW).unwrap();
    b.open(&m1, NOW).unwrap();
    let r2 = b.seal(b"reply 2", &mut rng, NOW).unwrap();
    a.open(&r2, NOW).unwrap();
    let m2 = a.seal(b"message 2", &mut rng, NOW).unwrap();
    let m3 = a.seal(b"message 3", &mut rng, NOW).unwrap();
    let m4 = a.seal(b"message 4", &mut rng, NOW).unwrap();
    b.open(&m3, NOW).unwrap();
    let session = plain(&b.to_bytes());

    let mut pending = Vec::new();
    let mut opened = Vec::new();
    let mut refused = vec![i1, m1, m3, r1, r2];
    for envelope in [m2, m4, i2] {
        let mut copy = Session::from_bytes(&session).unwrap();
        match copy.open(&envelope, NOW) {
            Ok(plaintext) => {
                opened.push((plain(&copy.to_bytes()), plaintext));
                pending.push(envelope);
            }
            Err(_) => refused.push(envelope),
        }
    }
    assert!(!pending.is_empty(), "fixture: no pending envelope opens");
    Pairwise {
        account,
        initials,
        accepted,
        session,
        pending,
        opened,
        refused,
    }
}

/// The input of a mutating target: a mutated genuine message or the raw bytes.
pub(crate) fn input(data: &[u8], genuine: &[Vec<u8>]) -> Vec<u8> {
    match split_mutation(data) {
        Some((index, recipe)) => mutate(&genuine[index % genuine.len()], recipe),
        None => data.get(1..).unwrap_or(&[]).to_vec(),
    }
}

/// Parses `data` with every public envelope and control-message parser.
///
/// Checks: no panic; parsing is deterministic; nothing longer than [`MAX_ENVELOPE_LEN`] parses
/// as a pairwise envelope; no byte string is both a pairwise and a group envelope (routing
/// would be ambiguous).
pub fn envelope_decode(data: &[u8]) {
    let pairwise = EnvelopeHeader::parse(data);
    let group = GroupEnvelopeHeader::parse(data);
    let control = ControlMessage::parse(data);
    assert_eq!(EnvelopeHeader::parse(data), pairwise, "pairwise parse");
    assert_eq!(GroupEnvelopeHeader::parse(data), group, "group parse");
    assert_eq!(ControlMessage::parse(data), control, "control parse");
    if data.len() > MAX_ENVELOPE_LEN {
        assert!(pairwise.is_err(), "an over-long pairwise envelope parsed");
    }
    assert!(
        !(pairwise.is_ok() && group.is_ok()),
        "both a pairwise ({pairwise:?}) and a group ({group:?}) envelope"
    );
}

/// Opens the input with Bob's established session (a fresh copy each time).
///
/// First byte: [`MUTATE`](crate::MUTATE) set → second byte picks one of the genuine pending
/// envelopes and the rest mutates it; otherwise the rest is the envelope.
///
/// Checks: a success is exactly what opening a genuine pending envelope does (same bytes in,
/// same plaintext and session state out); an error leaves the serialized session byte for
/// byte unchanged, and a genuine envelope then still opens.
pub fn session_open(data: &[u8]) {
    let fixture = fixture();
    let envelope = input(data, &fixture.pending);
    let mut session = Session::from_bytes(&fixture.session).unwrap();
    match session.open(&envelope, NOW) {
        Ok(plaintext) => {
            let after = plain(&session.to_bytes());
            let genuine =
                fixture
                    .pending
                    .iter()
                    .zip(&fixture.opened)
                    .any(|(bytes, (state, text))| {
                        *bytes == envelope && *state == after && *text == plaintext
                    });
            assert!(
                genuine,
                "a non-genuine envelope opened ({} bytes)",
                envelope.len()
            );
        }
        Err(error) => {
            assert!(
                plain(&session.to_bytes()) == fixture.session,
                "a failed open ({error:?}) changed the session"
            );
            let (state, text) = &fixture.opened[0];
            match session.open(&fixture.pending[0], NOW) {
                Ok(plaintext) => assert_eq!(&plaintext, text, "genuine plaintext"),
                Err(error) => panic!("a genuine envelope no longer opens: {error:?}"),
            }
            assert!(
                plain(&session.to_bytes()) == *state,
                "the genuine envelope's effect differs"
            );
        }
    }
}

/// Gives the input to Bob's account as an initial message (a fresh copy each time).
///
/// First byte as for [`session_open`], the genuine messages being the initial envelopes.
///
/// Checks: a success is exactly what accepting a genuine initial envelope does (account,
/// session and plaintext); an error leaves the serialized account unchanged (no prekey
/// consumed, no replay entry), and a genuine initial envelope is then still accepted.
pub fn initial_message(data: &[u8]) {
    let fixture = fixture();
    let envelope = input(data, &fixture.initials);
    let mut account = Account::from_bytes(&fixture.account).unwrap();
    match account.accept(&envelope, NOW) {
        Ok(accepted) => {
            let outcome = (
                plain(&account.to_bytes()),
                plain(&accepted.session.to_bytes()),
                accepted.plaintext,
            );
            let genuine = fixture
                .initials
                .iter()
                .zip(&fixture.accepted)
                .any(|(bytes, expected)| *bytes == envelope && *expected == outcome);
            assert!(
                genuine,
                "a non-genuine initial envelope was accepted ({} bytes)",
                envelope.len()
            );
        }
        Err(error) => {
            assert!(
                plain(&account.to_bytes()) == fixture.account,
                "a failed accept ({error:?}) changed the account"
            );
            let accepted = match account.accept(&fixture.initials[0], NOW) {
                Ok(accepted) => accepted,
                Err(error) => panic!("a genuine initial envelope is no longer accepted: {error:?}"),
            };
            let outcome = (
                plain(&account.to_bytes()),
                plain(&accepted.session.to_bytes()),
                accepted.plaintext,
            );
            assert!(
                outcome == fixture.accepted[0],
                "the genuine initial envelope's effect differs"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use sealwire_core::Error;

    use super::*;
    use crate::mutation::edit;

    /// The mutation mode gets past the framing: a flipped last byte (inside the MAC) is
    /// refused by the authentication check, not by the parser.
    #[test]
    fn mutated_envelopes_reach_the_authentication_check() {
        let fixture = fixture();
        let last = |e: &[u8]| u16::try_from(e.len() - 1).unwrap();
        let pending = &fixture.pending[0];
        let bad = mutate(pending, &edit(0, last(pending), 1));
        let mut session = Session::from_bytes(&fixture.session).unwrap();
        assert_eq!(session.open(&bad, NOW), Err(Error::DecryptFailed));
        let initial = &fixture.initials[0];
        let bad = mutate(initial, &edit(0, last(initial), 1));
        let mut account = Account::from_bytes(&fixture.account).unwrap();
        assert_eq!(
            account.accept(&bad, NOW).map(|a| a.plaintext),
            Err(Error::DecryptFailed)
        );
    }
}
