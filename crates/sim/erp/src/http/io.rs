//! A listener that makes connection-level outages real: while one is active, new connections
//! are reset at once and reads on open ones fail, so clients see connection errors rather than
//! HTTP answers.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::server::Shared;

/// TCP listener that drops connections during connection-level outages.
pub(crate) struct FaultyListener {
    pub inner: TcpListener,
    pub shared: Arc<Shared>,
}

impl axum::serve::Listener for FaultyListener {
    type Io = FaultyStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.shared.refuses_connections() {
                        self.shared.lock().stats.connections_refused += 1;
                        // A zero linger turns the close into a reset, like a dead host's firewall.
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    return (
                        FaultyStream {
                            inner: stream,
                            shared: self.shared.clone(),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: back off briefly, as axum's own loop does.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection whose reads fail while a connection-level outage is active.
pub(crate) struct FaultyStream {
    inner: TcpStream,
    shared: Arc<Shared>,
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.refuses_connections() {
            let _ = this.inner.set_zero_linger();
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionReset)));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
