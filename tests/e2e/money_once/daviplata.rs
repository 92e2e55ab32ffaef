//! A lost Daviplata call is held until an operator settles it, or re-sent under its own
//! transaction id when configured, to a Daviplata that deduplicates.

use super::*;

// ---- Daviplata: a lost call is held, or re-sent when configured ------------------------------

/// Sets whether the Daviplata emulator deduplicates by `transactionId`.
async fn daviplata_dedups(app: &TestApp, dedup: bool) {
    let readings = json!({ "dedup_transaction_ids": dedup });
    crate::support::admin(
        &app.sandbox,
        reqwest::Method::PUT,
        "/daviplata/readings",
        Some(readings),
    )
    .await;
}

#[tokio::test]
async fn a_lost_charge_is_held_until_an_operator_settles_it_whatever_daviplata_does() {
    for dedup in [true, false] {
        let app = rp::app().await;
        daviplata_dedups(&app, dedup).await;
        lost_charge(&app, "held-order").await;
        let mut client = rp::client(&app);
        for _ in 0..3 {
            let held = client
                .charge_subscription(charge("held-order", WALLET, 25_000))
                .await
                .unwrap_err();
            assert_held(&held);
        }
        assert_eq!(app.daviplata_counter("payments_made").await, 1);
        let calls = app.admin_get("/calls").await;
        assert_eq!(
            calls["daviplata"][format!("POST {PAYMENT_PATH}")],
            1,
            "nothing re-sent (dedup {dedup})"
        );

        let listed = unknown(&app, "pasarela.recurring_payments.v1").await;
        assert_eq!(listed.len(), 1);
        let entry = &listed[0];
        assert_eq!(entry.operation, "charge");
        assert!(uuid::Uuid::try_parse(&entry.provider_transaction_id).is_ok());
        assert!(entry.unknown_since.is_some());
        settle(&app, entry, succeeded("0000000000000001", ""))
            .await
            .expect("settled");
        let replayed = client
            .charge_subscription(charge("held-order", WALLET, 25_000))
            .await
            .expect("the settlement is replayed")
            .into_inner();
        assert_eq!(replayed.approval_number, "0000000000000001");
        assert_eq!(
            replayed.result.unwrap().transaction_id,
            entry.provider_transaction_id
        );
        assert_eq!(app.daviplata_counter("payments_made").await, 1);
    }
}

#[tokio::test]
async fn resending_unknown_outcomes_is_safe_only_where_daviplata_deduplicates() {
    for (dedup, payments) in [(true, 1), (false, 2)] {
        let app = spawn_app_with(rp::resending).await;
        daviplata_dedups(&app, dedup).await;
        lost_charge(&app, "resent-order").await;
        rp::client(&app)
            .charge_subscription(charge("resent-order", WALLET, 25_000))
            .await
            .expect("re-sent");
        assert_eq!(
            app.daviplata_counter("payments_made").await,
            payments,
            "dedup {dedup}: why resend_unknown_outcomes is off by default"
        );
    }
}

#[tokio::test]
async fn held_activations_and_cancellations_are_settled_with_what_they_need() {
    let app = rp::app().await;
    let mut client = rp::client(&app);
    let activate = rp::lost_activation(&app, &mut client, "held-activation").await;
    assert_held(
        &client
            .activate_subscription(activate.clone())
            .await
            .unwrap_err(),
    );

    let entry = unknown(&app, "pasarela.recurring_payments.v1")
        .await
        .remove(0);
    assert_eq!(entry.operation, "activate");
    let refused = settle(&app, &entry, succeeded("123", ""))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&refused), ["succeeded.subscription_id"]);
    settle(&app, &entry, succeeded("", "sub-1"))
        .await
        .expect("settled");
    let settled = client.activate_subscription(activate).await.unwrap();
    let subscription = settled.into_inner().subscription.expect("a subscription");
    assert_eq!(subscription.subscription_id, "sub-1");

    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/cancel",
        json!({ "type": "drop", "after_handler": true }),
    )
    .await;
    let cancel = cancellation("held-cancel", WALLET);
    client
        .cancel_subscription(cancel.clone())
        .await
        .unwrap_err();
    let entry = unknown(&app, "").await.remove(0);
    assert_eq!(entry.operation, "cancel");
    settle(&app, &entry, succeeded("", ""))
        .await
        .expect("a cancellation needs no approval");
    let cancelled = client.cancel_subscription(cancel).await.unwrap();
    assert_eq!(cancelled.into_inner().result.unwrap().status, 0);
    assert_eq!(app.daviplata_counter("subscriptions_cancelled").await, 1);
}
