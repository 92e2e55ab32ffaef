//! The bureau end to end: a tonic client -> pasarela -> real HTTP -> the sandbox's Kiban.
//! Dates of seeded members, rejected credentials, every length and empty error refused
//! before any call, both documented test cases and unknown ones, production refusing test
//! cases, pasarela's own key refused, Kiban's failures injected, and logs that never see a
//! password.

use std::time::Duration;

use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::bureau::v1::{GetPasswordExpirationRequest, GetPasswordExpirationResponse};
use serde_json::{Value, json};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::support::{TestApp, reason, spawn_app, spawn_app_with};

/// Kiban's documented sandbox test cases.
const SUCCESS_CASE: &str = "663567bb713cf2110a110679";
const REJECTED_CASE: &str = "663567bb713cf2110a11067a";

/// Seeded bureau members of the sandbox: (clave, contrasena, expiration).
const MEMBER: (&str, &str, (i32, i32, i32)) = ("PM00000001", "Abc12345", (2030, 12, 31));
const SPEC_MEMBER: (&str, &str, (i32, i32, i32)) = ("FF12345678", "P4SSW0RD", (2022, 8, 29));

/// A password no member has, well formed.
const WRONG_PASSWORD: &str = "Qx7Lw2Np";

/// A violation expected: the field and words of its description.
type Expected = (&'static str, &'static str);

/// Kiban's route as the sandbox counts it.
const KIBAN_ROUTE: &str = "POST /api/v1/password-expiry-date-bc-pm";

fn client(app: &TestApp) -> BureauServiceClient<InterceptedService<Channel, impl Interceptor>> {
    BureauServiceClient::with_interceptor(app.channel(), app.bearer())
}

fn request(member_code: &str, password: &str, test_case_id: &str) -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: member_code.into(),
        password: password.into(),
        test_case_id: test_case_id.into(),
    }
}

async fn ask(
    app: &TestApp,
    request: GetPasswordExpirationRequest,
) -> Result<GetPasswordExpirationResponse, Status> {
    client(app)
        .get_password_expiration(request)
        .await
        .map(tonic::Response::into_inner)
}

fn violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Calls the sandbox's Kiban has received.
async fn kiban_calls(app: &TestApp) -> u64 {
    let calls: Value = reqwest::get(format!("{}/calls", app.sandbox.admin_url))
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("calls JSON");
    calls["kiban"][KIBAN_ROUTE].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_member_gets_their_expiration_date() {
    let app = spawn_app().await;
    for (member_code, password, (year, month, day)) in [MEMBER, SPEC_MEMBER] {
        let response = ask(&app, request(member_code, password, SUCCESS_CASE))
            .await
            .expect("the bureau answers");
        let date = response.expiration_date.expect("a date");
        assert_eq!(
            (date.year, date.month, date.day),
            (year, month, day),
            "{member_code}"
        );
        assert_eq!(
            response.request_id.len(),
            24,
            "Kiban's id: {}",
            response.request_id
        );
        assert!(response.provider_duration.is_some());
    }
}

#[tokio::test]
async fn a_wrong_password_is_the_members_problem() {
    let app = spawn_app().await;
    let status = ask(&app, request(MEMBER.0, WRONG_PASSWORD, SUCCESS_CASE))
        .await
        .expect_err("rejected");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "BUREAU_CREDENTIALS_REJECTED");
    let details = status.get_error_details();
    let info = details.error_info().expect("error info");
    assert_eq!(info.domain, "kiban.com");
    assert_eq!(info.metadata["http_status"], "401");
    assert_eq!(info.metadata["provider_status"], "SERVICE_ERROR");
    let localized = details.localized_message().expect("Kiban's text");
    assert_eq!(localized.locale, "es-MX");
    assert!(
        localized.message.contains("incorrecta"),
        "{}",
        localized.message
    );
}

#[tokio::test]
async fn the_rejected_credentials_test_case_rejects_a_real_member() {
    let app = spawn_app().await;
    let status = ask(&app, request(MEMBER.0, MEMBER.1, REJECTED_CASE))
        .await
        .expect_err("rejected by the test case");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "BUREAU_CREDENTIALS_REJECTED");
}

#[tokio::test]
async fn an_unknown_or_missing_test_case_is_refused_by_the_sandbox() {
    let app = spawn_app().await;
    for test_case_id in ["000000000000000000000000", ""] {
        let status = ask(&app, request(MEMBER.0, MEMBER.1, test_case_id))
            .await
            .expect_err("no such test case");
        assert_eq!(status.code(), Code::InvalidArgument, "{test_case_id:?}");
        assert_eq!(reason(&status), "TEST_CASE_NOT_FOUND", "{test_case_id:?}");
        let violations = violations(&status);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].0, "test_case_id");
        assert!(
            violations[0].1.contains("test case not found"),
            "{}",
            violations[0].1
        );
    }
    assert_eq!(kiban_calls(&app).await, 2, "both reached Kiban");
}

