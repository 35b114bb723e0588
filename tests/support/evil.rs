//! A malicious relay for the adversarial tests: a small honest core (mailboxes with increasing
//! delivery ids, store-then-deliver, acks, a prekey directory) that the test steers through
//! [`Evil`] to drop, hold back, reorder, duplicate, replay, tamper with and re-attribute
//! deliveries, and to hand out substituted prekey bundles. It records every `send` it sees.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sealwire::core::{OneTimePrekey, PrekeyBundle, PublicIdentity, SignedPrekey};
use sealwire::transport::code::{CloseCode, ErrorCode};
use sealwire::transport::frame::{
    Accepted, Bundle, Delivery, MailboxId, MessageId, PrekeyStatus, ServerFrame,
};
use sealwire::transport::server::{
    Connection, Refusal, Request, Server, ServerConfig, ServerHandle, Service, Welcome,
};

use sealwire::Error;
use sealwire::client::{Client, Conversation, Event};

use super::{Pki, SERVER_NAME, User, WAIT, connected, publish_prekeys, text, users, wait_for};

/// A `send` as the relay saw it (the sender is the authenticated connection's mailbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub from: MailboxId,
    pub id: MessageId,
    pub to: Vec<MailboxId>,
    pub payload: Vec<u8>,
}

/// A message for one mailbox, as the relay would deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: MailboxId,
    pub id: MessageId,
    pub payload: Vec<u8>,
}

impl Envelope {
    /// This envelope with byte `at` of the payload flipped (`at` taken modulo the length).
    pub fn tampered(&self, at: usize) -> Envelope {
        let mut copy = self.clone();
        let at = at % copy.payload.len();
        copy.payload[at] ^= 0x01;
        copy
    }

    /// This envelope claimed to come from `from` (a sender lie).
    pub fn from(&self, from: MailboxId) -> Envelope {
        Envelope {
            from,
            ..self.clone()
        }
    }

    /// This envelope under a fresh message id (so the client's `(from, id)` check misses it).
    pub fn fresh_id(&self) -> Envelope {
        Envelope {
            id: MessageId::random(),
            ..self.clone()
        }
    }

    /// Whether this is a group envelope (byte 2 is the group kind).
    pub fn is_group(&self) -> bool {
        self.payload.get(2) == Some(&2)
    }
}

#[derive(Default)]
struct Mailbox {
    next_delivery: u64,
    /// Stored until acknowledged, by delivery id.
    stored: BTreeMap<u64, Envelope>,
    live: Option<Connection>,
    /// Held back: new messages go to `held` instead of the mailbox.
    hold: bool,
    held: Vec<Envelope>,
    /// New messages stored but not pushed to the live connection (they come on reconnect).
    suppress_live: usize,
    /// New messages discarded for good.
    discard: usize,
    /// Every delivery id acknowledged.
    acked: Vec<u64>,
    identity: Option<PublicIdentity>,
    signed_prekey: Option<SignedPrekey>,
    one_time: VecDeque<OneTimePrekey>,
    /// Substitutes for the next fetches of this mailbox's bundle (`None`: answer `no_bundle`).
    substitutes: VecDeque<Option<Vec<u8>>>,
    /// Every bundle handed out for this mailbox, substituted or not.
    served: Vec<Vec<u8>>,
}

impl Mailbox {
    fn deliver(&mut self, envelope: Envelope, push: bool) -> u64 {
        self.next_delivery += 1;
        let delivery = self.next_delivery;
        self.stored.insert(delivery, envelope.clone());
        if push && let Some(live) = &self.live {
            let _ = live.send(&deliver_frame(delivery, envelope));
        }
        delivery
    }

    fn honest_bundle(&mut self) -> Option<Vec<u8>> {
        let bundle = PrekeyBundle {
            identity: self.identity.clone()?,
            signed_prekey: self.signed_prekey.clone()?,
            one_time_prekey: self.one_time.pop_front(),
        };
        Some(bundle.to_bytes())
    }
}

fn deliver_frame(delivery: u64, envelope: Envelope) -> ServerFrame {
    ServerFrame::Deliver(Delivery {
        delivery,
        from: envelope.from,
        id: envelope.id,
        payload: envelope.payload,
    })
}

