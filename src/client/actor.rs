//! The client's background task: one loop that owns the state, reads the relay connection's
//! events, runs the application's commands, and writes every change to the store before it
//! acts on it.
//!
//! Requests to the relay (sends, acks, uploads) go through a separate *submitter* task, in
//! order, so that this loop never waits on the relay while the relay waits on it. Bundle
//! fetches run as their own tasks and report back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sealwire_core::{IdentityKeyPair, Timestamp};
use sealwire_transport::client::{Client as TransportClient, Event as TransportEvent, Requester};
use sealwire_transport::frame::{MailboxId, MessageId, PrekeyStatus, PrekeyUpload};
use tokio::sync::mpsc;

use super::profile::{Profile, unix_now};
use super::state::{Dirty, State};
use super::{ClientOptions, Command, Conversation, Event, Incoming, Reply};
use crate::error::{Error, Result};
use crate::store::LocalStore;

/// What the submitter task sends to the relay, in order.
pub(super) enum Outgoing {
    Send {
        id: MessageId,
        to: Vec<MailboxId>,
        payload: Vec<u8>,
    },
    Ack(Vec<u64>),
    Upload(PrekeyUpload),
}

/// What the helper tasks report back to the loop.
pub(super) enum Feedback {
    Bundle(MailboxId, sealwire_transport::Result<Vec<u8>>),
    SendFailed(MessageId, sealwire_transport::Error),
    Uploaded(sealwire_transport::Result<PrekeyStatus>),
    /// Time to try a failed bundle fetch again.
    Refetch(MailboxId),
}

/// How long after a failed bundle fetch (timeout, connection lost) it is tried again.
const REFETCH_AFTER: Duration = Duration::from_secs(1);

pub(super) struct Actor {
    pub(super) state: State,
    pub(super) options: ClientOptions,
    pub(super) rng: StdRng,
    store: Arc<LocalStore>,
    transport: TransportClient,
    requester: Requester,
    out: mpsc::UnboundedSender<Outgoing>,
    feedback_tx: mpsc::UnboundedSender<Feedback>,
    feedback_rx: mpsc::UnboundedReceiver<Feedback>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    /// Mailboxes whose bundle is being fetched.
    fetching: HashSet<MailboxId>,
    /// Outbox sequence number by message id.
    pub(super) outbox_index: HashMap<MessageId, u64>,
    flush_waiters: Vec<Reply<()>>,
    /// Events and requests that wait for the next commit.
    pending_events: Vec<Event>,
    pending_out: Vec<Outgoing>,
    /// Most recipients per send, as the relay announced.
    pub(super) max_recipients: usize,
    /// Groups whose state changed: retry what waits for them.
    pub(super) woken: HashSet<sealwire_core::GroupId>,
    /// Sends the relay refused for now (retryable codes), with when that first happened.
    retrying: HashMap<MessageId, u64>,
    /// Prekey uploads sent and not yet answered.
    uploads_in_flight: usize,
    /// An upload failed: upload the signed prekey again on the next connection.
    reupload: bool,
    /// When the account was last pruned (Unix seconds).
    pruned_at: u64,
}

/// How often housekeeping prunes the account.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long a send the relay refuses for now (quota, rate, space) is retried before it fails.
const RETRY_FOR: Duration = Duration::from_secs(24 * 3600);

