//! Only safe operations are retried, within a budget.

use super::*;

// ---- 2. retries ----------------------------------------------------------------------------

pub(super) fn unavailable() -> Value {
    json!({ "type": "status", "status": 503 })
}

#[tokio::test]
async fn reads_are_retried_through_one_503() {
    let app = app().await;
    app.inject("kiban", None, unavailable(), Some(1)).await;
    bureau(&app)
        .get_password_expiration(expiration())
        .await
        .expect("the retry succeeds");
    assert_eq!(app.route_calls(KIBAN_ROUTE.0, KIBAN_ROUTE.1).await, 2);

    app.inject("bcs", Some(path_of(STATUS_ROUTE)), unavailable(), Some(1))
        .await;
    security(&app)
        .get_password_status(password_status())
        .await
        .expect("the retry succeeds");
    assert_eq!(app.route_calls(STATUS_ROUTE.0, STATUS_ROUTE.1).await, 2);

    app.inject(
        "daviplata",
        Some(path_of(TOKEN_ROUTE)),
        unavailable(),
        Some(1),
    )
    .await;
    payments(&app)
        .request_subscription(subscription_request())
        .await
        .expect("the token request is retried");
    assert_eq!(app.route_calls(TOKEN_ROUTE.0, TOKEN_ROUTE.1).await, 2);
    assert_eq!(app.daviplata_counter("tokens_issued").await, 1);
}

#[tokio::test]
async fn writes_are_attempted_exactly_once_under_a_503() {
    let app = app().await;
    subscribe(&app, 1_000_000).await;
    app.inject(
        "daviplata",
        Some(path_of(PAYMENT_ROUTE)),
        unavailable(),
        Some(1),
    )
    .await;
    let status = payments(&app)
        .charge_subscription(charge("once-1", 5_000))
        .await
        .expect_err("the 503 is the answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        app.route_calls(PAYMENT_ROUTE.0, PAYMENT_ROUTE.1).await,
        1,
        "a charge is never retried"
    );
    assert_eq!(app.daviplata_counter("payments_made").await, 0);

    app.inject("bcs", Some(path_of(OTC_ROUTE)), unavailable(), Some(1))
        .await;
    let status = security(&app)
        .generate_otc(generate_otc())
        .await
        .expect_err("the 503 is the answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        app.route_calls(OTC_ROUTE.0, OTC_ROUTE.1).await,
        1,
        "an OTP generation is never retried"
    );

    // S10 reads, but checks a card's PIN or CVV: a repeat could count as a second wrong
    // attempt at the bank, and lock the card.
    app.inject(
        "bcs",
        Some(path_of(CARD_CHECK_ROUTE)),
        unavailable(),
        Some(1),
    )
    .await;
    let status = security(&app)
        .validate_enrollment_card(pasarela::security::v1::ValidateEnrollmentCardRequest {
            customer: crate::support::cc("51901591"),
            card_type: pasarela::security::v1::CardType::Debit.into(),
            card_secret: "4321".into(),
            card_last_digits: "159101".into(),
            ..Default::default()
        })
        .await
        .expect_err("the 503 is the answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        app.route_calls(CARD_CHECK_ROUTE.0, CARD_CHECK_ROUTE.1)
            .await,
        1,
        "a card secret check is never retried"
    );
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    let app = spawn_app_with(|config| {
        roomy(config);
        // The breaker would stop the calls first; this test is about the retry budget.
        let outbound = &mut config.bureau.as_mut().expect("bureau").outbound;
        outbound.breaker.failure_threshold = 1_000;
    })
    .await;
    app.inject("kiban", None, unavailable(), None).await;
    let attempts = 10;
    for _ in 0..attempts {
        let status = bureau(&app)
            .get_password_expiration(expiration())
            .await
            .expect_err("Kiban is down");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    let sent = app.route_calls(KIBAN_ROUTE.0, KIBAN_ROUTE.1).await;
    assert!(sent > attempts, "some calls were retried: {sent}");
    assert!(
        sent < attempts * 2,
        "the budget stopped retrying a provider that keeps failing: {sent} calls for {attempts}"
    );
}
