//! Serving a router on a listener, in plain HTTP or with mutual TLS, one task per
//! connection. Each connection carries a kill switch in its requests' extensions so that a
//! `drop` fault can close the socket without an answer; stopping the sandbox closes them all.

use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Closes the connection a request arrived on, with no answer.
#[derive(Clone)]
pub(crate) struct ConnectionKill(CancellationToken);

impl ConnectionKill {
    pub(crate) fn close(&self) {
        self.0.cancel();
    }
}

/// Accepts connections on `listener` until `stop` is cancelled; with `tls`, each one must
/// complete a TLS handshake (client certificate included) before any request is read.
pub(crate) async fn run(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    stop: CancellationToken,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Per-connection errors (the peer reset before accept): keep serving.
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        let kill = stop.child_token();
        let router = router.clone();
        match acceptor.clone() {
            None => {
                tokio::spawn(connection(stream, router, kill));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let handshake = tokio::select! {
                        () = kill.cancelled() => return,
                        handshake = acceptor.accept(stream) => handshake,
                    };
                    match handshake {
                        Ok(stream) => connection(stream, router, kill).await,
                        // The usual cause is a missing or foreign client certificate.
                        Err(error) => tracing::info!(%error, "TLS handshake refused"),
                    }
                });
            }
        }
    }
}

/// Serves one connection until the peer closes it or `kill` fires; dropping the hyper
/// connection closes the socket at once.
async fn connection<S>(stream: S, router: Router, kill: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handle = ConnectionKill(kill.clone());
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(handle.clone());
        router.clone().oneshot(request)
    });
    let builder = Builder::new(TokioExecutor::new());
    let served = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        () = kill.cancelled() => {}
        result = served => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
    }
}
