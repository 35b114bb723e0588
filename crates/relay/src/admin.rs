//! The admin listener: a small HTTP/1.1 server, on its own address, for the operator's
//! monitoring.
//!
//! | Route | Answer |
//! |-------|--------|
//! | `GET /metrics` | `200`, the [`Metrics`] exposition, `Content-Type:` [`metrics::CONTENT_TYPE`] |
//! | `GET /healthz` | `200 ok` while the process serves (liveness) |
//! | `GET /readyz` | `200 ready` when the relay accepts clients, else `503 not ready` (readiness) |
//!
//! `HEAD` answers like `GET` without the body; any other method gets `405` with
//! `Allow: GET, HEAD`, any other path `404`. Plain HTTP, no authentication: bind it to a
//! loopback or private address. It serves nothing but the metrics (which carry no mailbox id,
//! address or payload) and logs nothing.
//!
//! The server is bounded so that it cannot be used to exhaust the relay: at most
//! [`MAX_CONNECTIONS`] connections at a time (more are closed at once), one request per
//! connection (no keep-alive), request headers within [`HEADER_READ_TIMEOUT`] and
//! [`MAX_HEADER_BYTES`], and every connection closed after [`CONNECTION_LIFETIME`].

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::Result;
use crate::metrics::{self, Metrics};

/// The most admin connections served at a time; more are closed as soon as accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client has to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest an admin connection stays open, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most request headers.
const MAX_HEADERS: usize = 32;
/// How long [`AdminHandle::shutdown`] lets requests in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The pause after a failed `accept` (for example out of file descriptors), so that the
/// loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// A bound, not yet serving, admin listener.
pub struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<State>,
}

/// What the request handler reads.
struct State {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
}

impl fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl AdminServer {
    /// Binds the listener on `addr` (port 0 picks a free port: see
    /// [`AdminServer::local_addr`]). `/metrics` serves `metrics`; `/readyz` answers
    /// `ready` while `ready` is true.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if the address cannot be bound.
    pub async fn bind(
        addr: SocketAddr,
        metrics: Metrics,
        ready: Arc<AtomicBool>,
    ) -> Result<AdminServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(AdminServer {
            listener,
            local_addr,
            state: Arc::new(State { metrics, ready }),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts serving on the current Tokio runtime. The server runs until
    /// [`AdminHandle::shutdown`] is called or the handle is dropped.
    #[must_use = "dropping the handle stops the admin server"]
    pub fn spawn(self) -> AdminHandle {
        let (stop, stopped) = watch::channel(false);
        let local_addr = self.local_addr;
        let task = tokio::spawn(accept_loop(self, stopped));
        AdminHandle {
            stop,
            task,
            local_addr,
        }
    }
}

/// A running admin server. Dropping the handle stops it too (without waiting).
pub struct AdminHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl fmt::Debug for AdminHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl AdminHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server: closes the listener at once, lets requests in flight finish for a
    /// moment, then closes every connection. Returns when all of it is done.
    pub async fn shutdown(self) {
        // `send` fails only if the server task is gone already.
        let _ = self.stop.send(true);
        // The task never panics; a `JoinError` could only mean it was cancelled.
        let _ = self.task.await;
    }
}

/// Resolves when the server should stop: `stop` was set, or the handle was dropped.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn accept_loop(server: AdminServer, mut stopped: watch::Receiver<bool>) {
    let AdminServer {
        listener, state, ..
    } = server;
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES);
    let builder = Arc::new(builder);
    let connection_stopped = stopped.clone();
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            () = stop_requested(&mut stopped) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Over the limit: the stream is dropped, which closes it.
                    if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
                        connections.spawn(serve_connection(
                            stream,
                            Arc::clone(&builder),
                            Arc::clone(&state),
                            connection_stopped.clone(),
                            permit,
                        ));
                    }
                }
                Err(_) => tokio::time::sleep(ACCEPT_ERROR_PAUSE).await,
            },
            // Reap finished connections so that the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }

    drop(listener);
    // Connections saw the stop signal and shut down gracefully; give them a moment, then
    // abort what is left.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    builder: Arc<http1::Builder>,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(&state, request.method(), request.uri().path());
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let deadline = tokio::time::sleep(CONNECTION_LIFETIME);
    let mut deadline = std::pin::pin!(deadline);

    // Errors (a malformed request, a client that went away, the header timeout) just end
    // the connection.
    tokio::select! {
        _ = connection.as_mut() => return,
        () = deadline.as_mut() => return,
        () = stop_requested(&mut stopped) => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        () = deadline.as_mut() => {}
    }
}

/// The answer to `method path`.
fn respond(state: &State, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let known = matches!(path, "/metrics" | "/healthz" | "/readyz");
    if !known {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    // For HEAD, hyper sends the headers (with the length) and drops the body.
    match path {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(state.metrics.encode())));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            no_store(response)
        }
        "/readyz" if !state.ready.load(Ordering::Acquire) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
        "/readyz" => text(StatusCode::OK, "ready\n"),
        _ => text(StatusCode::OK, "ok\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    no_store(response)
}

