//! The sealwire demo: two parties set up a session asynchronously and talk, then three form a
//! group, and for every envelope the demo prints what a relay sees (size, session or group id,
//! epoch, the bytes) beside what the recipient reads. Everything runs in memory with fresh
//! keys; nothing is written to disk.
//!
//! Run with `cargo run --example protocol_tour`.

use std::time::{SystemTime, UNIX_EPOCH};

use sealwire::core::{
    Account, BundlePolicy, Change, EnvelopeHeader, Group, GroupConfig, GroupEnvelopeHeader,
    IdentityKeyPair, MemberRole, PrekeyBundle, Session, SessionConfig, Timestamp,
};

type DemoResult = Result<(), Box<dyn std::error::Error>>;

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    let shown: String = bytes.iter().take(n).map(|b| format!("{b:02x}")).collect();
    format!("{shown}…")
}

/// Prints the relay's view of an envelope.
fn relay_view(label: &str, envelope: &[u8]) -> DemoResult {
    let header = EnvelopeHeader::parse(envelope)?;
    println!(
        "  relay sees  {label:<22} {:>5} bytes  {:?}  session {}  epoch {:>2} #{:<3} {}",
        envelope.len(),
        header.kind(),
        header.session_id(),
        header.epoch(),
        header.counter(),
        hex_prefix(&envelope[envelope.len() - 48..], 12),
    );
    Ok(())
}

fn main() -> DemoResult {
    let mut rng = rand::rng();
    let start = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let now = Timestamp::from_unix_secs(start);

    println!("== identities and prekeys");
    let mut bob = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, now);
    let published = bob.generate_one_time_prekeys(5, &mut rng)?;
    let alice_identity = IdentityKeyPair::generate(&mut rng);
    println!(
        "  Bob publishes signed prekey {} and {} one-time prekeys",
        bob.signed_prekey().id,
        published.len()
    );

    // The bundle travels through the server as bytes; Alice verifies it before use.
    let bundle_bytes = bob.bundle(Some(published[0].id))?.to_bytes();
    println!("  bundle handed to Alice: {} bytes", bundle_bytes.len());
    let bundle = PrekeyBundle::from_bytes(&bundle_bytes)?.verify(&BundlePolicy::default(), now)?;

    println!("\n== Alice writes while Bob is offline");
    let mut config = SessionConfig::default();
    config.rotate_after_messages = 3; // small, to show rotation epochs in a short demo
    let mut alice = Session::initiate(&alice_identity, &bundle, config, &mut rng, now)?;
    let offline: Vec<Vec<u8>> = [
        "Hi Bob, it's Alice.",
        "Are you there?",
        "Third one.",
        "A fourth starts a new epoch.",
    ]
    .iter()
    .map(|text| alice.seal(text.as_bytes(), &mut rng, now))
    .collect::<Result<_, _>>()?;
    for (i, envelope) in offline.iter().enumerate() {
        relay_view(&format!("alice -> bob [{i}]"), envelope)?;
    }

    println!("\n== Bob comes online; messages arrive out of order");
    let accepted = bob.accept(&offline[1], now)?;
    let mut bob_session = accepted.session;
    println!(
        "  Bob reads  [1] {:?}  (session created from it; one-time prekey consumed: {} left)",
        String::from_utf8_lossy(&accepted.plaintext),
        bob.one_time_prekey_count()
    );
    for i in [3, 0, 2] {
        let text = bob_session.open(&offline[i], now)?;
        println!("  Bob reads  [{i}] {:?}", String::from_utf8_lossy(&text));
    }
    match bob_session.open(&offline[0], now) {
        Err(e) => println!("  replayed [0] rejected: {e}"),
        Ok(_) => return Err("a replay was accepted".into()),
    }
    let fresh = alice.seal(b"This one is tampered with in transit.", &mut rng, now)?;
    let mut tampered = fresh.clone();
    tampered[40] ^= 1;
    match bob_session.open(&tampered, now) {
        Err(e) => println!("  tampered envelope rejected: {e}"),
        Ok(_) => return Err("a tampered envelope was accepted".into()),
    }
    let text = bob_session.open(&fresh, now)?;
    println!(
        "  the untampered original still opens: {:?}",
        String::from_utf8_lossy(&text)
    );

    println!("\n== they compare safety numbers out of band");
    println!(
        "  Alice sees {}",
        alice.peer_identity().safety_number(alice_identity.public())
    );
    println!(
        "  Bob sees   {}",
        bob_session
            .peer_identity()
            .safety_number(bob.identity().public())
    );

    println!("\n== a conversation: every turn is a new epoch");
    let later = now.plus_secs(60);
    for (i, (from_bob, from_alice)) in [
        ("Hello Alice!", "Great to hear from you."),
        ("All good here.", "Talk soon."),
    ]
    .iter()
    .enumerate()
    {
        let envelope = bob_session.seal(from_bob.as_bytes(), &mut rng, later)?;
        relay_view(&format!("bob -> alice [{i}]"), &envelope)?;
        println!(
            "  Alice reads {:?}",
            String::from_utf8_lossy(&alice.open(&envelope, later)?)
        );
        let envelope = alice.seal(from_alice.as_bytes(), &mut rng, later)?;
        relay_view(&format!("alice -> bob [{i}]"), &envelope)?;
        println!(
            "  Bob reads   {:?}",
            String::from_utf8_lossy(&bob_session.open(&envelope, later)?)
        );
    }

    println!("\n== state persists: Bob's session is saved and restored");
    let saved = bob_session.to_bytes();
    println!("  saved {saved:?}");
    let mut restored = Session::from_bytes(saved.expose_secret())?;
    let envelope = alice.seal(b"Still there after the restart?", &mut rng, later)?;
    println!(
        "  Bob (restored) reads {:?}",
        String::from_utf8_lossy(&restored.open(&envelope, later)?)
    );
    group_demo(now)?;
    println!(
        "\nThe relay saw only sizes, random session and group ids, epoch numbers and ciphertext."
    );
    Ok(())
}

