//! The seed corpora: small inputs built from genuine protocol objects of the fixtures, the
//! same on every run. `cargo run -p sealwire-fuzz-harness --example seeds` writes them to
//! `fuzz/corpus/<target>/`.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sealwire_core::Account;
use sealwire_transport::auth::{self, ChannelBinding};
use sealwire_transport::frame::{
    self, Accepted, Ack, Bundle, Challenge, ClientFrame, Delivery, ErrorFrame, FetchBundle,
    MailboxId, MessageId, PrekeyStatus, PrekeyUpload, Ready, Send, ServerFrame, Subject,
};

use crate::MUTATE;
use crate::group::{self, JOIN};
use crate::mutation::edit;
use crate::pairwise::{self, NOW};
use crate::relay::{ABRUPT, auth_mode, chunk, encode_chunk, fixed_identity};

/// One seed: a file name and its bytes.
pub type Seed = (String, Vec<u8>);

/// Every target's seeds, by target name (in [`TARGETS`](crate::TARGETS) order).
pub fn all() -> Vec<(&'static str, Vec<Seed>)> {
    vec![
        ("envelope_decode", envelope_decode()),
        ("session_open", session_open()),
        ("initial_message", initial_message()),
        ("group_control", group_control()),
        ("relay_frame", relay_frame()),
        ("relay_connection", relay_connection()),
    ]
}

fn seed(name: impl Into<String>, bytes: Vec<u8>) -> Seed {
    (name.into(), bytes)
}

fn prefixed(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(body);
    out
}

/// A mutation-mode input: genuine message `index`, then `edits`.
fn recipe(flags: u8, index: u8, edits: &[[u8; 4]]) -> Vec<u8> {
    let mut out = vec![flags | MUTATE, index];
    for e in edits {
        out.extend_from_slice(e);
    }
    out
}

fn envelope_decode() -> Vec<Seed> {
    let pairwise = pairwise::fixture();
    let group = group::fixture();
    let mut seeds = vec![seed("empty", Vec::new())];
    for (i, e) in pairwise.initials.iter().enumerate() {
        seeds.push(seed(format!("pairwise-initial-{i}"), e.clone()));
    }
    for (i, e) in pairwise.pending.iter().enumerate() {
        seeds.push(seed(format!("pairwise-followup-{i}"), e.clone()));
    }
    for (i, e) in group.envelopes.iter().enumerate() {
        seeds.push(seed(format!("group-envelope-{i}"), e.clone()));
    }
    for (i, m) in group.genuine.iter().enumerate() {
        seeds.push(seed(format!("control-{i}"), m.clone()));
    }
    let first = &pairwise.initials[0];
    seeds.push(seed(
        "pairwise-truncated",
        first[..first.len() / 2].to_vec(),
    ));
    let envelope = &group.envelopes[0];
    seeds.push(seed(
        "group-header-only",
        envelope[..envelope.len().min(64)].to_vec(),
    ));
    seeds
}

fn session_open() -> Vec<Seed> {
    let fixture = pairwise::fixture();
    let mut seeds = Vec::new();
    for (i, e) in fixture.pending.iter().enumerate() {
        seeds.push(seed(format!("raw-pending-{i}"), prefixed(&[0], e)));
    }
    for (i, e) in fixture.refused.iter().take(3).enumerate() {
        seeds.push(seed(format!("raw-refused-{i}"), prefixed(&[0], e)));
    }
    let len = u16::try_from(fixture.pending[0].len()).unwrap_or(u16::MAX);
    seeds.push(seed("mutate-none", recipe(0, 0, &[])));
    for (name, e) in [
        ("mutate-version", edit(0, 0, 1)),
        ("mutate-kind", edit(0, 1, 1)),
        ("mutate-session-id", edit(0, 4, 0x80)),
        ("mutate-counter", edit(0, 22, 1)),
        ("mutate-last", edit(0, len - 1, 1)),
        ("mutate-truncate", edit(2, len / 2, 0)),
        ("mutate-append", edit(5, 0, 0)),
    ] {
        seeds.push(seed(name, recipe(0, 1, &[e])));
    }
    seeds
}

