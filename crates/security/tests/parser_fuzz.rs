//! Fuzzes the Banco Caja Social answer parsers through the real service: a loopback HTTP
//! server answers whatever status and bytes proptest makes up (garbage, envelopes of every
//! casing with wrong types, truncated JSON), and each RPC must come back as an answer or a
//! mapped error, never a panic, never with the raw body in its message.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::response::Response;
use pasarela::common::v1::{DocumentType, Identification, InvokerContext, Money, PageRequest};
use pasarela::security::v1::security_service_server::SecurityService;
use pasarela::security::v1::*;
use pasarela_security::{Config, Security};
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};
use serde_json::json;
use tonic::{Request, Status};

use pasarela_test_support::answer_fuzz::{MARKER, body, check, raw, serve};

/// Keys of the bank's envelopes and payloads, in the casings the spec uses.
const KEYS: &[&str] = &[
    "responseType",
    "ResponseType",
    "value",
    "Value",
    "responseDetail",
    "ResponseDetail",
    "errorCode",
    "ErrorCode",
    "errorDesc",
    "ErrorDesc",
    "errorType",
    "ErrorType",
    "custPswdInfo",
    "pswdStatus",
    "contactInfo",
    "cellPhone",
    "emailAddr",
    "status",
    "statusDesc",
    "endDt",
    "authorization",
    "code",
    "trace",
    "iteration",
    "retry",
    "questions",
    "otpInfo",
    "otpValue",
    "approvalId",
    "acctId",
    "totalRecords",
    "recordsXPage",
    "channelHolds",
    "blockingInfo",
    "authLevel",
    "desc",
    MARKER,
];

/// Leaf strings the bank's values are made of.
const WORDS: &[&str] = &[
    "OK", "ER", "ER500", "SI", "TV", "NO", "1", "3", "Active", "Locked", "Lock", "User", "", MARKER,
];

/// What the loopback bank answers next: status and body.
type Answer = Arc<Mutex<(u16, Vec<u8>)>>;

async fn respond(state: axum::extract::State<Answer>) -> Response {
    let (status, body) = state.lock().expect("answer").clone();
    raw(status, body)
}

/// The loopback bank and the service pointed at it, on a runtime of their own.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    answer: Answer,
    service: Security,
}

impl Fixture {
    fn start() -> Fixture {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let answer = Answer::default();
        let url = runtime.block_on(serve(
            Router::new()
                .fallback(respond)
                .with_state(Arc::clone(&answer)),
        ));
        let config: Config = serde_json::from_value(json!({
            "base_url": url,
            "client_id": "fuzz-client",
            "client_secret": "fuzz-secret",
            "access_token": "fuzz-token",
            // Every made-up answer must reach a parser: no retries, no open circuit.
            "outbound": {
                "retry": { "max_retries": 0 },
                "breaker": { "failure_threshold": u32::MAX },
            },
        }))
        .expect("config");
        let attempts =
            pasarela_auth::SecretAttempts::local(&pasarela_auth::Config::default()).unwrap();
        let service = runtime
            .block_on(Security::new(config, attempts, Default::default()))
            .expect("service");
        Fixture {
            runtime,
            answer,
            service,
        }
    }

    /// Sends `rpc` while the bank answers `status` with `body`.
    fn call(&self, rpc: usize, status: u16, body: Vec<u8>) -> Result<(), Status> {
        *self.answer.lock().expect("answer") = (status, body);
        self.runtime.block_on(call(&self.service, rpc))
    }
}

fn cc(number: &str) -> Option<Identification> {
    Some(Identification {
        r#type: DocumentType::Cc.into(),
        number: number.into(),
    })
}

fn pesos(amount: i64) -> Option<Money> {
    Some(Money {
        currency_code: "COP".into(),
        minor_units: amount * 100,
    })
}

/// The RPCs fuzzed: valid requests of operations whose answers have different shapes.
const RPCS: usize = 9;

async fn call(service: &Security, rpc: usize) -> Result<(), Status> {
    match rpc {
        0 => service
            .get_password_status(Request::new(GetPasswordStatusRequest {
                transaction_id: "1".into(),
                customer_type: CustomerType::Natural.into(),
                subject: Some(get_password_status_request::Subject::Customer(
                    cc("1007641").expect("id"),
                )),
                ..Default::default()
            }))
            .await
            .map(drop),
        1 => service
            .validate_digital_enrollment(Request::new(ValidateDigitalEnrollmentRequest {
                customer: cc("51901591"),
                ..Default::default()
            }))
            .await
            .map(drop),
        2 => service
            .list_channel_holds(Request::new(ListChannelHoldsRequest {
                customer: cc("38250250"),
                filter: HoldFilter::All.into(),
                page: Some(PageRequest {
                    page_size: 10,
                    page_number: 1,
                }),
                ..Default::default()
            }))
            .await
            .map(drop),
        3 => service
            .update_password_status(Request::new(UpdatePasswordStatusRequest {
                customer: cc("1007641"),
                status: PasswordStatus::Locked.into(),
                ..Default::default()
            }))
            .await
            .map(drop),
        4 => service
            .get_authentication_level(Request::new(GetAuthenticationLevelRequest {
                customer: cc("1030"),
                adviser: cc("1025"),
                request_number: "257896".into(),
                transaction_request_id: "101261".into(),
                auth_system: "SIEBEL".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
        5 => service
            .create_transaction_challenge(Request::new(CreateTransactionChallengeRequest {
                customer: cc("111111"),
                customer_type: CustomerType::Natural.into(),
                transaction_code: "100090".into(),
                data: vec![TransactionData {
                    name: "CODIGO_CONVENIO".into(),
                    value: "PSE".into(),
                }],
                amount: pesos(10_000),
                source_account: "222222".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
        6 => service
            .request_withdrawal_otp(Request::new(RequestWithdrawalOtpRequest {
                invoker: Some(InvokerContext {
                    source: "18".into(),
                    cust_login_id: "CC1028780657".into(),
                    ..Default::default()
                }),
                customer: cc("1028780657"),
                account_id: "26500084997".into(),
                amount: pesos(20_000),
                otc_id: "001".into(),
            }))
            .await
            .map(drop),
        7 => service
            .generate_otc_v3(Request::new(GenerateOtcV3Request {
                customer: cc("1007641"),
                purpose: "PAGO".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
        _ => service
            .create_question_challenge(Request::new(CreateQuestionChallengeRequest {
                customer: cc("111111"),
                customer_type: CustomerType::Natural.into(),
                round: ChallengeRound::Initial.into(),
                transaction_code: "100090".into(),
                amount: pesos(10_000),
                source_account: "222222".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
    }
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        proptest::sample::select(&[200u16, 201, 206, 400, 401, 404, 409, 500, 503][..]),
        100u16..600,
    ]
}

#[test]
fn any_answer_of_the_bank_is_parsed_or_mapped() {
    let fixture = Fixture::start();
    let mut runner = TestRunner::new(Cases {
        cases: 2048,
        failure_persistence: None,
        ..Cases::default()
    });
    runner
        .run(
            &(0..RPCS, status(), body(KEYS, WORDS)),
            |(rpc, status, body)| check(fixture.call(rpc, status, body)),
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}
