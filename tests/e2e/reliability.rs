//! Reliability end to end, with the sandbox's fault injection as the weapon: the caller's
//! deadline bounds every provider call, only safe operations are retried, each provider has
//! its own circuit breaker, malformed answers are mapped, bad input (a corpus generated
//! from the contracts) never reaches a provider, a bounded soak under random faults keeps
//! the process up and charges at most once per key, and no secret reaches a log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::common::v1::{DocumentType, Identification, Money, PageRequest};
use pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient;
use pasarela::recurring_payments::v1::{
    ActivateSubscriptionRequest, ChargeSubscriptionRequest, Commerce, RequestSubscriptionRequest,
    Wallet,
};
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela::security::v1::{
    CustomerType, GenerateOtcRequest, GetPasswordStatusRequest, HoldFilter,
    ListChannelHoldsRequest, ValidateDigitalEnrollmentRequest, get_password_status_request,
};
use prost::Message as _;
use prost::bytes::{Buf as _, BufMut as _};
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};
use rand::Rng as _;
use serde_json::{Value, json};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::support::{Bearer, TestApp, admin, reason, spawn_app_with};

// ---- fixtures and clients ------------------------------------------------------------------

/// A seeded Kiban member and the documented success test case.
const MEMBER_CODE: &str = "PM00000001";
const MEMBER_PASSWORD: &str = "Abc12345";
const SUCCESS_CASE: &str = "663567bb713cf2110a110679";

/// A seeded Banco Caja Social customer with a user.
const BCS_CUSTOMER: &str = "1007641";

/// A seeded active Daviplata wallet: (number, product number), a CC holder.
const WALLET: (&str, &str) = ("1000000001", "3000000001");
const COMMERCE_ID: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

/// Routes as the sandbox counts them.
const KIBAN_ROUTE: (&str, &str) = ("kiban", "POST /api/v1/password-expiry-date-bc-pm");
const STATUS_ROUTE: (&str, &str) = ("bcs", "GET /user/password/status");
const OTC_ROUTE: (&str, &str) = ("bcs", "POST /securityManagement/V1/generateOTC");
const TOKEN_ROUTE: (&str, &str) = ("daviplata", "POST /oauth2Provider/type1/v1/token");
const PAYMENT_ROUTE: (&str, &str) = ("daviplata", "POST /v1/payments/subscriptions/payment");

/// The dev credentials of the sandbox and the BCS token of `pasarela dev`: never logged.
const DEV_SECRETS: [&str; 4] = [
    "sandbox-bcs-secret",
    "sandbox-kiban-api-key",
    "sandbox-daviplata-secret",
    "sandbox-bcs-token",
];

type Bureau = BureauServiceClient<InterceptedService<Channel, Bearer>>;
type Security = SecurityServiceClient<InterceptedService<Channel, Bearer>>;
type Payments = RecurringPaymentsServiceClient<InterceptedService<Channel, Bearer>>;

fn bureau(app: &TestApp) -> Bureau {
    BureauServiceClient::with_interceptor(app.channel(), app.bearer())
}

fn security(app: &TestApp) -> Security {
    SecurityServiceClient::with_interceptor(app.channel(), app.bearer())
}

fn payments(app: &TestApp) -> Payments {
    RecurringPaymentsServiceClient::with_interceptor(app.channel(), app.bearer())
}

/// `pasarela dev` with limits that admit load and the lab OTP passed on (the tests play
/// the wallet holder).
fn roomy(config: &mut pasarela_server::Config) {
    for limit in &mut config.auth.rate_limits {
        limit.burst = 100_000;
        limit.per_second = 100_000.0;
    }
    if let Some(section) = config.recurring_payments.as_mut() {
        section.lab_otp_passthrough = true;
    }
}

async fn app() -> TestApp {
    spawn_app_with(roomy).await
}

fn expiration() -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: MEMBER_CODE.into(),
        password: MEMBER_PASSWORD.into(),
        test_case_id: SUCCESS_CASE.into(),
    }
}

fn cc(number: &str) -> Option<Identification> {
    Some(Identification {
        r#type: DocumentType::Cc.into(),
        number: number.into(),
    })
}

fn password_status() -> GetPasswordStatusRequest {
    GetPasswordStatusRequest {
        transaction_id: "4835799410".into(),
        customer_type: CustomerType::Natural.into(),
        subject: Some(get_password_status_request::Subject::Customer(
            cc(BCS_CUSTOMER).expect("identification"),
        )),
        ..Default::default()
    }
}

fn generate_otc() -> GenerateOtcRequest {
    GenerateOtcRequest {
        customer: cc(BCS_CUSTOMER),
        purpose: "LOGIN".into(),
        ..Default::default()
    }
}

