//! Generator: every client and server frame (spec 6) with its fields and encoding, and
//! encodings that must be rejected.

use rand_chacha::ChaCha20Rng;
use sealwire_core::rand_core::SeedableRng;
use sealwire_core::{Account, Timestamp};
use sealwire_transport::auth::{self, ChannelBinding, ServerAuth};
use sealwire_transport::frame::{
    self, Accepted, Ack, Bundle, Challenge, ClientFrame, Delivery, ErrorFrame, FetchBundle,
    MailboxId, MessageId, PrekeyStatus, PrekeyUpload, Ready, Send, ServerFrame, Subject,
};
use sealwire_transport::token::BearerToken;
use serde::Serialize;

use crate::gen_malformed;
use crate::generate::{NOW, Party, party};
use crate::to_hex;

/// The seed of Bob's prekeys.
const PREKEY_SEED: u64 = 0x7265_6c61_7920;

#[derive(Serialize, PartialEq)]
pub(crate) struct Frames {
    client: Vec<FrameRecord>,
    server: Vec<FrameRecord>,
    malformed: Vec<gen_malformed::Malformed>,
}

#[derive(Serialize, PartialEq)]
struct FrameRecord {
    name: &'static str,
    frame: &'static str,
    index: u8,
    description: &'static str,
    fields: Fields,
    hex: String,
}

/// The fields of a frame, named as in the spec (byte strings in hex).
#[derive(Serialize, PartialEq)]
#[serde(untagged)]
enum Fields {
    Hello {
        identity: String,
        server_name: String,
        token: Option<String>,
        signature: String,
    },
    Send {
        id: String,
        to: Vec<String>,
        payload: String,
    },
    Ack {
        deliveries: Vec<u64>,
    },
    UploadPrekeys {
        request: u32,
        signed_prekey: SignedPrekeyFields,
        one_time: Vec<OneTimeFields>,
    },
    FetchBundle {
        request: u32,
        mailbox: String,
    },
    Challenge {
        nonce: String,
    },
    Ready {
        mailbox: String,
        max_payload: u32,
        max_recipients: u32,
        one_time_prekeys: u32,
    },
    Accepted {
        id: String,
    },
    Deliver {
        delivery: u64,
        from: String,
        id: String,
        payload: String,
    },
    Bundle {
        request: u32,
        bundle: String,
    },
    Prekeys {
        request: Option<u32>,
        one_time_prekeys: u32,
        low: bool,
    },
    Error {
        code: u16,
        subject: SubjectFields,
    },
}

#[derive(Serialize, PartialEq)]
struct SignedPrekeyFields {
    id: u32,
    public_key: String,
    created_at: u64,
    signature: String,
}

#[derive(Serialize, PartialEq)]
struct OneTimeFields {
    id: u32,
    public_key: String,
}

#[derive(Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SubjectFields {
    Send { id: String },
    Ack,
    Upload { request: u32 },
    Fetch { request: u32 },
}

fn client_fields(frame: &ClientFrame) -> (&'static str, u8, Fields) {
    match frame {
        ClientFrame::Hello(h) => (
            "hello",
            0,
            Fields::Hello {
                identity: to_hex(&h.identity),
                server_name: h.server_name.clone(),
                token: h.token.clone(),
                signature: to_hex(&h.signature),
            },
        ),
        ClientFrame::Send(s) => (
            "send",
            1,
            Fields::Send {
                id: to_hex(&s.id.0),
                to: s.to.iter().map(MailboxId::to_hex).collect(),
                payload: to_hex(&s.payload),
            },
        ),
        ClientFrame::Ack(a) => (
            "ack",
            2,
            Fields::Ack {
                deliveries: a.deliveries.clone(),
            },
        ),
        ClientFrame::UploadPrekeys(u) => (
            "upload_prekeys",
            3,
            Fields::UploadPrekeys {
                request: u.request,
                signed_prekey: SignedPrekeyFields {
                    id: u.signed_prekey.id,
                    public_key: to_hex(&u.signed_prekey.public_key),
                    created_at: u.signed_prekey.created_at.as_unix_secs(),
                    signature: to_hex(&u.signed_prekey.signature),
                },
                one_time: (u.one_time.iter())
                    .map(|k| OneTimeFields {
                        id: k.id,
                        public_key: to_hex(&k.public_key),
                    })
                    .collect(),
            },
        ),
        ClientFrame::FetchBundle(f) => (
            "fetch_bundle",
            4,
            Fields::FetchBundle {
                request: f.request,
                mailbox: f.mailbox.to_hex(),
            },
        ),
    }
}

