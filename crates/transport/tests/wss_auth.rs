//! Over real TLS on 127.0.0.1: every way authentication and the upgrade can fail, with the
//! close code or HTTP status each one gets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use sealwire_core::IdentityKeyPair;
use sealwire_transport::Error;
use sealwire_transport::auth::{self, ChannelBinding};
use sealwire_transport::client::{Client, ClientConfig, Event};
use sealwire_transport::code::CloseCode;
use sealwire_transport::frame::{ClientFrame, MailboxId, SUBPROTOCOL, ServerFrame};
use sealwire_transport::server::OriginPolicy;
use sealwire_transport::tls::ClientTls;
use sealwire_transport::token::{BearerToken, Claims, TokenKey, TokenKeys, TokenVerifier, issue};
use support::*;
use tokio_tungstenite::tungstenite::Error as WsError;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn protocol() -> [(&'static str, &'static str); 1] {
    [("sec-websocket-protocol", SUBPROTOCOL)]
}

/// Sends `hello` on a fresh raw connection and returns what the server answered.
async fn answer_to(
    pki: &Pki,
    addr: std::net::SocketAddr,
    hello: impl FnOnce(&sealwire_transport::frame::Challenge, &ChannelBinding) -> ClientFrame,
) -> Result<ServerFrame, CloseCode> {
    let (mut ws, binding, challenge) = raw_challenged(pki, addr).await;
    raw_send(&mut ws, &hello(&challenge, &binding)).await;
    raw_read(&mut ws).await
}

#[tokio::test]
async fn a_correct_response_binds_the_connection_to_the_identitys_mailbox() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    let alice = identity();
    let (_ws, answer) = raw_authenticate(&pki, server.local_addr(), &alice).await;
    match answer {
        Ok(ServerFrame::Ready(ready)) => assert_eq!(ready.mailbox, MailboxId::of(alice.public())),
        other => panic!("expected ready, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_signature_is_refused_with_auth_failed() {
    let pki = Pki::new();
    let relay = MemoryRelay::new();
    let server = serve(pki.server_config(), relay.clone(), None).await;
    let victim = identity();
    let attacker = identity();
    let answer = answer_to(&pki, server.local_addr(), |challenge, binding| {
        // The attacker claims the victim's identity but can only sign with its own key.
        let mut hello = auth::respond(&attacker, challenge, SERVER_NAME, binding, None).unwrap();
        hello.identity = victim.public().to_bytes();
        ClientFrame::Hello(hello)
    })
    .await;
    assert_eq!(answer, Err(CloseCode::AUTH_FAILED));

    // A flipped signature byte, and a malformed identity, are refused the same way.
    let alice = identity();
    let flipped = answer_to(&pki, server.local_addr(), |challenge, binding| {
        let mut hello = auth::respond(&alice, challenge, SERVER_NAME, binding, None).unwrap();
        hello.signature[10] ^= 1;
        ClientFrame::Hello(hello)
    })
    .await;
    assert_eq!(flipped, Err(CloseCode::AUTH_FAILED));
    let malformed = answer_to(&pki, server.local_addr(), |challenge, binding| {
        let mut hello = auth::respond(&alice, challenge, SERVER_NAME, binding, None).unwrap();
        hello.identity[100] ^= 1;
        ClientFrame::Hello(hello)
    })
    .await;
    assert_eq!(malformed, Err(CloseCode::AUTH_FAILED));
    // None of them ever reached the service.
    assert!(relay.disconnects().is_empty());
}

#[tokio::test]
async fn a_replayed_response_is_refused() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    let alice = identity();
    let mut recorded = None;
    let first = answer_to(&pki, server.local_addr(), |challenge, binding| {
        let hello = ClientFrame::Hello(
            auth::respond(&alice, challenge, SERVER_NAME, binding, None).unwrap(),
        );
        recorded = Some(hello.clone());
        hello
    })
    .await;
    assert!(matches!(first, Ok(ServerFrame::Ready(_))));
    // The same bytes on a new connection (new nonce, new TLS session) fail.
    let replay = recorded.unwrap();
    let second = answer_to(&pki, server.local_addr(), |_, _| replay).await;
    assert_eq!(second, Err(CloseCode::AUTH_FAILED));
}

