//! What the outbound client says of a call's delivery, against real sockets on loopback:
//! only a call that never left (no connection, no time, an open circuit, a TLS handshake
//! refused) is `NotSent`; one whose bytes may have reached the provider without a full
//! answer coming back is `Unknown`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pasarela_provider::breaker::BreakerSettings;
use pasarela_provider::http::HttpSettings;
use pasarela_provider::outbound::OutboundSettings;
use pasarela_provider::{Delivery, Operation, Outbound, ProviderError, reasons};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tonic::Code;

const CHARGE: Operation = Operation {
    name: "charge",
    safe_to_retry: false,
};

/// What a raw server does with each connection.
#[derive(Clone, Copy)]
enum Peer {
    /// Closes it at once, reading nothing.
    CloseAtOnce,
    /// Reads the request head, then closes without a byte of answer.
    CloseAfterReading,
    /// Reads the request head and never answers.
    Hang,
    /// Answers half a status line, then closes.
    HalfAnAnswer,
}

/// A server playing `peer`; counts connections.
async fn raw(peer: Peer) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/op", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if !matches!(peer, Peer::CloseAtOnce) {
                    let mut head = vec![0; 4096];
                    let _ = socket.read(&mut head).await;
                }
                match peer {
                    Peer::CloseAtOnce | Peer::CloseAfterReading => {}
                    Peer::Hang => std::future::pending::<()>().await,
                    Peer::HalfAnAnswer => {
                        let _ = socket.write_all(b"HTTP/1.1 20").await;
                    }
                }
            });
        }
    });
    (url, connections)
}

fn outbound(http: HttpSettings) -> Outbound {
    Outbound::new(
        "test.provider",
        &OutboundSettings {
            http,
            breaker: BreakerSettings {
                failure_threshold: 2,
                open_for: Duration::from_secs(60),
            },
            ..OutboundSettings::default()
        },
    )
    .unwrap()
}

async fn charge(out: &Outbound, url: &str, budget: Duration) -> ProviderError {
    out.send(CHARGE, out.client().post(url).body("{}"), budget)
        .await
        .expect_err("no answer")
}

#[tokio::test]
async fn a_connection_that_never_opened_is_not_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = outbound(HttpSettings::default());
    let error = charge(
        &out,
        &format!("http://127.0.0.1:{port}/op"),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(error.delivery, Delivery::NotSent, "{error:?}");
}

#[tokio::test]
async fn bytes_that_may_have_arrived_without_an_answer_are_unknown() {
    for (peer, name) in [
        (Peer::CloseAtOnce, "closed at once"),
        (Peer::CloseAfterReading, "closed after reading"),
        (Peer::Hang, "hung"),
        (Peer::HalfAnAnswer, "half an answer"),
    ] {
        let (url, connections) = raw(peer).await;
        let out = outbound(HttpSettings::default());
        let error = charge(&out, &url, Duration::from_millis(300)).await;
        assert_eq!(error.delivery, Delivery::Unknown, "{name}: {error:?}");
        assert_eq!(error.reason, reasons::PROVIDER_OUTCOME_UNKNOWN, "{name}");
        assert!(connections.load(Ordering::SeqCst) >= 1, "{name}");
    }
}

#[tokio::test]
async fn a_budget_below_the_minimum_is_refused_before_connecting() {
    let (url, connections) = raw(Peer::CloseAfterReading).await;
    let out = outbound(HttpSettings {
        min_budget: Duration::from_millis(100),
        ..HttpSettings::default()
    });
    for budget in [
        Duration::ZERO,
        Duration::from_millis(5),
        Duration::from_millis(99),
    ] {
        let error = charge(&out, &url, budget).await;
        assert_eq!(error.delivery, Delivery::NotSent, "{budget:?}");
        assert_eq!(error.code, Code::DeadlineExceeded);
        assert_eq!(error.reason, reasons::DEADLINE_TOO_SHORT);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing was sent");
}

#[tokio::test]
async fn an_open_circuit_sends_nothing() {
    let (url, connections) = raw(Peer::CloseAfterReading).await;
    let out = outbound(HttpSettings::default());
    for _ in 0..2 {
        charge(&out, &url, Duration::from_secs(1)).await;
    }
    let sent = connections.load(Ordering::SeqCst);
    let error = charge(&out, &url, Duration::from_secs(1)).await;
    assert_eq!(error.reason, reasons::CIRCUIT_OPEN);
    assert_eq!(error.delivery, Delivery::NotSent);
    assert_eq!(connections.load(Ordering::SeqCst), sent);
}

/// A TLS server that requires a client certificate signed by its own CA, speaking only
/// `version`; answers the CA's PEM for the client to trust.
async fn mutual_tls(version: &'static rustls::SupportedProtocolVersion) -> (String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/op", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(socket).await {
                    let mut head = vec![0; 4096];
                    let _ = tls.read(&mut head).await;
                }
            });
        }
    });
    (url, ca_cert.pem())
}

#[tokio::test]
async fn a_client_certificate_refused_in_the_handshake_is_not_sent_and_after_it_unknown() {
    let dir = tempfile::tempdir().unwrap();
    for (version, expected) in [
        // TLS 1.2: the refusal ends the handshake, before any request is written.
        (&rustls::version::TLS12, Delivery::NotSent),
        // TLS 1.3: the client's side of the handshake is done when the refusal comes, and
        // the request may be on the wire: pasarela cannot tell it from a pooled connection.
        (&rustls::version::TLS13, Delivery::Unknown),
    ] {
        let (url, ca) = mutual_tls(version).await;
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let out = outbound(HttpSettings {
            ca_file: Some(ca_file),
            ..HttpSettings::default()
        });
        let error = charge(&out, &url, Duration::from_secs(2)).await;
        assert_eq!(error.delivery, expected, "{version:?}: {error:?}");
        if expected == Delivery::Unknown {
            assert_eq!(
                error.reason,
                reasons::PROVIDER_AUTH_FAILED,
                "the alert is named"
            );
        }
    }
}
