//! The edge's resource bounds, each driven against a real `pasarela dev` process by raw TCP,
//! TLS or HTTP/2 clients from other loopback addresses (other peers): what passes a bound
//! is refused, the process' resident memory read before and after stays bounded, and a
//! good caller from its own address keeps being served.

use std::net::IpAddr;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::http2::*;
use crate::support::metric;
use crate::support::process::{DevProcess, mint_with_cli};

/// Peers of the attacks, apart from the good caller's 127.0.0.1.
const HOSTILE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
const THIRD: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 4));

/// Most the process' resident memory may grow over one attack (a few MiB were measured).
const MEMORY_BOUND_KIB: u64 = 16 * 1024;

/// A good caller's connection, from 127.0.0.1, made before the attack.
async fn good_caller(dev: &DevProcess) -> HealthClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{}", dev.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("the good caller connects");
    let mut health = HealthClient::new(channel);
    served(&mut health).await;
    health
}

async fn served(health: &mut HealthClient<Channel>) {
    health
        .check(HealthCheckRequest::default())
        .await
        .expect("the good caller is served");
}

#[track_caller]
fn assert_memory_bounded(dev: &DevProcess, before: u64) {
    let grown = resident_kib(dev.pid()).saturating_sub(before);
    assert!(grown < MEMORY_BOUND_KIB, "memory grew by {grown} KiB");
}

/// The count of connections refused for `reason`.
fn refused(metrics: &str, reason: &str) -> f64 {
    let series = format!("pasarela_connections_refused_total{{reason=\"{reason}\"}}");
    metric(metrics, &series).unwrap_or_else(|| panic!("{series} is exported"))
}

/// Waits until the connections refused for `reasons` together number at least `count`: a
/// refusal is counted just after its socket is closed, so the count may trail a moment.
async fn refused_at_least(dev: &DevProcess, reasons: &[&str], count: f64) {
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = dev.metrics().await;
        let total: f64 = reasons.iter().map(|reason| refused(&metrics, reason)).sum();
        if total >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} refused for {reasons:?}:\n{metrics}");
}

#[tokio::test]
async fn connections_past_a_peers_share_or_the_total_are_closed_at_once_and_others_served() {
    let dev = DevProcess::start_with_env(&[
        ("PASARELA_CONNECTIONS__MAX_PER_PEER", "40"),
        ("PASARELA_CONNECTIONS__MAX", "70"),
    ]);
    let mut good = good_caller(&dev).await;
    let before = resident_kib(dev.pid());
    let mut hostile = Vec::new();
    for _ in 0..40 {
        hostile.push(
            open_http2(HOSTILE, dev.addr)
                .await
                .expect("within its share"),
        );
    }
    let mut past_share = connect_from(Some(HOSTILE), dev.addr).await.expect("TCP");
    assert!(
        closed_unanswered(&mut past_share, Duration::from_secs(5)).await,
        "a peer's connection past its share is closed at once"
    );
    served(&mut good).await;

    // Another peer takes the rest of the total (the good caller holds one).
    let mut other = Vec::new();
    for _ in 0..29 {
        other.push(open_http2(OTHER, dev.addr).await.expect("within the total"));
    }
    let mut past_total = connect_from(Some(THIRD), dev.addr).await.expect("TCP");
    assert!(
        closed_unanswered(&mut past_total, Duration::from_secs(5)).await,
        "a connection past the total is closed at once"
    );
    served(&mut good).await;
    assert!(hostile.iter().chain(&other).all(still_open));

    // Places come back when connections close.
    drop(other);
    let mut admitted = None;
    for _ in 0..50 {
        admitted = open_http2(THIRD, dev.addr).await;
        if admitted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        admitted.is_some(),
        "a closed connection's place is taken again"
    );
    refused_at_least(&dev, &["max_per_peer"], 1.0).await;
    refused_at_least(&dev, &["max_connections"], 1.0).await;
    assert_memory_bounded(&dev, before);
}

