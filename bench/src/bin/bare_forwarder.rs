//! The ceiling baseline of the relay benchmark: a bare WebSocket-over-TLS forwarder built from
//! the same libraries as the relay (tokio-tungstenite over tokio-rustls, the transport's TLS
//! configuration and WebSocket limits), with **no** authentication, storage, acknowledgement
//! or crypto beyond TLS.
//!
//! A client connects to `wss://127.0.0.1:PORT/<id>`; each binary message
//! `count u16 | count × dest u32 | payload` it sends is passed, payload only, to every named
//! connection that is open (see `sealwire_bench::bare`). Each connection has a writer task fed
//! by a bounded queue (1,024 messages); a full queue makes the forwarding reader wait
//! (backpressure, nothing dropped); the writer flushes whenever its queue is empty (batching
//! under load). Messages to an unknown id are dropped and counted.
//!
//! Prints `listening: wss://ADDR/` and `certificate-sha256: HEX` (a fresh self-signed
//! certificate, made like the relay's `--dev` one) on stdout, then runs until SIGTERM/SIGINT.
//!
//! ```sh
//! bare_forwarder --listen 127.0.0.1:0 --runtime current --read-buffer 2048
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use sealwire_bench::{BoxError, bare};
use sealwire_transport::limits::Limits;
use sealwire_transport::tls::{DevCertificate, fingerprint_hex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// A bare WSS forwarder: the relay benchmark's ceiling (no auth, no storage, no crypto
/// beyond TLS).
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Tokio runtime: `current` (one thread) or `multi` (one worker per available core, as the
    /// relay binary uses).
    #[arg(long, default_value = "current", value_parser = ["current", "multi"])]
    runtime: String,
    /// WebSocket read buffer per connection, bytes. The default is the transport's
    /// (`Limits::default().read_buffer_size`, 2 KiB), as the relay uses; tungstenite's own
    /// default is 128 KiB.
    #[arg(long, default_value_t = Limits::default().read_buffer_size)]
    read_buffer: usize,
    /// Messages queued per connection before the forwarding reader waits.
    #[arg(long, default_value_t = 1024)]
    queue: usize,
}

/// Open connections by id.
type Registry = Arc<Mutex<HashMap<u32, mpsc::Sender<Bytes>>>>;

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let runtime = match args.runtime.as_str() {
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), BoxError> {
    let certificate = DevCertificate::generate(&["localhost", "127.0.0.1"])?;
    let acceptor = certificate.server_tls()?.acceptor();
    let listener = TcpListener::bind(args.listen).await?;
    println!("listening: wss://{}/", listener.local_addr()?);
    println!(
        "certificate-sha256: {}",
        fingerprint_hex(&certificate.fingerprint())
    );
    let limits = Limits::default();
    let config = limits.websocket_config().read_buffer_size(args.read_buffer);
    let registry: Registry = Arc::default();
    let dropped = Arc::new(AtomicU64::new(0));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("bare_forwarder: accept: {error}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            acceptor: acceptor.clone(),
            config,
            registry: registry.clone(),
            dropped: dropped.clone(),
            queue: args.queue.max(1),
        };
        tokio::spawn(async move {
            if let Err(error) = connection.run(tcp).await {
                eprintln!("bare_forwarder: connection: {error}");
            }
        });
    }
    eprintln!(
        "bare_forwarder: shutting down; {} messages to unknown ids dropped",
        dropped.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

struct Connection {
    acceptor: TlsAcceptor,
    config: tokio_tungstenite::tungstenite::protocol::WebSocketConfig,
    registry: Registry,
    dropped: Arc<AtomicU64>,
    queue: usize,
}

impl Connection {
    async fn run(self, tcp: TcpStream) -> Result<(), BoxError> {
        tcp.set_nodelay(true)?;
        let tls = self.acceptor.accept(tcp).await?;
        let mut id = None;
        #[allow(clippy::result_large_err)] // tungstenite's upgrade callback signature
        let callback = |request: &Request, response: Response| {
            id = bare::id_from_path(request.uri().path());
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async_with_config(tls, callback, Some(self.config))
            .await?;
        let id = id.ok_or("no connection id in the path")?;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Bytes>(self.queue);
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx.clone());
        // The writer: feeds everything queued, flushes when the queue is empty.
        let writer = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                if sink.feed(Message::Binary(first)).await.is_err() {
                    return;
                }
                while let Ok(next) = rx.try_recv() {
                    if sink.feed(Message::Binary(next)).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        });
        // Senders looked up per message would take the lock per destination: cache them.
        let mut routes: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
        while let Some(message) = stream.next().await {
            let bytes = match message {
                Ok(Message::Binary(bytes)) => bytes,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            let Some((destinations, payload)) = bare::decode(&bytes) else {
                break;
            };
            for dest in destinations {
                let route = match routes.get(&dest) {
                    Some(route) if !route.is_closed() => Some(route.clone()),
                    _ => {
                        let found = self
                            .registry
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get(&dest)
                            .cloned();
                        if let Some(found) = &found {
                            routes.insert(dest, found.clone());
                        }
                        found
                    }
                };
                let delivered = match route {
                    Some(route) => route.send(payload.clone()).await.is_ok(),
                    None => false,
                };
                if !delivered {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            if registry
                .get(&id)
                .is_some_and(|current| current.same_channel(&tx))
            {
                registry.remove(&id);
            }
        }
        drop(tx);
        writer.abort();
        Ok(())
    }
}
