//! The recurring-payments verbs of the end-to-end suite: an app whose callers hold the
//! example merchant's subscriptions, its client, and the requests of a subscription's life
//! (OTP, activation, charge, cancellation) every theme builds on.

use pasarela::common::v1::{DocumentType, Identification};
use pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient;
use pasarela::recurring_payments::v1::*;
use serde_json::{Value, json};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{Bearer, TestApp, TestPostgres, cop, ledger, reason, spawn_app_with};

pub(crate) type Client = RecurringPaymentsServiceClient<InterceptedService<Channel, Bearer>>;

/// Every test's merchant.
pub(crate) const COMMERCE_ID: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

/// Seeded active wallets of the sandbox: (document kind, number, product number).
pub(crate) const WALLET: (DocumentType, &str, &str) =
    (DocumentType::Cc, "1000000001", "3000000001");

pub(crate) const OTHER_WALLET: (DocumentType, &str, &str) =
    (DocumentType::Ce, "2000000002", "3000000002");

/// pasarela against its own sandbox, the lab OTP passed on (the tests play the holder), and
/// a rate limit that admits the concurrency tests.
pub(crate) async fn app() -> TestApp {
    spawn_app_with(lab_setup).await
}

pub(crate) fn lab_setup(config: &mut pasarela_server::Config) {
    if let Some(section) = config.recurring_payments.as_mut() {
        section.lab_otp_passthrough = true;
    }
    for limit in &mut config.auth.rate_limits {
        limit.burst = 10_000;
        limit.per_second = 10_000.0;
    }
    config.auth.max_concurrent_calls_per_principal = 10_000;
}

/// [`lab_setup`], and pasarela told that Daviplata deduplicates by `transactionId` (as the
/// sandbox does by default): a lost outcome is re-sent with the same id.
pub(crate) fn resending(config: &mut pasarela_server::Config) {
    lab_setup(config);
    let section = config
        .recurring_payments
        .as_mut()
        .expect("recurring payments");
    section.resend_unknown_outcomes = true;
}

pub(crate) fn client(app: &TestApp) -> Client {
    client_on(app, app.channel())
}

pub(crate) fn client_on(app: &TestApp, channel: Channel) -> Client {
    RecurringPaymentsServiceClient::with_interceptor(channel, app.bearer())
}

pub(crate) fn commerce() -> Option<Commerce> {
    Some(Commerce {
        commerce_id: COMMERCE_ID.into(),
        commerce_name: "Comercializadora La Pradera".into(),
        category: "Vestuario".into(),
    })
}

pub(crate) fn wallet((kind, number, product): (DocumentType, &str, &str)) -> Option<Wallet> {
    let mut holder = Identification {
        number: number.into(),
        ..Default::default()
    };
    holder.set_type(kind);
    Some(Wallet {
        holder: Some(holder),
        product_code: String::new(),
        product_number: product.into(),
    })
}

/// D1: returns (OTP session id, the lab OTP).
pub(crate) async fn request_otp(
    client: &mut Client,
    who: (DocumentType, &str, &str),
) -> (String, String) {
    let answer = client
        .request_subscription(RequestSubscriptionRequest {
            commerce: commerce(),
            wallet: wallet(who),
            transaction: None,
        })
        .await
        .expect("subscription requested")
        .into_inner();
    assert!(answer.otp_expire_time.is_some());
    (answer.otp_session_id, answer.lab_otp_value)
}

pub(crate) fn activation(
    key: &str,
    who: (DocumentType, &str, &str),
    session: &str,
    otp: &str,
    max: i64,
) -> ActivateSubscriptionRequest {
    ActivateSubscriptionRequest {
        idempotency_key: key.into(),
        commerce: commerce(),
        wallet: wallet(who),
        otp_value: otp.into(),
        otp_session_id: session.into(),
        maximum_amount: cop(max),
        transaction: None,
    }
}

/// D1 then D2 with the right OTP.
pub(crate) async fn subscribe(client: &mut Client, who: (DocumentType, &str, &str), max: i64) {
    let (session, otp) = request_otp(client, who).await;
    let key = format!("activate-{}", uuid::Uuid::new_v4());
    let activated = client
        .activate_subscription(activation(&key, who, &session, &otp, max))
        .await
        .expect("activated")
        .into_inner();
    let subscription = activated.subscription.expect("subscription");
    assert_eq!(subscription.maximum_amount, cop(max));
    assert_eq!(subscription.commerce.unwrap().commerce_id, COMMERCE_ID);
}

pub(crate) fn charge(
    key: &str,
    who: (DocumentType, &str, &str),
    amount: i64,
) -> ChargeSubscriptionRequest {
    ChargeSubscriptionRequest {
        idempotency_key: key.into(),
        commerce: commerce(),
        wallet: wallet(who),
        amount: cop(amount),
        invoice_id: "AB12345678".into(),
        invoice_description: "PAGO MENSUAL PLAN FAMILIAR".into(),
        general_info: vec![GeneralInfo {
            name: "Referencia".into(),
            value: "1010101".into(),
        }],
        transaction: None,
    }
}

pub(crate) fn cancellation(
    key: &str,
    who: (DocumentType, &str, &str),
) -> CancelSubscriptionRequest {
    CancelSubscriptionRequest {
        idempotency_key: key.into(),
        commerce: commerce(),
        wallet: wallet(who),
        transaction: None,
    }
}

/// An activation under `key` (maximum 200,000 minor units) whose answer Daviplata garbles
/// after it activated: an unknown outcome. Answers the request, for its retries.
pub(crate) async fn lost_activation(
    app: &TestApp,
    client: &mut Client,
    key: &str,
) -> ActivateSubscriptionRequest {
    let (session, otp) = request_otp(client, WALLET).await;
    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/activate",
        json!({ "type": "malformed" }),
    )
    .await;
    let activate = activation(key, WALLET, &session, &otp, 200_000);
    let lost = client
        .activate_subscription(activate.clone())
        .await
        .unwrap_err();
    assert_eq!(reason(&lost), "PROVIDER_OUTCOME_UNKNOWN");
    activate
}

/// The idempotency section for the in-process store.
pub(crate) fn memory_store() -> Value {
    json!({ "store": "memory" })
}

/// The idempotency section of a ledger in `db`.
pub(crate) fn ledger_store(db: &TestPostgres) -> Value {
    ledger(&[db], "recurring_payments")
}