fn commerce() -> Option<Commerce> {
    Some(Commerce {
        commerce_id: COMMERCE_ID.into(),
        commerce_name: "Comercializadora La Pradera".into(),
        category: "Vestuario".into(),
    })
}

fn wallet() -> Option<Wallet> {
    Some(Wallet {
        holder: cc(WALLET.0),
        product_code: String::new(),
        product_number: WALLET.1.into(),
    })
}

fn cop(minor_units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "COP".into(),
        minor_units,
    })
}

fn subscription_request() -> RequestSubscriptionRequest {
    RequestSubscriptionRequest {
        commerce: commerce(),
        wallet: wallet(),
        transaction: None,
    }
}

fn charge(key: &str, amount: i64) -> ChargeSubscriptionRequest {
    ChargeSubscriptionRequest {
        idempotency_key: key.into(),
        commerce: commerce(),
        wallet: wallet(),
        amount: cop(amount),
        invoice_id: "AB12345678".into(),
        invoice_description: "PAGO MENSUAL".into(),
        general_info: Vec::new(),
        transaction: None,
    }
}

/// Subscribes [`WALLET`] with `maximum`; returns the lab OTP it used (a secret).
async fn subscribe(app: &TestApp, maximum: i64) -> String {
    let mut client = payments(app);
    let requested = client
        .request_subscription(subscription_request())
        .await
        .expect("subscription requested")
        .into_inner();
    client
        .activate_subscription(ActivateSubscriptionRequest {
            idempotency_key: format!("activate-{}", uuid::Uuid::new_v4()),
            commerce: commerce(),
            wallet: wallet(),
            otp_value: requested.lab_otp_value.clone(),
            otp_session_id: requested.otp_session_id,
            maximum_amount: cop(maximum),
            transaction: None,
        })
        .await
        .expect("subscription activated");
    requested.lab_otp_value
}

fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| without_indexes(&v.field))
                .collect()
        })
        .unwrap_or_default()
}

