//! A minimal in-memory relay for the transport tests: routes sends to live connections,
//! stores them until acknowledged, redelivers on connect, and serves prekey bundles. (The real
//! relay, with durable storage and limits, is `sealwire-relay`.)

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealwire_core::{OneTimePrekey, PrekeyBundle, PublicIdentity, SignedPrekey};
use sealwire_transport::code::{CloseCode, ErrorCode};
use sealwire_transport::frame::{
    Accepted, Bundle, Delivery, MailboxId, MessageId, PrekeyStatus, ServerFrame,
};
use sealwire_transport::server::{
    AdmissionRefusal, Connection, HandshakeFailure, Refusal, Request, Service, Welcome,
};
use tokio::sync::Notify;

#[derive(Default)]
struct Mailbox {
    stored: BTreeMap<u64, Delivery>,
    /// The connection that gets new messages at once; set once its backlog is sent.
    live: Option<Connection>,
    /// The connection catching up on its backlog.
    catching_up: Option<Connection>,
    prekeys: Option<(PublicIdentity, SignedPrekey, VecDeque<OneTimePrekey>)>,
}

#[derive(Default)]
struct State {
    mailboxes: HashMap<MailboxId, Mailbox>,
    seen: HashSet<(MailboxId, MessageId)>,
    next_delivery: u64,
    disconnects: Vec<(MailboxId, CloseCode)>,
    accepted_sends: usize,
    sends_started: usize,
    refused: Vec<(SocketAddr, AdmissionRefusal)>,
    handshake_failures: Vec<(SocketAddr, HandshakeFailure)>,
    auth_failures: Vec<(SocketAddr, CloseCode)>,
}

/// The in-memory relay. Share one `Arc` between server restarts to model a durable store.
#[derive(Default)]
pub(crate) struct MemoryRelay {
    state: Mutex<State>,
    changed: Notify,
    this: Mutex<std::sync::Weak<MemoryRelay>>,
    /// How long `request` takes over a `send` before storing and answering it.
    send_delay: Mutex<Option<Duration>>,
}

impl MemoryRelay {
    pub(crate) fn new() -> Arc<MemoryRelay> {
        let relay = Arc::new(MemoryRelay::default());
        *relay.this.lock().unwrap() = Arc::downgrade(&relay);
        relay
    }

    /// Close codes of ended connections, in order.
    pub(crate) fn disconnects(&self) -> Vec<(MailboxId, CloseCode)> {
        self.state.lock().unwrap().disconnects.clone()
    }

    /// Waits until a connection of `mailbox` ended, and returns its close code.
    pub(crate) async fn wait_disconnect(&self, mailbox: MailboxId) -> CloseCode {
        loop {
            let notified = self.changed.notified();
            if let Some((_, code)) = self.disconnects().into_iter().find(|(m, _)| *m == mailbox) {
                return code;
            }
            notified.await;
        }
    }

    /// Messages stored (not yet acknowledged) for `mailbox`.
    pub(crate) fn stored(&self, mailbox: MailboxId) -> usize {
        let state = self.state.lock().unwrap();
        state.mailboxes.get(&mailbox).map_or(0, |m| m.stored.len())
    }

    /// Makes every later `send` take `delay` before it is stored and answered.
    pub(crate) fn set_send_delay(&self, delay: Duration) {
        *self.send_delay.lock().unwrap() = Some(delay);
    }

    /// Sends whose handling started (the relay may still be working on them).
    pub(crate) fn sends_started(&self) -> usize {
        self.state.lock().unwrap().sends_started
    }

    /// Distinct sends accepted so far.
    pub(crate) fn accepted_sends(&self) -> usize {
        self.state.lock().unwrap().accepted_sends
    }

    /// Connections refused by admission control, in order ([`Service::refused`]).
    pub(crate) fn refused(&self) -> Vec<(SocketAddr, AdmissionRefusal)> {
        self.state.lock().unwrap().refused.clone()
    }

    /// Failed handshakes, in order ([`Service::handshake_failed`]).
    pub(crate) fn handshake_failures(&self) -> Vec<(SocketAddr, HandshakeFailure)> {
        self.state.lock().unwrap().handshake_failures.clone()
    }

    /// Failed authentications, in order ([`Service::auth_failed`]).
    pub(crate) fn auth_failures(&self) -> Vec<(SocketAddr, CloseCode)> {
        self.state.lock().unwrap().auth_failures.clone()
    }

    /// Waits (within `support::WAIT`) until `found` picks something from the relay's state.
    pub(crate) async fn wait_until<T>(
        &self,
        mut found: impl FnMut(&MemoryRelay) -> Option<T>,
    ) -> T {
        tokio::time::timeout(super::WAIT, async {
            loop {
                let notified = self.changed.notified();
                if let Some(value) = found(self) {
                    return value;
                }
                notified.await;
            }
        })
        .await
        .expect("the relay did not see it in time")
    }

    fn record(&self, record: impl FnOnce(&mut State)) {
        record(&mut self.state.lock().unwrap());
        self.changed.notify_waiters();
    }
}

impl MemoryRelay {
    fn self_ref(&self) -> Arc<MemoryRelay> {
        self.this.lock().unwrap().upgrade().unwrap()
    }

