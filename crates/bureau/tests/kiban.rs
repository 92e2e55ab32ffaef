//! `BureauService` over real gRPC against a scripted Kiban over real HTTP on loopback:
//! what goes on the wire (API key header, body, `testCaseId`), and how each kind of
//! answer Kiban documents reaches the caller.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela_bureau::{Config, Environment};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const PATH: &str = "/api/v1/password-expiry-date-bc-pm";
const API_KEY: &str = "kiban-test-key-7d41";
const SUCCESS_CASE: &str = "663567bb713cf2110a110679";

/// One call as the scripted Kiban saw it.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    query: Option<String>,
    body: serde_json::Value,
}

#[derive(Clone)]
struct Script {
    status: StatusCode,
    body: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(
    State(script): State<Script>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let body = serde_json::from_slice(&body).unwrap_or_default();
    script.seen.lock().unwrap().push(Seen {
        headers,
        query,
        body,
    });
    (script.status, script.body)
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// A Kiban that answers every call with `status` and `body`, and records the calls.
async fn scripted_kiban(status: u16, body: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Script {
        status: StatusCode::from_u16(status).expect("status"),
        body,
        seen: seen.clone(),
    };
    let (listener, addr) = listen().await;
    let app = Router::new().route(PATH, post(answer)).with_state(script);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn config(base_url: String, environment: Environment) -> Config {
    serde_json::from_value(serde_json::json!({
        "base_url": base_url,
        "api_key": API_KEY,
        "environment": environment_name(environment),
        // One attempt: these tests look at how a single answer is mapped.
        "outbound": { "retry": { "max_retries": 0 } },
    }))
    .expect("config")
}

fn environment_name(environment: Environment) -> &'static str {
    match environment {
        Environment::Production => "production",
        Environment::Sandbox => "sandbox",
    }
}

async fn bureau(config: Config) -> BureauServiceClient<Channel> {
    let service = pasarela_bureau::service(config, attempts())
        .await
        .expect("service");
    let (listener, addr) = listen().await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    BureauServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

fn request(test_case_id: &str) -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: "PM00000001".into(),
        password: "Abc12345".into(),
        test_case_id: test_case_id.into(),
    }
}

const SUCCESS: &str = r#"{"id":"66a0c1","duration":1500,"status":"SUCCESS",
    "request":{"clave":"PM00000001","contrasena":"Abc12345"},
    "apiData":[{"request":{"body":"<credentials member=\"PM00000001\" password=\"Abc12345\"/>"}}],
    "response":{"fechaExpiracion":"12/31/2030"}}"#;

#[tokio::test]
async fn the_sandbox_call_carries_key_credentials_and_test_case() {
    let (url, seen) = scripted_kiban(200, SUCCESS).await;
    let mut client = bureau(config(url, Environment::Sandbox)).await;
    let response = client
        .get_password_expiration(request(SUCCESS_CASE))
        .await
        .expect("success")
        .into_inner();
    let date = response.expiration_date.expect("date");
    assert_eq!((date.year, date.month, date.day), (2030, 12, 31));
    assert_eq!(response.request_id, "66a0c1");
    let duration = response.provider_duration.expect("duration");
    assert_eq!((duration.seconds, duration.nanos), (1, 500_000_000));

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["x-api-key"], API_KEY);
    assert_eq!(
        seen[0].query.as_deref(),
        Some("testCaseId=663567bb713cf2110a110679")
    );
    assert_eq!(
        seen[0].body,
        serde_json::json!({ "clave": "PM00000001", "contrasena": "Abc12345" })
    );
}

#[tokio::test]
async fn production_sends_no_test_case_and_refuses_one() {
    let (url, seen) = scripted_kiban(200, SUCCESS).await;
    let mut client = bureau(config(url, Environment::Production)).await;
    client
        .get_password_expiration(request(""))
        .await
        .expect("success");
    assert_eq!(seen.lock().unwrap()[0].query, None);

    let refused = client
        .get_password_expiration(request(SUCCESS_CASE))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let details = refused.get_error_details();
    let violation = &details.bad_request().expect("bad request").field_violations[0];
    assert_eq!(violation.field, "test_case_id");
    assert!(
        violation.description.contains("sandbox"),
        "{}",
        violation.description
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "the refused call never left");
}

