//! Reliability end to end, with the sandbox's fault injection as the weapon: the caller's
//! deadline bounds every provider call, only safe operations are retried, each provider has
//! its own circuit breaker, malformed answers are mapped, bad input (a corpus generated
//! from the contracts) never reaches a provider, a bounded soak under random faults keeps
//! the process up and charges at most once per key, and no secret reaches a log.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::common::v1::PageRequest;
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
use rand::Rng as _;
use serde_json::{Value, json};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::support::{Bearer, TestApp, admin, cc, cop, reason, spawn_app_with};

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
const CARD_CHECK_ROUTE: (&str, &str) = (
    "bcs",
    "GET /security-management/v1/customer/{ident_serial_num}/validate",
);
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
    // One member's password is checked under load here, by one caller.
    config.auth.secret_attempts = pasarela_auth::Budget {
        per_second: 100_000.0,
        burst: 100_000,
    };
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

/// The route part of a counted route key (`POST /x` -> `/x`), for fault rules.
fn path_of((_, route): (&str, &'static str)) -> &'static str {
    route.split_once(' ').map_or(route, |(_, path)| path)
}

mod bad_input;
mod breaker;
mod deadlines;
mod malformed;
mod retries;
mod secrets;
mod soak;
