//! The service against a minimal Daviplata double over real HTTP on loopback, for what the
//! sandbox cannot stage precisely: a token revoked between calls, and a payment whose
//! answer is lost after Daviplata executed it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pasarela::common::v1::{DocumentType, Identification, Money};
use pasarela::recurring_payments::v1::recurring_payments_service_server::RecurringPaymentsService;
use pasarela::recurring_payments::v1::{ChargeSubscriptionRequest, Commerce, Wallet};
use pasarela_recurring_payments::{Config, RecurringPayments};
use serde_json::{Value, json};
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

/// What the double has seen and how it misbehaves.
#[derive(Default)]
struct Double {
    tokens_issued: AtomicUsize,
    /// The only token accepted; the double "revokes" by changing it.
    valid_token: Mutex<String>,
    /// Approval number per `transactionId`: Daviplata deduplicates payments by it.
    payments: Mutex<HashMap<String, String>>,
    payment_calls: AtomicUsize,
    /// Execute the next payment, then answer too late.
    lose_next_answer: AtomicBool,
    /// The `expires_in` of the tokens issued, when not the documented 900.
    expires_in: Mutex<Option<Value>>,
}

async fn token(State(double): State<Arc<Double>>) -> Json<Value> {
    let n = double.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let token = format!("token-{n}");
    *double.valid_token.lock().unwrap() = token.clone();
    let expires_in = double
        .expires_in
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(json!(900));
    Json(
        json!({"token_type": "Bearer", "access_token": token, "expires_in": expires_in, "scope": "pg_recurrente"}),
    )
}

async fn payment(
    State(double): State<Arc<Double>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    double.payment_calls.fetch_add(1, Ordering::SeqCst);
    let bearer = format!("Bearer {}", double.valid_token.lock().unwrap());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str())
        || headers.get("client_id").and_then(|v| v.to_str().ok()) != Some("the-client")
    {
        let refusal = json!({"codigoError": "401", "mensajeError": "No cuenta con autorización para realizar la transacción"});
        return (StatusCode::UNAUTHORIZED, Json(refusal)).into_response();
    }
    let id = body["TransactionHeader"]["transactionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let approval = {
        let mut payments = double.payments.lock().unwrap();
        let next = format!("{:016}", payments.len() + 1);
        payments.entry(id.clone()).or_insert(next).clone()
    };
    if double.lose_next_answer.swap(false, Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let answer = json!({"resultStatus": {"status": 0, "message": "Transacción aprobada",
        "transactionId": id, "transactionDate": "2023-08-02T20:25:45.040-05:00",
        "approvalNumber": approval}});
    Json(answer).into_response()
}

async fn start_double() -> (Arc<Double>, String) {
    let double = Arc::new(Double::default());
    let app = Router::new()
        .route("/oauth2Provider/type1/v1/token", post(token))
        .route("/v1/payments/subscriptions/payment", post(payment))
        .with_state(Arc::clone(&double));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (double, url)
}

/// The same double behind two hosts, as the spec prints Daviplata: the token on one, the
/// business calls on the other. Answers (business URL, token URL).
async fn start_split_double() -> (Arc<Double>, String, String) {
    let double = Arc::new(Double::default());
    let tokens = Router::new()
        .route("/oauth2Provider/type1/v1/token", post(token))
        .with_state(Arc::clone(&double));
    let business = Router::new()
        .route("/v1/payments/subscriptions/payment", post(payment))
        .with_state(Arc::clone(&double));
    let mut urls = Vec::new();
    for app in [business, tokens] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }
    let token_url = urls.pop().unwrap();
    (double, urls.pop().unwrap(), token_url)
}

async fn service(base_url: String) -> RecurringPayments {
    service_with(base_url, json!({})).await
}

/// The service with `extra` keys laid over the test configuration.
async fn service_with(base_url: String, extra: serde_json::Value) -> RecurringPayments {
    let mut config = json!({
        "base_url": base_url,
        "client_id": "the-client",
        "client_secret": "the-secret",
        "payment_provider_id": "00000001",
        "outbound": {"http": {"timeout": "500ms"}},
    });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    let config: Config = serde_json::from_value(config).unwrap();
    RecurringPayments::new(config, Default::default())
        .await
        .unwrap()
}

