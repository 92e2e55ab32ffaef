//! The caller's deadline bounds every provider call; an abandoned call does not go on.

use super::*;

// ---- 1. deadlines --------------------------------------------------------------------------

/// Far longer than any deadline below: a call that ends before it was cut short.
const PROVIDER_LATENCY_MS: u64 = 10_000;
/// Liveness bound of a cut-short call: generous, so that a loaded machine cannot fail it;
/// the +50 ms figure is measured by the benchmark, not asserted here.
const LIVENESS: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_slow_provider_ends_at_the_callers_deadline() {
    let app = app().await;
    let latency = json!({ "type": "latency", "ms": PROVIDER_LATENCY_MS });
    app.inject("kiban", None, latency, None).await;
    let mut call = tonic::Request::new(expiration());
    call.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = bureau(&app)
        .get_password_expiration(call)
        .await
        .expect_err("cut short");
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "PROVIDER_TIMEOUT");
    assert!(elapsed < LIVENESS, "ended after {elapsed:?}");
    assert_eq!(
        app.route_calls(KIBAN_ROUTE.0, KIBAN_ROUTE.1).await,
        1,
        "not retried past the deadline"
    );
}

#[tokio::test]
async fn a_charge_cut_short_by_the_deadline_is_abandoned() {
    let app = app().await;
    subscribe(&app, 1_000_000).await;
    let latency_ms = 4_000;
    app.inject(
        "daviplata",
        Some(path_of(PAYMENT_ROUTE)),
        json!({ "type": "latency", "ms": latency_ms }),
        Some(1),
    )
    .await;
    let mut call = tonic::Request::new(charge("abandoned-1", 5_000));
    call.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = payments(&app)
        .charge_subscription(call)
        .await
        .expect_err("cut short");
    assert!(
        started.elapsed() < LIVENESS,
        "ended after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(
        app.route_calls(PAYMENT_ROUTE.0, PAYMENT_ROUTE.1).await,
        1,
        "sent once"
    );
    // Past the injected latency the emulator would have charged, had pasarela kept the
    // request open: it closed it at the deadline, so nothing was charged.
    tokio::time::sleep(Duration::from_millis(latency_ms + 1_000).saturating_sub(started.elapsed()))
        .await;
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        0,
        "the call was abandoned"
    );
}

#[tokio::test]
async fn without_a_caller_deadline_the_configured_ceiling_applies() {
    let app = spawn_app_with(|config| {
        roomy(config);
        let bureau = config.bureau.as_mut().expect("bureau configured");
        bureau.outbound.http.timeout = Duration::from_millis(300);
    })
    .await;
    let latency = json!({ "type": "latency", "ms": PROVIDER_LATENCY_MS });
    app.inject("kiban", None, latency, None).await;
    let started = Instant::now();
    let status = bureau(&app)
        .get_password_expiration(expiration())
        .await
        .expect_err("cut short by the ceiling");
    assert!(
        started.elapsed() < LIVENESS,
        "ended after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "PROVIDER_TIMEOUT");
}