/// Starts the transport client, the submitter and the loop.
pub(super) fn spawn(
    profile: Profile,
    options: ClientOptions,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) -> Result<()> {
    let Profile { store, state } = profile;
    let identity =
        IdentityKeyPair::from_bytes(state.account.identity().to_bytes().expose_secret())?;
    let transport = TransportClient::start(options.transport.clone(), identity)?;
    let requester = transport.requester();
    let (out, out_rx) = mpsc::unbounded_channel();
    let (feedback_tx, feedback_rx) = mpsc::unbounded_channel();
    tokio::spawn(submitter(requester.clone(), out_rx, feedback_tx.clone()));
    let outbox_index = state
        .outbox
        .iter()
        .map(|(&seq, record)| (MessageId(record.id), seq))
        .collect();
    let max_recipients = options.transport.limits.max_recipients;
    let actor = Actor {
        state,
        options,
        rng: StdRng::from_rng(&mut rand::rng()),
        store,
        transport,
        requester,
        out,
        feedback_tx,
        feedback_rx,
        commands,
        events,
        fetching: HashSet::new(),
        outbox_index,
        flush_waiters: Vec::new(),
        pending_events: Vec::new(),
        pending_out: Vec::new(),
        max_recipients,
        woken: HashSet::new(),
        retrying: HashMap::new(),
        uploads_in_flight: 0,
        reupload: false,
        pruned_at: 0,
    };
    tokio::spawn(actor.run());
    Ok(())
}

/// Sends requests to the relay in order; a refused send is reported back.
async fn submitter(
    requester: Requester,
    mut requests: mpsc::UnboundedReceiver<Outgoing>,
    feedback: mpsc::UnboundedSender<Feedback>,
) {
    while let Some(request) = requests.recv().await {
        match request {
            Outgoing::Send { id, to, payload } => {
                match requester.send_with_id(id, to, payload).await {
                    Ok(()) => {}
                    Err(sealwire_transport::Error::Shutdown) => return,
                    Err(error) => {
                        let _ = feedback.send(Feedback::SendFailed(id, error));
                    }
                }
            }
            Outgoing::Ack(deliveries) => {
                if requester.ack(deliveries).await.is_err() {
                    return;
                }
            }
            Outgoing::Upload(upload) => {
                // Answered asynchronously, so that later sends do not wait for it.
                let requester = requester.clone();
                let feedback = feedback.clone();
                tokio::spawn(async move {
                    let result = requester.upload_prekeys(upload).await;
                    let _ = feedback.send(Feedback::Uploaded(result));
                });
            }
        }
    }
}

pub(super) fn now() -> Timestamp {
    Timestamp::from_unix_secs(unix_now())
}

impl Actor {
    async fn run(mut self) {
        let reason = self.run_loop().await;
        for waiter in self.flush_waiters.drain(..) {
            let _ = waiter.send(Err(Error::Stopped));
        }
        let Actor {
            transport,
            events,
            store,
            ..
        } = self;
        // Release the store before reporting the stop: whoever waits for the stop may open
        // it again at once.
        drop(store);
        // Close the connection now (1000), rather than when the last request handle held by a
        // helper task goes away: a lingering connection would keep receiving (and never
        // acknowledging) this mailbox's deliveries.
        let _ = tokio::time::timeout(Duration::from_secs(5), transport.close()).await;
        let _ = events.send(Event::Stopped(reason)).await;
    }

