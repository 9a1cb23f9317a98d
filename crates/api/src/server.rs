//! The HTTP server: HTTP/1.1 connections with time limits and a connection cap.
//!
//! - Headers: a client has `header_read_timeout_ms` to send a request's headers, counted from
//!   when the server starts waiting (so an idle keep-alive connection is closed after it too).
//! - Bodies: `body_read_timeout_ms` for a whole body ([`crate::middleware::body_deadline`]).
//! - Idle: a connection on which nothing moves for `idle_timeout_ms` while no request is being
//!   handled (a client that neither sends nor reads its answer) is closed.
//! - Connections: at most `max_connections` at once; one more is answered 503 with
//!   `Retry-After` and a problem body, without reading its request, and closed.
//!
//! Request-level limits (concurrency, load shedding, request timeout) are layers of the router
//! ([`crate::router`]). Every connection gets its peer address as
//! [`axum::extract::ConnectInfo`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;
use tracing::{debug, warn};

use crate::config::ServerConfig;

/// Serves `router` on `listener` with the limits of `limits` until `shutdown`; then stops
/// accepting, lets open requests finish and closes idle connections.
///
/// # Errors
/// None at present: failed accepts (e.g. out of file descriptors) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ServerConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let tracker = TaskTracker::new();
    let header_timeout = Duration::from_millis(limits.header_read_timeout_ms);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let retry_after = limits.overload_retry_after_secs;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                warn!(%error, "Could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            debug!(%peer, "Connection refused: at the connection limit");
            tracker.spawn(refuse(stream, retry_after));
            continue;
        };
        let router = router.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let busy = Arc::new(AtomicUsize::new(0));
            let io = TokioIo::new(Guarded::new(stream, idle, Arc::clone(&busy)));
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let mut router = router.clone();
                    let busy = Arc::clone(&busy);
                    busy.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let response = router.call(request.map(axum::body::Body::new)).await;
                        busy.fetch_sub(1, Ordering::SeqCst);
                        response
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = outcome {
                debug!(%peer, %error, "Connection closed");
            }
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Answers a connection past the limit with 503 and closes it (its request is not read).
async fn refuse(mut stream: TcpStream, retry_after: u64) {
    let body = format!(
        r#"{{"type":"https://crossdock.dev/problems/unavailable","title":"Service unavailable","status":503,"detail":"the hub is at its connection limit; retry after {retry_after} s"}}"#
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: {retry_after}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// A connection that fails with `TimedOut` when nothing was read or written for `idle` while
/// no request is being handled (`busy` counts the requests in progress).
struct Guarded {
    io: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    busy: Arc<AtomicUsize>,
}

impl Guarded {
    fn new(io: TcpStream, idle: Duration, busy: Arc<AtomicUsize>) -> Self {
        Self {
            io,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            busy,
        }
    }

    fn touch(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// The answer to an operation that stayed pending: an error once the connection has been
    /// idle too long, else still pending.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.check_idle(cx) {
            Ok(()) => Poll::Pending,
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    /// Passes on the inner stream's answer to a write: bytes written reset the idle clock.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(result) => {
                if matches!(result, Ok(written) if written > 0) {
                    self.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    /// After an operation stayed pending: `Err` once the connection has been idle too long.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.busy.load(Ordering::SeqCst) > 0 {
            // A request is being handled: the client waits for its answer, not idle.
            self.touch();
            return Ok(());
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle too long",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.pending(cx),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, data);
        this.written(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, buffers);
        this.written(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
