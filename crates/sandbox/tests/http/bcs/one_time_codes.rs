//! One-time codes: generate (S2 V1, S3 V3) and validate (S4), once, with tries and expiry.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::other_code;

use super::{Bcs, camel, camel_desc, ident, send, start};

fn otc(number: &str, issue: &str, code: Option<&str>) -> Value {
    let mut otc = json!({ "otcIssue": issue });
    if let Some(code) = code {
        otc["otcValue"] = json!(code);
    }
    json!({ "govIssueIdent": ident(number), "otc": otc })
}

const GENERATE_V1: &str = "/securityManagement/V1/generateOTC";
const GENERATE_V3: &str = "/securityManagement/V3/generateOTC";
const VALIDATE: &str = "/securityManagement/V1/validateOTC";

/// S4 for customer 1007641: `code` for `purpose`.
async fn validate_otc(bcs: &Bcs, purpose: &str, code: &str) -> (StatusCode, Value) {
    bcs.post(VALIDATE, otc("1007641", purpose, Some(code)))
        .await
}

#[tokio::test]
async fn an_otc_is_validated_once() {
    let bcs = start().await;
    let (status, body) = bcs
        .post(GENERATE_V1, otc("1007641", "TRANSFERENCIA", None))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(body.get("otc").is_none(), "the code only travels by SMS");
    let code = bcs.outbox("1007641").await;
    assert_eq!(code.len(), 6);

    let wrong = other_code(&code);
    let (status, body) = validate_otc(&bcs, "TRANSFERENCIA", wrong).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "10", "BDA"))
    );
    let (_, body) = validate_otc(&bcs, "OTRO", &code).await;
    assert_eq!(camel(&body).1, "10", "a code only opens its own purpose");
    let (status, body) = validate_otc(&bcs, "TRANSFERENCIA", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = validate_otc(&bcs, "TRANSFERENCIA", &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "single use");
    assert!(camel_desc(&body).contains("No existe"), "{body}");
}

#[tokio::test]
async fn wrong_tries_burn_an_otc() {
    let bcs = start().await;
    bcs.post(GENERATE_V3, otc("1007641", "LOGIN", None)).await;
    let code = bcs.outbox("1007641").await;
    let wrong = other_code(&code);
    for _ in 0..3 {
        validate_otc(&bcs, "LOGIN", wrong).await;
    }
    let (status, body) = validate_otc(&bcs, "LOGIN", &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(camel_desc(&body).contains("intentos"), "{body}");
}

#[tokio::test]
async fn an_otc_expires() {
    let bcs = start().await;
    bcs.set_code_lifetime(200).await;
    bcs.post(GENERATE_V1, otc("1007641", "LOGIN", None)).await;
    let code = bcs.outbox("1007641").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = validate_otc(&bcs, "LOGIN", &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(camel_desc(&body).contains("vencida"), "{body}");
}

#[tokio::test]
async fn otc_errors_by_version() {
    let bcs = start().await;
    let (status, body) = bcs.post(GENERATE_V1, otc("1007641", "", None)).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "1", "BDA"))
    );
    let (status, body) = bcs.post(GENERATE_V3, otc("1007641", "", None)).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::PARTIAL_CONTENT, ("ER", "1", "BDA"))
    );
    for path in [GENERATE_V1, GENERATE_V3] {
        let (status, body) = bcs.post(path, otc("99999999", "LOGIN", None)).await;
        assert_eq!(
            (status, camel(&body)),
            (StatusCode::NOT_FOUND, ("ER", "1006", "BDA"))
        );
    }
    let (status, body) = send(bcs.call(Method::POST, GENERATE_V1).body("{not json")).await;
    assert_eq!((status, camel(&body).1), (StatusCode::BAD_REQUEST, "1"));
}
