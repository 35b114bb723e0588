//! The load generator's clients: real authenticated relay clients
//! ([`sealwire_transport::client::Client`], the same code applications use: TLS pinned to the
//! dev certificate, challenge-response authentication, acknowledgements) or bare WSS clients
//! for the bare forwarder, behind one interface: a [`Sender`] half and an [`Events`] half
//! drained by [`receive`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rustls::pki_types::ServerName;
use sealwire_core::IdentityKeyPair;
use sealwire_transport::client::{Client, ClientConfig, Event, Requester};
use sealwire_transport::frame::MailboxId;
use sealwire_transport::limits::Limits;
use sealwire_transport::tls::ClientTls;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::accounting::Receipts;
use crate::stamp::{self, Stamp};
use crate::{BoxError, bare};

/// Longest one connection may take to connect and authenticate.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Highest latency recorded, microseconds (larger values are clamped).
const MAX_LATENCY_US: u64 = 120_000_000;

/// Which kind of server the clients talk to, and where it is.
#[derive(Clone)]
pub struct Target {
    /// `true` for the relay (authenticated clients), `false` for the bare forwarder.
    pub relay: bool,
    /// The server's address.
    pub addr: SocketAddr,
    /// TLS pinned to the server's certificate.
    pub tls: ClientTls,
}

/// One connected client.
pub enum Conn {
    /// An authenticated relay client.
    Relay(Box<Client>),
    /// A bare forwarder client: its outgoing queue and incoming messages.
    Bare(mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>),
}

/// How a client addresses others.
#[derive(Clone)]
pub enum Sender {
    /// Through the relay client's requester, to mailboxes.
    Relay(Box<Requester>),
    /// Through the bare connection's queue, to connection ids.
    Bare(mpsc::Sender<Bytes>),
}

/// The receiving half.
pub enum Events {
    /// The relay client's events.
    Relay(Box<Client>),
    /// The bare connection's incoming messages.
    Bare(mpsc::Receiver<Bytes>),
}

/// The largest recipient list the server takes in one request (the relay's `ready`; the
/// transport default for the bare forwarder, so both see the same requests).
pub fn default_max_recipients() -> usize {
    Limits::default().max_recipients
}

impl Conn {
    /// Connects client `index` and, for the relay, waits until it is authenticated with
    /// `identity` (made beforehand, so that timing a batch of connections does not time key
    /// generation; `None` makes one). Returns the connection, its address (mailbox for the
    /// relay), and the server's recipient limit.
    ///
    /// # Errors
    /// Any failure to connect, handshake or authenticate within [`CONNECT_TIMEOUT`].
    pub async fn connect(
        target: &Target,
        index: u32,
        identity: Option<IdentityKeyPair>,
    ) -> Result<(Conn, Addr, usize), BoxError> {
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            Self::connect_inner(target, index, identity),
        )
        .await
        .map_err(|_| format!("client {index}: not connected after {CONNECT_TIMEOUT:?}"))?
    }

    async fn connect_inner(
        target: &Target,
        index: u32,
        identity: Option<IdentityKeyPair>,
    ) -> Result<(Conn, Addr, usize), BoxError> {
        if target.relay {
            let url = format!("wss://{}/", target.addr);
            let config = ClientConfig::new(url, target.tls.clone());
            let identity = identity.unwrap_or_else(|| IdentityKeyPair::generate(&mut rand::rng()));
            let mut client = Client::start(config, identity)?;
            loop {
                match client.next_event().await {
                    Some(Event::Connected(ready)) => {
                        let mailbox = client.mailbox();
                        let max = (ready.max_recipients as usize).max(1);
                        return Ok((Conn::Relay(Box::new(client)), Addr::Mailbox(mailbox), max));
                    }
                    Some(Event::Disconnected { error, .. } | Event::Stopped { error }) => {
                        return Err(format!("client {index}: {error}").into());
                    }
                    Some(_) => {}
                    None => return Err(format!("client {index}: stopped").into()),
                }
            }
        }
        let (tx, rx) = connect_bare(target, index).await?;
        Ok((
            Conn::Bare(tx, rx),
            Addr::Id(index),
            default_max_recipients(),
        ))
    }

    /// Splits into the sending and receiving halves.
    pub fn split(self) -> (Sender, Events) {
        match self {
            Conn::Relay(client) => (
                Sender::Relay(Box::new(client.requester())),
                Events::Relay(client),
            ),
            Conn::Bare(tx, rx) => (Sender::Bare(tx), Events::Bare(rx)),
        }
    }

    /// Whether the connection is still open, without waiting (events read meanwhile are
    /// discarded; this is for idle connections).
    pub fn still_open(&mut self) -> bool {
        match self {
            Conn::Relay(client) => loop {
                match client.next_event().now_or_never() {
                    None => return true,
                    Some(None | Some(Event::Disconnected { .. } | Event::Stopped { .. })) => {
                        return false;
                    }
                    Some(Some(_)) => {}
                }
            },
            Conn::Bare(tx, rx) => {
                while let Ok(_message) = rx.try_recv() {}
                !tx.is_closed()
                    && !matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected))
            }
        }
    }
}