/// `general_info[0].name` -> `general_info.name`.
fn without_indexes(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

// ---- the sandbox's admin API ---------------------------------------------------------------

/// Adds a fault rule: on `provider` (one route, or any when `path` is `None`), `times`
/// calls or until cleared.
async fn inject(
    app: &TestApp,
    provider: &str,
    path: Option<&str>,
    fault: Value,
    times: Option<u32>,
) {
    let mut rule = json!({ "provider": provider, "fault": fault });
    if let Some(path) = path {
        rule["path"] = json!(path);
    }
    if let Some(times) = times {
        rule["times"] = json!(times);
    }
    admin(&app.sandbox, reqwest::Method::POST, "/faults", Some(rule)).await;
}

async fn clear_faults(app: &TestApp) {
    reqwest::Client::new()
        .delete(format!("{}/faults", app.sandbox.admin_url))
        .send()
        .await
        .expect("admin answers");
}

async fn all_calls(app: &TestApp) -> Value {
    admin(&app.sandbox, reqwest::Method::GET, "/calls", None).await
}

/// Calls the sandbox received on one route.
async fn calls(app: &TestApp, (provider, route): (&str, &str)) -> u64 {
    all_calls(app).await[provider][route].as_u64().unwrap_or(0)
}

async fn counter(app: &TestApp, name: &str) -> u64 {
    let counters = admin(
        &app.sandbox,
        reqwest::Method::GET,
        "/daviplata/counters",
        None,
    )
    .await;
    counters[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}: {counters}"))
}

/// The route part of a counted route key (`POST /x` -> `/x`), for fault rules.
fn path_of((_, route): (&str, &'static str)) -> &'static str {
    route.split_once(' ').map_or(route, |(_, path)| path)
}

// ---- 1. deadlines --------------------------------------------------------------------------

/// Far longer than any deadline below: a call that ends before it was cut short.
const PROVIDER_LATENCY_MS: u64 = 10_000;
/// Liveness bound of a cut-short call: generous, so that a loaded machine cannot fail it;
/// the +50 ms figure is measured by the benchmark, not asserted here.
const LIVENESS: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_slow_provider_ends_at_the_callers_deadline() {
    let app = app().await;
    let latency = json!({ "type": "latency", "ms": PROVIDER_LATENCY_MS });
    inject(&app, "kiban", None, latency, None).await;
    let mut call = tonic::Request::new(expiration());
    call.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = bureau(&app)
        .get_password_expiration(call)
        .await
        .expect_err("cut short");
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "PROVIDER_TIMEOUT");
    assert!(elapsed < LIVENESS, "ended after {elapsed:?}");
    assert_eq!(
        calls(&app, KIBAN_ROUTE).await,
        1,
        "not retried past the deadline"
    );
}

#[tokio::test]
async fn a_charge_cut_short_by_the_deadline_is_abandoned() {
    let app = app().await;
    subscribe(&app, 1_000_000).await;
    let latency_ms = 4_000;
    inject(
        &app,
        "daviplata",
        Some(path_of(PAYMENT_ROUTE)),
        json!({ "type": "latency", "ms": latency_ms }),
        Some(1),
    )
    .await;
    let mut call = tonic::Request::new(charge("abandoned-1", 5_000));
    call.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = payments(&app)
        .charge_subscription(call)
        .await
        .expect_err("cut short");
    assert!(
        started.elapsed() < LIVENESS,
        "ended after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(calls(&app, PAYMENT_ROUTE).await, 1, "sent once");
    // Past the injected latency the emulator would have charged, had pasarela kept the
    // request open: it closed it at the deadline, so nothing was charged.
    tokio::time::sleep(Duration::from_millis(latency_ms + 1_000).saturating_sub(started.elapsed()))
        .await;
    assert_eq!(
        counter(&app, "payments_made").await,
        0,
        "the call was abandoned"
    );
}

#[tokio::test]
async fn without_a_caller_deadline_the_configured_ceiling_applies() {
    let app = spawn_app_with(|config| {
        roomy(config);
        let bureau = config.bureau.as_mut().expect("bureau configured");
        bureau.outbound.http.timeout = Duration::from_millis(300);
    })
    .await;
    let latency = json!({ "type": "latency", "ms": PROVIDER_LATENCY_MS });
    inject(&app, "kiban", None, latency, None).await;
    let started = Instant::now();
    let status = bureau(&app)
        .get_password_expiration(expiration())
        .await
        .expect_err("cut short by the ceiling");
    assert!(
        started.elapsed() < LIVENESS,
        "ended after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "PROVIDER_TIMEOUT");
}

// ---- 2. retries ----------------------------------------------------------------------------

fn unavailable() -> Value {
    json!({ "type": "status", "status": 503 })
}

#[tokio::test]
async fn reads_are_retried_through_one_503() {
    let app = app().await;
    inject(&app, "kiban", None, unavailable(), Some(1)).await;
    bureau(&app)
        .get_password_expiration(expiration())
        .await
        .expect("the retry succeeds");
    assert_eq!(calls(&app, KIBAN_ROUTE).await, 2);

    inject(
        &app,
        "bcs",
        Some(path_of(STATUS_ROUTE)),
        unavailable(),
        Some(1),
    )
    .await;
    security(&app)
        .get_password_status(password_status())
        .await
        .expect("the retry succeeds");
    assert_eq!(calls(&app, STATUS_ROUTE).await, 2);

    inject(
        &app,
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
    assert_eq!(calls(&app, TOKEN_ROUTE).await, 2);
    assert_eq!(counter(&app, "tokens_issued").await, 1);
}

#[tokio::test]
async fn writes_are_attempted_exactly_once_under_a_503() {
    let app = app().await;
    subscribe(&app, 1_000_000).await;
    inject(
        &app,
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
        calls(&app, PAYMENT_ROUTE).await,
        1,
        "a charge is never retried"
    );
    assert_eq!(counter(&app, "payments_made").await, 0);

    inject(
        &app,
        "bcs",
        Some(path_of(OTC_ROUTE)),
        unavailable(),
        Some(1),
    )
    .await;
    let status = security(&app)
        .generate_otc(generate_otc())
        .await
        .expect_err("the 503 is the answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        calls(&app, OTC_ROUTE).await,
        1,
        "an OTP generation is never retried"
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
    inject(&app, "kiban", None, unavailable(), None).await;
    let attempts = 10;
    for _ in 0..attempts {
        let status = bureau(&app)
            .get_password_expiration(expiration())
            .await
            .expect_err("Kiban is down");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    let sent = calls(&app, KIBAN_ROUTE).await;
    assert!(sent > attempts, "some calls were retried: {sent}");
    assert!(
        sent < attempts * 2,
        "the budget stopped retrying a provider that keeps failing: {sent} calls for {attempts}"
    );
}

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
    inject(
        &app,
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
    clear_faults(&app).await;
    tokio::time::sleep(open_for).await;
    for _ in 0..3 {
        client
            .get_password_expiration(expiration())
            .await
            .expect("closed again");
    }
    assert_eq!(calls(&app, KIBAN_ROUTE).await, 7);
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
    assert_eq!(calls(app, KIBAN_ROUTE).await, seen, "no call reached Kiban");
}

#[tokio::test]
async fn one_providers_outage_leaves_the_others_unhurt() {
    let app = app().await;
    subscribe(&app, 1_000_000).await;
    inject(&app, "kiban", None, json!({ "type": "hang" }), None).await;
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

// ---- 4. malformed provider answers ---------------------------------------------------------

/// Marks a provider body so that a test can tell whether it leaked.
const RAW_MARKER: &str = "raw-provider-body-7f3a";

/// Answers no parser can read, each with a 200 status unless it is about the status.
fn malformed_answers() -> Vec<Value> {
    vec![
        json!({ "type": "status", "status": 200, "body": format!("<html>{RAW_MARKER}</html>"), "content_type": "text/html" }),
        json!({ "type": "malformed" }),
        json!({ "type": "status", "status": 200 }),
        json!({ "type": "status", "status": 200, "body": [1, RAW_MARKER, null] }),
        json!({ "type": "status", "status": 200, "body": { "responseType": 7, "ResultStatus": [RAW_MARKER], "expirationDate": false, "resultStatus": "x" } }),
        json!({ "type": "status", "status": 200, "body": format!("{{\"{RAW_MARKER}\": "), "content_type": "application/json" }),
        json!({ "type": "status", "status": 418, "body": RAW_MARKER }),
        json!({ "type": "status", "status": 302, "body": RAW_MARKER }),
        json!({ "type": "status", "status": 502, "body": format!("<html>{RAW_MARKER}</html>"), "content_type": "text/html" }),
    ]
}

/// One call of each provider through a route the rules below target.
async fn call_provider(app: &TestApp, provider: &str) -> Result<(), Status> {
    match provider {
        "kiban" => bureau(app)
            .get_password_expiration(expiration())
            .await
            .map(drop),
        "bcs" => security(app)
            .validate_digital_enrollment(ValidateDigitalEnrollmentRequest {
                customer: cc("51901591"),
                ..Default::default()
            })
            .await
            .map(drop),
        _ => payments(app)
            .request_subscription(subscription_request())
            .await
            .map(drop),
    }
}

#[tokio::test]
async fn malformed_answers_are_mapped_never_echoed() {
    let app = app().await;
    let targets = [
        ("kiban", None),
        ("bcs", Some("/userManagement/v1/Customer")),
        ("daviplata", Some(path_of(TOKEN_ROUTE))),
        ("daviplata", Some("/v1/payments/subscriptions/request")),
    ];
    let mut wrong = Vec::new();
    for (provider, path) in targets {
        for fault in malformed_answers() {
            inject(&app, provider, path, fault.clone(), None).await;
            let answer = call_provider(&app, provider).await;
            clear_faults(&app).await;
            let status = answer.expect_err("nothing readable came back");
            let server_error = fault["status"].as_u64().is_some_and(|s| s >= 500);
            let reasons: &[&str] = if server_error {
                &["PROVIDER_BAD_RESPONSE", "PROVIDER_UNAVAILABLE"]
            } else {
                &["PROVIDER_BAD_RESPONSE"]
            };
            let mapped = matches!(status.code(), Code::Unavailable | Code::Internal)
                && reasons.contains(&reason(&status).as_str());
            let echoed = status.message().contains(RAW_MARKER)
                || format!("{:?}", status.get_error_details()).contains(RAW_MARKER);
            if !mapped || echoed {
                wrong.push(format!(
                    "{provider} {path:?} {fault}: {:?} {} {:?}",
                    status.code(),
                    reason(&status),
                    status.message()
                ));
            }
        }
        // The process is up and the provider usable once it behaves.
        call_provider(&app, provider)
            .await
            .unwrap_or_else(|status| panic!("{provider} after the faults: {status:?}"));
    }
    assert!(
        wrong.is_empty(),
        "unmapped or echoed answers:\n{}",
        wrong.join("\n")
    );
}

// ---- 5. bad input at the edge: a corpus generated from the contracts ------------------------

/// One RPC of the contracts: its path and its request message's fully qualified name.
struct Rpc {
    path: String,
    input: String,
}

/// A string field of a request, reached through nested messages.
#[derive(Clone)]
struct StringField {
    /// Field numbers from the request down to the string.
    numbers: Vec<u32>,
    /// Dotted proto names, as `BadRequest` names fields (`wallet.holder.number`).
    name: String,
    /// The contract's comment on the field.
    comment: String,
}

/// Every message of the contracts by fully qualified name, with its comments by field.
struct Contracts {
    messages: HashMap<String, (DescriptorProto, Vec<String>)>,
    rpcs: Vec<Rpc>,
}

impl Contracts {
    fn load() -> Contracts {
        let set = FileDescriptorSet::decode(pasarela::FILE_DESCRIPTOR_SET).expect("descriptors");
        let mut contracts = Contracts {
            messages: HashMap::new(),
            rpcs: Vec::new(),
        };
        for file in set
            .file
            .iter()
            .filter(|f| f.package().starts_with("pasarela."))
        {
            let comments = field_comments(file);
            for (index, message) in file.message_type.iter().enumerate() {
                let prefix = format!(".{}", file.package());
                contracts.add_message(&prefix, message, &[4, index as i32], &comments);
            }
            for service in &file.service {
                for method in &service.method {
                    contracts.rpcs.push(Rpc {
                        path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                        input: method.input_type().to_owned(),
                    });
                }
            }
        }
        contracts
    }

    fn add_message(
        &mut self,
        prefix: &str,
        message: &DescriptorProto,
        location: &[i32],
        comments: &HashMap<Vec<i32>, String>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        let field_comments = (0..message.field.len())
            .map(|i| {
                let path = [location, &[2, i as i32]].concat();
                comments.get(&path).cloned().unwrap_or_default()
            })
            .collect();
        for (index, nested) in message.nested_type.iter().enumerate() {
            let path = [location, &[3, index as i32]].concat();
            self.add_message(&name, nested, &path, comments);
        }
        self.messages
            .insert(name, (message.clone(), field_comments));
    }

    /// The string fields of `message`, through nested messages (the well-known Google
    /// types hold none).
    fn string_fields(&self, message: &str) -> Vec<StringField> {
        let mut found = Vec::new();
        self.walk(message, &[], "", &mut found);
        found
    }

    fn walk(&self, message: &str, numbers: &[u32], prefix: &str, found: &mut Vec<StringField>) {
        let Some((descriptor, comments)) = self.messages.get(message) else {
            return;
        };
        if numbers.len() > 4 {
            return;
        }
        for (field, comment) in descriptor.field.iter().zip(comments) {
            let numbers = [numbers, &[field.number() as u32]].concat();
            let name = format!("{prefix}{}", field.name());
            match field.r#type() {
                Type::String => found.push(StringField {
                    numbers,
                    name,
                    comment: comment.clone(),
                }),
                Type::Message => self.walk(field.type_name(), &numbers, &format!("{name}."), found),
                _ => {}
            }
        }
    }
}

/// Leading comments of a file by their source location path.
fn field_comments(file: &prost_types::FileDescriptorProto) -> HashMap<Vec<i32>, String> {
    file.source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .map(|location| {
            (
                location.path.clone(),
                location.leading_comments().to_owned(),
            )
        })
        .collect()
}

/// A request whose only content is `value` in the string field at `numbers`.
fn request_with(numbers: &[u32], value: &[u8]) -> Vec<u8> {
    numbers.iter().rev().fold(value.to_vec(), |inner, &number| {
        let mut outer = Vec::with_capacity(inner.len() + 8);
        put_varint(&mut outer, u64::from((number << 3) | 2));
        put_varint(&mut outer, inner.len() as u64);
        outer.extend(inner);
        outer
    })
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A value breaking the pattern a contract comment describes, if it describes one.
const WRONG_PATTERNS: &[(&str, &str)] = &[
    ("UUID", "not-a-uuid"),
    ("hex pairs", "11-16-17-81-41-T7"),
    ("printable ASCII", "clave-ñandú"),
    ("letters or", "ab-12"),
    ("alphanumerics", "ab-12"),
    ("digits", "12a45"),
    ("ISO 4217", "C0P"),
];

fn wrong_pattern(comment: &str) -> Option<&'static str> {
    WRONG_PATTERNS
        .iter()
        .find(|(words, _)| comment.contains(words))
        .map(|(_, value)| *value)
}

/// The invalid values every string field is tried with.
fn mutations(field: &StringField) -> Vec<(&'static str, Vec<u8>)> {
    let mut values = vec![
        ("control characters", b"ab\x01c\nd".to_vec()),
        ("too long", vec![b'7'; 10_000]),
    ];
    if let Some(wrong) = wrong_pattern(&field.comment) {
        values.push(("wrong pattern", wrong.as_bytes().to_vec()));
    }
    values
}

/// A message passed through untouched, so that the tests can send bytes a typed client
/// never would (invalid UTF-8, oversized messages).
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug)]
struct RawEncoder;

#[derive(Debug)]
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `body` as the request of the RPC at `path`, over HTTP/2 as any gRPC client.
async fn raw_call(app: &TestApp, token: &Bearer, path: &str, body: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel());
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", token.0.clone());
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).expect("method path");
    grpc.unary(request, path, RawCodec).await.map(drop)
}

#[tokio::test]
async fn a_generated_corpus_of_bad_input_never_reaches_a_provider() {
    let app = app().await;
    let token = app.bearer();
    let contracts = Contracts::load();
    // The operators' service calls no provider, and an empty listing request is valid.
    let provider_rpcs: Vec<&Rpc> = contracts
        .rpcs
        .iter()
        .filter(|rpc| !rpc.path.starts_with("/pasarela.operations."))
        .collect();
    assert_eq!(provider_rpcs.len(), 24, "every RPC of the three services");
    let mut wrong = Vec::new();
    let mut cases = 0;
    for rpc in provider_rpcs {
        let before = all_calls(&app).await;
        // Every field empty: whatever each RPC requires is missing.
        let empty = raw_call(&app, &token, &rpc.path, Vec::new()).await;
        if !matches!(&empty, Err(s) if s.code() == Code::InvalidArgument) {
            wrong.push(format!("{} empty request: {empty:?}", rpc.path));
        }
        for field in contracts.string_fields(&rpc.input) {
            for (kind, value) in mutations(&field) {
                cases += 1;
                let answer = raw_call(
                    &app,
                    &token,
                    &rpc.path,
                    request_with(&field.numbers, &value),
                )
                .await;
                if let Some(problem) = refusal_problem(&answer, &field.name) {
                    wrong.push(format!("{} {} ({kind}): {problem}", rpc.path, field.name));
                }
            }
        }
        if all_calls(&app).await != before {
            wrong.push(format!("{}: a provider was called", rpc.path));
        }
    }
    assert!(
        cases > 300,
        "the contracts hold many string fields: {cases}"
    );
    assert!(
        wrong.is_empty(),
        "{} of {cases} bad inputs were not refused as expected:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// What is wrong with the answer to a request whose `field` holds a bad value: it must be
/// `INVALID_ARGUMENT` with a `BadRequest` naming the field.
fn refusal_problem(answer: &Result<(), Status>, field: &str) -> Option<String> {
    let status = match answer {
        Ok(()) => return Some("accepted".into()),
        Err(status) => status,
    };
    if status.code() != Code::InvalidArgument {
        return Some(format!("{:?} {:?}", status.code(), status.message()));
    }
    let named = violated_fields(status);
    (!named.iter().any(|f| f == field)).then(|| format!("the violations do not name it: {named:?}"))
}

/// Bytes 0xFF 0xFE inside a protobuf string: prost refuses to decode the request before
/// any handler runs. The caller sent bad input, so the answer must say so.
#[tokio::test]
async fn invalid_utf8_in_any_string_field_is_invalid_argument() {
    let app = app().await;
    let token = app.bearer();
    let contracts = Contracts::load();
    let before = all_calls(&app).await;
    let mut wrong = Vec::new();
    for rpc in &contracts.rpcs {
        for field in contracts.string_fields(&rpc.input) {
            let request = request_with(&field.numbers, &[b'a', 0xFF, 0xFE, b'b']);
            let answer = raw_call(&app, &token, &rpc.path, request).await;
            match answer {
                Err(status) if status.code() == Code::InvalidArgument => {}
                other => wrong.push(format!("{} {}: {other:?}", rpc.path, field.name)),
            }
        }
    }
    assert_eq!(all_calls(&app).await, before, "no provider was called");
    assert!(
        wrong.is_empty(),
        "{} string fields answered otherwise, first: {}",
        wrong.len(),
        wrong[0]
    );
}

#[tokio::test]
async fn a_message_above_the_size_limit_is_refused_unread() {
    let app = app().await;
    let token = app.bearer();
    let contracts = Contracts::load();
    let before = all_calls(&app).await;
    let huge = vec![b'7'; 300 * 1024];
    for rpc in &contracts.rpcs {
        let field = contracts.string_fields(&rpc.input).remove(0);
        let status = raw_call(&app, &token, &rpc.path, request_with(&field.numbers, &huge))
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{}: {status:?}",
            rpc.path
        );
    }
    assert_eq!(all_calls(&app).await, before, "no provider was called");
}

// ---- 6. load and soak ----------------------------------------------------------------------

/// Concurrent callers of the soak.
const CONCURRENCY: usize = 64;
/// Distinct idempotency keys the soak's charges use.
const CHARGE_KEYS: usize = 200;

fn soak_duration() -> Duration {
    let seconds = std::env::var("PASARELA_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(seconds)
}

/// The process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmRSS");
    kib * 1024
}

/// A random fault on a random provider for the next few calls.
fn random_fault(rng: &mut impl rand::Rng) -> Value {
    let provider = ["bcs", "kiban", "daviplata"][rng.random_range(0..3)];
    let fault = match rng.random_range(0..8) {
        0 => json!({ "type": "latency", "ms": rng.random_range(10..400) }),
        1 => {
            let status = [500, 502, 503, 504][rng.random_range(0..4)];
            json!({ "type": "status", "status": status })
        }
        2 => {
            json!({ "type": "status", "status": 200, "body": "<html>oops</html>", "content_type": "text/html" })
        }
        3 => json!({ "type": "malformed" }),
        4 => json!({ "type": "drop" }),
        5 => json!({ "type": "drop", "after_handler": true }),
        6 => json!({ "type": "hang" }),
        _ => json!({ "type": "hang", "after_handler": true }),
    };
    json!({ "provider": provider, "fault": fault, "times": rng.random_range(1..4) })
}

/// What the soak saw of one charge key: the approval numbers it was answered with.
type Approvals = Arc<std::sync::Mutex<BTreeMap<usize, HashSet<String>>>>;

/// What the soak's callers were answered: counts by gRPC code, and every answer that was
/// not a mapped status.
#[derive(Default)]
struct Tally {
    codes: BTreeMap<String, usize>,
    unmapped: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (code, count) in other.codes {
            *self.codes.entry(code).or_default() += count;
        }
        self.unmapped.extend(other.unmapped);
    }
}

/// One call of a random RPC: its code, or `Err` describing an answer that is not a mapped
/// status.
async fn soak_call(app: &TestApp, approvals: &Approvals) -> Result<Code, String> {
    let which = rand::rng().random_range(0..6);
    let answer = match which {
        0 => bureau(app)
            .get_password_expiration(expiration())
            .await
            .map(drop),
        1 => security(app)
            .get_password_status(password_status())
            .await
            .map(drop),
        2 => security(app)
            .list_channel_holds(ListChannelHoldsRequest {
                customer: cc("38250250"),
                filter: HoldFilter::All.into(),
                page: Some(PageRequest {
                    page_size: 10,
                    page_number: 1,
                }),
                ..Default::default()
            })
            .await
            .map(drop),
        3 => payments(app)
            .request_subscription(subscription_request())
            .await
            .map(drop),
        _ => {
            let key = rand::rng().random_range(0..CHARGE_KEYS);
            charge_key(app, key, approvals).await
        }
    };
    match answer {
        Ok(()) => Ok(Code::Ok),
        Err(status) if is_mapped(&status) => Ok(status.code()),
        Err(status) => Err(format!("call {which}: {status:?}")),
    }
}

/// Sends the charge of `key` (always the same request) and records its approval.
async fn charge_key(app: &TestApp, key: usize, approvals: &Approvals) -> Result<(), Status> {
    let request = charge(&format!("soak-{key}"), 100 + key as i64);
    let answer = payments(app)
        .charge_subscription(request)
        .await?
        .into_inner();
    approvals
        .lock()
        .expect("approvals")
        .entry(key)
        .or_default()
        .insert(answer.approval_number);
    Ok(())
}

/// A status pasarela chose: a meaningful code with `ErrorInfo` or `BadRequest`.
fn is_mapped(status: &Status) -> bool {
    let details = status.get_error_details();
    !matches!(status.code(), Code::Unknown | Code::Ok)
        && (details.error_info().is_some() || details.bad_request().is_some())
}

#[tokio::test]
async fn a_soak_under_random_faults_stays_up_and_charges_at_most_once() {
    let app = Arc::new(
        spawn_app_with(|config| {
            roomy(config);
            // The sandbox deduplicates by transactionId, so lost charges may be re-sent and
            // every key ends with an outcome (docs/reliability.md).
            let payments = config.recurring_payments.as_mut().expect("payments");
            payments.resend_unknown_outcomes = true;
            let ceiling = Duration::from_secs(1);
            let open_for = Duration::from_millis(500);
            let security = &mut config.security.as_mut().expect("security").outbound;
            security.http.timeout = ceiling;
            security.breaker.open_for = open_for;
            let bureau = &mut config.bureau.as_mut().expect("bureau").outbound;
            bureau.http.timeout = ceiling;
            bureau.breaker.open_for = open_for;
            let payments = &mut config
                .recurring_payments
                .as_mut()
                .expect("payments")
                .outbound;
            payments.http.timeout = ceiling;
            payments.breaker.open_for = open_for;
        })
        .await,
    );
    subscribe(&app, 10_000_000).await;
    let approvals = Approvals::default();
    let duration = soak_duration();
    let started = Instant::now();
    let chaos = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            while started.elapsed() < duration {
                let rule = random_fault(&mut rand::rng());
                admin(&app.sandbox, reqwest::Method::POST, "/faults", Some(rule)).await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let app = Arc::clone(&app);
            let approvals = Arc::clone(&approvals);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while started.elapsed() < duration {
                    let call =
                        tokio::time::timeout(Duration::from_secs(30), soak_call(&app, &approvals));
                    match call.await {
                        Ok(Ok(code)) => *tally.codes.entry(format!("{code:?}")).or_default() += 1,
                        Ok(Err(problem)) => tally.unmapped.push(problem),
                        Err(_) => tally.unmapped.push("no answer within 30 s".to_owned()),
                    }
                }
                tally
            })
        })
        .collect();
    tokio::time::sleep(duration / 4).await;
    let steady_rss = resident_bytes();
    let mut tally = Tally::default();
    for worker in join_all(workers).await {
        tally.merge(worker.expect("worker"));
    }
    let end_rss = resident_bytes();
    chaos.await.expect("chaos");
    println!("soak answers by code: {:?}", tally.codes);
    assert!(
        tally.unmapped.is_empty(),
        "answers that are not mapped statuses: {:?}",
        tally.unmapped
    );
    assert!(
        tally.codes.len() > 1 && tally.codes.contains_key("Ok"),
        "both successes and injected failures: {:?}",
        tally.codes
    );
    let growth = end_rss.saturating_sub(steady_rss);
    assert!(
        growth < 200 * 1024 * 1024,
        "memory grew by {} MiB",
        growth >> 20
    );

    settle_charges(&app, &approvals).await;
}

