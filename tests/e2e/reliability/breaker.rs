//! Each provider has its own circuit breaker.

use super::*;

// ---- 3. circuit breaker --------------------------------------------------------------------

#[tokio::test]
async fn an_outage_opens_the_circuit_and_a_probe_closes_it() {
    let open_for = Duration::from_millis(800);
    let app = spawn_app_with(|config| {
        roomy(config);
        let outbound = &mut config.bureau.as_mut().expect("bureau").outbound;
        outbound.breaker.failure_threshold = 3;
        outbound.breaker.open_for = open_for;
        outbound.retry.max_retries = 0;
    })
    .await;
    let mut client = bureau(&app);
    app.inject(
        "kiban",
        None,
        json!({ "type": "status", "status": 500 }),
        None,
    )
    .await;
    for _ in 0..3 {
        let status = client
            .get_password_expiration(expiration())
            .await
            .expect_err("Kiban fails");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_ne!(reason(&status), "CIRCUIT_OPEN");
    }
    assert_open(&app, &mut client, 3).await;

    // After the open period one probe goes through; it fails, so the circuit reopens.
    tokio::time::sleep(open_for).await;
    client
        .get_password_expiration(expiration())
        .await
        .expect_err("the probe fails");
    assert_open(&app, &mut client, 4).await;

    // Kiban recovers: the next probe succeeds and closes the circuit.
    app.clear_faults().await;
    tokio::time::sleep(open_for).await;
    for _ in 0..3 {
        client
            .get_password_expiration(expiration())
            .await
            .expect("closed again");
    }
    assert_eq!(app.route_calls(KIBAN_ROUTE.0, KIBAN_ROUTE.1).await, 7);
}

/// The circuit is open: the call fails fast with `RetryInfo`, and Kiban has still seen
/// only `seen` calls.
async fn assert_open(app: &TestApp, client: &mut Bureau, seen: u64) {
    let status = client
        .get_password_expiration(expiration())
        .await
        .expect_err("fails fast");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "CIRCUIT_OPEN");
    let retry = status.get_error_details().retry_info().cloned();
    let delay = retry.and_then(|info| info.retry_delay).expect("RetryInfo");
    assert!(delay > Duration::ZERO, "{delay:?}");
    assert_eq!(
        app.route_calls(KIBAN_ROUTE.0, KIBAN_ROUTE.1).await,
        seen,
        "no call reached Kiban"
    );
}

#[tokio::test]
async fn one_providers_outage_leaves_the_others_unhurt() {
    let app = app().await;
    subscribe(&app, 1_000_000).await;
    app.inject("kiban", None, json!({ "type": "hang" }), None)
        .await;
    let hanging: Vec<_> = (0..32)
        .map(|_| {
            let mut client = bureau(&app);
            tokio::spawn(async move {
                let mut call = tonic::Request::new(expiration());
                call.set_timeout(Duration::from_secs(20));
                client.get_password_expiration(call).await
            })
        })
        .collect();
    // Every Kiban call is stuck; the other providers' services answer meanwhile.
    for i in 0..5 {
        security(&app)
            .get_password_status(password_status())
            .await
            .expect("security answers");
        payments(&app)
            .charge_subscription(charge(&format!("unhurt-{i}"), 100))
            .await
            .expect("recurring payments answer");
    }
    assert!(
        hanging.iter().all(|call| !call.is_finished()),
        "the others answered while Kiban still hung"
    );
    for call in hanging {
        call.abort();
    }
}