#[tokio::test]
async fn the_key_header_is_configuration() {
    let (url, seen) = scripted_kiban(200, SUCCESS).await;
    let mut config = config(url, Environment::Sandbox);
    config.api_key_header = "x-kiban-key".into();
    let mut client = bureau(config).await;
    client
        .get_password_expiration(request(SUCCESS_CASE))
        .await
        .expect("success");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].headers["x-kiban-key"], API_KEY);
    assert!(!seen[0].headers.contains_key("x-api-key"));
}

#[tokio::test]
async fn each_documented_answer_has_its_code_and_reason() {
    let cases: [(u16, &str, Code, &str); 10] = [
        (
            400,
            r#"[{"code":"LENGTH_ERROR","message":"should be 10","field":"clave"}]"#,
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
        ),
        (
            400,
            r#"[{"code":"EMPTY_ERROR","message":"test case not found with given id","field":"testCaseId"}]"#,
            Code::InvalidArgument,
            "TEST_CASE_NOT_FOUND",
        ),
        (
            401,
            r#"{"id":"x","status":"SERVICE_ERROR","errorMessage":"Error credentials clave y/o contraseña incorrecta para BC","request":{"clave":"PM00000001","contrasena":"Abc12345"}}"#,
            Code::FailedPrecondition,
            "BUREAU_CREDENTIALS_REJECTED",
        ),
        (
            401,
            r#"{"message":"Unauthorized"}"#,
            Code::Unavailable,
            "PROVIDER_AUTH_FAILED",
        ),
        (
            403,
            r#"{"message":"Forbidden"}"#,
            Code::Internal,
            "PROVIDER_AUTH_FAILED",
        ),
        (406, "", Code::FailedPrecondition, "BUREAU_REJECTED"),
        (408, "", Code::DeadlineExceeded, "PROVIDER_TIMEOUT"),
        (409, "", Code::Aborted, "PROVIDER_CONFLICT"),
        (
            503,
            "<html>Service Unavailable</html>",
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
        ),
        (
            200,
            "<html>maintenance</html>",
            Code::Internal,
            "PROVIDER_BAD_RESPONSE",
        ),
    ];
    for (http, body, code, reason) in cases {
        let (url, _) = scripted_kiban(http, body).await;
        let mut client = bureau(config(url, Environment::Sandbox)).await;
        let status = client
            .get_password_expiration(request(SUCCESS_CASE))
            .await
            .expect_err("failure");
        assert_eq!(status.code(), code, "{http} {body}");
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, reason, "{http} {body}");
        assert_eq!(info.domain, "kiban.com");
        assert_eq!(info.metadata["http_status"], http.to_string());
        assert!(
            !format!("{status:?}").contains("Abc12345"),
            "{http}: password leaked"
        );
    }
}

#[tokio::test]
async fn an_unreachable_kiban_is_unavailable() {
    let (listener, addr) = listen().await;
    drop(listener);
    let mut client = bureau(config(format!("http://{addr}"), Environment::Sandbox)).await;
    let status = client
        .get_password_expiration(request(SUCCESS_CASE))
        .await
        .expect_err("unreachable");
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn a_bad_configuration_fails_at_start() {
    let mut bad_url = config("not a url".into(), Environment::Sandbox);
    assert!(
        pasarela_bureau::service(bad_url.clone(), attempts())
            .await
            .is_err()
    );
    bad_url.base_url = "http://127.0.0.1:1".into();
    bad_url.api_key = "line\nbreak-secret".into();
    let error = pasarela_bureau::service(bad_url, attempts())
        .await
        .err()
        .expect("refused");
    assert!(!format!("{error:#}").contains("break-secret"));
}

/// Each service its own budgets of members' password checks, counted in this process.
fn attempts() -> pasarela_auth::SecretAttempts {
    pasarela_auth::SecretAttempts::local(&pasarela_auth::Config::default()).expect("budgets")
}
