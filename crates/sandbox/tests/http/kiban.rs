//! Kiban (K1): API key, field validation, test cases, the envelope with its echo.

use serde_json::{Value, json};

use crate::support::{self, TestSandbox, json};

const PATH: &str = "/api/v1/password-expiry-date-bc-pm";
const SUCCESS_CASE: &str = "663567bb713cf2110a110679";
const REJECTED_CASE: &str = "663567bb713cf2110a11067a";

async fn call(sandbox: &TestSandbox, test_case: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = sandbox
        .http
        .post(format!("{}{PATH}", sandbox.sandbox.kiban_url))
        .header("x-api-key", &sandbox.sandbox.credentials.kiban_api_key)
        .json(&body);
    if let Some(id) = test_case {
        request = request.query(&[("testCaseId", id)]);
    }
    json(request.send().await.expect("kiban answers")).await
}

fn documented_member() -> Value {
    json!({ "clave": "FF12345678", "contrasena": "P4SSW0RD" })
}

#[tokio::test]
async fn success_returns_the_full_envelope_echoing_the_password() {
    let sandbox = support::start().await;
    let (status, body) = call(&sandbox, Some(SUCCESS_CASE), documented_member()).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "SUCCESS");
    let id = body["id"].as_str().expect("id");
    assert_eq!(id.len(), 24);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    for field in ["createdAt", "finishedAt"] {
        let at = body[field].as_str().expect(field);
        chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339 timestamp");
    }
    assert!(body["duration"].is_i64());
    assert_eq!(body["request"], documented_member());
    assert_eq!(body["response"]["fechaExpiracion"], "08/29/2022");
    let call = &body["apiData"][0];
    assert_eq!(call["response"]["httpCode"], 200);
    assert_eq!(call["response"]["body"]["fechaExpiracion"], "08/29/2022");
    let xml = call["request"]["body"].as_str().expect("xml");
    assert!(xml.contains(r#"<credentials member="FF12345678" password="P4SSW0RD"/>"#));
}

#[tokio::test]
async fn the_expiry_date_is_the_members_own() {
    let sandbox = support::start().await;
    let member = json!({ "clave": "PM00000001", "contrasena": "Abc12345" });
    let (status, body) = call(&sandbox, Some(SUCCESS_CASE), member).await;
    assert_eq!(status, 200);
    let date = body["response"]["fechaExpiracion"].as_str().expect("date");
    assert_eq!(date, "12/31/2030");
    chrono::NaiveDate::parse_from_str(date, "%m/%d/%Y").expect("MM/DD/YYYY");
}

#[tokio::test]
async fn the_api_key_is_required() {
    let sandbox = support::start().await;
    let url = format!(
        "{}{PATH}?testCaseId={SUCCESS_CASE}",
        sandbox.sandbox.kiban_url
    );
    let missing = sandbox
        .http
        .post(&url)
        .json(&documented_member())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = sandbox
        .http
        .post(&url)
        .header("x-api-key", "not-the-key")
        .json(&documented_member())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let (_, body) = json(wrong).await;
    assert_ne!(
        body["status"], "SERVICE_ERROR",
        "not the bureau's credentials error"
    );
}

#[tokio::test]
async fn wrong_lengths_give_length_errors() {
    let sandbox = support::start().await;
    let body = json!({ "clave": "FF123", "contrasena": "P4SSW0RD99" });
    let (status, errors) = call(&sandbox, Some(SUCCESS_CASE), body).await;
    assert_eq!(status, 400);
    assert_eq!(
        errors,
        json!([
            { "code": "LENGTH_ERROR", "message": "should be 10", "field": "clave" },
            { "code": "LENGTH_ERROR", "message": "should be 8", "field": "contrasena" },
        ])
    );
}

#[tokio::test]
async fn missing_or_empty_fields_give_empty_errors() {
    let sandbox = support::start().await;
    for body in [json!({}), json!({ "clave": "", "contrasena": null })] {
        let (status, errors) = call(&sandbox, Some(SUCCESS_CASE), body).await;
        assert_eq!(status, 400);
        let codes: Vec<(&str, &str, &str)> = errors
            .as_array()
            .expect("an array")
            .iter()
            .map(|e| {
                (
                    e["code"].as_str().unwrap(),
                    e["message"].as_str().unwrap(),
                    e["field"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            [
                ("EMPTY_ERROR", "can't be empty", "clave"),
                ("EMPTY_ERROR", "can't be empty", "contrasena")
            ]
        );
    }
}

#[tokio::test]
async fn non_alphanumeric_values_give_format_errors() {
    let sandbox = support::start().await;
    let body = json!({ "clave": "FF1234567-", "contrasena": "P4SSW0RD" });
    let (status, errors) = call(&sandbox, Some(SUCCESS_CASE), body).await;
    assert_eq!(status, 400);
    assert_eq!(errors[0]["code"], "FORMAT_ERROR");
    assert_eq!(errors[0]["field"], "clave");
}

#[tokio::test]
async fn wrong_credentials_give_the_service_error_envelope() {
    let sandbox = support::start().await;
    let body = json!({ "clave": "FF12345678", "contrasena": "WR0NGPWD" });
    let (status, envelope) = call(&sandbox, Some(SUCCESS_CASE), body.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(envelope["status"], "SERVICE_ERROR");
    assert_eq!(
        envelope["errorMessage"],
        "Error credentials clave y/o contraseña incorrecta para BC"
    );
    assert_eq!(envelope["request"], body);
    assert!(envelope["id"].is_string() && envelope["duration"].is_i64());
    assert!(envelope.get("response").is_none());
}

#[tokio::test]
async fn the_rejected_test_case_refuses_even_good_credentials() {
    let sandbox = support::start().await;
    let (status, envelope) = call(&sandbox, Some(REJECTED_CASE), documented_member()).await;
    assert_eq!(status, 401);
    assert_eq!(envelope["status"], "SERVICE_ERROR");
}

#[tokio::test]
async fn a_missing_or_unknown_test_case_is_not_found() {
    let sandbox = support::start().await;
    let expected = json!([{
        "code": "EMPTY_ERROR",
        "message": "test case not found with given id",
        "field": "testCaseId",
    }]);
    for case in [None, Some("000000000000000000000000")] {
        let (status, body) = call(&sandbox, case, documented_member()).await;
        assert_eq!((status, &body), (400, &expected), "test case {case:?}");
    }
}