#[tokio::test]
async fn a_response_bound_to_another_server_or_tls_session_is_refused() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    let addr = server.local_addr();
    let alice = identity();
    type Rebind = fn(&ChannelBinding) -> ChannelBinding;
    let cases: [(&str, Rebind); 3] = [
        ("relay.example.org", |binding| *binding),
        (SERVER_NAME, |_| ChannelBinding::Tls([7; 32])),
        (SERVER_NAME, |_| ChannelBinding::None),
    ];
    for (name, binding_for) in cases {
        let answer = answer_to(&pki, addr, |challenge, binding| {
            let hello =
                auth::respond(&alice, challenge, name, &binding_for(binding), None).unwrap();
            ClientFrame::Hello(hello)
        })
        .await;
        assert_eq!(answer, Err(CloseCode::AUTH_FAILED), "{name}");
    }
}

#[tokio::test]
async fn a_response_for_another_of_the_servers_names_than_the_tls_sni_is_refused() {
    let pki = Pki::new();
    let config = sealwire_transport::server::ServerConfig::new(
        pki.server.clone(),
        [SERVER_NAME, "relay.internal"],
    );
    let server = serve(config, MemoryRelay::new(), None).await;
    let alice = identity();
    // The TLS connection is to `localhost` (SNI), the hello signs the other configured name.
    let answer = answer_to(&pki, server.local_addr(), |challenge, binding| {
        ClientFrame::Hello(
            auth::respond(&alice, challenge, "relay.internal", binding, None).unwrap(),
        )
    })
    .await;
    assert_eq!(answer, Err(CloseCode::AUTH_FAILED));
    let (_ws, answer) = raw_authenticate(&pki, server.local_addr(), &alice).await;
    assert!(matches!(answer, Ok(ServerFrame::Ready(_))));
}

#[tokio::test]
async fn frames_before_authentication_and_text_messages_are_refused() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    let addr = server.local_addr();
    let send_first = answer_to(&pki, addr, |_, _| {
        ClientFrame::Ack(sealwire_transport::frame::Ack {
            deliveries: vec![1],
        })
    })
    .await;
    assert_eq!(send_first, Err(CloseCode::POLICY_VIOLATION));

    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _, _) = raw_challenged(&pki, addr).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::UNSUPPORTED_DATA));
    let (mut ws, _, _) = raw_challenged(&pki, addr).await;
    ws.send(Message::Binary(vec![0xFF, 0xFF, 0xFF].into()))
        .await
        .unwrap();
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::MALFORMED_FRAME));

    // A second hello on an authenticated connection is a protocol violation too.
    let alice = identity();
    let (mut ws, binding, challenge) = raw_challenged(&pki, addr).await;
    let hello =
        ClientFrame::Hello(auth::respond(&alice, &challenge, SERVER_NAME, &binding, None).unwrap());
    raw_send(&mut ws, &hello).await;
    assert!(matches!(raw_read(&mut ws).await, Ok(ServerFrame::Ready(_))));
    raw_send(&mut ws, &hello).await;
    assert_eq!(raw_read(&mut ws).await, Err(CloseCode::POLICY_VIOLATION));
}

fn token_key() -> TokenKey {
    TokenKey::new("k2026", vec![0x5A; 32]).unwrap()
}

/// A token provider whose `n`th token (from 0) expires at `exp(n)`, and how often it was asked.
fn provider_of(
    exp: impl Fn(u32) -> u64 + Send + Sync + 'static,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicU32>,
    sealwire_transport::client::TokenProvider,
) {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = calls.clone();
    let provider = std::sync::Arc::new(move || {
        let call = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(BearerToken::new(issue(
            &token_key(),
            &Claims::new(exp(call)),
        )))
    });
    (calls, provider)
}

