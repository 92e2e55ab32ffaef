//! An answer without a success status is never a success.

use super::*;

// ---- No success without a success status ----------------------------------------------------

#[tokio::test]
async fn daviplata_answers_without_a_success_status_are_never_ok() {
    let app = rp::app().await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    let statuses = [
        json!({ "resultStatus": { "status": "ER" } }),
        json!({ "resultStatus": {} }),
        json!({ "resultStatus": { "status": "ER", "approvalNumber": "0000000000009999" } }),
        json!({ "otherObject": { "status": 0 } }),
    ];
    for (i, body) in statuses.into_iter().enumerate() {
        for path in [PAYMENT_PATH, "/v1/payments/subscriptions/cancel"] {
            app.inject_once(
                "daviplata",
                path,
                json!({ "type": "status", "status": 200, "body": body }),
            )
            .await;
        }
        let charged = client
            .charge_subscription(charge(&format!("no-status-{i}"), WALLET, 1_000))
            .await
            .unwrap_err();
        assert_eq!(reason(&charged), "PROVIDER_OUTCOME_UNKNOWN", "{body}");
        let cancelled = client
            .cancel_subscription(cancellation(&format!("no-status-{i}"), WALLET))
            .await
            .unwrap_err();
        assert_eq!(reason(&cancelled), "PROVIDER_OUTCOME_UNKNOWN", "{body}");
    }
    let (session, otp) = request_otp(&mut client, rp::OTHER_WALLET).await;
    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/activate",
        json!({ "type": "status", "status": 200, "body": { "ResultStatus": { "status": 0 } } }),
    )
    .await;
    let activated = client
        .activate_subscription(activation(
            "no-subscription",
            rp::OTHER_WALLET,
            &session,
            &otp,
            5,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&activated),
        "PROVIDER_OUTCOME_UNKNOWN",
        "an activation without its Subscription is not OK"
    );
}

#[tokio::test]
async fn a_caller_cannot_choose_the_transaction_id_of_an_idempotent_call() {
    let app = rp::app().await;
    let mut request = charge("chosen-id", WALLET, 1_000);
    request.transaction = Some(pasarela::recurring_payments::v1::ProviderTransaction {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        transaction_time: None,
    });
    let refused = rp::client(&app)
        .charge_subscription(request)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&refused), ["transaction.transaction_id"]);
}
