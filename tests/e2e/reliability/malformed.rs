//! Malformed provider answers are mapped, never passed on.

use super::*;

// ---- 4. malformed provider answers ---------------------------------------------------------

/// Marks a provider body so that a test can tell whether it leaked.
const RAW_MARKER: &str = "raw-provider-body-7f3a";

/// Answers no parser can read, each with a 200 status unless it is about the status.
pub(super) fn malformed_answers() -> Vec<Value> {
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
pub(super) async fn call_provider(app: &TestApp, provider: &str) -> Result<(), Status> {
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
            app.inject(provider, path, fault.clone(), None).await;
            let answer = call_provider(&app, provider).await;
            app.clear_faults().await;
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