#[tokio::test]
async fn connections_that_never_speak_http2_are_closed_at_the_preface_deadline() {
    let dev = DevProcess::start_with_env(&[
        ("PASARELA_CONNECTIONS__PREFACE_TIMEOUT", "1s"),
        ("PASARELA_CONNECTIONS__MAX_PER_PEER", "1000"),
    ]);
    let mut good = good_caller(&dev).await;
    let before = resident_kib(dev.pid());
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(connect_from(Some(HOSTILE), dev.addr).await.expect("TCP"));
    }
    let mut http1 = connect_from(Some(OTHER), dev.addr).await.expect("TCP");
    tokio::io::AsyncWriteExt::write_all(&mut http1, b"GET / HTTP/1.1\r\nHost: pasarela\r\n\r\n")
        .await
        .expect("sent");
    served(&mut good).await;
    assert_memory_bounded(&dev, before);

    for tcp in &mut silent {
        assert!(
            closed_unanswered(tcp, Duration::from_secs(10)).await,
            "a silent connection is closed at the deadline"
        );
    }
    assert!(closed_unanswered(&mut http1, Duration::from_secs(10)).await);
    served(&mut good).await;
    refused_at_least(&dev, &["preface_timeout", "not_http2"], 301.0).await;
    assert_memory_bounded(&dev, before);
}

/// Streams of one connection that never end their request: every other one declares a
/// 250 KB message (which the server reserves) and sends 1 KB of it, the others send a whole
/// message and no end of stream.
fn stalled_calls(token: &str, streams: u32) -> Vec<u8> {
    let path = "/pasarela.bureau.v1.BureauService/GetPasswordExpiration";
    let authorization = format!("Bearer {token}");
    let mut stalled = vec![0u8];
    stalled.extend(250_000u32.to_be_bytes());
    stalled.extend(vec![0x0a; 1_000]);
    let whole = [0u8, 0, 0, 0, 0];
    (0..streams)
        .flat_map(|i| {
            let id = 2 * i + 1;
            let headers = call_headers_with(path, &[("authorization", &authorization)]);
            let mut frames = frame(HEADERS, END_HEADERS, id, &headers);
            let message = if i % 2 == 0 { &stalled[..] } else { &whole[..] };
            frames.extend(frame(DATA, 0, id, message));
            frames
        })
        .collect()
}

#[tokio::test]
async fn a_request_message_that_stalls_is_answered_and_its_buffer_freed() {
    let dev = DevProcess::start_with_env(&[
        ("PASARELA_CONNECTIONS__MESSAGE_TIMEOUT", "1s"),
        ("PASARELA_AUTH__MAX_CONCURRENT_CALLS_PER_PRINCIPAL", "1000"),
    ]);
    let mut good = good_caller(&dev).await;
    let before = resident_kib(dev.pid());
    let token = mint_with_cli("*");
    // 80 calls: within the dev principal's burst of 100, so that each is held by its body.
    let attacks = (0..4).map(|_| {
        raw_http2_from(
            Some(HOSTILE),
            dev.addr,
            stalled_calls(&token, 20),
            Duration::from_secs(5),
        )
    });
    let heard = futures::future::join_all(attacks).await;
    for heard in &heard {
        assert_eq!(heard.ended, 20, "every stalled call is answered: {heard:?}");
    }
    served(&mut good).await;
    let metrics = dev.metrics().await;
    let series = "pasarela_rpc_calls_total{method=\"/pasarela.bureau.v1.BureauService/\
                  GetPasswordExpiration\",code=\"DEADLINE_EXCEEDED\"}";
    assert_eq!(metric(&metrics, series), Some(80.0), "{metrics}");
    assert_eq!(
        metric(&metrics, "pasarela_rpc_in_flight"),
        Some(0.0),
        "{metrics}"
    );
    assert_memory_bounded(&dev, before);
}

/// `count` health watches on one stream each, every request whole.
fn watches(count: u32) -> Vec<u8> {
    (0..count)
        .flat_map(|i| {
            let id = 2 * i + 1;
            let mut frames = frame(
                HEADERS,
                END_HEADERS,
                id,
                &call_headers("/grpc.health.v1.Health/Watch"),
            );
            frames.extend(frame(DATA, END_STREAM, id, &[0, 0, 0, 0, 0]));
            frames
        })
        .collect()
}

