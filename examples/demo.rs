//! The sealwire demo: two parties set up a session asynchronously and talk, and for every
//! envelope the demo prints what a relay sees (size, session id, epoch, the bytes) beside what
//! the recipient reads. Everything runs in memory with fresh keys; nothing is written to disk.
//!
//! Run with `cargo run --example demo`.

use std::time::{SystemTime, UNIX_EPOCH};

use sealwire::core::{
    Account, BundlePolicy, EnvelopeHeader, IdentityKeyPair, PrekeyBundle, Session, SessionConfig,
    Timestamp,
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
    println!("\nThe relay saw only sizes, random session ids, epoch numbers and ciphertext.");
    Ok(())
}
