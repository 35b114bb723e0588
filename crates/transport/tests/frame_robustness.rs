//! Arbitrary and mutated bytes never panic the frame decoder or the authentication check, and
//! whatever decodes is canonical. (Coverage-guided fuzz targets live in `fuzz/`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sealwire_transport::auth::{AuthPolicy, ChannelBinding, ServerAuth, respond};
use sealwire_transport::frame::{
    self, Ack, ClientFrame, FetchBundle, MailboxId, MessageId, Send, ServerFrame,
};

static VALID: std::sync::LazyLock<Vec<Vec<u8>>> = std::sync::LazyLock::new(valid_frames);

fn valid_frames() -> Vec<Vec<u8>> {
    let identity = sealwire_core::IdentityKeyPair::generate(&mut rand::rng());
    let (_, challenge) = ServerAuth::with_nonce([3; 32], ChannelBinding::None);
    let hello = respond(
        &identity,
        &challenge,
        "localhost",
        &ChannelBinding::None,
        None,
    )
    .unwrap();
    [
        ClientFrame::Hello(hello),
        ClientFrame::Send(Send {
            id: MessageId([1; 16]),
            to: vec![MailboxId([2; 32])],
            payload: vec![9; 40],
        }),
        ClientFrame::Ack(Ack {
            deliveries: vec![1, 1 << 40],
        }),
        ClientFrame::FetchBundle(FetchBundle {
            request: 7,
            mailbox: MailboxId([4; 32]),
        }),
    ]
    .iter()
    .map(|frame| frame::encode(frame).unwrap())
    .collect()
}

fn check(bytes: &[u8]) {
    if let Ok(frame) = frame::decode::<ClientFrame>(bytes) {
        assert_eq!(
            frame::encode(&frame).unwrap(),
            bytes,
            "decoded but not canonical"
        );
    }
    if let Ok(frame) = frame::decode::<ServerFrame>(bytes) {
        assert_eq!(
            frame::encode(&frame).unwrap(),
            bytes,
            "decoded but not canonical"
        );
    }
    let policy = AuthPolicy {
        server_names: vec!["localhost".into()],
        token: None,
    };
    let (auth, _) = ServerAuth::with_nonce([3; 32], ChannelBinding::None);
    // Any outcome but a panic is fine; only the exact valid hello can pass.
    let _ = auth.verify(bytes, &policy, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(which in 0usize..4, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = VALID[which].clone();
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        check(&bytes);
    }
}