fn initial_message() -> Vec<Seed> {
    let fixture = pairwise::fixture();
    let mut seeds = Vec::new();
    for (i, e) in fixture.initials.iter().enumerate() {
        seeds.push(seed(format!("raw-initial-{i}"), prefixed(&[0], e)));
    }
    seeds.push(seed("raw-followup", prefixed(&[0], &fixture.pending[0])));
    let len = u16::try_from(fixture.initials[0].len()).unwrap_or(u16::MAX);
    for (name, index, e) in [
        ("mutate-kind", 0, edit(0, 1, 1)),
        ("mutate-setup", 0, edit(0, 30, 0x10)),
        ("mutate-prekey-id", 2, edit(1, 24, 0xff)),
        ("mutate-sealed-identity", 1, edit(0, 100, 0x40)),
        ("mutate-last", 0, edit(0, len - 1, 1)),
        ("mutate-truncate", 2, edit(2, len / 3, 0)),
    ] {
        seeds.push(seed(name, recipe(0, index, &[e])));
    }
    seeds
}

fn group_control() -> Vec<Seed> {
    let fixture = group::fixture();
    let mut seeds = Vec::new();
    // From A (peer 0) every genuine message; C's own from C (peer 1).
    for (i, m) in fixture.genuine.iter().enumerate() {
        seeds.push(seed(format!("raw-from-a-{i}"), prefixed(&[0], m)));
    }
    seeds.push(seed("raw-from-c-key", prefixed(&[1], &fixture.genuine[2])));
    seeds.push(seed(
        "raw-from-c-rotate",
        prefixed(&[1], &fixture.genuine[4]),
    ));
    seeds.push(seed("raw-from-d-key", prefixed(&[2], &fixture.genuine[1])));
    let welcome = fixture.genuine.len() - 1;
    seeds.push(seed(
        "join-welcome",
        prefixed(&[JOIN], &fixture.genuine[welcome]),
    ));
    let welcome = u8::try_from(welcome).unwrap_or(0);
    for (name, flags, index, e) in [
        ("mutate-commit-epoch", 0, 0, edit(0, 20, 1)),
        ("mutate-commit-signature", 0, 3, edit(0, 200, 4)),
        ("mutate-key-chain", 0, 1, edit(0, 60, 2)),
        ("mutate-welcome-parent", JOIN, welcome, edit(0, 40, 1)),
        ("mutate-welcome-truncate", JOIN, welcome, edit(2, 300, 0)),
    ] {
        seeds.push(seed(name, recipe(flags, index, &[e])));
    }
    seeds
}

fn client_frames() -> Vec<(&'static str, ClientFrame)> {
    let identity = fixed_identity();
    let mailbox = MailboxId::of(identity.public());
    let challenge = Challenge { nonce: [7; 32] };
    let hello = auth::respond(
        &identity,
        &challenge,
        "localhost",
        &ChannelBinding::None,
        None,
    )
    .expect("hello");
    let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1_0004);
    let mut account = Account::new(fixed_identity(), &mut rng, NOW);
    let one_time = account
        .generate_one_time_prekeys(2, &mut rng)
        .expect("one-time prekeys");
    vec![
        ("hello", ClientFrame::Hello(hello)),
        (
            "send",
            ClientFrame::Send(Send {
                id: MessageId([1; 16]),
                to: vec![mailbox],
                payload: pairwise::fixture().pending[0].clone(),
            }),
        ),
        (
            "ack",
            ClientFrame::Ack(Ack {
                deliveries: vec![1, 2, 300],
            }),
        ),
        (
            "upload-prekeys",
            ClientFrame::UploadPrekeys(PrekeyUpload {
                request: 9,
                signed_prekey: account.signed_prekey().clone(),
                one_time,
            }),
        ),
        (
            "fetch-bundle",
            ClientFrame::FetchBundle(FetchBundle {
                request: 5,
                mailbox,
            }),
        ),
    ]
}