    /// Runs until something stops the client; returns why.
    async fn run_loop(&mut self) -> Error {
        if let Err(error) = self.start_up().await {
            return error;
        }
        let mut tick =
            tokio::time::interval(self.options.housekeeping.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => return Error::Stopped,
                },
                event = self.transport.next_event() => match event {
                    Some(TransportEvent::Stopped { error }) => return Error::Transport(error),
                    Some(event) => self.transport_event(event).await,
                    None => return Error::Stopped,
                },
                Some(feedback) = self.feedback_rx.recv() => self.feedback(feedback).await,
                _ = tick.tick() => self.housekeeping().await,
            };
            if let Err(error) = step {
                return error;
            }
        }
    }

    /// Replays the inbox to the application and sends the outbox again.
    async fn start_up(&mut self) -> Result<()> {
        let unconfirmed: Vec<u64> = self.state.inbox.keys().copied().collect();
        for seq in unconfirmed {
            if let Some(incoming) = self.incoming(seq) {
                self.pending_events.push(Event::Message(incoming));
            }
        }
        let outbox: Vec<Outgoing> = self
            .state
            .outbox
            .values()
            .map(|record| Outgoing::Send {
                id: MessageId(record.id),
                to: record.to.iter().map(|m| MailboxId(*m)).collect(),
                payload: record.payload.clone(),
            })
            .collect();
        self.pending_out.extend(outbox);
        self.settle().await
    }

    /// The inbox entry `seq` as an [`Incoming`].
    pub(super) fn incoming(&self, seq: u64) -> Option<Incoming> {
        let record = self.state.inbox.get(&seq)?;
        let sender = self.state.stored_identity(&record.from).ok()?;
        let (contact, verified) = match self.state.contact_name(&sender) {
            Some((name, verified)) => (Some(name.to_owned()), verified),
            None => (None, false),
        };
        Some(Incoming {
            seq,
            contact,
            verified,
            conversation: match record.group {
                Some(id) => Conversation::Group(sealwire_core::GroupId::from_bytes(id)),
                None => Conversation::Direct,
            },
            body: record.body.clone(),
            sent_at: record.sent_at,
            received_at: record.received_at,
            sender,
        })
    }

    /// Queues an event for after the next commit.
    pub(super) fn emit(&mut self, event: Event) {
        self.pending_events.push(event);
    }

    /// Queues a request to the relay for after the next commit.
    pub(super) fn submit(&mut self, request: Outgoing) {
        self.pending_out.push(request);
    }

    /// Writes every change, then hands the queued requests to the relay and the queued
    /// events to the application. A failed write stops the client: the store keeps the last
    /// committed state, from which a restart recovers.
    pub(super) async fn settle(&mut self) -> Result<()> {
        if self.state.is_dirty() {
            let batch = self.state.take_batch();
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.commit(&batch))
                .await
                .map_err(|_| Error::Storage("the store task failed".into()))??;
        }
        for request in core::mem::take(&mut self.pending_out) {
            if self.out.send(request).is_err() {
                return Err(Error::Stopped);
            }
        }
        for event in core::mem::take(&mut self.pending_events) {
            if self.events.send(event).await.is_err() {
                // The application dropped the client.
                return Err(Error::Stopped);
            }
        }
        if self.is_flushed() {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(Ok(()));
            }
        }
        Ok(())
    }

    /// Starts fetching `mailbox`'s bundle unless a fetch is running.
    pub(super) fn fetch_bundle(&mut self, mailbox: MailboxId) {
        if !self.fetching.insert(mailbox) {
            return;
        }
        let requester = self.requester.clone();
        let feedback = self.feedback_tx.clone();
        tokio::spawn(async move {
            let result = requester.fetch_bundle(mailbox).await;
            let _ = feedback.send(Feedback::Bundle(mailbox, result));
        });
    }

    /// Nothing waits for the relay: no send unaccepted, none waiting for a session, no
    /// prekey upload unanswered.
    fn is_flushed(&self) -> bool {
        self.state.outbox.is_empty() && self.state.queued.is_empty() && self.uploads_in_flight == 0
    }

    async fn command(&mut self, command: Command) -> Result<()> {
        match command {
            Command::AddContact {
                name,
                identity,
                replace,
                reply,
            } => {
                let result = self
                    .state
                    .add_contact(&name, &identity, replace, unix_now());
                self.settle().await?;
                let _ = reply.send(result);
            }
            Command::Contacts(reply) => {
                let _ = reply.send(self.state.contact_list());
            }
            Command::SetVerified {
                name,
                verified,
                reply,
            } => {
                let result = self.state.set_verified(&name, verified);
                self.settle().await?;
                let _ = reply.send(result);
            }
            Command::Send { to, body, reply } => {
                let result = self.send_direct(&to, body);
                self.settle().await?;
                let _ = reply.send(result);
            }
            Command::CreateGroup {
                label,
                members,
                reply,
            } => {
                let result = self.create_group(label, &members);
                self.settle().await?;
                let _ = reply.send(result);
            }
            Command::ChangeMembers {
                group,
                add,
                remove,
                reply,
            } => {
                let result = self.change_members(group, &add, &remove);
                self.settle().await?;
                let _ = reply.send(result);
            }
            Command::SendGroup { group, body, reply } => {
                let result = self.send_group(group, body);
                self.settle().await?;
                let _ = reply.send(result);
            }
            Command::Groups(reply) => {
                let _ = reply.send(Ok(self.state.group_list()));
            }
            Command::Confirm { seq, reply } => {
                if self.state.inbox.remove(&seq).is_some() {
                    self.state.mark(Dirty::Inbox(seq));
                }
                self.settle().await?;
                let _ = reply.send(Ok(()));
            }
            Command::Flush(reply) => {
                if self.is_flushed() {
                    let _ = reply.send(Ok(()));
                } else {
                    self.flush_waiters.push(reply);
                }
            }
        }
        Ok(())
    }

    async fn transport_event(&mut self, event: TransportEvent) -> Result<()> {
        match event {
            TransportEvent::Connected(ready) => {
                self.max_recipients = (ready.max_recipients as usize).max(1);
                self.emit(Event::Connected);
                self.maintain_prekeys(ready.one_time_prekeys)?;
                self.retry_fetches();
                // (The transport sends again whatever was not accepted; refused sends are ours.)
                self.resubmit_refused();
            }
            TransportEvent::Delivered(delivery) => self.receive(delivery)?,
            TransportEvent::Accepted(id) => {
                self.retrying.remove(&id);
                if self.take_outbox(id).is_some_and(|record| record.report) {
                    self.emit(Event::Sent(id));
                }
            }
            TransportEvent::Rejected { id, code } if code.is_retryable() => {
                // Quota, rate or a relay short of space: the send stays in the outbox and goes
                // again with the same id from housekeeping, for up to RETRY_FOR.
                let since = *self.retrying.entry(id).or_insert_with(unix_now);
                if unix_now().saturating_sub(since) > RETRY_FOR.as_secs() {
                    self.retrying.remove(&id);
                    self.fail_send(id, Error::Refused(code));
                } else {
                    tracing::debug!(%code, "the relay refused a send for now; retrying later");
                }
            }
            TransportEvent::Rejected { id, code } => {
                self.retrying.remove(&id);
                self.fail_send(id, Error::Refused(code));
            }
            TransportEvent::PrekeysLow(status) => {
                self.maintain_prekeys(status.one_time_prekeys)?;
            }
            TransportEvent::Disconnected { error, retry_in } => {
                self.emit(Event::Disconnected { error, retry_in });
            }
            _ => {}
        }
        self.settle().await
    }

    /// Forgets a send the relay will never accept.
    fn fail_send(&mut self, id: MessageId, error: Error) {
        match self.take_outbox(id) {
            Some(record) if record.report => self.emit(Event::SendFailed { id, error }),
            Some(_) => tracing::warn!(%error, "a group control message or fan-out was refused"),
            None => {}
        }
    }

    /// Removes the outbox entry of send `id` (accepted or given up).
    fn take_outbox(&mut self, id: MessageId) -> Option<super::state::OutboxRecord> {
        let seq = self.outbox_index.remove(&id)?;
        let record = self.state.outbox.remove(&seq)?;
        self.state.mark(Dirty::Outbox(seq));
        Some(record)
    }

    /// Sends again what the relay refused for now.
    fn resubmit_refused(&mut self) {
        let ids: Vec<MessageId> = self.retrying.keys().copied().collect();
        for id in ids {
            let Some(record) = self
                .outbox_index
                .get(&id)
                .and_then(|seq| self.state.outbox.get(seq))
            else {
                self.retrying.remove(&id);
                continue;
            };
            let request = Outgoing::Send {
                id,
                to: record.to.iter().map(|m| MailboxId(*m)).collect(),
                payload: record.payload.clone(),
            };
            self.submit(request);
        }
    }

    async fn feedback(&mut self, feedback: Feedback) -> Result<()> {
        match feedback {
            Feedback::Bundle(mailbox, result) => {
                self.fetching.remove(&mailbox);
                if self.bundle_fetched(mailbox, result) {
                    let feedback = self.feedback_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(REFETCH_AFTER).await;
                        let _ = feedback.send(Feedback::Refetch(mailbox));
                    });
                }
            }
            Feedback::Refetch(mailbox) => {
                if self.state.queued.values().any(|q| q.mailbox == mailbox.0) {
                    self.fetch_bundle(mailbox);
                }
            }
            Feedback::SendFailed(id, error) => self.fail_send(id, Error::Transport(error)),
            Feedback::Uploaded(Ok(_)) => {
                self.uploads_in_flight = self.uploads_in_flight.saturating_sub(1);
            }
            Feedback::Uploaded(Err(error)) => {
                self.uploads_in_flight = self.uploads_in_flight.saturating_sub(1);
                self.reupload = true;
                tracing::warn!(%error, "uploading prekeys failed; retrying on the next connection");
            }
        }
        self.settle().await
    }

    /// Starts a fetch for every peer with queued messages and no session.
    fn retry_fetches(&mut self) {
        let peers: HashSet<MailboxId> = self
            .state
            .queued
            .values()
            .map(|record| MailboxId(record.mailbox))
            .collect();
        for peer in peers {
            self.fetch_bundle(peer);
        }
    }

    /// Tops up the relay's one-time prekeys and rotates the signed prekey when due. The new
    /// secrets are committed before the public halves leave (by [`Actor::settle`]).
    fn maintain_prekeys(&mut self, on_relay: u32) -> Result<()> {
        let now = now();
        let mut changed = false;
        if self.state.account.signed_prekey_due(now) {
            self.state.account.rotate_signed_prekey(&mut self.rng, now);
            changed = true;
        }
        let mut one_time = Vec::new();
        if on_relay < self.options.low_prekeys {
            let max = self.state.account.config().max_one_time_prekeys as usize;
            let room = max.saturating_sub(self.state.account.one_time_prekey_count());
            let wanted = self.options.one_time_prekeys.saturating_sub(on_relay) as usize;
            let count = wanted.min(room);
            if count > 0 {
                one_time = self
                    .state
                    .account
                    .generate_one_time_prekeys(count, &mut self.rng)?;
                changed = true;
            }
        }
        // The first connection publishes the signed prekey even with no one-time prekeys.
        if changed || on_relay == 0 || self.reupload {
            self.reupload = false;
            self.state.mark(Dirty::Account);
            self.uploads_in_flight += 1;
            self.submit(Outgoing::Upload(PrekeyUpload {
                request: 0,
                signed_prekey: self.state.account.signed_prekey().clone(),
                one_time,
            }));
        }
        Ok(())
    }

    async fn housekeeping(&mut self) -> Result<()> {
        let now_secs = unix_now();
        // Pruning retires old prekey secrets; writing the account for it once an hour is
        // enough (any other change to the account writes it sooner).
        if now_secs.saturating_sub(self.pruned_at) >= PRUNE_EVERY.as_secs() {
            self.pruned_at = now_secs;
            self.state.account.prune(now());
            self.state.mark(Dirty::Account);
        }
        let keep = self.options.remember_seen.as_secs();
        let old: Vec<_> = self
            .state
            .seen
            .iter()
            .filter(|(_, at)| now_secs.saturating_sub(**at) > keep)
            .map(|(key, _)| *key)
            .collect();
        for key in old {
            self.state.seen.remove(&key);
            self.state.mark(Dirty::Seen(key.0, key.1));
        }
        self.expire_parked(now_secs);
        self.retry_fetches();
        self.resubmit_refused();
        if self.state.account.signed_prekey_due(now()) {
            // A long-lived connection rotates too (not only at connect time).
            self.maintain_prekeys(u32::MAX)?;
        }
        self.settle().await
    }
}
