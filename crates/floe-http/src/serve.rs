//! The one accept loop of Floe's HTTP servers (nodes, daemon, ledger, dashboard): HTTP/1.1 and
//! HTTP/2 (prior knowledge, as Walrus's clients speak it) on the same port, with the bounds a
//! server facing unknown clients needs.
//!
//! * At most `max_connections` connections are served at once; the next one is accepted only
//!   when one closes, so a flood of idle connections cannot exhaust file descriptors (the
//!   kernel's backlog holds the rest).
//! * A client has `header_read_timeout` to send a request's headers; a connection that
//!   dribbles them (slowloris) or stays idle that long between keep-alive requests is closed.
//! * With a TLS configuration ([`serve_with`]), the handshake must finish within the same
//!   deadline, and ALPN picks HTTP/2 or HTTP/1.1; an HTTP/2 client must then send its preface
//!   within the same deadline (hyper's HTTP/2 server waits for it without one).
//! * On shutdown the listener closes at once, connections that have not yet sent a byte (or
//!   finished a TLS handshake) are closed, requests in flight finish, and connections are
//!   dropped after `drain_timeout` at the latest. When the server returns, every connection
//!   task has ended, so nothing it held (the router's state) outlives the server.
//! * A handler that panics answers 500 with the panic's message, which is also logged; the
//!   connection and the server go on. Without this the connection task would end and the
//!   client see nothing but a closed connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Bounds of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and to start the next request on a
    /// kept-alive HTTP/1.1 connection).
    pub header_read_timeout: Duration,
    /// Longest wait for requests in flight at shutdown.
    pub drain_timeout: Duration,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            max_concurrent_streams: 1000,
        }
    }
}

/// Serve `router` on `listener` within `limits` until `shutdown` resolves, then drain.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, router, limits, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given: the handshake must finish within the header-read
/// timeout, and the protocol follows ALPN (`h2`, else HTTP/1.1).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let router = router.layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder(&limits));
    // Set at shutdown: connections still waiting for their first bytes stop waiting.
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // little instead of spinning, and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let timeout = limits.header_read_timeout;
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let opening = Opening {
            watcher,
            timeout,
            closing: closing.clone(),
        };
        tasks.spawn(async move {
            match acceptor {
                None => serve_plain(stream, &builder, service, opening).await,
                Some(a) => serve_tls(stream, &a, &builder, service, opening).await,
            }
            drop(slot);
        });
    }
    drop(listener);
    drop(slots);
    closing_tx.send_replace(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!("connections still open after the drain timeout; dropping them");
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

type Service = TowerToHyperService<Router>;

/// What a connection needs before hyper takes it over.
struct Opening {
    watcher: hyper_util::server::graceful::Watcher,
    /// Deadline for the first bytes (or the TLS handshake).
    timeout: Duration,
    /// Becomes true at shutdown.
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Opening {
    /// `step` within the deadline, unless the server starts shutting down first (a connection
    /// that has sent nothing yet has no request to finish). `None` if it did not complete.
    async fn first<T>(&mut self, step: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.closing.wait_for(|c| *c) => None,
            done = tokio::time::timeout(self.timeout, step) => done.ok(),
        }
    }
}

/// One plain connection: HTTP/1.1 or HTTP/2 by its first bytes.
async fn serve_plain(
    stream: tokio::net::TcpStream,
    builder: &Builder<TokioExecutor>,
    service: Service,
    mut opening: Opening,
) {
    // hyper's protocol detection waits for the first bytes without a deadline: a client that
    // connects and sends nothing must not hold a slot (or, at shutdown, the server) for ever.
    if opening.first(protocol_known(&stream)).await != Some(true) {
        return;
    }
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    if let Err(e) = opening.watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// One TLS connection: the handshake within `timeout` (it is the client's first bytes), then
/// HTTP/2 or HTTP/1.1 as ALPN chose.
async fn serve_tls(
    stream: tokio::net::TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    builder: &Builder<TokioExecutor>,
    service: Service,
    mut opening: Opening,
) {
    let timeout = opening.timeout;
    let tls = match opening.first(acceptor.accept(stream)).await {
        Some(Ok(tls)) => tls,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        None => return,
    };
    let builder = builder.clone();
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    // HTTP/1.1 has its header-read timeout; an HTTP/2 server waits for the preface without
    // one, so the client gets the same deadline for it as a plain connection does.
    let io = PrefaceDeadline::new(tls, if h2 { H2_PREFACE.len() } else { 0 }, timeout);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    if let Err(e) = opening.watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Errors of the serving layer itself (domain `server.floe`).
struct ServerDomain;
impl crate::Domain for ServerDomain {
    const NAME: &'static str = "server.floe";
}

/// The answer to a request whose handler panicked, logged with the panic's message.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    tracing::error!(panic = %what, "a request handler panicked; answered 500");
    crate::ApiError::<ServerDomain>::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "HANDLER_PANICKED",
        format!(
            "the server failed while handling this request (a bug: {what}); it goes on \
             serving, and its log has the details"
        ),
    )
    .into_response()
}

/// HTTP/1.1 and HTTP/2 on one port, with the header-read deadline and the stream limit.
fn builder(limits: &ServeLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .adaptive_window(true);
    builder
}

/// The HTTP/2 connection preface; anything else is HTTP/1.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the client sent enough to tell HTTP/1 from HTTP/2 (without consuming it); false
/// when it closed first.
async fn protocol_known(stream: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 24];
    loop {
        let n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] {
            return true;
        }
        // A partial preface: wait for more (the caller's deadline bounds this).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A stream whose reads fail with `TimedOut` once the deadline has passed before the peer sent
/// its first `needed` bytes. The timer is dropped as soon as they arrived (or at once with
/// `needed = 0`), so the rest of the connection pays for nothing but the wrapper.
struct PrefaceDeadline<S> {
    inner: S,
    needed: usize,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> PrefaceDeadline<S> {
    fn new(inner: S, needed: usize, limit: Duration) -> Self {
        PrefaceDeadline {
            inner,
            needed,
            deadline: (needed > 0).then(|| Box::pin(tokio::time::sleep(limit))),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefaceDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not send the HTTP/2 preface in time",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_some()
            && let Poll::Ready(Ok(())) = polled
        {
            this.needed = this.needed.saturating_sub(buf.filled().len() - before);
            if this.needed == 0 {
                this.deadline = None;
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefaceDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