#[derive(Default)]
struct State {
    boxes: HashMap<MailboxId, Mailbox>,
    sent: Vec<Sent>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct EvilService(Shared);

impl Service for EvilService {
    async fn connected(&self, connection: &Connection) -> Result<Welcome, Refusal> {
        let mut state = lock(&self.0);
        let mailbox = state.boxes.entry(connection.mailbox()).or_default();
        if let Some(old) = mailbox.live.replace(connection.clone()) {
            old.close(CloseCode::REPLACED);
        }
        // Queued now, sent after `ready`; later live deliveries take the lock after us.
        for (&delivery, envelope) in &mailbox.stored {
            let _ = connection.send(&deliver_frame(delivery, envelope.clone()));
        }
        Ok(Welcome::new(mailbox.one_time.len() as u32))
    }

    async fn request(&self, connection: &Connection, request: Request) -> Result<(), Refusal> {
        let mut state = lock(&self.0);
        match request {
            Request::Send(send) => {
                state.sent.push(Sent {
                    from: connection.mailbox(),
                    id: send.id,
                    to: send.to.clone(),
                    payload: send.payload.clone(),
                });
                let envelope = Envelope {
                    from: connection.mailbox(),
                    id: send.id,
                    payload: send.payload,
                };
                for to in send.to {
                    let mailbox = state.boxes.entry(to).or_default();
                    if mailbox.hold {
                        mailbox.held.push(envelope.clone());
                    } else if mailbox.discard > 0 {
                        mailbox.discard -= 1;
                    } else {
                        let push = mailbox.suppress_live == 0;
                        mailbox.suppress_live = mailbox.suppress_live.saturating_sub(1);
                        mailbox.deliver(envelope.clone(), push);
                    }
                }
                let _ = connection.send(&ServerFrame::Accepted(Accepted { id: send.id }));
            }
            Request::Ack(ack) => {
                let mailbox = state.boxes.entry(connection.mailbox()).or_default();
                for delivery in ack.deliveries {
                    mailbox.stored.remove(&delivery);
                    mailbox.acked.push(delivery);
                }
            }
            Request::UploadPrekeys(upload) => {
                let mailbox = state.boxes.entry(connection.mailbox()).or_default();
                mailbox.identity = Some(connection.identity().clone());
                mailbox.signed_prekey = Some(upload.signed_prekey);
                mailbox.one_time.extend(upload.one_time);
                let _ = connection.send(&ServerFrame::Prekeys(PrekeyStatus {
                    request: Some(upload.request),
                    one_time_prekeys: mailbox.one_time.len() as u32,
                    low: false,
                }));
            }
            Request::FetchBundle(fetch) => {
                let mailbox = state.boxes.entry(fetch.mailbox).or_default();
                let bundle = match mailbox.substitutes.pop_front() {
                    Some(substitute) => substitute,
                    None => mailbox.honest_bundle(),
                };
                let Some(bundle) = bundle else {
                    return Err(Refusal::Error(ErrorCode::NoBundle));
                };
                mailbox.served.push(bundle.clone());
                let _ = connection.send(&ServerFrame::Bundle(Bundle {
                    request: fetch.request,
                    bundle,
                }));
            }
            _ => return Err(Refusal::Error(ErrorCode::BadRequest)),
        }
        Ok(())
    }

    async fn disconnected(&self, connection: &Connection, _code: CloseCode) {
        let mut state = lock(&self.0);
        if let Some(mailbox) = state.boxes.get_mut(&connection.mailbox())
            && mailbox
                .live
                .as_ref()
                .is_some_and(|c| c.id() == connection.id())
        {
            mailbox.live = None;
        }
    }
}

/// The test's handle on the malicious relay.
pub struct Evil {
    state: Shared,
    server: ServerHandle,
}

impl Evil {
    pub async fn start(pki: &Pki) -> Evil {
        let state = Shared::default();
        let config = ServerConfig::new(pki.server.server_tls().unwrap(), [SERVER_NAME]);
        let server = Server::bind(
            "127.0.0.1:0".parse().unwrap(),
            config,
            Arc::new(EvilService(state.clone())),
        )
        .await
        .unwrap()
        .spawn()
        .unwrap();
        Evil { state, server }
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    fn with<T>(&self, mailbox: MailboxId, f: impl FnOnce(&mut Mailbox) -> T) -> T {
        f(lock(&self.state).boxes.entry(mailbox).or_default())
    }

    /// Every `send` seen so far.
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.state).sent.clone()
    }

    /// Holds back (or stops holding back) new messages for `mailbox`.
    pub fn hold(&self, mailbox: MailboxId, on: bool) {
        self.with(mailbox, |m| m.hold = on);
    }