/// Waits for the client's next disconnection, which must be for an expired token.
async fn disconnected_for_expiry(client: &mut Client) {
    let error = wait_for(client, |event| match event {
        Event::Disconnected { error, .. } => Some(error),
        _ => None,
    })
    .await;
    assert!(
        matches!(
            error,
            Error::Closed {
                code: CloseCode::TOKEN_EXPIRED,
                ..
            }
        ),
        "{error:?}"
    );
}

async fn stopped_with(client: &mut Client) -> Error {
    wait_for(client, |event| match event {
        Event::Stopped { error } => Some(error),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn bearer_tokens_missing_expired_or_for_another_mailbox_are_refused() {
    let pki = Pki::new();
    let keys = TokenKeys::new(vec![token_key()]).unwrap();
    let config = pki.server_config().require_token(TokenVerifier::new(keys));
    let server = serve(config, MemoryRelay::new(), None).await;
    let addr = server.local_addr();

    let mut no_token = Client::start(client_config(&pki, addr), identity()).unwrap();
    let error = stopped_with(&mut no_token).await;
    assert!(
        matches!(
            error,
            Error::Closed {
                code: CloseCode::TOKEN_REQUIRED,
                ..
            }
        ),
        "{error:?}"
    );

    let expired = issue(&token_key(), &Claims::new(now() - 3600));
    let config = client_config(&pki, addr).token(BearerToken::new(expired));
    let mut client = Client::start(config, identity()).unwrap();
    let error = stopped_with(&mut client).await;
    assert!(
        matches!(
            error,
            Error::Closed {
                code: CloseCode::TOKEN_EXPIRED,
                ..
            }
        ),
        "{error:?}"
    );

    let alice = identity();
    let mut for_other = Claims::new(now() + 3600);
    for_other.sealwire_mailbox = Some(MailboxId([9; 32]).to_hex());
    let config = client_config(&pki, addr).token(BearerToken::new(issue(&token_key(), &for_other)));
    let mut client = Client::start(config, duplicate(&alice)).unwrap();
    let error = stopped_with(&mut client).await;
    assert!(
        matches!(
            error,
            Error::Closed {
                code: CloseCode::TOKEN_INVALID,
                ..
            }
        ),
        "{error:?}"
    );

    let wrong_key = TokenKey::new("k2026", vec![0xA5; 32]).unwrap();
    let forged = issue(&wrong_key, &Claims::new(now() + 3600));
    let config = client_config(&pki, addr).token(BearerToken::new(forged));
    let mut client = Client::start(config, identity()).unwrap();
    let error = stopped_with(&mut client).await;
    assert!(
        matches!(
            error,
            Error::Closed {
                code: CloseCode::TOKEN_INVALID,
                ..
            }
        ),
        "{error:?}"
    );

    let mut valid = Claims::new(now() + 3600);
    valid.sealwire_mailbox = Some(MailboxId::of(alice.public()).to_hex());
    let config = client_config(&pki, addr).token(BearerToken::new(issue(&token_key(), &valid)));
    let mut client = Client::start(config, alice).unwrap();
    connected(&mut client).await;
}

#[tokio::test]
async fn a_token_provider_is_asked_again_after_expiry() {
    let pki = Pki::new();
    let keys = TokenKeys::new(vec![token_key()]).unwrap();
    let config = pki.server_config().require_token(TokenVerifier::new(keys));
    let server = serve(config, MemoryRelay::new(), None).await;
    // The first token the backend hands out has expired; the next ones are fresh.
    let (calls, provider) = provider_of(|call| {
        if call == 0 {
            now() - 3600
        } else {
            now() + 3600
        }
    });
    let config = client_config(&pki, server.local_addr()).token_provider(provider);
    let mut client = Client::start(config, identity()).unwrap();
    disconnected_for_expiry(&mut client).await;
    connected(&mut client).await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_open_connection_ends_when_its_token_expires_and_comes_back_with_a_fresh_one() {
    let pki = Pki::new();
    let keys = TokenKeys::new(vec![token_key()]).unwrap();
    let verifier = TokenVerifier::new(keys).with_leeway_secs(0);
    let server = serve(
        pki.server_config().require_token(verifier),
        MemoryRelay::new(),
        None,
    )
    .await;
    // The first token is good for two more seconds; the next ones for an hour.
    let (calls, provider) = provider_of(|call| if call == 0 { now() + 2 } else { now() + 3600 });
    let config = client_config(&pki, server.local_addr()).token_provider(provider);
    let mut client = Client::start(config, identity()).unwrap();
    connected(&mut client).await;
    let started = std::time::Instant::now();
    disconnected_for_expiry(&mut client).await;
    // Not before the token's own expiry (whole seconds: at least one second from now).
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    connected(&mut client).await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // The fresh connection works.
    let me = client.mailbox();
    let id = client.send(vec![me], b"after".to_vec()).await.unwrap();
    wait_for(&mut client, |event| match event {
        Event::Accepted(accepted) if accepted == id => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn a_disallowed_origin_is_refused_before_any_frame() {
    let pki = Pki::new();
    let origins = OriginPolicy::allow(["https://chat.example.com"]).allow_missing(false);
    let server = serve(
        pki.server_config().origins(origins),
        MemoryRelay::new(),
        None,
    )
    .await;
    let addr = server.local_addr();
    let status = |result: Result<_, WsError>| match result {
        Err(WsError::Http(response)) => Some(response.status().as_u16()),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => None,
    };
    let evil = [("origin", "https://evil.example.net"), protocol()[0]];
    assert_eq!(status(raw_connect(&pki, addr, &evil).await), Some(403));
    assert_eq!(
        status(raw_connect(&pki, addr, &protocol()).await),
        Some(403),
        "no Origin"
    );
    let good = [("origin", "https://chat.example.com"), protocol()[0]];
    assert_eq!(status(raw_connect(&pki, addr, &good).await), None);

    // The same through the client: the error is the HTTP refusal, and no frame was exchanged.
    let mut config = client_config(&pki, addr);
    config.origin = Some("https://evil.example.net".into());
    let mut client = Client::start(config, identity()).unwrap();
    let error = stopped_with(&mut client).await;
    assert!(
        matches!(error, Error::UpgradeRefused { status: 403 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_upgrade_without_the_subprotocol_is_refused() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    match raw_connect(&pki, server.local_addr(), &[]).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        other => panic!("expected HTTP 400, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn untrusted_certificates_and_pin_mismatches_stop_the_client() {
    let pki = Pki::new();
    let server = serve(pki.server_config(), MemoryRelay::new(), None).await;
    let addr = server.local_addr();

    let other_ca = Pki::new();
    let mut client = Client::start(client_config(&other_ca, addr), identity()).unwrap();
    let error = stopped_with(&mut client).await;
    assert!(matches!(error, Error::UntrustedCertificate(_)), "{error:?}");

    let pinned = ClientTls::builder()
        .ca_pem(pki.ca.ca_pem().as_bytes())
        .unwrap()
        .pin_sha256([0x11; 32])
        .build()
        .unwrap();
    let mut client = Client::start(ClientConfig::new(url(addr), pinned), identity()).unwrap();
    let error = stopped_with(&mut client).await;
    assert!(matches!(error, Error::UntrustedCertificate(_)), "{error:?}");

    let right_pin = ClientTls::builder()
        .ca_pem(pki.ca.ca_pem().as_bytes())
        .unwrap()
        .pin_sha256(pki.server.certificate_fingerprint())
        .build()
        .unwrap();
    let mut client = Client::start(ClientConfig::new(url(addr), right_pin), identity()).unwrap();
    connected(&mut client).await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_configured_ca() {
    let pki = Pki::new();
    let client_ca = sealwire_transport::tls::DevCa::generate("client CA").unwrap();
    let server_tls = pki
        .server
        .clone()
        .with_client_ca_pem(client_ca.ca_pem().as_bytes())
        .unwrap();
    let config = sealwire_transport::server::ServerConfig::new(server_tls, [SERVER_NAME]);
    let server = serve(config, MemoryRelay::new(), None).await;
    let addr = server.local_addr();

    let mut anonymous = Client::start(client_config(&pki, addr), identity()).unwrap();
    let error = wait_for(&mut anonymous, |event| match event {
        Event::Disconnected { error, .. } | Event::Stopped { error } => Some(error),
        _ => None,
    })
    .await;
    assert!(
        !matches!(error, Error::Closed { .. }),
        "refused in TLS, got {error:?}"
    );

    let certificate = client_ca.issue_client("device-1").unwrap();
    let tls = ClientTls::builder()
        .ca_pem(pki.ca.ca_pem().as_bytes())
        .unwrap()
        .client_certificate(
            certificate.cert_pem().as_bytes(),
            certificate.key_pem().as_bytes(),
        )
        .unwrap()
        .build()
        .unwrap();
    let mut client = Client::start(ClientConfig::new(url(addr), tls), identity()).unwrap();
    connected(&mut client).await;
}

#[tokio::test]
async fn plaintext_urls_need_the_insecure_option() {
    let pki = Pki::new();
    let config = ClientConfig::new("ws://127.0.0.1:1/", pki.client_tls());
    let error = Client::start(config, IdentityKeyPair::generate(&mut rand::rng())).unwrap_err();
    assert!(matches!(error, Error::InvalidConfig(_)));
    let config = ClientConfig::new("https://127.0.0.1:1/", pki.client_tls());
    assert!(Client::start(config, identity()).is_err());
}

#[tokio::test]
#[allow(clippy::result_large_err)] // tungstenite's upgrade callback signature
async fn a_relay_that_breaks_the_protocol_is_told_why_and_the_client_stops() {
    use futures_util::{SinkExt, StreamExt};
    use sealwire_transport::frame::{Challenge, Ready};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let pki = Pki::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = pki.server.acceptor();
    // A fake relay: a proper challenge and ready, then bytes that are not a frame.
    let fake = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let select = |_: &Request, mut response: Response| {
            let value = HeaderValue::from_static(SUBPROTOCOL);
            response
                .headers_mut()
                .insert("sec-websocket-protocol", value);
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tls, select)
            .await
            .unwrap();
        let challenge = ServerFrame::Challenge(Challenge { nonce: [1; 32] });
        let bytes = sealwire_transport::frame::encode(&challenge).unwrap();
        ws.send(Message::Binary(bytes.into())).await.unwrap();
        let _hello = ws.next().await.unwrap().unwrap();
        let ready = ServerFrame::Ready(Ready {
            mailbox: MailboxId([0; 32]),
            max_payload: 1024,
            max_recipients: 1,
            one_time_prekeys: 0,
        });
        let bytes = sealwire_transport::frame::encode(&ready).unwrap();
        ws.send(Message::Binary(bytes.into())).await.unwrap();
        ws.send(Message::Binary(vec![0xFF, 0xFF].into()))
            .await
            .unwrap();
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    });
    let mut client = Client::start(client_config(&pki, addr), identity()).unwrap();
    connected(&mut client).await;
    let error = stopped_with(&mut client).await;
    assert!(matches!(error, Error::MalformedFrame(_)), "{error:?}");
    let code = tokio::time::timeout(WAIT, fake).await.unwrap().unwrap();
    assert_eq!(code, Some(CloseCode::MALFORMED_FRAME.0));
}
