//! The connections the gRPC port admits: at most so many overall and per peer address, TLS
//! handshakes under way bounded and timed, and the HTTP/2 preface due within a deadline, so
//! that silent or slow clients cannot hold the process' memory and file descriptors.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use futures::future::BoxFuture;
use pasarela_auth::{Slot, Slots, peer_key};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::config::ConnectionSettings;

/// What every HTTP/2 client sends first (RFC 9113 §3.4), before its SETTINGS frame.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A frame header: length (3 bytes), type, flags, stream (4 bytes).
const FRAME_HEADER: usize = 9;

const SETTINGS: u8 = 0x4;

/// Largest first SETTINGS frame read here: 170 settings of 6 bytes, where clients send a
/// handful; the buffer is taken before the bytes arrive, so it stays small.
const MAX_SETTINGS_PAYLOAD: usize = 1_020;

/// The bytes of one setting (RFC 9113 §6.5.1).
const SETTING: usize = 6;

/// Pause after a failed `accept` (out of file descriptors, say) so the loop cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Admitted connections waiting for the server to take them.
const BACKLOG: usize = 64;

/// Why a connection was closed before HTTP/2 began: the label of its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    TooManyConnections,
    TooManyFromPeer,
    TooManyHandshakes,
    TooManyHandshakesFromPeer,
    HandshakeFailed,
    HandshakeTimeout,
    PrefaceTimeout,
    NotHttp2,
}

impl Refusal {
    const ALL: [Refusal; 8] = [
        Refusal::TooManyConnections,
        Refusal::TooManyFromPeer,
        Refusal::TooManyHandshakes,
        Refusal::TooManyHandshakesFromPeer,
        Refusal::HandshakeFailed,
        Refusal::HandshakeTimeout,
        Refusal::PrefaceTimeout,
        Refusal::NotHttp2,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::TooManyConnections => "max_connections",
            Refusal::TooManyFromPeer => "max_per_peer",
            Refusal::TooManyHandshakes => "max_tls_handshakes",
            Refusal::TooManyHandshakesFromPeer => "max_tls_handshakes_per_peer",
            Refusal::HandshakeFailed => "tls_handshake_failed",
            Refusal::HandshakeTimeout => "tls_handshake_timeout",
            Refusal::PrefaceTimeout => "preface_timeout",
            Refusal::NotHttp2 => "not_http2",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

/// The connection families, handed to the accept loop and registered with the server's.
#[derive(Clone, Default)]
pub struct ConnectionMetrics {
    open: Gauge,
    refused: Family<RefusalLabels, Counter>,
}

impl ConnectionMetrics {
    /// Every refusal's series exists at zero from start-up.
    pub fn register(&self, registry: &mut Registry) {
        for refusal in Refusal::ALL {
            self.refused(refusal);
        }
        registry.register(
            "pasarela_connections_open",
            "Connections of the gRPC port open now, handshakes included",
            self.open.clone(),
        );
        registry.register(
            "pasarela_connections_refused",
            "Connections of the gRPC port closed before HTTP/2 began, by reason",
            self.refused.clone(),
        );
    }

    fn refused(&self, refusal: Refusal) -> Counter {
        self.refused
            .get_or_create(&RefusalLabels {
                reason: refusal.label(),
            })
            .clone()
    }
}

/// The connections of the gRPC port, ready for `Server::serve_with_incoming`.
pub enum Incoming {
    Plain(ReceiverStream<io::Result<Admitted<TcpStream>>>),
    Tls(ReceiverStream<io::Result<Admitted<TlsStream<TcpStream>>>>),
}

/// Starts admitting the connections of `listener`, through `tls` when given.
pub fn incoming(
    listener: TcpListener,
    settings: &ConnectionSettings,
    tls: Option<TlsAcceptor>,
    metrics: ConnectionMetrics,
) -> Incoming {
    let gate = Gate {
        overall: Arc::new(Semaphore::new(settings.max)),
        per_peer: Slots::new(settings.max_per_peer),
        preface_timeout: settings.preface_timeout,
        metrics,
    };
    match tls {
        None => Incoming::Plain(spawn_accept(listener, gate, Arc::new(plain))),
        Some(acceptor) => {
            let handshakes = Handshakes {
                acceptor,
                overall: Arc::new(Semaphore::new(settings.max_tls_handshakes)),
                per_peer: Slots::new(settings.max_tls_handshakes_per_peer),
                timeout: settings.tls_handshake_timeout,
            };
            let handshake = move |tcp, peer: &str| handshakes.start(tcp, peer);
            Incoming::Tls(spawn_accept(listener, gate, Arc::new(handshake)))
        }
    }
}

/// What a connection of a peer must get through before HTTP/2: nothing, or a TLS
/// handshake. Started in the accept loop, so that a bound it checks refuses at once.
type Handshake<IO> = Arc<dyn Fn(TcpStream, &str) -> Started<IO> + Send + Sync>;

/// A handshake under way, or why none may start.
type Started<IO> = Result<BoxFuture<'static, Result<IO, Refusal>>, Refusal>;

fn plain(tcp: TcpStream, _: &str) -> Started<TcpStream> {
    Ok(Box::pin(std::future::ready(Ok(tcp))))
}

/// The TLS handshakes under way, bounded overall and per peer: one peer cannot take them
/// all while its connections stay within its share.
struct Handshakes {
    acceptor: TlsAcceptor,
    overall: Arc<Semaphore>,
    per_peer: Slots,
    timeout: Duration,
}

impl Handshakes {
    fn start(&self, tcp: TcpStream, peer: &str) -> Started<TlsStream<TcpStream>> {
        let overall = self
            .overall
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TooManyHandshakes)?;
        let mine = self
            .per_peer
            .take(peer)
            .ok_or(Refusal::TooManyHandshakesFromPeer)?;
        let (accepting, timeout) = (self.acceptor.accept(tcp), self.timeout);
        Ok(Box::pin(async move {
            let handshaken = tokio::time::timeout(timeout, accepting).await;
            drop((overall, mine));
            match handshaken {
                Ok(Ok(tls)) => Ok(tls),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake refused");
                    Err(Refusal::HandshakeFailed)
                }
                Err(_) => Err(Refusal::HandshakeTimeout),
            }
        }))
    }
}

