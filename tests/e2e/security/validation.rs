//! Across the 19 RPCs: validation without provider calls, the bank's own failures,
//! malformed answers, and no secret in any log.

use super::*;

// ---- validation, the bank's own failures ------------------------------------------------------

#[tokio::test]
async fn invalid_requests_list_every_field_and_never_reach_the_bank() {
    let app = app().await;
    let mut client = client(&app);
    let before = app.admin_get("/calls").await;
    let refused = client
        .change_password(ChangePasswordRequest {
            invoker: Some(InvokerContext {
                terminal_id: "0-7".into(),
                user_mac_address: "11-16-17-81-41-T7".into(),
                ..Default::default()
            }),
            customer: Some(Identification {
                r#type: DocumentType::Unspecified.into(),
                number: String::new(),
            }),
            current_password: String::new(),
            new_password: "Nueva2025ab".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = bad_fields(&refused);
    for field in [
        "invoker.terminal_id",
        "invoker.user_mac_address",
        "customer.type",
        "customer.number",
        "current_password",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field}: {fields:?}");
    }
    let oversized = client
        .list_channel_holds(holds("38250250", HoldFilter::All, 1, 21))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&oversized), ["page.page_size"]);
    assert_eq!(
        app.admin_get("/calls").await,
        before,
        "no call reached the bank"
    );
    app.assert_not_logged(&["Nueva2025ab"]);
}

#[tokio::test]
async fn the_bank_refusing_pasarelas_credentials_is_not_the_callers_fault() {
    let app = spawn_app_with(|config| {
        let security = config.security.as_mut().expect("security");
        security.access_token = Some(TOKEN.to_owned().into());
        security.client_secret = "not-the-secret".to_owned().into();
    })
    .await;
    let refused = client(&app)
        .validate_digital_enrollment(ValidateDigitalEnrollmentRequest {
            customer: cc("51901591"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&refused, Code::Unavailable, "PROVIDER_AUTH_FAILED");
    assert!(!refused.message().contains("not-the-secret"));
    app.assert_not_logged(&["not-the-secret"]);
}

#[tokio::test]
async fn malformed_answers_are_bad_responses() {
    let app = app().await;
    let mut client = client(&app);
    let faults = [
        json!({ "type": "status", "status": 200, "body": "<html>maintenance</html>", "content_type": "text/html" }),
        json!({ "type": "status", "status": 200 }),
        json!({ "type": "malformed" }),
    ];
    for fault in faults {
        app.admin_send(reqwest::Method::POST,
            "/faults",
            json!({ "provider": "bcs", "path": "/userManagement/v1/Customer", "fault": fault, "times": 1 }),
        )
        .await;
        let refused = client
            .validate_digital_enrollment(ValidateDigitalEnrollmentRequest {
                customer: cc("51901591"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_error(&refused, Code::Internal, "PROVIDER_BAD_RESPONSE");
        assert!(!refused.message().contains("maintenance"));
    }
}

#[tokio::test]
async fn no_secret_sent_by_the_suite_reaches_the_logs() {
    let app = app().await;
    let mut client = client(&app);
    client
        .change_password(ChangePasswordRequest {
            customer: cc("1007641"),
            current_password: "Sol2024mar".into(),
            new_password: "Nube2025xy".into(),
            ..Default::default()
        })
        .await
        .expect("change");
    client
        .generate_otc(GenerateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            ..Default::default()
        })
        .await
        .expect("generate");
    let code = outbox(&app, "1007641").await;
    client
        .validate_otc(ValidateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            code: code.clone(),
            ..Default::default()
        })
        .await
        .expect("validate");
    let logs = app.logs();
    assert!(
        logs.contains("bank answered") && logs.contains("validate_otc"),
        "the bank calls were logged, with their operation"
    );
    let client_secret = app.sandbox.credentials.bcs_client_secret.clone();
    let mut secrets = SECRETS.to_vec();
    secrets.extend([code.as_str(), client_secret.as_str()]);
    app.assert_not_logged(&secrets);
}

/// A document number becomes a path segment of S10, S11 and S14: values that would move the
/// call to another path (dot segments, even percent-encoded, slashes, queries) are refused
/// before anything is sent; a plain one reaches exactly its path.
#[tokio::test]
async fn a_document_number_never_steers_the_banks_path() {
    let app = app().await;
    let mut client = client(&app);
    let hostile = [
        "..", ".", "%2e%2e", "%2E", "a/b", "../x", "..%2f", "a?b", "a#b", "a\\b", "1007641.",
    ];
    for number in hostile {
        app.clear_journal().await;
        let refused = client
            .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
                number, CardType::Debit, "4321", "159101"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{number:?}");
        assert!(
            bad_fields(&refused).contains(&"customer.number".to_owned()),
            "{number:?}: {:?}",
            bad_fields(&refused)
        );
        let recovery = client
            .validate_password_recovery(card_check!(ValidatePasswordRecoveryRequest:
                number, CardType::Debit, "1234", "123456"))
            .await
            .unwrap_err();
        assert_eq!(recovery.code(), Code::InvalidArgument, "{number:?}");
        assert!(
            app.journal("bcs").await.is_empty(),
            "{number:?}: nothing sent"
        );
    }
    app.clear_journal().await;
    let _ = client
        .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
            "AB-1234", CardType::Debit, "4321", "159101"))
        .await;
    let sent = app.journal("bcs").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["path"],
        "/security-management/v1/customer/AB-1234/validate"
    );
}