#[tokio::test]
async fn one_peers_health_watches_and_checks_are_budgeted_and_other_peers_served() {
    // A refill of one call every 20 s, so that the burst of 50 is what is measured however
    // slow the machine (at 0.5 a second, a loaded machine refilled 6 during the checks).
    let dev = DevProcess::start_with_env(&[
        ("PASARELA_AUTH__EXEMPT_PER_PEER__PER_SECOND", "0.05"),
        ("PASARELA_AUTH__EXEMPT_PER_PEER__BURST", "50"),
    ]);
    let mut good = good_caller(&dev).await;
    let before = resident_kib(dev.pid());
    // 16 watches held open at once by default; the rest answered at once.
    let heard = raw_http2_from(Some(HOSTILE), dev.addr, watches(30), Duration::from_secs(2)).await;
    assert_eq!(heard.answered, 30, "{heard:?}");
    assert_eq!(
        heard.ended, 14,
        "refused past the peer's streams: {heard:?}"
    );
    served(&mut good).await;
    // The connection closed, its watches end: the peer's streams come back.
    let mut again = Heard::default();
    for _ in 0..20 {
        again = raw_http2_from(Some(HOSTILE), dev.addr, watches(4), Duration::from_secs(1)).await;
        if (again.answered, again.ended) == (4, 0) {
            break;
        }
    }
    assert_eq!((again.answered, again.ended), (4, 0), "{again:?}");

    // A burst of checks from one peer spends its budget; the good caller's is its own.
    let channel = Endpoint::from_shared(format!("http://{}", dev.addr))
        .expect("endpoint")
        .local_address(Some(OTHER))
        .connect()
        .await
        .expect("connects");
    let mut other = HealthClient::new(channel);
    let mut refusals = Vec::new();
    for _ in 0..70 {
        if let Err(status) = other.check(HealthCheckRequest::default()).await {
            refusals.push(status);
        }
    }
    // Its burst of 50, and one more every 20 s: at most a few more than 50 pass.
    assert!(refusals.len() >= 15, "{} refused", refusals.len());
    for status in &refusals {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(crate::support::reason(status), "RATE_LIMITED");
    }
    served(&mut good).await;
    assert_memory_bounded(&dev, before);
}

#[tokio::test]
async fn tls_handshakes_past_the_bound_are_refused_and_silent_ones_time_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = dir.path().join("pki");
    let (cert, key, ca) = (
        pki.join("server.pem"),
        pki.join("server-key.pem"),
        pki.join("ca.pem"),
    );
    let dev = DevProcess::start_in(
        dir,
        &[
            ("PASARELA_TLS__CERT_FILE", &cert.display().to_string()),
            ("PASARELA_TLS__KEY_FILE", &key.display().to_string()),
            ("PASARELA_CONNECTIONS__MAX_TLS_HANDSHAKES", "20"),
            ("PASARELA_CONNECTIONS__MAX_TLS_HANDSHAKES_PER_PEER", "10"),
            ("PASARELA_CONNECTIONS__TLS_HANDSHAKE_TIMEOUT", "5s"),
        ],
    );
    let before = resident_kib(dev.pid());
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(connect_from(Some(HOSTILE), dev.addr).await.expect("TCP"));
    }
    let mut past_share = connect_from(Some(HOSTILE), dev.addr).await.expect("TCP");
    assert!(
        closed_unanswered(&mut past_share, Duration::from_secs(5)).await,
        "a peer's handshake past its share is refused at once"
    );
    for _ in 0..10 {
        silent.push(connect_from(Some(OTHER), dev.addr).await.expect("TCP"));
    }
    let mut past = connect_from(Some(THIRD), dev.addr).await.expect("TCP");
    assert!(
        closed_unanswered(&mut past, Duration::from_secs(5)).await,
        "a handshake past the bound is refused at once"
    );
    assert!(
        silent.iter().all(still_open),
        "refused for the bounds, before the silent ones timed out"
    );
    for tcp in &mut silent {
        assert!(
            closed_unanswered(tcp, Duration::from_secs(10)).await,
            "a silent handshake times out"
        );
    }
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&ca).expect("CA"),
        ))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", dev.addr))
        .expect("endpoint")
        .tls_config(tls)
        .expect("TLS")
        .connect()
        .await
        .expect("a TLS caller connects once the silent handshakes are gone");
    served(&mut HealthClient::new(channel)).await;
    refused_at_least(&dev, &["max_tls_handshakes"], 1.0).await;
    refused_at_least(&dev, &["max_tls_handshakes_per_peer"], 1.0).await;
    refused_at_least(&dev, &["tls_handshake_timeout"], 20.0).await;
    assert_memory_bounded(&dev, before);
}