/// The bounds every connection passes, shared by the accept loop and its tasks.
#[derive(Clone)]
struct Gate {
    overall: Arc<Semaphore>,
    per_peer: Slots,
    preface_timeout: Duration,
    metrics: ConnectionMetrics,
}

/// What an admitted connection holds until it closes.
struct Place {
    _overall: OwnedSemaphorePermit,
    _peer: Slot,
    open: Gauge,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Gate {
    /// A place for a connection of `peer` (its [`peer_key`]), or why there is none.
    fn place(&self, peer: &str) -> Result<Place, Refusal> {
        let overall = self
            .overall
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TooManyConnections)?;
        let peer = self.per_peer.take(peer).ok_or(Refusal::TooManyFromPeer)?;
        self.metrics.open.inc();
        Ok(Place {
            _overall: overall,
            _peer: peer,
            open: self.metrics.open.clone(),
        })
    }

    fn refuse(&self, refusal: Refusal, peer: &str) {
        tracing::debug!(%peer, reason = refusal.label(), "connection refused");
        self.metrics.refused(refusal).inc();
    }
}

fn spawn_accept<IO>(
    listener: TcpListener,
    gate: Gate,
    handshake: Handshake<IO>,
) -> ReceiverStream<io::Result<Admitted<IO>>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(BACKLOG);
    tokio::spawn(accept(listener, gate, handshake, sender));
    ReceiverStream::new(receiver)
}

/// Accepts until the server stops taking connections; each connection is admitted on a
/// task of its own so that a slow client cannot hold up the others.
async fn accept<IO>(
    listener: TcpListener,
    gate: Gate,
    handshake: Handshake<IO>,
    connections: mpsc::Sender<io::Result<Admitted<IO>>>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = connections.closed() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let peer = peer_key(peer.ip());
        answer_at_once(&tcp);
        let started = gate
            .place(&peer)
            .and_then(|place| Ok((place, handshake(tcp, &peer)?)));
        let (place, handshaking) = match started {
            Ok(started) => started,
            Err(refusal) => {
                gate.refuse(refusal, &peer);
                continue;
            }
        };
        let (gate, connections) = (gate.clone(), connections.clone());
        tokio::spawn(async move {
            let admitted = match handshaking.await {
                Ok(io) => read_opening(io, gate.preface_timeout).await,
                Err(refusal) => Err(refusal),
            };
            match admitted {
                Ok((io, opening)) => {
                    let _ = connections
                        .send(Ok(Admitted::new(io, opening, place)))
                        .await;
                }
                Err(refusal) => gate.refuse(refusal, &peer),
            }
        });
    }
}

/// Sends small writes at once: without it, a unary call's trailers (a frame of their own)
/// wait for the caller's delayed ACK, 40 ms a call on Linux (Nagle's algorithm).
fn answer_at_once(tcp: &TcpStream) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY could not be set");
    }
}