#[tokio::test]
async fn every_length_and_empty_error_is_listed_before_any_call() {
    let app = spawn_app().await;
    let cases: [(&str, &str, &[Expected]); 7] = [
        ("PM0000001", MEMBER.1, &[("member_code", "exactly 10")]),
        ("PM000000001", MEMBER.1, &[("member_code", "exactly 10")]),
        (MEMBER.0, "Abc1234", &[("password", "exactly 8")]),
        (MEMBER.0, "Abc123456", &[("password", "exactly 8")]),
        (
            "",
            "",
            &[("member_code", "required"), ("password", "required")],
        ),
        ("", MEMBER.1, &[("member_code", "required")]),
        (
            "PM0000000-",
            "Abc 1234",
            &[
                ("member_code", "letters and digits"),
                ("password", "letters and digits"),
            ],
        ),
    ];
    for (member_code, password, expected) in cases {
        let status = ask(&app, request(member_code, password, SUCCESS_CASE))
            .await
            .expect_err("invalid");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{member_code:?}/{password:?}"
        );
        let found = violations(&status);
        assert_eq!(found.len(), expected.len(), "{found:?}");
        for ((field, description), (want_field, want_words)) in found.iter().zip(expected) {
            assert_eq!(field, want_field);
            assert!(description.contains(want_words), "{field}: {description}");
        }
    }
    assert_eq!(kiban_calls(&app).await, 0, "nothing invalid reached Kiban");
}

#[tokio::test]
async fn production_refuses_test_cases_before_calling() {
    let app = spawn_app_with(|config| {
        let bureau = config.bureau.as_mut().expect("bureau configured");
        bureau.environment = serde_json::from_value(json!("production")).expect("environment");
    })
    .await;
    let status = ask(&app, request(MEMBER.0, MEMBER.1, SUCCESS_CASE))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = violations(&status);
    assert_eq!(violations[0].0, "test_case_id");
    assert!(violations[0].1.contains("sandbox"), "{}", violations[0].1);
    assert_eq!(kiban_calls(&app).await, 0);
}

#[tokio::test]
async fn pasarelas_refused_key_is_not_the_callers_fault() {
    let app = spawn_app_with(|config| {
        let bureau = config.bureau.as_mut().expect("bureau configured");
        bureau.api_key = "not-the-sandbox-key".to_owned().into();
    })
    .await;
    let status = ask(&app, request(MEMBER.0, MEMBER.1, SUCCESS_CASE))
        .await
        .expect_err("refused");
    // One code for a provider refusing pasarela's credentials, whichever the provider.
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason(&status), "PROVIDER_AUTH_FAILED");
    assert!(!status.message().contains("not-the-sandbox-key"));
}

#[tokio::test]
async fn kibans_failures_keep_their_meaning() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"type": "status", "status": 503}),
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
        ),
        (
            json!({"type": "status", "status": 406}),
            Code::FailedPrecondition,
            "BUREAU_REJECTED",
        ),
        (
            json!({"type": "status", "status": 408}),
            Code::DeadlineExceeded,
            "PROVIDER_TIMEOUT",
        ),
        (
            json!({"type": "status", "status": 409}),
            Code::Aborted,
            "PROVIDER_CONFLICT",
        ),
        (
            json!({"type": "status", "status": 200, "body": "<html>maintenance</html>", "content_type": "text/html"}),
            Code::Internal,
            "PROVIDER_BAD_RESPONSE",
        ),
        (
            json!({"type": "malformed"}),
            Code::Internal,
            "PROVIDER_BAD_RESPONSE",
        ),
        (
            json!({"type": "drop"}),
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
        ),
    ];
    for (fault, code, expected) in cases {
        app.inject("kiban", None, fault.clone(), None).await;
        let status = ask(&app, request(MEMBER.0, MEMBER.1, SUCCESS_CASE))
            .await
            .expect_err("failure injected");
        app.clear_faults().await;
        assert_eq!(status.code(), code, "{fault}: {status:?}");
        assert_eq!(reason(&status), expected, "{fault}");
        assert!(
            !format!("{status:?}").contains(MEMBER.1),
            "{fault}: password in the error"
        );
    }
}

#[tokio::test]
async fn a_hanging_kiban_ends_at_the_callers_deadline() {
    let app = spawn_app().await;
    app.inject("kiban", None, json!({"type": "hang"}), None)
        .await;
    let mut call = tonic::Request::new(request(MEMBER.0, MEMBER.1, SUCCESS_CASE));
    call.set_timeout(Duration::from_millis(500));
    let status = client(&app)
        .get_password_expiration(call)
        .await
        .expect_err("no answer");
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn no_password_reaches_the_logs() {
    let app = spawn_app().await;
    ask(&app, request(MEMBER.0, MEMBER.1, SUCCESS_CASE))
        .await
        .expect("the bureau answers");
    ask(&app, request(MEMBER.0, WRONG_PASSWORD, SUCCESS_CASE))
        .await
        .expect_err("rejected");
    ask(&app, request(MEMBER.0, WRONG_PASSWORD, REJECTED_CASE))
        .await
        .expect_err("rejected");
    let logs = app.logs();
    assert!(
        logs.contains("password expiration read"),
        "the bureau's own lines are captured"
    );
    assert!(
        logs.contains("BUREAU_CREDENTIALS_REJECTED"),
        "failures are logged with their reason"
    );
    for secret in [MEMBER.1, WRONG_PASSWORD, "bc-request-envelope"] {
        assert!(!logs.contains(secret), "{secret} reached the logs");
    }
}
