//! Fuzzes the Daviplata answer parsers through the real service: a loopback HTTP server
//! answers whatever status and bytes proptest makes up (garbage, envelopes of both casings
//! with wrong types, truncated JSON) to the token request or to a business operation, and
//! each RPC must come back as an answer or a mapped error, never a panic, never with the
//! raw body in its message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use pasarela::common::v1::{DocumentType, Identification, Money};
use pasarela::recurring_payments::v1::recurring_payments_service_server::RecurringPaymentsService;
use pasarela::recurring_payments::v1::{
    ActivateSubscriptionRequest, CancelSubscriptionRequest, ChargeSubscriptionRequest, Commerce,
    RequestSubscriptionRequest, Wallet,
};
use pasarela_recurring_payments::{Config, RecurringPayments};
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};
use serde_json::json;
use tonic::{Request, Status};

use pasarela_test_support::answer_fuzz::{MARKER, body, check, raw, serve};

const TOKEN_PATH: &str = "/oauth2Provider/type1/v1/token";

/// Keys of Daviplata's answers, in both casings it uses.
const KEYS: &[&str] = &[
    "resultStatus",
    "ResultStatus",
    "status",
    "message",
    "transactionId",
    "transactionDate",
    "approvalNumber",
    "infoOtp",
    "value",
    "expirationDateOTP",
    "idSesionOTP",
    "expirationTimeOTP",
    "Subscription",
    "subscriptionId",
    "maxValue",
    "amountValue",
    "amountCurrencyType",
    "PaymentProvider",
    "paymentProviderId",
    "Commerce",
    "commercelId",
    "Identification",
    "Product",
    "codigoError",
    "mensajeError",
    "access_token",
    "expires_in",
    "token_type",
    MARKER,
];

/// Leaf strings Daviplata's values are made of.
const WORDS: &[&str] = &[
    "0",
    "422",
    "900",
    "COP",
    "Transacción aprobada",
    "2023-07-06 12:09:46.344",
    "2023-08-02T20:25:45.040-05:00",
    "",
    MARKER,
];

/// Which operation gets the made-up answer; every other one is answered well.
#[derive(Debug, Clone, Copy)]
enum Target {
    Token,
    Business,
}

/// What the loopback Daviplata answers next, and to whom.
#[derive(Default)]
struct Script {
    answer: Mutex<Option<(Target, u16, Vec<u8>)>>,
}

async fn respond(State(script): State<Arc<Script>>, uri: Uri) -> Response {
    let is_token = uri.path() == TOKEN_PATH;
    let scripted = script.answer.lock().expect("script").clone();
    match scripted {
        Some((Target::Token, status, body)) if is_token => raw(status, body),
        Some((Target::Business, status, body)) if !is_token => raw(status, body),
        _ if is_token => raw(
            200,
            json!({"access_token": "fuzz-token", "expires_in": 900, "token_type": "Bearer"})
                .to_string()
                .into_bytes(),
        ),
        // A refused token: pasarela drops its cached one and asks for another, so that
        // every case of the token target reaches the token parser.
        _ => raw(
            401,
            json!({"codigoError": "401", "mensajeError": "No autorizado"})
                .to_string()
                .into_bytes(),
        ),
    }
}

/// The loopback Daviplata and the service pointed at it, on a runtime of their own.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    script: Arc<Script>,
    service: RecurringPayments,
    keys: AtomicU64,
}

impl Fixture {
    fn start() -> Fixture {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let script = Arc::new(Script::default());
        let url = runtime.block_on(serve(
            Router::new()
                .fallback(respond)
                .with_state(Arc::clone(&script)),
        ));
        let config: Config = serde_json::from_value(json!({
            "base_url": url,
            "client_id": "fuzz-client",
            "client_secret": "fuzz-secret",
            "payment_provider_id": "00000001",
            // Every made-up answer must reach a parser: no retries, no open circuit.
            "outbound": {
                "http": { "timeout": "2s" },
                "retry": { "max_retries": 0 },
                "breaker": { "failure_threshold": u32::MAX },
            },
        }))
        .expect("config");
        let service = runtime
            .block_on(RecurringPayments::new(config, Default::default()))
            .expect("service");
        Fixture {
            runtime,
            script,
            service,
            keys: AtomicU64::new(0),
        }
    }

    /// Sends `rpc` while `target` is answered `status` with `body`.
    fn call(&self, rpc: usize, target: Target, status: u16, body: Vec<u8>) -> Result<(), Status> {
        *self.script.answer.lock().expect("script") = Some((target, status, body));
        let key = format!("fuzz-{}", self.keys.fetch_add(1, Ordering::Relaxed));
        self.runtime.block_on(call(&self.service, rpc, &key))
    }
}

fn commerce() -> Option<Commerce> {
    Some(Commerce {
        commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
        ..Default::default()
    })
}

fn wallet() -> Option<Wallet> {
    let mut holder = Identification {
        number: "1027868487".into(),
        ..Default::default()
    };
    holder.set_type(DocumentType::Cc);
    Some(Wallet {
        holder: Some(holder),
        product_code: String::new(),
        product_number: "3158765639".into(),
    })
}

fn cop(minor_units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "COP".into(),
        minor_units,
    })
}

/// The four operations, each with a valid request.
const RPCS: usize = 4;

async fn call(service: &RecurringPayments, rpc: usize, key: &str) -> Result<(), Status> {
    match rpc {
        0 => service
            .request_subscription(Request::new(RequestSubscriptionRequest {
                commerce: commerce(),
                wallet: wallet(),
                transaction: None,
            }))
            .await
            .map(drop),
        1 => service
            .activate_subscription(Request::new(ActivateSubscriptionRequest {
                idempotency_key: key.into(),
                commerce: commerce(),
                wallet: wallet(),
                otp_value: "123456".into(),
                otp_session_id: "60091282".into(),
                maximum_amount: cop(5_000_000),
                transaction: None,
            }))
            .await
            .map(drop),
        2 => service
            .cancel_subscription(Request::new(CancelSubscriptionRequest {
                idempotency_key: key.into(),
                commerce: commerce(),
                wallet: wallet(),
                transaction: None,
            }))
            .await
            .map(drop),
        _ => service
            .charge_subscription(Request::new(ChargeSubscriptionRequest {
                idempotency_key: key.into(),
                commerce: commerce(),
                wallet: wallet(),
                amount: cop(150_000),
                ..Default::default()
            }))
            .await
            .map(drop),
    }
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        proptest::sample::select(&[200u16, 201, 400, 401, 422, 500, 502, 504][..]),
        100u16..600,
    ]
}

fn runner() -> TestRunner {
    TestRunner::new(Cases {
        cases: 1024,
        failure_persistence: None,
        ..Cases::default()
    })
}

#[test]
fn any_business_answer_is_parsed_or_mapped() {
    let fixture = Fixture::start();
    runner()
        .run(
            &(0..RPCS, status(), body(KEYS, WORDS)),
            |(rpc, status, body)| check(fixture.call(rpc, Target::Business, status, body)),
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn any_token_answer_is_parsed_or_mapped() {
    let fixture = Fixture::start();
    runner()
        .run(
            &(0..RPCS, status(), body(KEYS, WORDS)),
            |(rpc, status, body)| check(fixture.call(rpc, Target::Token, status, body)),
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}
