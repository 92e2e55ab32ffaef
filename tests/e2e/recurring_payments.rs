//! Recurring payments end to end: a tonic client -> pasarela -> mutual TLS -> the sandbox's
//! Daviplata. The subscription life cycle, OTP failures, maximum amounts, the token (expiry,
//! single flight), idempotent charges in one process and across two processes sharing a
//! real Redis, lost answers, and a missing client certificate.

use std::time::Duration;

use futures::future::join_all;
use pasarela::common::v1::DocumentType;
use pasarela::recurring_payments::v1::{
    ChargeSubscriptionRequest, ChargeSubscriptionResponse, RequestSubscriptionRequest,
};
use pasarela_recurring_payments::StoreKind;
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::support::recurring_payments::*;
use crate::support::tools;
use crate::support::{
    TestApp, TestPostgres, admin, body_of, cop, reason, sandbox_with, spawn_app_on, spawn_app_with,
};

#[tokio::test]
async fn a_subscription_lives_requested_activated_charged_cancelled() {
    let app = app().await;
    let mut client = client(&app);
    subscribe(&mut client, WALLET, 5_000_000).await;

    let first = client
        .charge_subscription(charge("charge-1", WALLET, 1_500_050))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .charge_subscription(charge("charge-2", WALLET, 100))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.approval_number.is_empty());
    assert_ne!(first.approval_number, second.approval_number);
    assert_eq!(first.result.unwrap().status, 0);

    client
        .cancel_subscription(cancellation("cancel-1", WALLET))
        .await
        .unwrap();
    let refused = client
        .charge_subscription(charge("charge-3", WALLET, 100))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "SUBSCRIPTION_INVALID");
    let again = client
        .cancel_subscription(cancellation("cancel-2", WALLET))
        .await
        .unwrap_err();
    assert_eq!(
        (again.code(), reason(&again).as_str()),
        (Code::NotFound, "SUBSCRIPTION_NOT_FOUND")
    );
    assert_eq!(app.daviplata_counter("payments_made").await, 2);

    let logs = app.logs();
    assert!(
        !logs.contains(&app.sandbox.credentials.daviplata_client_secret),
        "client secret logged"
    );
}

#[tokio::test]
async fn wrong_expired_and_reused_otps_are_refused() {
    let app = app().await;
    let mut client = client(&app);
    let (session, otp) = request_otp(&mut client, WALLET).await;
    let wrong = if otp == "000000" { "111111" } else { "000000" };

    let refused = client
        .activate_subscription(activation("a-1", WALLET, &session, wrong, 100_000))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "OTP_INVALID")
    );
    assert!(
        !refused.message().contains(wrong) && !format!("{:?}", refused.details()).contains(wrong)
    );

    admin(
        &app.sandbox,
        reqwest::Method::POST,
        &format!("/daviplata/otp-sessions/{session}/expire"),
        None,
    )
    .await;
    let expired = client
        .activate_subscription(activation("a-2", WALLET, &session, &otp, 100_000))
        .await
        .unwrap_err();
    assert_eq!(
        (expired.code(), reason(&expired).as_str()),
        (Code::FailedPrecondition, "OTP_EXPIRED")
    );

    let (session, otp) = request_otp(&mut client, WALLET).await;
    client
        .activate_subscription(activation("a-3", WALLET, &session, &otp, 100_000))
        .await
        .unwrap();
    let reused = client
        .activate_subscription(activation("a-4", WALLET, &session, &otp, 100_000))
        .await
        .unwrap_err();
    assert_eq!(reason(&reused), "OTP_EXPIRED");

    let (session, otp) = request_otp(&mut client, WALLET).await;
    let twice = client
        .activate_subscription(activation("a-5", WALLET, &session, &otp, 100_000))
        .await
        .unwrap_err();
    assert_eq!(
        (twice.code(), reason(&twice).as_str()),
        (Code::AlreadyExists, "SUBSCRIPTION_ALREADY_EXISTS")
    );

    app.assert_not_logged(&[&otp]);
}

#[tokio::test]
async fn bad_requests_list_every_violation_and_reach_nobody() {
    let app = app().await;
    let mut client = client(&app);
    let mut bad = charge("", OTHER_WALLET, -5);
    bad.wallet
        .as_mut()
        .unwrap()
        .holder
        .as_mut()
        .unwrap()
        .set_type(DocumentType::Pa);
    bad.amount.as_mut().unwrap().currency_code = "USD".into();
    let status = client.charge_subscription(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "idempotency_key",
            "wallet.holder.type",
            "amount.currency_code",
            "amount.minor_units"
        ]
    );
    assert_eq!(
        app.daviplata_counter("tokens_issued").await,
        0,
        "nothing was sent"
    );
}

