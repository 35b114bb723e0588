//! The group target: control messages received by a member of a three-member group, and
//! welcomes given to a joining member.

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sealwire_core::{
    Change, ControlKind, ControlMessage, ControlOutcome, Group, GroupConfig, IdentityKeyPair,
    MemberRole, PublicIdentity,
};

use crate::pairwise::{NOW, input, plain};

/// Flag in the first input byte of [`group_control`]: give the input to `Group::join` (as the
/// member being added) instead of `Group::receive`.
pub(crate) const JOIN: u8 = 0x04;

/// A group of A (admin), B and C (members); D is an outsider whom one of the genuine commits
/// adds. The fuzzed member is B.
pub(crate) struct GroupFixture {
    /// Who a message may claim to come from: A, C, D, B (the low two bits of the first byte).
    pub(crate) peers: [PublicIdentity; 4],
    /// B's group state.
    pub(crate) state: Vec<u8>,
    /// Genuine control messages: A's and C's sender keys, commits by A (rotation, adding D)
    /// and by C (rotation, leaving), and the welcome that adds D.
    pub(crate) genuine: Vec<Vec<u8>>,
    /// Every `(peer, message, state after)` for which B's `receive` succeeds.
    received: Vec<(usize, usize, Vec<u8>)>,
    /// Every `(peer, message, state)` for which D's `join` succeeds.
    joined: Vec<(usize, usize, Vec<u8>)>,
    /// Index in `genuine` of A's rotation, which B applies after a refusal.
    rotation: usize,
    /// Genuine group envelopes (C's and A's first messages), for the decoding seeds.
    pub(crate) envelopes: Vec<Vec<u8>>,
}

/// The group fixture (built on first use).
pub(crate) fn fixture() -> &'static GroupFixture {
    static FIXTURE: OnceLock<GroupFixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> GroupFixture {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1_0002);
    let config = GroupConfig::default;
    let [a, b, c, d] = [(); 4].map(|()| IdentityKeyPair::generate(&mut rng));
    let peers = [&a, &c, &d, &b].map(|identity| identity.public().clone());

    let mut group_a = Group::create(&a, config(), &mut rng, NOW).unwrap();
    let changes = [
        Change::Add(b.public().clone(), MemberRole::Member),
        Change::Add(c.public().clone(), MemberRole::Member),
    ];
    let out = group_a.commit(&a, &changes, NOW).unwrap();
    let welcome = out.welcome.unwrap();
    let mut group_b = Group::join(b.public(), a.public(), &welcome, config(), NOW).unwrap();
    let mut group_c = Group::join(c.public(), a.public(), &welcome, config(), NOW).unwrap();
    let sealed = group_c.seal(b"from C", &mut rng, NOW).unwrap();
    let mut envelopes = vec![sealed.envelope];
    let key_c = sealed.sender_key.unwrap().message.expose_secret().to_vec();
    group_b.receive(c.public(), &key_c, NOW).unwrap();
    // B's state; A's first sender key and C's second (the same chain, re-sent) are pending.
    let sealed = group_a.seal(b"from A", &mut rng, NOW).unwrap();
    envelopes.push(sealed.envelope);
    let key_a = sealed.sender_key.unwrap().message.expose_secret().to_vec();
    let key_c_again = group_c
        .sender_key_message(&mut rng)
        .unwrap()
        .message
        .expose_secret()
        .to_vec();
    let state = plain(&group_b.to_bytes());

    let commit_by = |group: &Group, who: &IdentityKeyPair, changes: &[Change]| {
        let mut copy = Group::from_bytes(group.to_bytes().expose_secret()).unwrap();
        copy.commit(who, changes, NOW).unwrap()
    };
    let rotate_a = commit_by(&group_a, &a, &[]).commit;
    let add_d = commit_by(
        &group_a,
        &a,
        &[Change::Add(d.public().clone(), MemberRole::Member)],
    );
    let rotate_c = commit_by(&group_c, &c, &[]).commit;
    let leave_c = commit_by(&group_c, &c, &[Change::Remove(c.public().clone())]).commit;
    let genuine = vec![
        rotate_a,
        key_a,
        key_c_again,
        add_d.commit,
        rotate_c,
        leave_c,
        add_d.welcome.unwrap(),
    ];

    let mut received = Vec::new();
    let mut joined = Vec::new();
    for (peer, from) in peers.iter().enumerate() {
        for (index, message) in genuine.iter().enumerate() {
            let mut copy = Group::from_bytes(&state).unwrap();
            if copy.receive(from, message, NOW).is_ok() {
                received.push((peer, index, plain(&copy.to_bytes())));
            }
            if let Ok(group) = Group::join(d.public(), from, message, config(), NOW) {
                joined.push((peer, index, plain(&group.to_bytes())));
            }
        }
    }
    assert!(
        received
            .iter()
            .any(|&(peer, index, _)| peer == 0 && index == 0),
        "fixture: B cannot apply A's rotation"
    );
    assert!(!joined.is_empty(), "fixture: D cannot join");
    GroupFixture {
        peers,
        state,
        genuine,
        received,
        joined,
        rotation: 0,
        envelopes,
    }
}

