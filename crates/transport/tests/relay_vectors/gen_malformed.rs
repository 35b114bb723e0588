//! Generator: frame encodings that must be rejected (spec 6: canonical decoding), made from
//! the valid frames of `gen_frames`.

use sealwire_transport::frame::{self, ClientFrame, ServerFrame};
use serde::Serialize;

use crate::to_hex;

#[derive(Serialize, PartialEq)]
pub(crate) struct Malformed {
    name: &'static str,
    direction: &'static str,
    description: &'static str,
    hex: String,
}

/// `bytes` with `bytes[at..at + len]` replaced by `with`.
fn splice(bytes: &[u8], at: usize, len: usize, with: &[u8]) -> Vec<u8> {
    [&bytes[..at], with, &bytes[at + len..]].concat()
}

pub(crate) fn malformed(hex_of: &dyn Fn(&str) -> Vec<u8>) -> Vec<Malformed> {
    let hello = hex_of("hello");
    let name_at = 1 + 128;
    assert_eq!(&hello[name_at..name_at + 14], b"\x0drelay.example");
    let token_at = name_at + 14;
    let send = hex_of("send_spec_example");
    let ack = hex_of("ack_spec_example");
    let upload = hex_of("upload_prekeys");
    let fetch = hex_of("fetch_bundle");
    let challenge = hex_of("challenge_spec_example");
    let ready = hex_of("ready_spec_example");
    let deliver = hex_of("deliver");
    let bundle = hex_of("bundle_with_one_time_prekey");
    assert_eq!(&bundle[1..3], &[0xac, 0x02], "request 300");
    let bundle_len = bundle.len() - 5;
    assert!(
        (128..16_384).contains(&bundle_len),
        "a two-byte length varint"
    );
    let overlong_len = [
        (bundle_len as u8) | 0x80,
        ((bundle_len >> 7) as u8) | 0x80,
        0x00,
    ];

    use Direction::{Client, Server};
    let cases: Vec<(&'static str, Direction, &'static str, Vec<u8>)> = vec![
        ("client_empty", Client, "An empty message.", Vec::new()),
        (
            "client_unknown_variant",
            Client,
            "Variant index 5: no such client frame.",
            vec![5],
        ),
        (
            "client_overlong_variant_index",
            Client,
            "The ack of [1] with its variant index 2 written as the over-long varint 82 00.",
            vec![0x82, 0x00, 0x01, 0x01],
        ),
        (
            "hello_truncated_in_identity",
            Client,
            "The hello cut inside its identity.",
            hello[..60].to_vec(),
        ),
        (
            "hello_truncated_in_signature",
            Client,
            "The hello without its last byte.",
            hello[..hello.len() - 1].to_vec(),
        ),
        (
            "hello_trailing_byte",
            Client,
            "The hello followed by 00.",
            [hello.as_slice(), &[0]].concat(),
        ),
        (
            "hello_overlong_server_name_length",
            Client,
            "The hello's server-name length 0d written as 8d 00.",
            splice(&hello, name_at, 1, &[0x8d, 0x00]),
        ),
        (
            "hello_server_name_not_utf8",
            Client,
            "The hello's server name with its first byte replaced by ff (not UTF-8).",
            splice(&hello, name_at + 1, 1, &[0xff]),
        ),
        (
            "hello_token_option_tag_2",
            Client,
            "The hello's token Option tag 01 replaced by 02.",
            splice(&hello, token_at, 1, &[0x02]),
        ),
        (
            "send_payload_length_beyond_end",
            Client,
            "The send example with payload length 04 for 3 bytes.",
            splice(&send, send.len() - 4, 1, &[0x04]),
        ),
        (
            "send_overlong_payload_length",
            Client,
            "The send example with payload length 03 written as 83 00.",
            splice(&send, send.len() - 4, 1, &[0x83, 0x00]),
        ),
        (
            "send_trailing_byte",
            Client,
            "The send example followed by 00.",
            [send.as_slice(), &[0]].concat(),
        ),
        (
            "ack_overlong_delivery_id",
            Client,
            "An ack of [1] with the id written as 81 00.",
            vec![0x02, 0x01, 0x81, 0x00],
        ),
        (
            "ack_overlong_count",
            Client,
            "The ack example with its count 02 written as 82 00.",
            splice(&ack, 1, 1, &[0x82, 0x00]),
        ),
        (
            "ack_delivery_id_overflows_u64",
            Client,
            "An ack whose delivery id is the varint of 2^64 (ff x9 02).",
            [&[0x02, 0x01][..], &[0xff; 9], &[0x02]].concat(),
        ),
        (
            "upload_request_overflows_u32",
            Client,
            "The upload with its request id 00 replaced by the varint of 2^32 (80 80 80 80 10).",
            splice(&upload, 1, 1, &[0x80, 0x80, 0x80, 0x80, 0x10]),
        ),
        (
            "fetch_bundle_truncated_mailbox",
            Client,
            "The fetch_bundle without the last byte of its mailbox.",
            fetch[..fetch.len() - 1].to_vec(),
        ),
        ("server_empty", Server, "An empty message.", Vec::new()),
        (
            "server_unknown_variant",
            Server,
            "Variant index 7: no such server frame.",
            vec![7],
        ),
        (
            "challenge_truncated",
            Server,
            "The challenge with a 31-byte nonce.",
            challenge[..32].to_vec(),
        ),
        (
            "challenge_trailing_byte",
            Server,
            "The challenge followed by 00.",
            [challenge.as_slice(), &[0]].concat(),
        ),
        (
            "ready_overlong_max_recipients",
            Server,
            "The ready example with max_recipients c2 03 written as c2 83 00.",
            splice(&ready, ready.len() - 3, 2, &[0xc2, 0x83, 0x00]),
        ),
        (
            "deliver_truncated_payload",
            Server,
            "The deliver without the last byte of its payload.",
            deliver[..deliver.len() - 1].to_vec(),
        ),
        (
            "bundle_overlong_length",
            Server,
            "The bundle with its two-byte length varint written in three bytes.",
            splice(&bundle, 3, 2, &overlong_len),
        ),
        (
            "prekeys_bool_2",
            Server,
            "The prekeys example with low = 02.",
            vec![0x05, 0x00, 0x03, 0x02],
        ),
        (
            "prekeys_option_tag_2",
            Server,
            "The prekeys example with the request Option tag 02.",
            vec![0x05, 0x02, 0x03, 0x01],
        ),
        (
            "error_unknown_subject",
            Server,
            "An error with subject variant 4.",
            vec![0x06, 0x02, 0x04],
        ),
        (
            "error_code_overflows_u16",
            Server,
            "An error whose code is the varint of 65536 (80 80 04).",
            vec![0x06, 0x80, 0x80, 0x04, 0x01],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, direction, description, bytes)| {
            let rejected = match direction {
                Client => frame::decode::<ClientFrame>(&bytes).is_err(),
                Server => frame::decode::<ServerFrame>(&bytes).is_err(),
            };
            assert!(rejected, "{name} decodes");
            Malformed {
                name,
                direction: match direction {
                    Client => "client",
                    Server => "server",
                },
                description,
                hex: to_hex(&bytes),
            }
        })
        .collect()
}

enum Direction {
    Client,
    Server,
}