/// Daviplata holds each subscription's maximum, and every replica asks it: a charge above
/// it is refused alike wherever it lands, and one within a maximum raised through another
/// replica (cancelled, then activated again) is charged (a maximum one replica remembered
/// would refuse it there).
#[tokio::test]
async fn charges_are_held_to_the_maximum_daviplata_has_on_every_replica() {
    let app = app().await;
    let mut client = client(&app);
    subscribe(&mut client, WALLET, 100_000).await;
    let (other, _guard) = second_replica(&app, memory_store()).await;
    let mut other = client_on(&app, other);
    for (replica, key) in [(&mut client, "over-1"), (&mut other, "over-2")] {
        let refused = replica
            .charge_subscription(charge(key, WALLET, 100_001))
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::FailedPrecondition, "AMOUNT_OVER_MAXIMUM")
        );
    }
    client
        .charge_subscription(charge("at-max", WALLET, 100_000))
        .await
        .unwrap();

    other
        .cancel_subscription(cancellation("cancel-for-more", WALLET))
        .await
        .expect("cancelled through the other replica");
    subscribe(&mut other, WALLET, 500_000).await;
    client
        .charge_subscription(charge("within-the-new-max", WALLET, 300_000))
        .await
        .expect("the new maximum holds on this replica too");
    assert_eq!(app.daviplata_counter("payments_made").await, 2);
}

#[tokio::test]
async fn an_expired_token_is_renewed_mid_run() {
    let (sandbox, pki) = sandbox_with(|options| {
        options.daviplata_token_ttl = Duration::from_secs(2);
    })
    .await;
    let app = spawn_app_on(sandbox, lab_setup).await.keeping(pki);
    let mut client = client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;

    // The token's lifetime passes: pasarela renews it before using it again.
    let issued = app.daviplata_counter("tokens_issued").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    client
        .charge_subscription(charge("after-expiry", WALLET, 100))
        .await
        .unwrap();
    assert_eq!(app.daviplata_counter("tokens_issued").await, issued + 1);

    // Daviplata drops every token early: a charge refused for its token is not sent again
    // (Daviplata may have acted before refusing it), it is held; the next call renews.
    admin(
        &app.sandbox,
        reqwest::Method::POST,
        "/daviplata/tokens/expire",
        None,
    )
    .await;
    let refused = client
        .charge_subscription(charge("after-revocation", WALLET, 100))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(app.daviplata_counter("payments_made").await, 1);
    client
        .charge_subscription(charge("after-renewal", WALLET, 100))
        .await
        .unwrap();
    assert_eq!(app.daviplata_counter("tokens_issued").await, issued + 2);
    assert_eq!(app.daviplata_counter("payments_made").await, 2);
    assert_eq!(
        app.route_calls("daviplata", "POST /v1/payments/subscriptions/payment")
            .await,
        3,
        "the refused charge was sent once, never again"
    );
}

#[tokio::test]
async fn two_hundred_calls_from_a_cold_start_fetch_one_token() {
    let app = app().await;
    let calls = (0..200).map(|_| {
        let mut client = client(&app);
        async move { request_otp(&mut client, WALLET).await }
    });
    let sessions = join_all(calls).await;
    assert_eq!(sessions.len(), 200);
    assert_eq!(app.daviplata_counter("tokens_issued").await, 1);
    assert_eq!(app.daviplata_counter("otps_sent").await, 200);
}

/// Sends `charge` 20 times at once, then 20 times one after another, through `clients`
/// in turn; every answer must be the same approval.
async fn charge_forty_times(
    clients: &[Client],
    request: &ChargeSubscriptionRequest,
) -> Vec<ChargeSubscriptionResponse> {
    let concurrent = (0..20).map(|i| {
        let mut client = clients[i % clients.len()].clone();
        let request = request.clone();
        async move { client.charge_subscription(request).await }
    });
    let mut answers: Vec<_> = join_all(concurrent)
        .await
        .into_iter()
        .map(|answer| answer.expect("every duplicate is answered").into_inner())
        .collect();
    for i in 0..20 {
        let mut client = clients[i % clients.len()].clone();
        answers.push(
            client
                .charge_subscription(request.clone())
                .await
                .unwrap()
                .into_inner(),
        );
    }
    answers
}

