//! Checker: `frames` of relay.json. Each frame is built from its listed fields, then compared
//! with what `frame::decode` makes of the hex, and encoded back to the same hex.

use sealwire_core::{PrekeyBundle, Timestamp};
use sealwire_transport::frame::{
    self, Accepted, Ack, Bundle, Challenge, ClientFrame, Delivery, ErrorFrame, FetchBundle, Hello,
    MailboxId, MessageId, PrekeyStatus, PrekeyUpload, Ready, Send, ServerFrame, Subject,
};
use serde_json::Value;

use crate::Field;

fn u32_at(v: &Value, key: &str) -> u32 {
    u32::try_from(v.u64_at(key)).unwrap()
}

fn mailbox(text: &Value) -> MailboxId {
    MailboxId(crate::from_hex(text.as_str().unwrap()).try_into().unwrap())
}

fn client_frame(frame: &str, f: &Value) -> ClientFrame {
    match frame {
        "hello" => ClientFrame::Hello(Hello {
            identity: f.array_at("identity"),
            server_name: f.str_at("server_name").to_owned(),
            token: f.opt_str_at("token").map(str::to_owned),
            signature: f.array_at("signature"),
        }),
        "send" => ClientFrame::Send(Send {
            id: MessageId(f.array_at("id")),
            to: f.list_at("to").iter().map(mailbox).collect(),
            payload: f.bytes_at("payload"),
        }),
        "ack" => ClientFrame::Ack(Ack {
            deliveries: (f.list_at("deliveries").iter())
                .map(|id| id.as_u64().unwrap())
                .collect(),
        }),
        "upload_prekeys" => {
            let spk = f.at("signed_prekey");
            ClientFrame::UploadPrekeys(PrekeyUpload {
                request: u32_at(f, "request"),
                signed_prekey: sealwire_core::SignedPrekey {
                    id: u32_at(spk, "id"),
                    public_key: spk.array_at("public_key"),
                    created_at: Timestamp::from_unix_secs(spk.u64_at("created_at")),
                    signature: spk.array_at("signature"),
                },
                one_time: (f.list_at("one_time").iter())
                    .map(|k| sealwire_core::OneTimePrekey {
                        id: u32_at(k, "id"),
                        public_key: k.array_at("public_key"),
                    })
                    .collect(),
            })
        }
        "fetch_bundle" => ClientFrame::FetchBundle(FetchBundle {
            request: u32_at(f, "request"),
            mailbox: mailbox(f.at("mailbox")),
        }),
        other => panic!("unknown client frame {other}"),
    }
}

fn server_frame(frame: &str, f: &Value) -> ServerFrame {
    match frame {
        "challenge" => ServerFrame::Challenge(Challenge {
            nonce: f.array_at("nonce"),
        }),
        "ready" => ServerFrame::Ready(Ready {
            mailbox: mailbox(f.at("mailbox")),
            max_payload: u32_at(f, "max_payload"),
            max_recipients: u32_at(f, "max_recipients"),
            one_time_prekeys: u32_at(f, "one_time_prekeys"),
        }),
        "accepted" => ServerFrame::Accepted(Accepted {
            id: MessageId(f.array_at("id")),
        }),
        "deliver" => ServerFrame::Deliver(Delivery {
            delivery: f.u64_at("delivery"),
            from: mailbox(f.at("from")),
            id: MessageId(f.array_at("id")),
            payload: f.bytes_at("payload"),
        }),
        "bundle" => ServerFrame::Bundle(Bundle {
            request: u32_at(f, "request"),
            bundle: f.bytes_at("bundle"),
        }),
        "prekeys" => ServerFrame::Prekeys(PrekeyStatus {
            request: match f.at("request") {
                Value::Null => None,
                request => Some(u32::try_from(request.as_u64().unwrap()).unwrap()),
            },
            one_time_prekeys: u32_at(f, "one_time_prekeys"),
            low: f.bool_at("low"),
        }),
        "error" => {
            let subject = f.at("subject");
            ServerFrame::Error(ErrorFrame {
                code: u16::try_from(f.u64_at("code")).unwrap(),
                subject: match subject.str_at("kind") {
                    "send" => Subject::Send(MessageId(subject.array_at("id"))),
                    "ack" => Subject::Ack,
                    "upload" => Subject::Upload(u32_at(subject, "request")),
                    "fetch" => Subject::Fetch(u32_at(subject, "request")),
                    other => panic!("unknown subject {other}"),
                },
            })
        }
        other => panic!("unknown server frame {other}"),
    }
}

/// Every variant of both enums appears; each frame decodes to its fields and re-encodes to its
/// hex; its first byte is its index; bundles decode and verify, and belong to bob.
pub(crate) fn frames(file: &Value) {
    let frames = file.at("frames");
    let identities = file.list_at("identities");
    let bob = identities
        .iter()
        .find(|i| i.str_at("name") == "bob")
        .unwrap();
    let now = Timestamp::from_unix_secs(file.u64_at("now"));
    for (direction, variants) in [
        (
            "client",
            &["hello", "send", "ack", "upload_prekeys", "fetch_bundle"][..],
        ),
        (
            "server",
            &[
                "challenge",
                "ready",
                "accepted",
                "deliver",
                "bundle",
                "prekeys",
                "error",
            ][..],
        ),
    ] {
        let records = frames.list_at(direction);
        for (index, variant) in variants.iter().enumerate() {
            assert!(
                records
                    .iter()
                    .any(|r| r.str_at("frame") == *variant && r.u64_at("index") == index as u64),
                "no {direction} frame {variant} with index {index}"
            );
        }
        for record in records {
            let name = record.str_at("name");
            let bytes = record.bytes_at("hex");
            let frame = record.str_at("frame");
            assert_eq!(u64::from(bytes[0]), record.u64_at("index"), "{name}: index");
            let fields = record.at("fields");
            let encoded = if direction == "client" {
                let expected = client_frame(frame, fields);
                let decoded = frame::decode::<ClientFrame>(&bytes)
                    .unwrap_or_else(|err| panic!("{name} does not decode: {err}"));
                assert_eq!(decoded, expected, "{name}: decoded fields");
                frame::encode(&expected).unwrap()
            } else {
                let expected = server_frame(frame, fields);
                let decoded = frame::decode::<ServerFrame>(&bytes)
                    .unwrap_or_else(|err| panic!("{name} does not decode: {err}"));
                assert_eq!(decoded, expected, "{name}: decoded fields");
                frame::encode(&expected).unwrap()
            };
            assert_eq!(
                crate::to_hex(&encoded),
                record.str_at("hex"),
                "{name}: encoding"
            );
            if frame == "bundle" {
                let bundle = PrekeyBundle::from_bytes(&fields.bytes_at("bundle")).unwrap();
                assert_eq!(
                    bundle.identity.to_bytes().to_vec(),
                    bob.bytes_at("public_identity")
                );
                bundle.verify(&Default::default(), now).unwrap();
            }
        }
    }
}

/// Every malformed encoding is rejected by `frame::decode` in its direction.
pub(crate) fn malformed(file: &Value) {
    let cases = file.at("frames").list_at("malformed");
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case.str_at("name");
        let bytes = case.bytes_at("hex");
        let rejected = match case.str_at("direction") {
            "client" => frame::decode::<ClientFrame>(&bytes).is_err(),
            "server" => frame::decode::<ServerFrame>(&bytes).is_err(),
            other => panic!("{name}: unknown direction {other}"),
        };
        assert!(rejected, "{name}: malformed bytes decode");
    }
}
