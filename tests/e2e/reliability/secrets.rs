//! No secret reaches a log line or an error.

use super::malformed::{call_provider, malformed_answers};
use super::retries::unavailable;
use super::*;

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
            app.inject(provider, None, fault.clone(), Some(1)).await;
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
    app.assert_not_logged(&[&otp]);
}

/// A bank that echoes the withdrawal's OTP and pasarela's own client secret in its error
/// text: neither reaches the caller, the replay of the recorded refusal, or a log line.
#[tokio::test]
async fn provider_text_echoing_a_secret_is_scrubbed_before_the_caller_the_record_and_the_log() {
    let app = crate::support::security::app().await;
    let mut client = crate::support::security::client(&app);
    let otp = crate::support::security::withdrawal_otp(&mut client).await;
    let client_secret = app.sandbox.credentials.bcs_client_secret.clone();
    let echo = json!({
        "responseType": { "value": "ER" },
        "responseDetail": {
            "errorCode": "05621",
            "errorType": "RGN",
            "errorDesc": format!("OTP {otp} INVALIDA PARA EL CLIENTE {client_secret}"),
        },
    });
    app.inject_once(
        "bcs",
        "/security-management/v3/withdrawal/otp",
        json!({ "type": "status", "status": 400, "body": echo }),
    )
    .await;
    let request = crate::support::security::withdrawal(&otp, "echoing-bank");
    let refused = client.withdraw_with_otp(request.clone()).await.unwrap_err();
    let replayed = client.withdraw_with_otp(request).await.unwrap_err();
    for (what, status) in [("the answer", &refused), ("the replay", &replayed)] {
        let seen = format!("{status:?} {:?}", status.get_error_details());
        for secret in [otp.as_str(), client_secret.as_str()] {
            assert!(!seen.contains(secret), "{what} carries a secret: {seen}");
        }
        let text = status.get_error_details();
        let text = &text.localized_message().expect("the bank's text").message;
        assert!(
            text.contains("INVALIDA"),
            "the rest of the text stays: {text}"
        );
    }
    app.assert_not_logged(&[&otp, &client_secret]);
}

/// A card's three-digit CVV echoed back, and an OTP echoed where the bank's text is cut
/// to its bound: neither reaches the caller, not even in part.
#[tokio::test]
async fn a_short_card_secret_and_a_secret_at_the_texts_bound_are_scrubbed_too() {
    let app = crate::support::security::app().await;
    let mut client = crate::support::security::client(&app);
    let echo = |desc: String| {
        json!({ "type": "status", "status": 400, "body": {
            "responseType": { "value": "ER" },
            "responseDetail": { "errorCode": "00201", "errorType": "RGN", "errorDesc": desc },
        }})
    };
    let path = "/security-management/v1/customer/51901591/validate";
    app.inject_once("bcs", path, echo("CVV 987 INVALIDO".into()))
        .await;
    let refused = client
        .validate_enrollment_card(pasarela::security::v1::ValidateEnrollmentCardRequest {
            customer: crate::support::cc("51901591"),
            card_type: pasarela::security::v1::CardType::Credit.into(),
            card_secret: "987".into(),
            card_last_digits: "159102".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let text = refused.get_error_details();
    let text = &text.localized_message().expect("the bank's text").message;
    assert_eq!(text, "CVV *** INVALIDO");

    let otp = crate::support::security::withdrawal_otp(&mut client).await;
    let at_the_bound = format!("{}{otp} FIN", "A".repeat(297));
    app.inject_once(
        "bcs",
        "/security-management/v3/withdrawal/otp",
        echo(at_the_bound),
    )
    .await;
    let refused = client
        .withdraw_with_otp(crate::support::security::withdrawal(
            &otp,
            "secret-at-the-bound",
        ))
        .await
        .unwrap_err();
    let text = refused.get_error_details();
    let text = &text.localized_message().expect("the bank's text").message;
    assert!(
        !text.contains(&otp[..3]),
        "a part of the OTP passed: {text}"
    );
    assert_eq!(text.chars().count(), 300, "cut to its bound: {text}");
}