/// Reads the HTTP/2 preface and the first frame, which must be SETTINGS, within `timeout`;
/// answers the bytes read, for HTTP/2 to read again.
async fn read_opening<IO>(mut io: IO, timeout: Duration) -> Result<(IO, Bytes), Refusal>
where
    IO: AsyncRead + Unpin,
{
    let reading = async {
        let mut opening = vec![0u8; PREFACE.len() + FRAME_HEADER];
        io.read_exact(&mut opening)
            .await
            .map_err(|_| Refusal::NotHttp2)?;
        let (preface, header) = opening.split_at(PREFACE.len());
        let length = settings_length(preface, header).ok_or(Refusal::NotHttp2)?;
        let start = opening.len();
        opening.resize(start.saturating_add(length), 0);
        let payload = opening.get_mut(start..).ok_or(Refusal::NotHttp2)?;
        io.read_exact(payload)
            .await
            .map_err(|_| Refusal::NotHttp2)?;
        Ok(Bytes::from(opening))
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(opening)) => Ok((io, opening)),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => Err(Refusal::PrefaceTimeout),
    }
}

/// The payload length of a first frame that is the client's SETTINGS after the preface.
fn settings_length(preface: &[u8], header: &[u8]) -> Option<usize> {
    let &[l0, l1, l2, kind, _, s0, s1, s2, s3] = header else {
        return None;
    };
    let length = usize::try_from(u32::from_be_bytes([0, l0, l1, l2])).ok()?;
    let stream = u32::from_be_bytes([s0, s1, s2, s3]);
    let settings = preface == PREFACE && kind == SETTINGS && stream == 0;
    (settings && length <= MAX_SETTINGS_PAYLOAD && length % SETTING == 0).then_some(length)
}

/// An admitted connection: its opening bytes are read again first, and its place is held
/// until it closes.
pub struct Admitted<IO> {
    io: IO,
    opening: Bytes,
    _place: Place,
}

impl<IO> Admitted<IO> {
    fn new(io: IO, opening: Bytes, place: Place) -> Self {
        Self {
            io,
            opening,
            _place: place,
        }
    }
}

impl<IO: Connected> Connected for Admitted<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Admitted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.opening.has_remaining() && buf.remaining() > 0 {
            let n = self.opening.len().min(buf.remaining());
            buf.put_slice(&self.opening[..n]);
            self.opening.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Admitted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(length: u32, kind: u8, stream: u32) -> Vec<u8> {
        let length = length.to_be_bytes();
        let mut header = vec![length[1], length[2], length[3], kind, 0];
        header.extend_from_slice(&stream.to_be_bytes());
        header
    }

    #[test]
    fn only_a_preface_and_a_settings_frame_open_a_connection() {
        assert_eq!(settings_length(PREFACE, &header(12, SETTINGS, 0)), Some(12));
        assert_eq!(settings_length(PREFACE, &header(0, SETTINGS, 0)), Some(0));
        let headers_frame = 0x1;
        assert_eq!(
            settings_length(PREFACE, &header(12, headers_frame, 1)),
            None
        );
        assert_eq!(settings_length(PREFACE, &header(12, SETTINGS, 1)), None);
        assert_eq!(
            settings_length(PREFACE, &header(1 << 20, SETTINGS, 0)),
            None
        );
        let http1 = b"GET / HTTP/1.1\r\nHost: x\r\n";
        assert_eq!(settings_length(http1, &header(12, SETTINGS, 0)), None);
    }

    #[tokio::test]
    async fn the_opening_is_read_again_before_the_rest() {
        let mut sent = PREFACE.to_vec();
        sent.extend(header(6, SETTINGS, 0));
        sent.extend([0, 3, 0, 0, 0, 100]);
        sent.extend(b"then the rest");
        let (io, opening) = read_opening(&sent[..], Duration::from_secs(1))
            .await
            .expect("an HTTP/2 opening");
        assert_eq!(opening.len(), PREFACE.len() + FRAME_HEADER + 6);
        let gate = Gate {
            overall: Arc::new(Semaphore::new(1)),
            per_peer: Slots::new(1),
            preface_timeout: Duration::from_secs(1),
            metrics: ConnectionMetrics::default(),
        };
        let place = gate.place("127.0.0.1").expect("room");
        let mut admitted = Admitted::new(io, opening, place);
        let mut read = Vec::new();
        admitted.read_to_end(&mut read).await.expect("read");
        assert_eq!(
            read, sent,
            "HTTP/2 reads every byte the client sent, in order"
        );
    }
}
