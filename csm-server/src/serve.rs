//! Serving HTTP connections within [`Limits`], so that no single client can take the server
//! down:
//!
//! - a client gets [`Limits::header_timeout`] to send a request's headers once it has sent its
//!   first byte, and a keep-alive connection may sit idle for [`Limits::keepalive_timeout`];
//!   past either, the connection is closed;
//! - at most [`Limits::max_connections`] are served at once. A newcomer past the cap makes
//!   room by closing the connections idle the longest (waiting for headers or between
//!   requests); when every connection is busy it gets a 503 and is closed. Running out of file
//!   descriptors is handled the same way.
//!
//! - a connection whose writes have been blocked for [`Limits::write_stall_timeout`] (its
//!   client stopped reading: an event stream whose send buffer stayed full) is closed, so a
//!   client that never reads cannot hold a live stream's place.
//!
//! A connection is "busy" from the moment its request's headers are complete until its
//! response body has been sent (an event stream stays busy as long as it is open); an
//! upgraded connection (a WebSocket) leaves HTTP's accounting but keeps its place until its
//! socket closes.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::Limits;

/// How long shutdown waits for open connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` fires, then lets open requests finish (for
/// up to [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: CancellationToken,
) {
    let open = Arc::new(Connections::default());
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if out_of_descriptors(&error) => {
                    let closed = open.close_idle(room_to_make(&limits));
                    tracing::warn!(%error, closed, "out of file descriptors: closed the longest-idle connections");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if open.len() >= limits.max_connections && open.close_idle(room_to_make(&limits)) == 0 {
            metrics::counter!("csm_http_connections_refused_total").increment(1);
            tokio::spawn(refuse(stream));
            continue;
        }
        let connection = open.add();
        tokio::spawn(serve_connection(
            stream,
            peer,
            connection,
            router.clone(),
            limits,
            tls.clone(),
            shutdown.clone(),
        ));
    }
    let started = Instant::now();
    while open.len() > 0 && started.elapsed() < DRAIN {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connections closed at once to make room: a hundredth of the cap, so a flood of newcomers
/// does not scan every connection for each of them.
fn room_to_make(limits: &Limits) -> usize {
    (limits.max_connections / 100).max(1)
}

fn out_of_descriptors(error: &io::Error) -> bool {
    // EMFILE (24) and ENFILE (23): the process or the system has no descriptor left.
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// Answers 503 to a connection there is no room for, and closes it.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":"the server is at its connection limit (CSM_MAX_CONNECTIONS); try again shortly"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    connection: Arc<Connection>,
    router: Router,
    limits: Limits,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let watched = Watched {
        inner: stream,
        connection: Arc::clone(&connection),
    };
    let Some(tls) = tls else {
        return serve_http(
            TokioIo::new(watched),
            peer,
            None,
            connection,
            router,
            limits,
            shutdown,
        )
        .await;
    };
    // The handshake is held to the time a client has to send its request's headers.
    let handshake = tokio::select! {
        () = shutdown.cancelled() => return,
        handshake = tokio::time::timeout(limits.header_timeout, tls.acceptor().accept(watched)) => handshake,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, %peer, "a TLS handshake failed");
            metrics::counter!("csm_tls_handshakes_failed_total").increment(1);
            return;
        }
        Err(_) => {
            metrics::counter!("csm_http_connections_closed_total", "reason" => "tls_timeout")
                .increment(1);
            return;
        }
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.clone().into_owned());
    let peer_tls = crate::tls::PeerTls { certificate };
    serve_http(
        TokioIo::new(stream),
        peer,
        Some(peer_tls),
        connection,
        router,
        limits,
        shutdown,
    )
    .await;
}

/// Serves HTTP/1.1 on a connection (plain, or TLS with what its client presented).
async fn serve_http<I>(
    io: TokioIo<I>,
    peer: std::net::SocketAddr,
    peer_tls: Option<crate::tls::PeerTls>,
    connection: Arc<Connection>,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let connection = Arc::clone(&connection);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            if let Some(peer_tls) = &peer_tls {
                request.extensions_mut().insert(peer_tls.clone());
            }
            let busy = Request::begin(&connection);
            let response = router.clone().oneshot(request.map(Body::new));
            async move { response.await.map(|response| busy.track(response)) }
        })
    };
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        // Header and idle timeouts are the watchdog's, which tells the two apart.
        .header_read_timeout(None)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(served);
    let mut draining = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            reason = connection.watchdog(&limits) => {
                tracing::debug!(reason, "closing a connection");
                metrics::counter!("csm_http_connections_closed_total", "reason" => reason).increment(1);
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                served.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// The open connections.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn add(self: &Arc<Self>) -> Arc<Connection> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id,
            registry: Arc::clone(self),
            epoch: Instant::now(),
            busy: AtomicUsize::new(0),
            // A new connection is expected to send its request's headers promptly.
            pending: AtomicBool::new(true),
            upgraded: AtomicBool::new(false),
            since_ms: AtomicU64::new(0),
            blocked_since_ms: AtomicU64::new(0),
            close: Notify::new(),
        });
        self.lock().insert(id, Arc::clone(&connection));
        connection
    }

    /// Closes up to `count` connections that are not busy, the longest idle first; returns how
    /// many were asked to close.
    fn close_idle(&self, count: usize) -> usize {
        let open = self.lock();
        let mut idle: Vec<(Duration, &Arc<Connection>)> = open
            .values()
            .filter_map(|c| c.idle_for().map(|idle| (idle, c)))
            .collect();
        idle.sort_by_key(|(idle, _)| std::cmp::Reverse(*idle));
        for (_, connection) in idle.iter().take(count) {
            connection.close.notify_one();
        }
        idle.len().min(count)
    }
}