fn one_approval(answers: &[ChargeSubscriptionResponse]) {
    let first = &answers[0].approval_number;
    assert!(!first.is_empty());
    assert!(
        answers.iter().all(|a| &a.approval_number == first),
        "different approvals under one key"
    );
}

#[tokio::test]
async fn one_key_charges_once_however_often_it_is_sent() {
    let app = app().await;
    let mut client = client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    let answers = charge_forty_times(&[client.clone()], &charge("order-42", WALLET, 25_000)).await;
    one_approval(&answers);
    assert_eq!(app.daviplata_counter("payments_made").await, 1);

    let mut changed = charge("order-42", WALLET, 26_000);
    changed.invoice_id = "AB99".into();
    let refused = client.charge_subscription(changed).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")
    );
}

/// A charge whose answer `fault_kind` loses after Daviplata charged: `judge` checks the
/// failure, then the same charge again, re-sent to a Daviplata that deduplicates, learns
/// the one payment instead of making another.
async fn lost_charge_is_retried_once(
    app: &TestApp,
    order: &str,
    amount: i64,
    fault_kind: &str,
    judge: impl FnOnce(&Status),
) {
    let mut client = client(app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/payment",
        json!({ "type": fault_kind, "after_handler": true }),
    )
    .await;

    let lost = client
        .charge_subscription(charge(order, WALLET, amount))
        .await
        .unwrap_err();
    judge(&lost);
    assert_eq!(reason(&lost), "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        1,
        "Daviplata did charge"
    );

    let retried = client
        .charge_subscription(charge(order, WALLET, amount))
        .await
        .expect("the retry learns the outcome")
        .into_inner();
    assert!(!retried.approval_number.is_empty());
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        1,
        "the retry was deduplicated"
    );
    assert_eq!(app.daviplata_counter("payments_replayed").await, 1);
}

#[tokio::test]
async fn a_lost_answer_is_resent_with_the_same_transaction_id_when_configured() {
    let app = spawn_app_with(resending).await;
    lost_charge_is_retried_once(&app, "order-9", 7_000, "drop", |lost| {
        assert!(matches!(
            lost.code(),
            Code::Unavailable | Code::DeadlineExceeded
        ));
    })
    .await;
}

#[tokio::test]
async fn lost_activation_and_cancellation_answers_are_recovered_when_resending() {
    let app = spawn_app_with(resending).await;
    let mut client = client(&app);
    let activate = lost_activation(&app, &mut client, "act-lost").await;
    let recovered = client.activate_subscription(activate).await.unwrap();
    let subscription = recovered.into_inner().subscription.unwrap();
    assert_eq!(subscription.maximum_amount, cop(200_000));
    assert_eq!(app.daviplata_counter("subscriptions_activated").await, 1);

    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/cancel",
        json!({ "type": "drop", "after_handler": true }),
    )
    .await;
    let lost = client
        .cancel_subscription(cancellation("cancel-lost", WALLET))
        .await
        .unwrap_err();
    assert_eq!(reason(&lost), "PROVIDER_OUTCOME_UNKNOWN");
    client
        .cancel_subscription(cancellation("cancel-lost", WALLET))
        .await
        .expect("the cancellation's answer is recovered, not refused as already done");
    assert_eq!(app.daviplata_counter("subscriptions_cancelled").await, 1);
}

/// What the runbook tells an operator to hand Daviplata's support: a failed call's log line
/// names the operation and the very `transactionId` Daviplata received.
#[tokio::test]
async fn a_failed_call_is_logged_with_the_transaction_id_daviplata_received() {
    let app = app().await;
    let mut client = client(&app);
    lost_activation(&app, &mut client, "act-logged").await;
    let activation = app
        .last_call("daviplata", "POST", "/v1/payments/subscriptions/activate")
        .await;
    let sent = body_of(&activation)["TransactionHeader"]["transactionId"]
        .as_str()
        .expect("a transactionId")
        .to_owned();

    let failed: Vec<Value> = app
        .logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "daviplata call failed")
        .filter(|line| line["span"]["transaction_id"] == sent.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "one failure line names {sent}: {failed:?}");
    assert_eq!(failed[0]["span"]["name"], "daviplata");
    assert_eq!(failed[0]["span"]["operation"], "activate");
    assert_eq!(failed[0]["fields"]["reason"], "PROVIDER_BAD_RESPONSE");
    assert_eq!(
        failed[0]["fields"]["delivery"], "unknown",
        "the line says Daviplata may have acted"
    );
}