/// Two pairwise sessions between `a` and the owner of `b`, established (one message each way).
fn pair(
    a: &IdentityKeyPair,
    b: &mut Account,
    rng: &mut rand::rngs::ThreadRng,
    now: Timestamp,
) -> Result<(Session, Session), Box<dyn std::error::Error>> {
    let bundle = b.bundle(None)?.verify(&BundlePolicy::default(), now)?;
    let mut a_side = Session::initiate(a, &bundle, SessionConfig::default(), rng, now)?;
    let hello = a_side.seal(b"hello", rng, now)?;
    let mut b_side = b.accept(&hello, now)?.session;
    a_side.open(&b_side.seal(b"hello", rng, now)?, now)?;
    Ok((a_side, b_side))
}

/// Carries a control message over a pairwise session: sealed by `from`, opened by `to`.
fn carry(
    from: &mut Session,
    to: &mut Session,
    message: &[u8],
    rng: &mut rand::rngs::ThreadRng,
    now: Timestamp,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    Ok(to.open(&from.seal(message, rng, now)?, now)?)
}

/// Prints the relay's view of a group envelope.
fn group_relay_view(label: &str, envelope: &[u8]) -> DemoResult {
    let header = GroupEnvelopeHeader::parse(envelope)?;
    println!(
        "  relay sees  {label:<22} {:>5} bytes  group {}  epoch {} sender #{} msg #{}  {}",
        envelope.len(),
        header.group_id(),
        header.epoch(),
        header.sender(),
        header.counter(),
        hex_prefix(&envelope[envelope.len() - 48..], 12),
    );
    Ok(())
}