    async fn catch_up(&self, connection: Connection) {
        let mut next = 0u64;
        loop {
            let batch: Vec<Delivery> = {
                let mut state = self.state.lock().unwrap();
                let mailbox = state.mailboxes.entry(connection.mailbox()).or_default();
                if mailbox
                    .catching_up
                    .as_ref()
                    .is_none_or(|c| c.id() != connection.id())
                {
                    return;
                }
                let batch: Vec<_> = mailbox
                    .stored
                    .range(next..)
                    .map(|(_, d)| d.clone())
                    .collect();
                if batch.is_empty() {
                    mailbox.live = mailbox.catching_up.take();
                    return;
                }
                batch
            };
            for delivery in batch {
                next = delivery.delivery + 1;
                if connection
                    .send_queued(&ServerFrame::Deliver(delivery))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

impl Service for MemoryRelay {
    async fn connected(&self, connection: &Connection) -> Result<Welcome, Refusal> {
        let mut state = self.state.lock().unwrap();
        let mailbox = state.mailboxes.entry(connection.mailbox()).or_default();
        for previous in [mailbox.live.take(), mailbox.catching_up.take()]
            .into_iter()
            .flatten()
        {
            previous.close(CloseCode::REPLACED);
        }
        mailbox.catching_up = Some(connection.clone());
        let one_time = mailbox
            .prekeys
            .as_ref()
            .map_or(0, |(_, _, keys)| keys.len());
        drop(state);
        // Stream the backlog with flow control, then go live (in order: a message stored while
        // catching up is picked up by the next round).
        let relay = self.self_ref();
        let connection = connection.clone();
        tokio::spawn(async move { relay.catch_up(connection).await });
        Ok(Welcome::new(u32::try_from(one_time).unwrap()))
    }

    async fn request(&self, connection: &Connection, request: Request) -> Result<(), Refusal> {
        if let Request::Send(_) = &request {
            self.record(|state| state.sends_started += 1);
            let delay = *self.send_delay.lock().unwrap();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
        }
        let mut state = self.state.lock().unwrap();
        let from = connection.mailbox();
        match request {
            Request::Send(send) => {
                if state.seen.insert((from, send.id)) {
                    state.accepted_sends += 1;
                    for to in &send.to {
                        state.next_delivery += 1;
                        let delivery = Delivery {
                            delivery: state.next_delivery,
                            from,
                            id: send.id,
                            payload: send.payload.clone(),
                        };
                        let mailbox = state.mailboxes.entry(*to).or_default();
                        if let Some(live) = &mailbox.live {
                            // A slow consumer is closed; the message stays stored.
                            let _ = live.send(&ServerFrame::Deliver(delivery.clone()));
                        }
                        mailbox.stored.insert(delivery.delivery, delivery);
                    }
                }
                let _ = connection.send(&ServerFrame::Accepted(Accepted { id: send.id }));
            }
            Request::Ack(ack) => {
                let mailbox = state.mailboxes.entry(from).or_default();
                for delivery in ack.deliveries {
                    mailbox.stored.remove(&delivery);
                }
            }
            Request::UploadPrekeys(upload) => {
                let mailbox = state.mailboxes.entry(from).or_default();
                let identity = connection.identity().clone();
                let keys = mailbox
                    .prekeys
                    .take()
                    .map(|(_, _, keys)| keys)
                    .unwrap_or_default();
                let mut keys = keys;
                keys.extend(upload.one_time);
                let left = keys.len();
                mailbox.prekeys = Some((identity, upload.signed_prekey, keys));
                let status = PrekeyStatus {
                    request: Some(upload.request),
                    one_time_prekeys: u32::try_from(left).unwrap(),
                    low: left < 10,
                };
                let _ = connection.send(&ServerFrame::Prekeys(status));
            }
            Request::FetchBundle(fetch) => {
                let mailbox = state.mailboxes.entry(fetch.mailbox).or_default();
                let Some((identity, signed, keys)) = mailbox.prekeys.as_mut() else {
                    return Err(Refusal::Error(ErrorCode::NoBundle));
                };
                let bundle = PrekeyBundle {
                    identity: identity.clone(),
                    signed_prekey: signed.clone(),
                    one_time_prekey: keys.pop_front(),
                };
                let frame = ServerFrame::Bundle(Bundle {
                    request: fetch.request,
                    bundle: bundle.to_bytes(),
                });
                let _ = connection.send(&frame);
            }
            _ => return Err(Refusal::Error(ErrorCode::BadRequest)),
        }
        Ok(())
    }

    fn refused(&self, peer: SocketAddr, reason: AdmissionRefusal) {
        self.record(|state| state.refused.push((peer, reason)));
    }

    fn handshake_failed(&self, peer: SocketAddr, failure: HandshakeFailure) {
        self.record(|state| state.handshake_failures.push((peer, failure)));
    }

    fn auth_failed(&self, peer: SocketAddr, code: CloseCode) {
        self.record(|state| state.auth_failures.push((peer, code)));
    }

    async fn disconnected(&self, connection: &Connection, code: CloseCode) {
        {
            let mut state = self.state.lock().unwrap();
            let mailbox = state.mailboxes.entry(connection.mailbox()).or_default();
            if mailbox
                .live
                .as_ref()
                .is_some_and(|live| live.id() == connection.id())
            {
                mailbox.live = None;
            }
            state.disconnects.push((connection.mailbox(), code));
        }
        self.changed.notify_waiters();
    }
}