#[tokio::test]
async fn a_hung_charge_times_out_and_its_retry_charges_once() {
    let app = spawn_app_with(|config| {
        resending(config);
        let http = &mut config.recurring_payments.as_mut().unwrap().outbound.http;
        http.timeout = Duration::from_millis(500);
    })
    .await;
    lost_charge_is_retried_once(&app, "order-10", 9_900, "hang", |lost| {
        assert_eq!(lost.code(), Code::DeadlineExceeded);
    })
    .await;
}

#[tokio::test]
async fn a_missing_client_certificate_is_refused_and_mapped() {
    let app = spawn_app_with(|config| {
        lab_setup(config);
        let http = &mut config.recurring_payments.as_mut().unwrap().outbound.http;
        http.cert_file = None;
        http.key_file = None;
    })
    .await;
    let mut client = client(&app);
    let status = client
        .request_subscription(RequestSubscriptionRequest {
            commerce: commerce(),
            wallet: wallet(WALLET),
            transaction: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Internal),
        "{status:?}"
    );
    assert_eq!(reason(&status), "PROVIDER_AUTH_FAILED");
    assert_eq!(app.daviplata_counter("tokens_issued").await, 0);
}

/// A change to the recurring-payments section that breaks pasarela's own credentials.
type Spoil = fn(&mut pasarela_recurring_payments::Config);

#[tokio::test]
async fn refused_provider_credentials_are_never_the_callers_fault() {
    let cases: [(Spoil, &str); 2] = [
        (
            |section| {
                section.client_secret = serde_json::from_value(json!("not-the-secret")).unwrap()
            },
            "invalid_client",
        ),
        (|section| section.scope = "pg_otro".into(), "invalid_scope"),
    ];
    for (spoil, oauth_error) in cases {
        let app = spawn_app_with(|config| {
            lab_setup(config);
            spoil(config.recurring_payments.as_mut().unwrap());
        })
        .await;
        let status = client(&app)
            .request_subscription(RequestSubscriptionRequest {
                commerce: commerce(),
                wallet: wallet(WALLET),
                transaction: None,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{oauth_error}");
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "PROVIDER_AUTH_FAILED");
        assert_eq!(info.metadata["oauth_error"], oauth_error);
        assert!(
            !app.logs().contains("not-the-secret"),
            "a client secret was logged"
        );
    }
}

/// A second pasarela replica of the recurring-payments service, against `app`'s sandbox,
/// behind the dev auth layer (idempotency keys are per caller), on loopback. The guard
/// stops it.
async fn second_replica(
    app: &TestApp,
    idempotency: Value,
) -> (Channel, tokio::task::JoinHandle<()>) {
    let mut config = pasarela_server::dev::config_for(&app.sandbox, None)
        .expect("dev config")
        .recurring_payments
        .expect("recurring payments section");
    config.idempotency = serde_json::from_value(idempotency).expect("idempotency section");
    let (service, _ledger) = pasarela_recurring_payments::service(config, Default::default())
        .await
        .expect("service starts");
    let auth = pasarela_auth::AuthLayer::new(&pasarela_auth::Config::dev())
        .await
        .expect("auth layer");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(auth)
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .expect("second replica serves");
    });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    (channel, server)
}

#[tokio::test]
async fn two_replicas_sharing_a_ledger_charge_once_per_key() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let db = TestPostgres::start().await;
    let store = ledger_store(&db);
    let app = spawn_app_with(move |config| {
        lab_setup(config);
        let section = config.recurring_payments.as_mut().unwrap();
        section.idempotency = serde_json::from_value(store).unwrap();
        assert_eq!(section.idempotency.store, StoreKind::Postgres);
    })
    .await;
    let mut first = client(&app);
    subscribe(&mut first, WALLET, 1_000_000).await;
    let (second, _guard) = second_replica(&app, ledger_store(&db)).await;
    let second = client_on(&app, second);

    let answers =
        charge_forty_times(&[first, second], &charge("shared-order-1", WALLET, 33_300)).await;
    one_approval(&answers);
    assert_eq!(app.daviplata_counter("payments_made").await, 1);
}
