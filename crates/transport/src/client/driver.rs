//! The client's connection task: connect, resend what is outstanding, relay frames and
//! commands (written in batches, one flush each: [`Batch`]), reconnect with backoff.

use std::collections::{BTreeMap, VecDeque};

use futures_util::StreamExt;
use sealwire_core::IdentityKeyPair;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::connect::{self, Socket, Target};
use super::writer::Writer;
use super::{ClientConfig, Command, Event, MAX_EXPIRED_TOKEN_RETRIES, TokenSource};
use crate::code::{CloseCode, ErrorCode};
use crate::error::{Error, Result};
use crate::frame::{
    self, ClientFrame, FetchBundle, MailboxId, MessageId, PrekeyStatus, PrekeyUpload, Send,
    ServerFrame, Subject,
};
use crate::limits::Limits;

/// Most commands written in one batch (one flush).
const BATCH_COMMANDS: usize = 64;

/// A batch takes no further command once its sends reach this many bytes.
const BATCH_BYTES: usize = 64 * 1024;

/// A send waiting for the relay's acceptance, encoded once and resent as is.
pub(crate) struct PendingSend {
    id: MessageId,
    frame: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl PendingSend {
    pub(crate) fn new(
        id: MessageId,
        to: Vec<MailboxId>,
        payload: Vec<u8>,
        permit: OwnedSemaphorePermit,
    ) -> PendingSend {
        let frame = ClientFrame::Send(Send { id, to, payload });
        // Encoding plain structs into a Vec cannot fail.
        let frame = frame::encode(&frame).unwrap_or_default().into();
        PendingSend {
            id,
            frame,
            _permit: permit,
        }
    }
}

enum Outstanding {
    Fetch(MailboxId, oneshot::Sender<Result<Vec<u8>>>),
    Upload(PrekeyUpload, oneshot::Sender<Result<PrekeyStatus>>),
}

impl Outstanding {
    fn frame(&self, request: u32) -> ClientFrame {
        match self {
            Outstanding::Fetch(mailbox, _) => ClientFrame::FetchBundle(FetchBundle {
                request,
                mailbox: *mailbox,
            }),
            Outstanding::Upload(upload, _) => ClientFrame::UploadPrekeys(PrekeyUpload {
                request,
                ..upload.clone()
            }),
        }
    }

    fn abandoned(&self) -> bool {
        match self {
            Outstanding::Fetch(_, reply) => reply.is_closed(),
            Outstanding::Upload(_, reply) => reply.is_closed(),
        }
    }
}

/// Everything that outlives one connection.
#[derive(Default)]
struct State {
    pending: VecDeque<PendingSend>,
    acks: Vec<u64>,
    requests: BTreeMap<u32, Outstanding>,
    next_request: u32,
}

impl State {
    /// Takes a command while disconnected; `false` means stop.
    fn absorb(&mut self, command: Option<Command>) -> bool {
        match command {
            Some(Command::Send(send)) => self.pending.push_back(send),
            Some(Command::Ack(deliveries)) => self.acks.extend(deliveries),
            Some(Command::Fetch(mailbox, reply)) => {
                self.add_request(Outstanding::Fetch(mailbox, reply));
            }
            Some(Command::Upload(upload, reply)) => {
                self.add_request(Outstanding::Upload(upload, reply));
            }
            Some(Command::Close) | None => return false,
        }
        true
    }

    fn add_request(&mut self, request: Outstanding) -> u32 {
        let id = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        self.requests.insert(id, request);
        id
    }