fn server_fields(frame: &ServerFrame) -> (&'static str, u8, Fields) {
    match frame {
        ServerFrame::Challenge(c) => (
            "challenge",
            0,
            Fields::Challenge {
                nonce: to_hex(&c.nonce),
            },
        ),
        ServerFrame::Ready(r) => (
            "ready",
            1,
            Fields::Ready {
                mailbox: r.mailbox.to_hex(),
                max_payload: r.max_payload,
                max_recipients: r.max_recipients,
                one_time_prekeys: r.one_time_prekeys,
            },
        ),
        ServerFrame::Accepted(a) => (
            "accepted",
            2,
            Fields::Accepted {
                id: to_hex(&a.id.0),
            },
        ),
        ServerFrame::Deliver(d) => (
            "deliver",
            3,
            Fields::Deliver {
                delivery: d.delivery,
                from: d.from.to_hex(),
                id: to_hex(&d.id.0),
                payload: to_hex(&d.payload),
            },
        ),
        ServerFrame::Bundle(b) => (
            "bundle",
            4,
            Fields::Bundle {
                request: b.request,
                bundle: to_hex(&b.bundle),
            },
        ),
        ServerFrame::Prekeys(p) => (
            "prekeys",
            5,
            Fields::Prekeys {
                request: p.request,
                one_time_prekeys: p.one_time_prekeys,
                low: p.low,
            },
        ),
        ServerFrame::Error(e) => (
            "error",
            6,
            Fields::Error {
                code: e.code,
                subject: match e.subject {
                    Subject::Send(id) => SubjectFields::Send { id: to_hex(&id.0) },
                    Subject::Ack => SubjectFields::Ack,
                    Subject::Upload(request) => SubjectFields::Upload { request },
                    Subject::Fetch(request) => SubjectFields::Fetch { request },
                },
            },
        ),
    }
}