/// Gives the input to B's group (a fresh copy each time) as a control message, or with
/// `JOIN` (0x04) set to `Group::join` as D.
///
/// First byte: the low two bits pick the claimed sender (A, C, D, B); `JOIN` (0x04); and
/// [`MUTATE`](crate::MUTATE) as for [`session_open`](crate::session_open), over the genuine
/// control messages.
///
/// Checks: a successful commit or welcome is exactly the effect of a genuine one from that
/// sender (same bytes, same resulting state); a sender key (unsigned: the pairwise session
/// authenticates it) is installed only from a member other than B (one for an epoch or branch
/// B does not hold may be kept aside from anyone); a refused `receive` leaves B's serialized group unchanged, and A's
/// genuine rotation is then still applied.
pub fn group_control(data: &[u8]) {
    let fixture = fixture();
    let flags = data.first().copied().unwrap_or(0);
    let peer = usize::from(flags & 3);
    let from = &fixture.peers[peer];
    let message = input(data, &fixture.genuine);
    let is_genuine = |index: usize| fixture.genuine[index] == message;
    if flags & JOIN != 0 {
        let me = &fixture.peers[2];
        if let Ok(group) = Group::join(me, from, &message, GroupConfig::default(), NOW) {
            let state = plain(&group.to_bytes());
            let expected = fixture
                .joined
                .iter()
                .any(|(p, index, s)| *p == peer && is_genuine(*index) && *s == state);
            assert!(expected, "a non-genuine welcome was accepted");
        }
        return;
    }
    let mut group = Group::from_bytes(&fixture.state).unwrap();
    match group.receive(from, &message, NOW) {
        Ok(outcome) => {
            let kind = ControlMessage::parse(&message).map(|parsed| parsed.kind());
            if kind == Ok(ControlKind::SenderKey) {
                // A sender key is not signed: the pairwise session with `from` authenticates
                // it, so any well-formed key from a current member other than B is valid (a
                // mutated one is just another key that member could have drawn). A key for an
                // epoch or branch B does not hold is only kept aside (bounded per sender);
                // membership is checked when it is installed.
                match outcome {
                    ControlOutcome::SenderKeyAdded { sender, .. } => assert!(
                        (peer == 0 || peer == 1) && sender == *from,
                        "a sender key from a non-member or from B itself was installed"
                    ),
                    ControlOutcome::SenderKeyPending { .. } | ControlOutcome::Duplicate => {}
                    other => panic!("a sender key gave {other:?}"),
                }
                return;
            }
            let state = plain(&group.to_bytes());
            let expected = fixture
                .received
                .iter()
                .any(|(p, index, s)| *p == peer && is_genuine(*index) && *s == state);
            assert!(expected, "a non-genuine commit was applied ({outcome:?})");
        }
        Err(error) => {
            assert!(
                plain(&group.to_bytes()) == fixture.state,
                "a refused control message ({error:?}) changed the group"
            );
            let rotation = &fixture.genuine[fixture.rotation];
            if let Err(error) = group.receive(&fixture.peers[0], rotation, NOW) {
                panic!("A's genuine rotation is refused after a refusal: {error:?}");
            }
        }
    }
}