/// A client's address: a mailbox on the relay, a connection id on the bare forwarder.
#[derive(Clone, Copy, Debug)]
pub enum Addr {
    /// Relay mailbox.
    Mailbox(MailboxId),
    /// Bare forwarder id.
    Id(u32),
}

/// Opens a bare WSS connection named `index`; a task moves messages between the socket and
/// the two queues (batching writes: it flushes when its queue is empty).
async fn connect_bare(
    target: &Target,
    index: u32,
) -> Result<(mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>), BoxError> {
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(target.addr.ip().to_string())?;
    let tls = target.tls.connector().connect(name, tcp).await?;
    let url = format!("wss://{}/{index}", target.addr);
    let config = Limits::default().websocket_config();
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tls, Some(config)).await?;
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(256);
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(1024);
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move {
        let mut flushed = true;
        // The sending half may be dropped (a client that only receives, or a sender that is
        // done) while deliveries are still coming: the task then only reads, and ends when the
        // receiving half is dropped or the connection ends.
        let mut sending = true;
        loop {
            tokio::select! {
                outgoing = out_rx.recv(), if sending => {
                    let Some(bytes) = outgoing else {
                        sending = false;
                        continue;
                    };
                    if sink.feed(Message::Binary(bytes)).await.is_err() { break }
                    flushed = false;
                    if out_rx.is_empty() {
                        if sink.flush().await.is_err() { break }
                        flushed = true;
                    }
                }
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Binary(bytes))) => {
                        if in_tx.send(bytes).await.is_err() { break }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
            }
            if !flushed && out_rx.is_empty() {
                if sink.flush().await.is_err() {
                    break;
                }
                flushed = true;
            }
        }
        let _ = sink.close().await;
    });
    Ok((out_tx, in_rx))
}

impl Sender {
    /// Sends `payload` as message `seq` of client `sender` to the `recipients`, in chunks of
    /// `chunk_size` (one request, and one message id, per chunk).
    ///
    /// # Errors
    /// The client stopped, or refused the request locally.
    pub async fn send(
        &self,
        salt: u16,
        sender: u32,
        seq: u64,
        recipients: &[Addr],
        chunk_size: usize,
        payload: &[u8],
    ) -> Result<(), BoxError> {
        for (chunk, list) in recipients.chunks(chunk_size.max(1)).enumerate() {
            let chunk = u16::try_from(chunk)?;
            match self {
                Sender::Relay(requester) => {
                    let to = list
                        .iter()
                        .filter_map(|addr| match addr {
                            Addr::Mailbox(mailbox) => Some(*mailbox),
                            Addr::Id(_) => None,
                        })
                        .collect();
                    let id = stamp::message_id(salt, sender, seq, chunk);
                    requester.send_with_id(id, to, payload.to_vec()).await?;
                }
                Sender::Bare(queue) => {
                    let ids: Vec<u32> = list
                        .iter()
                        .filter_map(|addr| match addr {
                            Addr::Id(id) => Some(*id),
                            Addr::Mailbox(_) => None,
                        })
                        .collect();
                    let message = Bytes::from(bare::encode(&ids, payload));
                    queue
                        .send(message)
                        .await
                        .map_err(|_| "bare connection closed")?;
                }
            }
        }
        Ok(())
    }
}

/// What every receiver shares: the clock, the measurement window, the senders' windows and
/// the counters.
pub struct Shared {
    /// The base instant of every timestamp.
    pub base: Instant,
    /// Start of the measurement window, nanoseconds since `base`.
    pub measure_start: u64,
    /// End of the measurement window.
    pub measure_end: u64,
    /// Per client index: deliveries it may still have outstanding (closed loop), or `None`.
    pub windows: Vec<Option<Arc<Semaphore>>>,
    /// Recipients in each chunk of a send (to return window permits and expected deliveries
    /// when a chunk is refused).
    pub chunk_sizes: Vec<u64>,
    /// Distinct deliveries so far (to know when the drain is complete).
    pub distinct: AtomicU64,
    /// Sends (chunks) the relay accepted.
    pub accepted: AtomicU64,
    /// Sends (chunks) the relay refused.
    pub rejected: AtomicU64,
    /// Deliveries not expected because their chunk was refused.
    pub rejected_deliveries: AtomicU64,
    /// Connections lost (each is an error for the benchmark).
    pub disconnects: AtomicU64,
    /// Other errors.
    pub errors: AtomicU64,
    /// The first few error messages.
    pub error_samples: Mutex<Vec<String>>,
}