/// One open connection and what it is doing.
struct Connection {
    id: u64,
    registry: Arc<Connections>,
    epoch: Instant,
    /// Requests whose headers are complete and whose response is not yet sent.
    busy: AtomicUsize,
    /// Whether bytes of a next request have arrived while no request is busy.
    pending: AtomicBool,
    /// A WebSocket (or another upgrade) took the socket over.
    upgraded: AtomicBool,
    /// Milliseconds after `epoch` when the connection went idle, or (while `pending`) when the
    /// next request's first byte arrived.
    since_ms: AtomicU64,
    /// One more than the milliseconds after `epoch` when a write found the socket full and
    /// could not go on; 0 while writes go through.
    blocked_since_ms: AtomicU64,
    /// Asks the connection to close (to make room), if it is still idle.
    close: Notify,
}

impl Connection {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// How long the connection has been idle; `None` while busy or upgraded.
    fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Acquire) > 0 || self.upgraded.load(Ordering::Acquire) {
            return None;
        }
        let since = self.since_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    fn bytes_arrived(&self) {
        if self.busy.load(Ordering::Acquire) == 0 && !self.pending.swap(true, Ordering::AcqRel) {
            self.since_ms.store(self.now_ms(), Ordering::Release);
        }
    }

    /// Notes whether a write went through or found the socket full.
    fn wrote<T>(&self, polled: &Poll<T>) {
        if polled.is_pending() {
            if self.blocked_since_ms.load(Ordering::Acquire) == 0 {
                self.blocked_since_ms
                    .store(self.now_ms() + 1, Ordering::Release);
            }
        } else {
            self.blocked_since_ms.store(0, Ordering::Release);
        }
    }

    /// How long writes have been blocked, if they are.
    fn blocked_for(&self) -> Option<Duration> {
        match self.blocked_since_ms.load(Ordering::Acquire) {
            0 => None,
            since => Some(Duration::from_millis(
                self.now_ms().saturating_sub(since - 1),
            )),
        }
    }

    /// Completes when the connection should close: it took too long to send headers, sat idle
    /// too long, was asked to make room while idle, or its client stopped reading what it is
    /// sent. Returns why.
    async fn watchdog(&self, limits: &Limits) -> &'static str {
        loop {
            let stall_wait = match self.blocked_for() {
                Some(blocked) if blocked >= limits.write_stall_timeout => return "write_stalled",
                Some(blocked) => limits.write_stall_timeout - blocked,
                None => limits.write_stall_timeout,
            };
            let wait = match self.idle_for() {
                None => limits.keepalive_timeout,
                Some(idle) => {
                    let (limit, reason) = if self.pending.load(Ordering::Acquire) {
                        (limits.header_timeout, "header_timeout")
                    } else {
                        (limits.keepalive_timeout, "idle")
                    };
                    if idle >= limit {
                        return reason;
                    }
                    limit - idle
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait.min(stall_wait)) => {}
                () = self.close.notified() => {
                    if self.idle_for().is_some() {
                        return "make_room";
                    }
                }
            }
        }
    }
}

/// A request on its way through the router, counted as busy until its response is sent.
struct Request {
    connection: Arc<Connection>,
}

impl Request {
    fn begin(connection: &Arc<Connection>) -> Self {
        connection.busy.fetch_add(1, Ordering::AcqRel);
        connection.pending.store(false, Ordering::Release);
        Self {
            connection: Arc::clone(connection),
        }
    }

    /// The response, with this request kept busy until its body is sent (or dropped).
    fn track(self, response: axum::response::Response) -> axum::response::Response {
        if response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
            self.connection.upgraded.store(true, Ordering::Release);
        }
        response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _busy = &self;
                frame
            }))
        })
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let connection = &self.connection;
        connection
            .since_ms
            .store(connection.now_ms(), Ordering::Release);
        connection.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket of a connection, noting when bytes arrive; the connection leaves the registry
/// when the socket is dropped.
struct Watched {
    inner: TcpStream,
    connection: Arc<Connection>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        let connection = &self.connection;
        connection.registry.lock().remove(&connection.id);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.connection.wrote(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.connection.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
