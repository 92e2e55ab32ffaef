//! The outbound kit against a real HTTP server on loopback: retries only for safe
//! operations, the circuit breaker, deadlines and the mapping of lost answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use pasarela_provider::breaker::BreakerSettings;
use pasarela_provider::outbound::OutboundSettings;
use pasarela_provider::retry::RetrySettings;
use pasarela_provider::{Operation, Outbound, reasons};
use tonic::Code;

const READ: Operation = Operation {
    name: "read",
    safe_to_retry: true,
};
const CHARGE: Operation = Operation {
    name: "charge",
    safe_to_retry: false,
};

/// A server whose first `failures` answers are `status`, then 200; counts every call.
async fn flaky(failures: usize, status: StatusCode, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/op",
        any(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                if n < failures {
                    (status, "down")
                } else {
                    (StatusCode::OK, "{}")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/op", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn outbound(threshold: u32) -> Outbound {
    Outbound::new(
        "test.provider",
        &OutboundSettings {
            retry: RetrySettings {
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                ..RetrySettings::default()
            },
            breaker: BreakerSettings {
                failure_threshold: threshold,
                open_for: Duration::from_secs(60),
            },
            ..OutboundSettings::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_read_is_retried_through_one_503() {
    let (url, calls) = flaky(1, StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO).await;
    let out = outbound(10);
    let answer = out
        .send(READ, out.client().get(&url), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_charge_is_attempted_exactly_once() {
    let (url, calls) = flaky(1, StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO).await;
    let out = outbound(10);
    let answer = out
        .send(CHARGE, out.client().post(&url), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_circuit_opens_and_fails_fast_with_retry_info() {
    let (url, calls) = flaky(usize::MAX, StatusCode::BAD_GATEWAY, Duration::ZERO).await;
    let out = outbound(2);
    for _ in 0..2 {
        let _ = out
            .send(CHARGE, out.client().post(&url), Duration::from_secs(5))
            .await;
    }
    let error = out
        .send(CHARGE, out.client().post(&url), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(error.code, Code::Unavailable);
    assert_eq!(error.reason, reasons::CIRCUIT_OPEN);
    assert!(error.details.retry_after.is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "no call while open");
}

#[tokio::test]
async fn a_slow_read_is_a_deadline_and_a_slow_charge_an_unknown_outcome() {
    let (url, _) = flaky(0, StatusCode::OK, Duration::from_secs(3)).await;
    let out = outbound(10);
    let read = out
        .send(READ, out.client().get(&url), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(read.code, Code::DeadlineExceeded);
    assert_eq!(read.reason, reasons::PROVIDER_TIMEOUT);
    let charge = out
        .send(CHARGE, out.client().post(&url), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(charge.code, Code::DeadlineExceeded);
    assert_eq!(charge.reason, reasons::PROVIDER_OUTCOME_UNKNOWN);
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_even_for_a_charge() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = outbound(10);
    let error = out
        .send(
            CHARGE,
            out.client().post(format!("http://127.0.0.1:{port}/op")),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, Code::Unavailable);
    assert_eq!(error.reason, reasons::PROVIDER_UNAVAILABLE);
}

/// A server that answers `body` to every call.
async fn answering(body: Vec<u8>, chunked: bool) -> String {
    let app = Router::new().route(
        "/op",
        any(move || {
            let body = body.clone();
            async move {
                if chunked {
                    let stream = futures::stream::iter(
                        body.chunks(64 * 1024)
                            .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec()))
                            .collect::<Vec<_>>(),
                    );
                    axum::body::Body::from_stream(stream)
                } else {
                    axum::body::Body::from(body)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/op", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn an_answer_too_large_is_not_read_and_leaves_a_charge_unknown() {
    let huge = vec![b'x'; pasarela_provider::outbound::MAX_ANSWER_BYTES + 1];
    for chunked in [false, true] {
        let url = answering(huge.clone(), chunked).await;
        let out = outbound(10);
        let read = out
            .send(READ, out.client().get(&url), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(
            read.reason,
            reasons::PROVIDER_BAD_RESPONSE,
            "chunked {chunked}"
        );
        let charge = out
            .send(CHARGE, out.client().post(&url), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(
            charge.reason,
            reasons::PROVIDER_OUTCOME_UNKNOWN,
            "chunked {chunked}"
        );
    }
    let fits = answering(vec![b'x'; 1000], true).await;
    let out = outbound(10);
    let answer = out
        .send(READ, out.client().get(&fits), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.body.len(), 1000);
}
