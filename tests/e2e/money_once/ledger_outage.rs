//! Shared state: a ledger outage holds money calls, never sends them unrecorded.

use super::*;

// ---- Shared state: a ledger outage --------------------------------------------------------

/// Recurring payments with `idempotency` as its idempotency section (a 3 s call ceiling),
/// one wallet subscribed.
async fn subscribed_app(idempotency: Value) -> (TestApp, rp::Client) {
    let app = spawn_app_with(move |config| {
        rp::lab_setup(config);
        let section = config
            .recurring_payments
            .as_mut()
            .expect("recurring payments");
        section.idempotency = serde_json::from_value(idempotency).expect("idempotency section");
        section.outbound.http.timeout = Duration::from_secs(3);
    })
    .await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    (app, client)
}

#[tokio::test]
async fn money_moving_calls_fail_closed_while_the_ledger_is_down_and_recover() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let mut db = TestPostgres::start().await;
    let (app, mut client) = subscribed_app(rp::ledger_store(&db)).await;
    db.kill();
    let refused = client
        .charge_subscription(charge("outage-order", WALLET, 5_000))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(reason(&refused), "IDEMPOTENCY_STORE_UNAVAILABLE");
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        0,
        "nothing sent"
    );
    let (session, otp) = request_otp(&mut client, rp::OTHER_WALLET).await;
    assert!(
        !session.is_empty() && !otp.is_empty(),
        "the rest still answers"
    );

    db.resume().await;
    let mut charged = None;
    for _ in 0..50 {
        match client
            .charge_subscription(charge("outage-order", WALLET, 5_000))
            .await
        {
            Ok(answer) => {
                charged = Some(answer.into_inner());
                break;
            }
            Err(status) => {
                assert_eq!(reason(&status), "IDEMPOTENCY_STORE_UNAVAILABLE");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(charged.is_some(), "charges resume once the ledger is back");
    assert_eq!(app.daviplata_counter("payments_made").await, 1);
}

#[tokio::test]
async fn a_claim_survives_the_sigkill_of_the_ledger_mid_call_and_is_held() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let mut db = TestPostgres::start().await;
    let mut idempotency = rp::ledger_store(&db);
    idempotency["lease"] = json!("4s");
    let (app, mut client) = subscribed_app(idempotency).await;
    app.inject_once(
        "daviplata",
        PAYMENT_PATH,
        json!({ "type": "latency", "ms": 1_500 }),
    )
    .await;
    let mut in_flight = client.clone();
    let call = tokio::spawn(async move {
        in_flight
            .charge_subscription(charge("restart-order", WALLET, 5_000))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.kill();
    let first = call.await.expect("the call ends");
    assert!(first.is_ok(), "Daviplata answered: {first:?}");
    assert_eq!(app.daviplata_counter("payments_made").await, 1);

    db.resume().await;
    tokio::time::sleep(Duration::from_millis(3_700)).await;
    let mut retried = None;
    for _ in 0..50 {
        let status = client
            .charge_subscription(charge("restart-order", WALLET, 5_000))
            .await
            .unwrap_err();
        if reason(&status) != "IDEMPOTENCY_STORE_UNAVAILABLE" {
            retried = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retried = retried.expect("the ledger came back");
    assert_held(&retried);
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        1,
        "the claim kept across the restart stopped a second charge"
    );
}