fn relay_frame() -> Vec<Seed> {
    let identity = fixed_identity();
    let mailbox = MailboxId::of(identity.public());
    let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1_0004);
    let mut account = Account::new(fixed_identity(), &mut rng, NOW);
    let one_time = account
        .generate_one_time_prekeys(1, &mut rng)
        .expect("one-time prekeys");
    let bundle = account
        .bundle(Some(one_time[0].id))
        .expect("bundle")
        .to_bytes();
    let server = [
        (
            "challenge",
            ServerFrame::Challenge(Challenge { nonce: [3; 32] }),
        ),
        (
            "ready",
            ServerFrame::Ready(Ready {
                mailbox,
                max_payload: 71_680,
                max_recipients: 450,
                one_time_prekeys: 3,
            }),
        ),
        (
            "accepted",
            ServerFrame::Accepted(Accepted {
                id: MessageId([2; 16]),
            }),
        ),
        (
            "deliver",
            ServerFrame::Deliver(Delivery {
                delivery: 129,
                from: mailbox,
                id: MessageId([4; 16]),
                payload: b"opaque".to_vec(),
            }),
        ),
        ("bundle", ServerFrame::Bundle(Bundle { request: 5, bundle })),
        (
            "prekeys",
            ServerFrame::Prekeys(PrekeyStatus {
                request: None,
                one_time_prekeys: 2,
                low: true,
            }),
        ),
        (
            "error",
            ServerFrame::Error(ErrorFrame {
                code: 5,
                subject: Subject::Send(MessageId([5; 16])),
            }),
        ),
    ];
    let mut seeds: Vec<Seed> = client_frames()
        .into_iter()
        .map(|(name, f)| {
            seed(
                format!("client-{name}"),
                frame::encode(&f).expect("encodes"),
            )
        })
        .collect();
    seeds.extend(server.into_iter().map(|(name, f)| {
        seed(
            format!("server-{name}"),
            frame::encode(&f).expect("encodes"),
        )
    }));
    seeds
}

fn relay_connection() -> Vec<Seed> {
    let frames: Vec<(&str, Vec<u8>)> = client_frames()
        .into_iter()
        .map(|(name, f)| (name, frame::encode(&f).expect("encodes")))
        .collect();
    let get = |name: &str| {
        frames
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    };
    let binary = |bytes: &[u8]| encode_chunk(chunk::BINARY, bytes);
    let concat = |parts: &[Vec<u8>]| parts.concat();
    let identity = fixed_identity();
    let mailbox = MailboxId::of(identity.public());
    let too_many = ClientFrame::Send(Send {
        id: MessageId([6; 16]),
        to: (0..9u8).map(|i| MailboxId([i; 32])).collect(),
        payload: b"x".to_vec(),
    });
    let duplicate = ClientFrame::Send(Send {
        id: MessageId([7; 16]),
        to: vec![mailbox, mailbox],
        payload: b"x".to_vec(),
    });
    let large = ClientFrame::Send(Send {
        id: MessageId([8; 16]),
        to: vec![mailbox],
        payload: vec![0xab; 4097],
    });
    let encode = |f: &ClientFrame| frame::encode(f).expect("encodes");
    let (none, fixed, fresh) = (auth_mode::NONE, auth_mode::FIXED, auth_mode::FRESH);
    vec![
        seed("unauthenticated-close", vec![none]),
        seed("unauthenticated-abrupt", vec![none | ABRUPT]),
        seed(
            "unauthenticated-stale-hello",
            prefixed(&[none], &binary(&get("hello"))),
        ),
        seed(
            "unauthenticated-garbage",
            prefixed(&[none], &binary(b"\x00\x01garbage")),
        ),
        seed(
            "unauthenticated-send",
            prefixed(&[none], &binary(&get("send"))),
        ),
        seed("fixed-close", vec![fixed]),
        seed(
            "fixed-send-to-self-and-ack",
            prefixed(
                &[fixed],
                &concat(&[binary(&get("send")), binary(&get("ack"))]),
            ),
        ),
        seed(
            "fixed-prekeys-then-fetch",
            prefixed(
                &[fixed],
                &concat(&[binary(&get("upload-prekeys")), binary(&get("fetch-bundle"))]),
            ),
        ),
        seed(
            "fixed-ping-text",
            prefixed(
                &[fixed],
                &concat(&[
                    encode_chunk(chunk::PING, b"ping"),
                    encode_chunk(chunk::TEXT, b"text"),
                ]),
            ),
        ),
        seed(
            "fixed-second-hello",
            prefixed(&[fixed], &binary(&get("hello"))),
        ),
        seed(
            "fixed-malformed-frame",
            prefixed(&[fixed], &binary(&[1, 0xff, 0xff, 0xff, 0xff, 0x7f])),
        ),
        seed(
            "fixed-bad-sends",
            prefixed(
                &[fixed],
                &concat(&[
                    binary(&encode(&too_many)),
                    binary(&encode(&duplicate)),
                    binary(&encode(&large)),
                ]),
            ),
        ),
        seed(
            "fixed-send-abrupt",
            prefixed(&[fixed | ABRUPT], &binary(&get("send"))),
        ),
        seed(
            "fresh-send-to-fixed",
            prefixed(&[fresh], &binary(&get("send"))),
        ),
        seed(
            "fresh-fetch",
            prefixed(&[fresh], &binary(&get("fetch-bundle"))),
        ),
    ]
}
