//! The accept loop: plain TCP or TLS (rustls), HTTP/1.1 with keep-alive, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{Api, Lanes};

/// How long in-flight requests get to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the accept loop itself (a failing connection is logged, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener socket failed.
    #[error("accept failed: {0}")]
    Accept(#[from] std::io::Error),
}

/// Serve `api` on `listener` until `shutdown` resolves, then drain open connections. With `lanes`,
/// each connection is served by a connection lane (see [`Lanes`]); without, by a task of the
/// runtime this runs on.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    api: Arc<Api>,
    lanes: Option<Arc<Lanes>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, "accept failed; continuing");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (api, tls, watcher) = (api.clone(), tls.clone(), graceful.watcher());
        match &lanes {
            Some(lanes) => lanes.dispatch(
                stream,
                Box::new(move |stream| Box::pin(serve_connection(stream, remote, tls, api, watcher))),
            ),
            None => {
                tokio::spawn(serve_connection(stream, remote, tls, api, watcher));
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timeout; closing remaining connections"),
    }
    Ok(())
}

/// HTTP/1.1 on one accepted connection (after the TLS handshake, with TLS) until it closes.
async fn serve_connection<S>(stream: S, remote: SocketAddr, tls: Option<TlsAcceptor>, api: Arc<Api>, watcher: Watcher)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, std::convert::Infallible>(crate::handle(&api, req, Some(remote)).await) }
    });
    let builder = hyper::server::conn::http1::Builder::new();
    let ended = match tls {
        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
            Err(e) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
        },
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Errors after which accepting can continue (per-connection failures, fd exhaustion).
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock) || e.raw_os_error() == Some(24)
}