    fn take_pending(&mut self, id: MessageId) -> bool {
        match self.pending.iter().position(|send| send.id == id) {
            Some(index) => self.pending.remove(index).is_some(),
            None => false,
        }
    }
}

/// How a connected session ended.
#[derive(Debug)]
enum Exit {
    /// The application closed the client.
    Closed,
    /// The connection failed.
    Failed(Error),
}

pub(crate) async fn run(
    config: ClientConfig,
    target: Target,
    identity: IdentityKeyPair,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) {
    let mut state = State::default();
    let mut attempt = 0u32;
    let mut expired_tokens = 0u32;
    loop {
        let connected = {
            let connecting = connect::connect(&config, &target, &identity);
            tokio::pin!(connecting);
            loop {
                tokio::select! {
                    result = &mut connecting => break Some(result),
                    command = commands.recv() => if !state.absorb(command) { break None },
                }
            }
        };
        let error = match connected {
            None => return stop(&events, Error::Shutdown).await,
            Some(Err(error)) => error,
            Some(Ok((mut ws, ready))) => {
                attempt = 0;
                expired_tokens = 0;
                tracing::debug!(mailbox = %ready.mailbox, "connected");
                if events.send(Event::Connected(ready)).await.is_err() {
                    return;
                }
                match session(&mut ws, &config.limits, &mut state, &mut commands, &events).await {
                    Exit::Closed => {
                        let frame = CloseFrame {
                            code: CloseCode::NORMAL.0.into(),
                            reason: "".into(),
                        };
                        let _ = timeout(config.limits.write_timeout, ws.close(Some(frame))).await;
                        return stop(&events, Error::Shutdown).await;
                    }
                    Exit::Failed(error) => {
                        // Tell a relay that broke the protocol why we leave.
                        let code = match error {
                            Error::MalformedFrame(_) => Some(CloseCode::MALFORMED_FRAME),
                            Error::UnexpectedFrame(_) => Some(CloseCode::POLICY_VIOLATION),
                            _ => None,
                        };
                        if let Some(code) = code {
                            let frame = CloseFrame {
                                code: code.0.into(),
                                reason: code.name().unwrap_or("").into(),
                            };
                            let _ =
                                timeout(config.limits.write_timeout, ws.close(Some(frame))).await;
                        }
                        error
                    }
                }
            }
        };
        if is_token_expiry(&error) {
            expired_tokens = expired_tokens.saturating_add(1);
        }
        if is_fatal(&error, &config, expired_tokens) {
            tracing::warn!(%error, "stopped");
            return stop(&events, error).await;
        }
        let retry_in = config.backoff.delay(attempt);
        attempt = attempt.saturating_add(1);
        tracing::debug!(%error, ?retry_in, "disconnected");
        if events
            .send(Event::Disconnected { error, retry_in })
            .await
            .is_err()
        {
            return;
        }
        let wait = tokio::time::sleep(retry_in);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                command = commands.recv() => if !state.absorb(command) {
                    return stop(&events, Error::Shutdown).await;
                },
            }
        }
    }
}

async fn stop(events: &mpsc::Sender<Event>, error: Error) {
    let _ = events.send(Event::Stopped { error }).await;
}

fn is_token_expiry(error: &Error) -> bool {
    matches!(error, Error::Closed { code, .. } if *code == CloseCode::TOKEN_EXPIRED)
}

/// Whether reconnecting cannot help.
fn is_fatal(error: &Error, config: &ClientConfig, expired_tokens: u32) -> bool {
    match error {
        // A provider may hand out a fresh token next time; a static token stays expired.
        Error::Closed { code, .. } if *code == CloseCode::TOKEN_EXPIRED => match &config.token {
            Some(TokenSource::Provider(_)) => expired_tokens > MAX_EXPIRED_TOKEN_RETRIES,
            _ => true,
        },
        Error::UpgradeRefused { status } => !(500..600).contains(status) && *status != 429,
        Error::Closed { code, .. } => code.is_fatal(),
        Error::UntrustedCertificate(_)
        | Error::InvalidConfig(_)
        | Error::AuthFailed(_)
        | Error::Core(_)
        | Error::MalformedFrame(_)
        | Error::UnexpectedFrame(_) => true,
        _ => false,
    }
}