fn record(
    name: &'static str,
    description: &'static str,
    (frame, index, fields): (&'static str, u8, Fields),
    hex: Vec<u8>,
) -> FrameRecord {
    assert_eq!(hex[0], index, "{name}: the first byte is the variant index");
    FrameRecord {
        name,
        frame,
        index,
        description,
        fields,
        hex: to_hex(&hex),
    }
}

fn client(name: &'static str, description: &'static str, frame: ClientFrame) -> FrameRecord {
    let bytes = frame::encode(&frame).unwrap();
    assert_eq!(
        frame::decode::<ClientFrame>(&bytes).unwrap(),
        frame,
        "{name}"
    );
    record(name, description, client_fields(&frame), bytes)
}

fn server(name: &'static str, description: &'static str, frame: ServerFrame) -> FrameRecord {
    let bytes = frame::encode(&frame).unwrap();
    assert_eq!(
        frame::decode::<ServerFrame>(&bytes).unwrap(),
        frame,
        "{name}"
    );
    record(name, description, server_fields(&frame), bytes)
}

fn hello(alice: &Party, token: Option<&str>) -> ClientFrame {
    let nonce: [u8; 32] = core::array::from_fn(|i| i as u8);
    let (_, challenge) = ServerAuth::with_nonce(nonce, ChannelBinding::Tls([0x11; 32]));
    let token = token.map(|token| BearerToken::new(token.to_owned()));
    let binding = ChannelBinding::Tls([0x11; 32]);
    ClientFrame::Hello(
        auth::respond(
            &alice.keys,
            &challenge,
            "relay.example",
            &binding,
            token.as_ref(),
        )
        .unwrap(),
    )
}

pub(crate) fn frames(alice: &Party, bob: &Party) -> Frames {
    let mut rng = ChaCha20Rng::seed_from_u64(PREKEY_SEED);
    let mut account = Account::new(
        party("bob").keys,
        &mut rng,
        Timestamp::from_unix_secs(NOW - 86_400),
    );
    let one_time = account.generate_one_time_prekeys(2, &mut rng).unwrap();
    let signed_prekey = account.signed_prekey().clone();
    let bundle_with = account.bundle(Some(one_time[0].id)).unwrap().to_bytes();
    let bundle_without = account.bundle(None).unwrap().to_bytes();
    let id = MessageId([7; 16]);
    let spec_nonce: [u8; 32] = core::array::from_fn(|i| i as u8);
    let long_payload: Vec<u8> = (0..200u8).collect();

    let client = vec![
        client(
            "hello",
            "The hello of the spec_example authentication case (token \"t\").",
            hello(alice, Some("t")),
        ),
        client(
            "hello_without_token",
            "A hello without a token (Option none: one 00 byte).",
            hello(alice, None),
        ),
        client(
            "send_spec_example",
            "The send example of section 6.3.",
            ClientFrame::Send(Send {
                id,
                to: vec![MailboxId([1; 32]), MailboxId([2; 32])],
                payload: b"abc".to_vec(),
            }),
        ),
        client(
            "send_to_bob",
            "A send of a 200-byte payload (length varint c8 01) to bob's mailbox.",
            ClientFrame::Send(Send {
                id: MessageId([0x5e; 16]),
                to: vec![bob.mailbox()],
                payload: long_payload,
            }),
        ),
        client(
            "ack_spec_example",
            "The ack example of section 6.3 (300 = varint ac 02).",
            ClientFrame::Ack(Ack {
                deliveries: vec![1, 300],
            }),
        ),
        client(
            "ack_extreme_ids",
            "Delivery ids 0 and 2^64 - 1 (a 10-byte varint).",
            ClientFrame::Ack(Ack {
                deliveries: vec![0, u64::MAX],
            }),
        ),
        client(
            "upload_prekeys",
            "Bob uploads his signed prekey and two one-time prekeys (the bundle frames below hand \
             them out).",
            ClientFrame::UploadPrekeys(PrekeyUpload {
                request: 0,
                signed_prekey: signed_prekey.clone(),
                one_time: one_time.clone(),
            }),
        ),
        client(
            "upload_signed_prekey_only",
            "An upload without one-time prekeys (an empty Vec: one 00 byte).",
            ClientFrame::UploadPrekeys(PrekeyUpload {
                request: 1,
                signed_prekey,
                one_time: Vec::new(),
            }),
        ),
        client(
            "fetch_bundle",
            "Alice asks for bob's bundle (request id 300 = varint ac 02).",
            ClientFrame::FetchBundle(FetchBundle {
                request: 300,
                mailbox: bob.mailbox(),
            }),
        ),
    ];
    let server = vec![
        server(
            "challenge_spec_example",
            "The challenge example of section 6.3.",
            ServerFrame::Challenge(Challenge { nonce: spec_nonce }),
        ),
        server(
            "ready_spec_example",
            "The ready example of section 6.3: default limits, no prekeys.",
            ServerFrame::Ready(Ready {
                mailbox: MailboxId([0xaa; 32]),
                max_payload: 71_680,
                max_recipients: 450,
                one_time_prekeys: 0,
            }),
        ),
        server(
            "ready",
            "Alice's connection is ready; two one-time prekeys left.",
            ServerFrame::Ready(Ready {
                mailbox: alice.mailbox(),
                max_payload: 65_536,
                max_recipients: 100,
                one_time_prekeys: 2,
            }),
        ),
        server(
            "accepted_spec_example",
            "The accepted example of section 6.3.",
            ServerFrame::Accepted(Accepted { id }),
        ),
        server(
            "deliver",
            "A delivery to bob from alice.",
            ServerFrame::Deliver(Delivery {
                delivery: 1,
                from: alice.mailbox(),
                id,
                payload: b"abc".to_vec(),
            }),
        ),
        server(
            "deliver_large_id",
            "A delivery with id 2^32 (a 5-byte varint) and an empty payload.",
            ServerFrame::Deliver(Delivery {
                delivery: 1 << 32,
                from: bob.mailbox(),
                id: MessageId([0x5e; 16]),
                payload: Vec::new(),
            }),
        ),
        server(
            "bundle_with_one_time_prekey",
            "Bob's bundle (sealwire.md 7.3) with his first one-time prekey, answering \
             fetch_bundle 300.",
            ServerFrame::Bundle(Bundle {
                request: 300,
                bundle: bundle_with,
            }),
        ),
        server(
            "bundle_without_one_time_prekey",
            "Bob's bundle once his pool is empty.",
            ServerFrame::Bundle(Bundle {
                request: 2,
                bundle: bundle_without,
            }),
        ),
        server(
            "prekeys_answer",
            "The answer to upload_prekeys 0: two one-time prekeys, not low.",
            ServerFrame::Prekeys(PrekeyStatus {
                request: Some(0),
                one_time_prekeys: 2,
                low: false,
            }),
        ),
        server(
            "prekeys_spec_example",
            "The unsolicited low-water warning of section 6.3.",
            ServerFrame::Prekeys(PrekeyStatus {
                request: None,
                one_time_prekeys: 3,
                low: true,
            }),
        ),
        server(
            "error_spec_example",
            "The error example of section 6.3: payload_too_large for send(07^16).",
            ServerFrame::Error(ErrorFrame {
                code: 2,
                subject: Subject::Send(id),
            }),
        ),
        server(
            "error_ack",
            "bad_request for an ack (subject without a field).",
            ServerFrame::Error(ErrorFrame {
                code: 1,
                subject: Subject::Ack,
            }),
        ),
        server(
            "error_upload",
            "rate_limited for upload_prekeys 0.",
            ServerFrame::Error(ErrorFrame {
                code: 6,
                subject: Subject::Upload(0),
            }),
        ),
        server(
            "error_fetch",
            "no_bundle for fetch_bundle 300.",
            ServerFrame::Error(ErrorFrame {
                code: 9,
                subject: Subject::Fetch(300),
            }),
        ),
        server(
            "error_unknown_code",
            "An error code this version does not define (300): decodes, and is treated as unknown.",
            ServerFrame::Error(ErrorFrame {
                code: 300,
                subject: Subject::Fetch(2),
            }),
        ),
    ];
    let malformed = gen_malformed::malformed(&|name| hex_of(&client, &server, name));
    Frames {
        client,
        server,
        malformed,
    }
}

/// The encoding of the frame named `name`.
fn hex_of(client: &[FrameRecord], server: &[FrameRecord], name: &str) -> Vec<u8> {
    let record = client
        .iter()
        .chain(server)
        .find(|r| r.name == name)
        .unwrap();
    crate::from_hex(&record.hex)
}
