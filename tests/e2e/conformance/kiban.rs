//! Kiban's examples: its answers read, its request shape, its errors mapped.

use super::*;

// ---- Kiban ---------------------------------------------------------------------------------------

const KIBAN_PATH: &str = "/api/v1/password-expiry-date-bc-pm";

fn expiration_request() -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: "FF12345678".into(),
        password: "P4SSW0RD".into(),
        test_case_id: "663567bb713cf2110a110679".into(),
    }
}

async fn kiban_call(
    app: &TestApp,
    status: u16,
    body: &Value,
) -> Result<pasarela::bureau::v1::GetPasswordExpirationResponse, tonic::Status> {
    app.inject_once(
        "kiban",
        KIBAN_PATH,
        json!({ "type": "status", "status": status, "body": body }),
    )
    .await;
    BureauServiceClient::with_interceptor(app.channel(), app.bearer())
        .get_password_expiration(expiration_request())
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_kiban_examples_map_to_the_proto() {
    let app = crate::support::spawn_app().await;
    let rel = "kiban/k1-password-expiry-response.json";
    let answer = kiban_call(&app, 200, &example(rel)).await.expect("K1");
    let date = answer.expiration_date.expect("a date");
    assert_eq!(
        (date.year, date.month, date.day),
        (2022, 8, 29),
        "fechaExpiracion 08/29/2022"
    );
    assert_eq!(answer.request_id, "6699c0090e17d41228c1e799");
    let duration = answer.provider_duration.expect("a duration");
    assert_eq!((duration.seconds, duration.nanos), (0, 232_000_000));

    for (rel, code, expected) in [
        (
            "kiban/k1-password-expiry-error-400-length-error.json",
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
        ),
        (
            "kiban/k1-password-expiry-error-400-empty-error.json",
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
        ),
        (
            "kiban/k1-password-expiry-error-400-test-case-not-found.json",
            Code::InvalidArgument,
            "TEST_CASE_NOT_FOUND",
        ),
        (
            "kiban/k1-password-expiry-error-401-service-error.json",
            Code::FailedPrecondition,
            "BUREAU_CREDENTIALS_REJECTED",
        ),
    ] {
        let fx = fixture(rel);
        let status = fx.http_status.expect("every Kiban error prints its status");
        let failed = kiban_call(&app, status, &fx.example).await.unwrap_err();
        assert_eq!(
            (failed.code(), reason(&failed).as_str()),
            (code, expected),
            "{rel}"
        );
    }
}