fn no_store(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use sealwire_transport::code::{CloseCode, ErrorCode};

    use super::*;
    use crate::metrics::Limit;

    struct Answer {
        status_line: String,
        head: String,
        body: String,
    }

    async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        Answer {
            status_line: head.lines().next().unwrap().to_owned(),
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    async fn start(ready: bool) -> (AdminHandle, Metrics, Arc<AtomicBool>) {
        let metrics = Metrics::new();
        let ready = Arc::new(AtomicBool::new(ready));
        let server = AdminServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            metrics.clone(),
            Arc::clone(&ready),
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        assert!(format!("{server:?}").contains("AdminServer"));
        let handle = server.spawn();
        assert_eq!(handle.local_addr(), addr);
        (handle, metrics, ready)
    }

    #[tokio::test]
    async fn metrics_route_serves_the_exposition() {
        let (handle, metrics, _) = start(true).await;
        let addr = handle.local_addr();
        metrics.message_accepted(2, 10);
        metrics.message_accepted(1, 5);
        metrics.limit_hit(Limit::ByteRate);
        metrics.connection_opened();
        metrics.connection_closed(CloseCode::SLOW_CONSUMER);
        metrics.request_refused(ErrorCode::QuotaExceeded);

        let answer = request(addr, "GET", "/metrics").await;
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
        assert!(
            answer.head.contains(
                "content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
            )
        );
        let body = answer.body;
        assert!(
            body.contains("sealwire_relay_messages_accepted_total 2\n"),
            "{body}"
        );
        assert!(body.contains("sealwire_relay_recipients_total 3\n"));
        assert!(body.contains("sealwire_relay_limit_rejections_total{limit=\"byte_rate\"} 1\n"));
        assert!(body.contains(
            "sealwire_relay_disconnects_total{code=\"4005\",reason=\"slow_consumer\"} 1\n"
        ));
        assert!(body.contains("sealwire_relay_request_errors_total{code=\"quota_exceeded\"} 1\n"));
        assert!(body.contains("sealwire_relay_connections 0\n"));
        assert!(body.ends_with("# EOF\n"));

        // HEAD: the same head, no body.
        let answer = request(addr, "HEAD", "/metrics").await;
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
        assert!(
            answer
                .head
                .contains("content-type: application/openmetrics-text")
        );
        assert!(answer.body.is_empty());

        handle.shutdown().await;
    }

    #[tokio::test]
    async fn health_readiness_and_errors() {
        let (handle, _, ready) = start(false).await;
        let addr = handle.local_addr();

        let answer = request(addr, "GET", "/healthz").await;
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
        assert_eq!(answer.body.trim_end(), "ok");

        let answer = request(addr, "GET", "/readyz").await;
        assert_eq!(answer.status_line, "HTTP/1.1 503 Service Unavailable");
        assert_eq!(answer.body.trim_end(), "not ready");
        ready.store(true, Ordering::Release);
        let answer = request(addr, "GET", "/readyz").await;
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
        assert_eq!(answer.body.trim_end(), "ready");
        ready.store(false, Ordering::Release);
        let answer = request(addr, "HEAD", "/readyz").await;
        assert_eq!(answer.status_line, "HTTP/1.1 503 Service Unavailable");
        assert!(answer.body.is_empty());

        let answer = request(addr, "GET", "/nope").await;
        assert_eq!(answer.status_line, "HTTP/1.1 404 Not Found");
        let answer = request(addr, "GET", "/metrics/x").await;
        assert_eq!(answer.status_line, "HTTP/1.1 404 Not Found");

        for method in ["POST", "PUT", "DELETE"] {
            let answer = request(addr, method, "/metrics").await;
            assert_eq!(answer.status_line, "HTTP/1.1 405 Method Not Allowed");
            assert!(answer.head.contains("allow: get, head"), "{}", answer.head);
        }

        // A query string does not change the route.
        let answer = request(addr, "GET", "/healthz?verbose=1").await;
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");

        // Garbage gets a 400 and the server keeps serving.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"\x16\x03\x01garbage\r\n\r\n")
            .await
            .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes).await;
        let answer = request(addr, "GET", "/healthz").await;
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");

        handle.shutdown().await;
    }

    #[tokio::test]
    async fn connections_are_capped() {
        let (handle, _, _) = start(true).await;
        let addr = handle.local_addr();
        // Fill every slot with a connection that sends nothing.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        // One more is closed without an answer.
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut bytes = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), extra.read_to_end(&mut bytes))
            .await
            .unwrap();
        assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
        // Freeing the slots lets requests in again.
        drop(idle);
        let mut served = false;
        for _ in 0..100 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let _ = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes).await;
            if bytes.starts_with(b"HTTP/1.1 200 OK") {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(served);
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_ends_connections() {
        let (handle, _, _) = start(true).await;
        let addr = handle.local_addr();
        let answer = request(addr, "GET", "/healthz").await;
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");

        // An idle connection is ended by the shutdown, well before the header timeout.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::time::timeout(Duration::from_secs(3), handle.shutdown())
            .await
            .unwrap();
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(1), idle.read_to_end(&mut bytes))
            .await
            .unwrap();
        assert!(read.is_err() || bytes.is_empty());

        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_server() {
        let (handle, _, _) = start(true).await;
        let addr = handle.local_addr();
        drop(handle);
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused);
    }

    #[tokio::test]
    async fn bind_failure_is_an_io_error() {
        let (handle, _, _) = start(true).await;
        let taken = handle.local_addr();
        let error = AdminServer::bind(taken, Metrics::new(), Arc::new(AtomicBool::new(true)))
            .await
            .unwrap_err();
        assert!(matches!(error, crate::Error::Io(_)), "{error}");
        handle.shutdown().await;
    }
}
