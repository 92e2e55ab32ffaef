//! A raw HTTP/2 and TCP client for the attacks at the protocol level: frames written by
//! hand so that nothing polices them, from any loopback address (another peer), and the
//! resident memory of the process under attack.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// HTTP/2 frame types and error codes the tests speak.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const GOAWAY: u8 = 0x7;
pub const END_HEADERS: u8 = 0x4;
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const REFUSED_STREAM: u32 = 0x7;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame: a 9-byte header and its payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len())
        .expect("a small frame")
        .to_be_bytes();
    let mut out = vec![length[1], length[2], length[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A gRPC call's request headers, HPACK-encoded as literals without indexing (no table, no
/// Huffman): what any client could send, written by hand so that nothing polices it.
pub fn call_headers(path: &str) -> Vec<u8> {
    call_headers_with(path, &[])
}

/// [`call_headers`] with `extra` fields after the usual ones.
pub fn call_headers_with(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    let mut block = Vec::new();
    for (name, value) in fields.iter().chain(extra) {
        block.push(0x00);
        hpack_string(&mut block, name);
        hpack_string(&mut block, value);
    }
    block
}

/// An HPACK string literal without Huffman: its length as a 7-bit-prefix integer
/// (RFC 7541 §5.1), then its bytes.
fn hpack_string(block: &mut Vec<u8>, text: &str) {
    const PREFIX_MAX: usize = 127;
    if text.len() < PREFIX_MAX {
        block.push(u8::try_from(text.len()).expect("under 127"));
    } else {
        block.push(0x7f);
        let mut rest = text.len() - PREFIX_MAX;
        while rest >= 0x80 {
            block.push(u8::try_from(rest % 0x80).expect("seven bits") | 0x80);
            rest /= 0x80;
        }
        block.push(u8::try_from(rest).expect("seven bits"));
    }
    block.extend_from_slice(text.as_bytes());
}

/// What a connection heard: the server's SETTINGS, refused streams, a GOAWAY.
#[derive(Debug, Default)]
pub struct Heard {
    /// Answers that ended their stream (trailers-only refusals among them).
    pub ended: usize,
    pub max_concurrent_streams: Option<u32>,
    pub refused: usize,
    /// Header blocks the server sent: answers (trailers-only ones included).
    pub answered: usize,
    /// Streams the server reset, whatever the code.
    pub reset: usize,
    /// How many streams were reset with each error code.
    pub reset_codes: std::collections::BTreeMap<u32, usize>,
    /// The error code of the GOAWAY that closed the connection, if one did.
    pub goaway: Option<u32>,
    /// The last stream the server says it processed.
    pub last_stream: Option<u32>,
}

/// Opens a raw HTTP/2 connection (preface and empty SETTINGS), sends `frames`, then reads
/// what the server answers for `listen` and acknowledges its SETTINGS.
pub async fn raw_http2(addr: SocketAddr, frames: Vec<u8>, listen: Duration) -> Heard {
    raw_http2_from(None, addr, frames, listen).await
}

/// [`raw_http2`] from the loopback address `source` (`127.0.0.2`, say): another peer.
pub async fn raw_http2_from(
    source: Option<IpAddr>,
    addr: SocketAddr,
    frames: Vec<u8>,
    listen: Duration,
) -> Heard {
    let mut tcp = connect_from(source, addr).await.expect("connects");
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(frame(SETTINGS, 0, 0, &[]));
    tcp.write_all(&opening).await.expect("preface");
    let (mut reader, mut writer) = tcp.into_split();
    let sender = tokio::spawn(async move {
        let _ = writer.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
        let _ = writer.write_all(&frames).await;
        writer
    });
    let mut heard = Heard::default();
    let deadline = Instant::now() + listen;
    let mut header = [0u8; 9];
    while let Ok(Ok(())) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        reader.read_exact(&mut header),
    )
    .await
    .map(|read| read.map(drop))
    {
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; length];
        if reader.read_exact(&mut payload).await.is_err() {
            break;
        }
        match header[3] {
            SETTINGS if header[4] & ACK == 0 => {
                for entry in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([entry[0], entry[1]]);
                    let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
                    if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                        heard.max_concurrent_streams = Some(value);
                    }
                }
            }
            RST_STREAM if payload.len() == 4 => {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                heard.refused += usize::from(code == REFUSED_STREAM);
                *heard.reset_codes.entry(code).or_default() += 1;
                heard.reset += 1;
            }
            HEADERS => {
                heard.answered += 1;
                heard.ended += usize::from(header[4] & END_STREAM != 0);
            }
            GOAWAY if payload.len() >= 8 => {
                heard.goaway = Some(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]));
                heard.last_stream = Some(u32::from_be_bytes([
                    payload[0] & 0x7f,
                    payload[1],
                    payload[2],
                    payload[3],
                ]));
                break;
            }
            _ => {}
        }
    }
    let _ = sender.await;
    heard
}

/// Health answers on a fresh connection.
pub async fn still_serving(addr: SocketAddr) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("a new connection");
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers");
}

/// A TCP connection to `addr` from `source` (any address of 127.0.0.0/8 on Linux).
pub async fn connect_from(source: Option<IpAddr>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    socket.connect(addr).await
}

/// A connection from `source` that spoke the HTTP/2 preface and its SETTINGS, once the
/// server answered with its own SETTINGS (admitted); `None` when the server closed it first.
pub async fn open_http2(source: IpAddr, addr: SocketAddr) -> Option<TcpStream> {
    let mut tcp = connect_from(Some(source), addr).await.ok()?;
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(frame(SETTINGS, 0, 0, &[]));
    tcp.write_all(&opening).await.ok()?;
    let mut header = [0u8; 9];
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut header));
    match read.await {
        Ok(Ok(_)) if header[3] == SETTINGS => Some(tcp),
        _ => None,
    }
}

/// Whether the server closes `tcp` within `wait` without sending a byte.
pub async fn closed_unanswered(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(wait, tcp.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// Whether the server has not closed `tcp`: what it sent so far is read and dropped, and
/// no end of stream follows.
pub fn still_open(tcp: &TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match tcp.try_read(&mut buffer) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(error) => return error.kind() == std::io::ErrorKind::WouldBlock,
        }
    }
}

/// The resident memory of process `pid`, in KiB.
pub fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or_default()
}