/// With the faults gone, learns the outcome of every key the soak charged, then checks
/// that each was charged exactly once at the sandbox.
async fn settle_charges(app: &TestApp, approvals: &Approvals) {
    clear_faults(app).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let keys: Vec<usize> = (0..CHARGE_KEYS).collect();
    for key in &keys {
        let mut last = None;
        for _ in 0..5 {
            match charge_key(app, *key, approvals).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(status) => last = Some(status),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(last.is_none(), "key {key} has no outcome: {last:?}");
    }
    let approvals = approvals.lock().expect("approvals").clone();
    let mut seen = HashSet::new();
    for (key, numbers) in &approvals {
        assert_eq!(
            numbers.len(),
            1,
            "key {key} got several approvals: {numbers:?}"
        );
        assert!(
            seen.insert(numbers.iter().next().cloned()),
            "key {key} shares an approval"
        );
    }
    assert_eq!(
        counter(app, "payments_made").await,
        keys.len() as u64,
        "one payment per key, whatever the faults"
    );
}

// ---- 7. secrets ----------------------------------------------------------------------------

/// Secrets this module sends, and the credentials of every service's dev configuration.
fn secrets_sent(app: &TestApp) -> Vec<String> {
    let credentials = &app.sandbox.credentials;
    let mut secrets: Vec<String> = DEV_SECRETS.iter().map(|s| s.to_string()).collect();
    secrets.extend([
        MEMBER_PASSWORD.to_owned(),
        credentials.bcs_client_secret.clone(),
        credentials.kiban_api_key.clone(),
        credentials.daviplata_client_secret.clone(),
        app.token(&["*"]),
    ]);
    secrets
}

#[tokio::test]
async fn no_secret_reaches_a_log_line_or_an_error() {
    let app = app().await;
    let otp = subscribe(&app, 1_000_000).await;
    // Every service, through success, business refusals and injected faults.
    let mut errors = Vec::new();
    for fault in malformed_answers().into_iter().chain([unavailable()]) {
        for provider in ["kiban", "bcs", "daviplata"] {
            inject(&app, provider, None, fault.clone(), Some(1)).await;
            if let Err(status) = call_provider(&app, provider).await {
                errors.push(format!("{status:?} {:?}", status.get_error_details()));
            }
        }
    }
    let mut wrong_password = expiration();
    wrong_password.password = "Qx7Lw2Np".into();
    errors.extend(
        bureau(&app)
            .get_password_expiration(wrong_password)
            .await
            .err()
            .map(|s| format!("{s:?}")),
    );
    payments(&app)
        .charge_subscription(charge("secret-scan-1", 700))
        .await
        .expect("charged");

    let logs = app.logs();
    let mut secrets = secrets_sent(&app);
    secrets.extend(["Qx7Lw2Np".to_owned()]);
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret of {} characters was logged",
            secret.len()
        );
        assert!(
            errors.iter().all(|error| !error.contains(secret.as_str())),
            "a secret of {} characters was in an error",
            secret.len()
        );
    }
    assert!(!logs.contains("Bearer eyJ"), "a bearer token was logged");
    assert!(!logs.contains("\"eyJ"), "a JWT was logged");
    assert!(!otp_in_logs(&logs, &otp), "the lab OTP was logged");
}

/// Whether the 6-digit `otp` stands alone (not inside a longer number) in a log line once
/// its timestamp, whose fraction of a second could hold the same digits, is removed.
fn otp_in_logs(logs: &str, otp: &str) -> bool {
    logs.lines().any(|line| {
        let line = match serde_json::from_str::<Value>(line) {
            Ok(mut value) => {
                if let Some(object) = value.as_object_mut() {
                    object.remove("timestamp");
                }
                value.to_string()
            }
            Err(_) => line.to_owned(),
        };
        line.match_indices(otp).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + otp.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    })
}