/// Alice creates a group with Bob and Carol; everyone talks; Alice removes Carol, who cannot
/// read what follows. Control messages travel over pairwise sessions, group envelopes through
/// the relay.
fn group_demo(now: Timestamp) -> DemoResult {
    let mut rng = rand::rng();
    println!("\n== a group: Alice (admin), Bob and Carol");
    let alice = IdentityKeyPair::generate(&mut rng);
    let mut bob = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, now);
    let mut carol = Account::new(IdentityKeyPair::generate(&mut rng), &mut rng, now);
    let (mut alice_bob, mut bob_alice) = pair(&alice, &mut bob, &mut rng, now)?;
    let (mut alice_carol, mut carol_alice) = pair(&alice, &mut carol, &mut rng, now)?;
    let (mut bob_carol, mut carol_bob) = pair(bob.identity(), &mut carol, &mut rng, now)?;

    let mut alice_group = Group::create(&alice, GroupConfig::default(), &mut rng, now)?;
    let adds = [
        Change::Add(bob.identity().public().clone(), MemberRole::Member),
        Change::Add(carol.identity().public().clone(), MemberRole::Member),
    ];
    let commit = alice_group.commit(&alice, &adds, now)?;
    let welcome = commit.welcome.ok_or("an add produces a welcome")?;
    let to_bob = carry(&mut alice_bob, &mut bob_alice, &welcome, &mut rng, now)?;
    let to_carol = carry(&mut alice_carol, &mut carol_alice, &welcome, &mut rng, now)?;
    let config = GroupConfig::default();
    let bob_id = bob.identity().public().clone();
    let carol_id = carol.identity().public().clone();
    let mut bob_group = Group::join(&bob_id, alice.public(), &to_bob, config.clone(), now)?;
    let mut carol_group = Group::join(&carol_id, alice.public(), &to_carol, config, now)?;
    println!(
        "  welcome: {} bytes over each pairwise session; group {} in epoch {} with {} members",
        welcome.len(),
        alice_group.id(),
        alice_group.epoch(),
        alice_group.members().len()
    );

    // Alice's first group message carries her sender key, over the pairwise sessions.
    let sealed = alice_group.seal(b"Welcome to the group!", &mut rng, now)?;
    let key = sealed.sender_key.ok_or("first message of the epoch")?;
    let secret = key.message.expose_secret();
    let for_bob = carry(&mut alice_bob, &mut bob_alice, secret, &mut rng, now)?;
    let for_carol = carry(&mut alice_carol, &mut carol_alice, secret, &mut rng, now)?;
    bob_group.receive(alice.public(), &for_bob, now)?;
    carol_group.receive(alice.public(), &for_carol, now)?;
    println!(
        "  Alice's sender key went to {} members over pairwise sessions",
        key.recipients.len()
    );
    group_relay_view("alice -> group", &sealed.envelope)?;
    let read = |group: &mut Group, envelope: &[u8]| -> Result<String, sealwire::core::Error> {
        Ok(String::from_utf8_lossy(&group.open(envelope, now)?.plaintext).into_owned())
    };
    println!(
        "  Bob reads   {:?}",
        read(&mut bob_group, &sealed.envelope)?
    );
    println!(
        "  Carol reads {:?}",
        read(&mut carol_group, &sealed.envelope)?
    );

    // Bob answers; his sender key goes to Alice and Carol first.
    let sealed = bob_group.seal(b"Thanks, Alice.", &mut rng, now)?;
    let key = sealed.sender_key.ok_or("first message of the epoch")?;
    let secret = key.message.expose_secret();
    let for_alice = carry(&mut bob_alice, &mut alice_bob, secret, &mut rng, now)?;
    let for_carol = carry(&mut bob_carol, &mut carol_bob, secret, &mut rng, now)?;
    alice_group.receive(&bob_id, &for_alice, now)?;
    carol_group.receive(&bob_id, &for_carol, now)?;
    group_relay_view("bob -> group", &sealed.envelope)?;
    println!(
        "  Alice reads {:?}",
        read(&mut alice_group, &sealed.envelope)?
    );
    println!(
        "  Carol reads {:?}",
        read(&mut carol_group, &sealed.envelope)?
    );

    println!("\n== Alice removes Carol: a new epoch with fresh sender keys");
    let commit = alice_group.commit(&alice, &[Change::Remove(carol_id.clone())], now)?;
    let to_bob = carry(
        &mut alice_bob,
        &mut bob_alice,
        &commit.commit,
        &mut rng,
        now,
    )?;
    let to_carol = carry(
        &mut alice_carol,
        &mut carol_alice,
        &commit.commit,
        &mut rng,
        now,
    )?;
    bob_group.receive(alice.public(), &to_bob, now)?;
    carol_group.receive(alice.public(), &to_carol, now)?;
    println!(
        "  epoch {}; Carol still a member by her own state? {}",
        bob_group.epoch(),
        carol_group.is_member()
    );
    let sealed = alice_group.seal(b"Carol cannot read this.", &mut rng, now)?;
    let key = sealed.sender_key.ok_or("first message of the new epoch")?;
    println!(
        "  Alice's new sender key goes to {} member(s) only",
        key.recipients.len()
    );
    let for_bob = carry(
        &mut alice_bob,
        &mut bob_alice,
        key.message.expose_secret(),
        &mut rng,
        now,
    )?;
    bob_group.receive(alice.public(), &for_bob, now)?;
    group_relay_view("alice -> group", &sealed.envelope)?;
    println!(
        "  Bob reads   {:?}",
        read(&mut bob_group, &sealed.envelope)?
    );
    match carol_group.open(&sealed.envelope, now) {
        Err(e) => println!("  Carol cannot: {e}"),
        Ok(_) => return Err("a removed member read a message sent after her removal".into()),
    }
    Ok(())
}