fn charge(key: &str) -> Request<ChargeSubscriptionRequest> {
    let mut holder = Identification {
        number: "1027868487".into(),
        ..Default::default()
    };
    holder.set_type(DocumentType::Cc);
    Request::new(ChargeSubscriptionRequest {
        idempotency_key: key.into(),
        commerce: Some(Commerce {
            commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
            ..Default::default()
        }),
        wallet: Some(Wallet {
            holder: Some(holder),
            product_code: String::new(),
            product_number: "3158765639".into(),
        }),
        amount: Some(Money {
            currency_code: "COP".into(),
            minor_units: 150_000,
        }),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_charge_refused_for_its_token_is_held_and_the_token_renewed() {
    let (double, url) = start_double().await;
    let service = service(url).await;
    service.charge_subscription(charge("first")).await.unwrap();
    *double.valid_token.lock().unwrap() = "revoked".into();
    let refused = service
        .charge_subscription(charge("second"))
        .await
        .expect_err("a 401 on a charge is not re-sent");
    let info = refused.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(info.metadata["provider_reason"], "PROVIDER_AUTH_FAILED");
    assert_eq!(
        double.tokens_issued.load(Ordering::SeqCst),
        2,
        "a fresh token is fetched at once"
    );
    let third = service.charge_subscription(charge("third")).await.unwrap();
    assert_eq!(third.get_ref().approval_number, "0000000000000002");
    assert_eq!(double.tokens_issued.load(Ordering::SeqCst), 2);
    assert_eq!(
        double.payment_calls.load(Ordering::SeqCst),
        3,
        "the refused charge was sent once"
    );
    let held = service
        .charge_subscription(charge("second"))
        .await
        .unwrap_err();
    let info = held.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata["state"], "awaiting_reconciliation");
    assert_eq!(double.payment_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_token_lifetime_past_any_clock_neither_panics_nor_wedges_the_client() {
    let (double, url) = start_double().await;
    *double.expires_in.lock().unwrap() = Some(json!(u64::MAX));
    let service = service(url).await;
    for key in ["huge-1", "huge-2", "huge-3"] {
        service
            .charge_subscription(charge(key))
            .await
            .expect("charged with the token, its lifetime cut to a day");
    }
    assert_eq!(
        double.tokens_issued.load(Ordering::SeqCst),
        1,
        "the token is kept, not fetched again"
    );
}

#[tokio::test]
async fn a_lost_charge_is_held_and_never_resent_by_default() {
    let (double, url) = start_double().await;
    let service = service(url).await;
    double.lose_next_answer.store(true, Ordering::SeqCst);

    let lost = service
        .charge_subscription(charge("order-8"))
        .await
        .unwrap_err();
    assert_eq!(
        lost.get_error_details().error_info().unwrap().reason,
        "PROVIDER_OUTCOME_UNKNOWN"
    );
    for _ in 0..3 {
        let held = service
            .charge_subscription(charge("order-8"))
            .await
            .unwrap_err();
        let info = held.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "PROVIDER_OUTCOME_UNKNOWN");
        assert_eq!(info.metadata["state"], "awaiting_reconciliation");
    }
    assert_eq!(
        double.payment_calls.load(Ordering::SeqCst),
        1,
        "nothing is re-sent"
    );
}

#[tokio::test]
async fn a_lost_charge_is_resent_with_the_same_transaction_id_when_configured() {
    let (double, url) = start_double().await;
    let service = service_with(url, json!({ "resend_unknown_outcomes": true })).await;
    double.lose_next_answer.store(true, Ordering::SeqCst);

    let lost = service
        .charge_subscription(charge("order-7"))
        .await
        .unwrap_err();
    assert_eq!(lost.code(), Code::DeadlineExceeded);
    let info = lost.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "PROVIDER_OUTCOME_UNKNOWN");

    let retried = service
        .charge_subscription(charge("order-7"))
        .await
        .unwrap();
    assert_eq!(retried.get_ref().approval_number, "0000000000000001");
    assert_eq!(
        double.payments.lock().unwrap().len(),
        1,
        "Daviplata saw one transaction id"
    );
    assert_eq!(double.payment_calls.load(Ordering::SeqCst), 2);

    let replayed = service
        .charge_subscription(charge("order-7"))
        .await
        .unwrap();
    assert_eq!(replayed.get_ref(), retried.get_ref());
    assert_eq!(
        double.payment_calls.load(Ordering::SeqCst),
        2,
        "a replay calls nobody"
    );
}

#[tokio::test]
async fn the_token_is_asked_of_its_own_host_when_one_is_configured() {
    let (double, business, tokens) = start_split_double().await;
    let service = service_with(business.clone(), json!({ "token_base_url": tokens })).await;
    service
        .charge_subscription(charge("split-hosts-1"))
        .await
        .expect("charged with a token from the token host");
    assert_eq!(double.tokens_issued.load(Ordering::SeqCst), 1);
    let alone = service_with(business, json!({})).await;
    let status = alone
        .charge_subscription(charge("split-hosts-2"))
        .await
        .expect_err("the business host has no token endpoint");
    assert_ne!(status.code(), Code::Ok);
}