/// One connected session: resend what is outstanding, then relay until it ends.
async fn session(
    ws: &mut Socket,
    limits: &Limits,
    state: &mut State,
    commands: &mut mpsc::Receiver<Command>,
    events: &mpsc::Sender<Event>,
) -> Exit {
    let mut writer = Writer::new(ws, limits);
    if let Err(error) = resume(&mut writer, state).await {
        return Exit::Failed(error);
    }
    let mut last_received = Instant::now();
    // One timer for the whole session, moved on only when it fires (not re-armed per frame).
    let idle = sleep_until(last_received + limits.idle_timeout);
    tokio::pin!(idle);
    let mut batch = Batch::default();
    loop {
        tokio::select! {
            incoming = writer.ws.next() => {
                last_received = Instant::now();
                let frame = match incoming {
                    None => return Exit::Failed(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
                    Some(Err(error)) => return Exit::Failed(error.into()),
                    Some(Ok(Message::Binary(bytes))) => match frame::decode::<ServerFrame>(&bytes) {
                        Ok(frame) => frame,
                        Err(error) => return Exit::Failed(error),
                    },
                    Some(Ok(Message::Close(close))) => return Exit::Failed(connect::closed(close)),
                    Some(Ok(Message::Text(_))) => {
                        return Exit::Failed(Error::UnexpectedFrame("text message"));
                    }
                    Some(Ok(_)) => continue,
                };
                if let Err(error) = dispatch(frame, state, events).await {
                    return Exit::Failed(error);
                }
            }
            command = commands.recv() => {
                let Some(first) = command else { return Exit::Closed };
                let close = batch.take(first, commands, state);
                if let Err(error) = batch.write(&mut writer, state).await {
                    // Acks are idempotent: those of a failed batch go again after the reconnect.
                    state.acks.append(&mut batch.acks);
                    return Exit::Failed(error);
                }
                if close {
                    return Exit::Closed;
                }
            }
            () = &mut idle => {
                let deadline = last_received + limits.idle_timeout;
                if Instant::now() < deadline {
                    idle.as_mut().reset(deadline);
                    continue;
                }
                return Exit::Failed(Error::Timeout { what: "idle connection", after: limits.idle_timeout });
            }
        }
    }
}

/// One write to the relay: the frames of the commands taken together, in queue order, except
/// that the delivery ids of all the batch's acks go out together where its first ack was.
enum Item {
    /// An encoded `send` (also in `State::pending`).
    Send(Bytes),
    /// The request with this id (in `State::requests`).
    Request(u32),
    /// The `ack` frames of [`Batch::acks`].
    Acks,
}

/// Commands taken from the queue at once, written with one flush. Sends keep their order
/// (the relay stores them in the order received), and so do requests; an ack is never written
/// later than it would be alone, but acks queued later in the batch join the first one and so
/// may overtake sends and requests queued between them (acks and sends are independent).
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    acks: Vec<u64>,
}

impl Batch {
    /// Takes `first` and what is already queued behind it, at most [`BATCH_COMMANDS`] commands
    /// and no further command once the sends reach [`BATCH_BYTES`]; records sends in
    /// `pending` and requests in `requests` before anything is written, so that a failed
    /// write leads to a resend after the reconnect. Returns whether the batch ends with
    /// [`Command::Close`] (or every sender is gone): the session ends once it is written.
    fn take(
        &mut self,
        first: Command,
        commands: &mut mpsc::Receiver<Command>,
        state: &mut State,
    ) -> bool {
        self.items.clear();
        self.acks.clear();
        let (mut taken, mut bytes, mut acks_placed) = (0usize, 0usize, false);
        let mut command = first;
        loop {
            match command {
                Command::Send(send) => {
                    bytes = bytes.saturating_add(send.frame.len());
                    self.items.push(Item::Send(send.frame.clone()));
                    state.pending.push_back(send);
                }
                Command::Ack(deliveries) => {
                    if !acks_placed {
                        acks_placed = true;
                        self.items.push(Item::Acks);
                    }
                    self.acks.extend(deliveries);
                }
                Command::Fetch(mailbox, reply) => {
                    let id = state.add_request(Outstanding::Fetch(mailbox, reply));
                    self.items.push(Item::Request(id));
                }
                Command::Upload(upload, reply) => {
                    let id = state.add_request(Outstanding::Upload(upload, reply));
                    self.items.push(Item::Request(id));
                }
                Command::Close => return true,
            }
            taken += 1;
            if taken >= BATCH_COMMANDS || bytes >= BATCH_BYTES {
                return false;
            }
            command = match commands.try_recv() {
                Ok(next) => next,
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            };
        }
    }