impl Shared {
    /// Nanoseconds since the base instant.
    pub fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts an error and keeps its message if fewer than 10 are kept.
    pub fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.sample(message);
    }

    fn sample(&self, message: String) {
        let mut samples = self
            .error_samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if samples.len() < 10 {
            samples.push(message);
        }
    }
}

/// What one receiver saw.
pub struct Received {
    /// Sequence numbers by sender.
    pub receipts: Receipts,
    /// Latencies (microseconds) of messages scheduled inside the measurement window.
    pub latency: Histogram<u64>,
    /// Deliveries received inside the measurement window.
    pub in_window: u64,
}

/// A new latency histogram (1 µs to 120 s, 3 significant digits).
///
/// # Errors
/// Never in practice (the bounds are valid).
pub fn histogram() -> Result<Histogram<u64>, BoxError> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

/// Reads client `me`'s events until `stop` turns true: records deliveries, returns window
/// permits to their senders, acknowledges relay deliveries in batches, counts acceptances,
/// refusals and disconnects.
///
/// # Errors
/// Only if the histogram cannot be made.
pub async fn receive(
    me: u32,
    mut events: Events,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Result<Received, BoxError> {
    let mut received = Received {
        receipts: Receipts::default(),
        latency: histogram()?,
        in_window: 0,
    };
    let mut acks: Vec<u64> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            event = next(&mut events) => event,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let Some(first) = first else {
            shared.error(format!("client {me}: event stream ended"));
            break;
        };
        let mut item = Some(first);
        let mut batch = 0;
        while let Some(current) = item.take() {
            handle(me, current, &shared, &mut received, &mut acks);
            batch += 1;
            if batch < 256 {
                item = next(&mut events).now_or_never().flatten();
            }
        }
        if let Events::Relay(client) = &events
            && !acks.is_empty()
            && client.ack(std::mem::take(&mut acks)).await.is_err()
        {
            shared.error(format!("client {me}: ack failed: client stopped"));
        }
    }
    Ok(received)
}

/// One incoming item of either kind.
enum Item {
    Relay(Event),
    Bare(Bytes),
}

async fn next(events: &mut Events) -> Option<Item> {
    match events {
        Events::Relay(client) => client.next_event().await.map(Item::Relay),
        Events::Bare(rx) => rx.recv().await.map(Item::Bare),
    }
}

fn handle(me: u32, item: Item, shared: &Shared, received: &mut Received, acks: &mut Vec<u64>) {
    match item {
        Item::Bare(payload) => deliver(&payload, shared, received),
        Item::Relay(Event::Delivered(delivery)) => {
            acks.push(delivery.delivery);
            deliver(&delivery.payload, shared, received);
        }
        Item::Relay(Event::Accepted(_)) => {
            shared.accepted.fetch_add(1, Ordering::Relaxed);
        }
        Item::Relay(Event::Rejected { id, code }) => {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            let size = shared
                .chunk_sizes
                .get(usize::from(stamp::chunk_of(&id)))
                .copied()
                .unwrap_or(0);
            shared
                .rejected_deliveries
                .fetch_add(size, Ordering::Relaxed);
            if let Some(Some(window)) = shared.windows.get(me as usize) {
                window.add_permits(usize::try_from(size).unwrap_or(0));
            }
            shared.sample(format!("client {me}: send refused: {code}"));
        }
        Item::Relay(Event::Disconnected { error, .. }) => {
            shared.disconnects.fetch_add(1, Ordering::Relaxed);
            shared.sample(format!("client {me}: disconnected: {error}"));
        }
        Item::Relay(Event::Stopped { error }) => {
            shared.error(format!("client {me}: stopped: {error}"));
        }
        Item::Relay(_) => {}
    }
}

fn deliver(payload: &[u8], shared: &Shared, received: &mut Received) {
    let now = shared.now();
    let Some(stamp) = Stamp::decode(payload) else {
        received.receipts.foreign += 1;
        return;
    };
    if !received.receipts.record(stamp.sender, stamp.seq) {
        return;
    }
    shared.distinct.fetch_add(1, Ordering::Relaxed);
    if let Some(Some(window)) = shared.windows.get(stamp.sender as usize) {
        window.add_permits(1);
    }
    if (shared.measure_start..shared.measure_end).contains(&stamp.sent_nanos) {
        let micros = now.saturating_sub(stamp.sent_nanos) / 1_000;
        received.latency.saturating_record(micros.max(1));
    }
    if (shared.measure_start..shared.measure_end).contains(&now) {
        received.in_window += 1;
    }
}