    /// Waits until `count` messages are held back for `mailbox` and takes them, in the order
    /// they were sent.
    pub async fn take_held(&self, mailbox: MailboxId, count: usize) -> Vec<Envelope> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let held = self.with(mailbox, |m| {
                (m.held.len() >= count).then(|| std::mem::take(&mut m.held))
            });
            if let Some(held) = held {
                assert_eq!(held.len(), count, "more messages held than expected");
                return held;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {count} held messages"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stores `envelope` for `to` under a fresh delivery id and pushes it to the live
    /// connection, if any. Returns the delivery id.
    pub fn deliver(&self, to: MailboxId, envelope: &Envelope) -> u64 {
        self.with(to, |m| m.deliver(envelope.clone(), true))
    }

    /// Pushes `envelope` to the live connection of `to` under the given delivery id, without
    /// storing it (a duplicate frame of an earlier delivery). Returns whether it was pushed.
    pub fn push(&self, to: MailboxId, delivery: u64, envelope: &Envelope) -> bool {
        self.with(to, |m| match &m.live {
            Some(live) => live
                .send(&deliver_frame(delivery, envelope.clone()))
                .is_ok(),
            None => false,
        })
    }

    /// The next `count` messages for `mailbox` are stored but not pushed live.
    pub fn suppress_live(&self, mailbox: MailboxId, count: usize) {
        self.with(mailbox, |m| m.suppress_live = count);
    }

    /// The next `count` messages for `mailbox` are accepted and thrown away.
    pub fn discard(&self, mailbox: MailboxId, count: usize) {
        self.with(mailbox, |m| m.discard = count);
    }

    /// Closes the live connection of `mailbox` (the client reconnects and gets the backlog).
    pub fn kick(&self, mailbox: MailboxId) {
        self.with(mailbox, |m| {
            if let Some(live) = m.live.take() {
                live.close(CloseCode::TRY_AGAIN_LATER);
            }
        });
    }

    /// Messages stored for `mailbox` and not acknowledged.
    pub fn unacked(&self, mailbox: MailboxId) -> usize {
        self.with(mailbox, |m| m.stored.len())
    }

    /// Every delivery id `mailbox` acknowledged.
    pub fn acked(&self, mailbox: MailboxId) -> Vec<u64> {
        self.with(mailbox, |m| m.acked.clone())
    }

    /// Waits until `mailbox` has acknowledged `delivery`.
    pub async fn wait_acked(&self, mailbox: MailboxId, delivery: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.acked(mailbox).contains(&delivery) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for the ack of delivery {delivery}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until everything stored for `mailbox` is acknowledged (acks follow the events
    /// the test sees by a moment).
    pub async fn wait_all_acked(&self, mailbox: MailboxId) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.unacked(mailbox) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {} acks",
                self.unacked(mailbox)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The honest bundle of `mailbox` (taking a one-time prekey), as a fetch would get it.
    pub fn take_bundle(&self, mailbox: MailboxId) -> Option<PrekeyBundle> {
        let bytes = self.with(mailbox, Mailbox::honest_bundle)?;
        Some(PrekeyBundle::from_bytes(&bytes).unwrap())
    }

    /// The next fetch of `mailbox`'s bundle gets `bytes` (`None`: `no_bundle`).
    pub fn substitute_bundle(&self, mailbox: MailboxId, bytes: Option<Vec<u8>>) {
        self.with(mailbox, |m| m.substitutes.push_back(bytes));
    }

    /// Every bundle handed out for `mailbox`.
    pub fn served(&self, mailbox: MailboxId) -> Vec<Vec<u8>> {
        self.with(mailbox, |m| m.served.clone())
    }
}

/// What a client showed while [`collect_until`] read its events.
#[derive(Debug, Default)]
pub struct Shown {
    /// Each message: its body and the contact name it was shown under (confirmed).
    pub messages: Vec<(String, Option<String>, Conversation)>,
    /// Each dropped delivery: the relay's sender and why.
    pub dropped: Vec<(MailboxId, Error)>,
}

impl Shown {
    pub fn bodies(&self) -> Vec<&str> {
        self.messages
            .iter()
            .map(|(body, ..)| body.as_str())
            .collect()
    }

    /// Whether every message was shown under the contact `name`, in `conversation`.
    pub fn all_from(&self, name: &str, conversation: Conversation) -> bool {
        self.messages.iter().all(|(_, contact, shown_in)| {
            contact.as_deref() == Some(name) && *shown_in == conversation
        })
    }

    /// Checks that exactly `count` deliveries were dropped, each from `from` and each for a
    /// reason `why` accepts.
    pub fn check_dropped(&self, from: MailboxId, count: usize, why: fn(&Error) -> bool) {
        assert_eq!(self.dropped.len(), count, "{:?}", self.dropped);
        for (dropped_from, error) in &self.dropped {
            assert_eq!(*dropped_from, from, "{error}");
            assert!(why(error), "{error}");
        }
    }
}

/// Any reason to drop (for [`Shown::check_dropped`]).
pub fn any(_: &Error) -> bool {
    true
}

/// The relay's sender is not the envelope's.
pub fn mismatch(error: &Error) -> bool {
    matches!(error, Error::SenderMismatch)
}

/// The core's replay protection.
pub fn replay(error: &Error) -> bool {
    matches!(error, Error::Protocol(sealwire::core::Error::Replay))
}

/// How long [`collect_until`] waits for its last message.
pub const COLLECT_WAIT: Duration = Duration::from_secs(10);

/// Reads `client`'s events until the message `last` was shown (included), confirming every
/// message. The relay delivers in order and the client processes in order, so everything
/// delivered before `last` has been dealt with by then.
pub async fn collect_until(client: &mut Client, last: &str) -> Shown {
    collect_until_with(client, last, |_| {}).await
}

/// As [`collect_until`], passing every other event to `other`.
pub async fn collect_until_with(
    client: &mut Client,
    last: &str,
    mut other: impl FnMut(Event),
) -> Shown {
    let mut shown = Shown::default();
    let deadline = tokio::time::Instant::now() + COLLECT_WAIT;
    loop {
        let event = match tokio::time::timeout_at(deadline, client.next_event()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the client stopped; shown so far: {shown:?}"),
            Err(_) => panic!("timed out waiting for {last:?}; shown so far: {shown:?}"),
        };
        match event {
            Event::Message(message) => {
                client.confirm(message.seq).await.unwrap();
                let body = text(&message);
                let done = body == last;
                shown
                    .messages
                    .push((body, message.contact.clone(), message.conversation));
                if done {
                    return shown;
                }
            }
            Event::Dropped { from, error } => shown.dropped.push((from, error)),
            event => other(event),
        }
    }
}

/// Waits for the outcome of send `id`: `Ok(())` when sent, the error when it failed.
pub async fn outcome(client: &mut Client, id: MessageId) -> Result<(), Error> {
    wait_for(client, |event| match event {
        Event::Sent(sent) if sent == id => Some(Ok(())),
        Event::SendFailed { id: failed, error } if failed == id => Some(Err(error)),
        _ => None,
    })
    .await
}

/// A fresh world for one test: the PKI, the malicious relay, and users (each a contact of
/// every other) who have all published their prekeys.
pub struct Scene {
    pub pki: Pki,
    pub evil: Evil,
    pub people: Vec<User>,
    /// The users' stores, removed with the scene.
    _root: tempfile::TempDir,
}

impl Scene {
    /// The world of users `names`.
    pub async fn new(names: &[&str]) -> Scene {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        let evil = Evil::start(&pki).await;
        let people = users(root.path(), names);
        for user in &people {
            publish_prekeys(user, &pki, evil.port()).await;
        }
        Scene {
            pki,
            evil,
            people,
            _root: root,
        }
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> &User {
        let mut people = self.people.iter();
        people
            .find(|user| user.name == name)
            .expect("a user of the scene")
    }

    /// The mailbox of `name`.
    pub fn mailbox(&self, name: &str) -> MailboxId {
        MailboxId::of(&self.user(name).identity)
    }

    /// Starts `name`'s client on the malicious relay (not waited for).
    pub fn start(&self, name: &str) -> Client {
        self.user(name).start(&self.pki, self.evil.port())
    }

    /// Starts `name`'s client and waits until it is connected.
    pub async fn online(&self, name: &str) -> Client {
        let mut client = self.start(name);
        connected(&mut client).await;
        client
    }

    /// The clients of `names`, started one after the other, each connected.
    pub async fn online_all<const N: usize>(&self, names: [&str; N]) -> [Client; N] {
        let mut clients = Vec::with_capacity(N);
        for name in names {
            clients.push(self.online(name).await);
        }
        clients.try_into().unwrap_or_else(|_| unreachable!())
    }

    /// The end of a test: waits until each mailbox of `acked` has acknowledged everything
    /// stored for it, closes `clients` in order, and stops the relay.
    pub async fn finish(self, clients: impl IntoIterator<Item = Client>, acked: &[MailboxId]) {
        for &mailbox in acked {
            self.evil.wait_all_acked(mailbox).await;
        }
        for client in clients {
            client.close().await;
        }
        self.evil.shutdown().await;
    }
}

/// `from` sends each of `bodies` to the contact `to`, in order.
pub async fn send_all(from: &Client, to: &str, bodies: &[&str]) {
    for body in bodies {
        from.send(to, body.as_bytes().to_vec()).await.unwrap();
    }
}