    /// Feeds the batch's frames in order, then flushes once.
    async fn write(&self, writer: &mut Writer<'_>, state: &State) -> Result<()> {
        for item in &self.items {
            match item {
                Item::Send(frame) => writer.feed(frame.clone()).await?,
                Item::Request(id) => {
                    if let Some(request) = state.requests.get(id) {
                        writer.feed_frame(&request.frame(*id)).await?;
                    }
                }
                Item::Acks => writer.feed_acks(&self.acks).await?,
            }
        }
        writer.flush().await
    }
}

/// After a (re)connect: sends not yet accepted (same ids, in order), acks not yet written,
/// requests not yet answered; one flush.
async fn resume(writer: &mut Writer<'_>, state: &mut State) -> Result<()> {
    for send in &state.pending {
        writer.feed(send.frame.clone()).await?;
    }
    writer.feed_acks(&state.acks).await?;
    state.requests.retain(|_, request| !request.abandoned());
    for (id, request) in &state.requests {
        writer.feed_frame(&request.frame(*id)).await?;
    }
    writer.flush().await?;
    state.acks.clear();
    Ok(())
}

/// Acts on one server frame.
async fn dispatch(
    frame: ServerFrame,
    state: &mut State,
    events: &mpsc::Sender<Event>,
) -> Result<()> {
    let event = match frame {
        ServerFrame::Deliver(delivery) => Some(Event::Delivered(delivery)),
        ServerFrame::Accepted(accepted) => state
            .take_pending(accepted.id)
            .then_some(Event::Accepted(accepted.id)),
        ServerFrame::Bundle(bundle) => {
            if let Some(Outstanding::Fetch(_, reply)) = state.requests.remove(&bundle.request) {
                let _ = reply.send(Ok(bundle.bundle));
            }
            None
        }
        ServerFrame::Prekeys(status) => match status.request {
            Some(request) => {
                if let Some(Outstanding::Upload(_, reply)) = state.requests.remove(&request) {
                    let _ = reply.send(Ok(status));
                }
                None
            }
            None => Some(Event::PrekeysLow(status)),
        },
        ServerFrame::Error(error) => {
            let code = ErrorCode::from_u16(error.code);
            match error.subject {
                Subject::Send(id) => state
                    .take_pending(id)
                    .then_some(Event::Rejected { id, code }),
                Subject::Fetch(request) | Subject::Upload(request) => {
                    match state.requests.remove(&request) {
                        Some(Outstanding::Fetch(_, reply)) => {
                            let _ = reply.send(Err(Error::Refused { code }));
                        }
                        Some(Outstanding::Upload(_, reply)) => {
                            let _ = reply.send(Err(Error::Refused { code }));
                        }
                        None => {}
                    }
                    None
                }
                Subject::Ack => {
                    tracing::warn!(%code, "the relay refused an ack");
                    None
                }
            }
        }
        ServerFrame::Challenge(_) | ServerFrame::Ready(_) => {
            return Err(Error::UnexpectedFrame(
                "challenge or ready after authentication",
            ));
        }
    };
    if let Some(event) = event {
        events.send(event).await.map_err(|_| Error::Shutdown)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
