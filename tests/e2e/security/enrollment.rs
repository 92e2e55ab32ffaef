//! S6, S7, S10, S11 end to end: digital enrollment and its check, card secrets for
//! enrollment and recovery.

use super::*;

// ---- S6, S7: digital enrollment ----------------------------------------------------------------

#[tokio::test]
async fn digital_enrollment_then_its_check_says_already_exists() {
    let app = app().await;
    let mut client = client(&app);
    let check = || ValidateDigitalEnrollmentRequest {
        customer: cc("51901591"),
        ..Default::default()
    };
    client
        .validate_digital_enrollment(check())
        .await
        .expect("may enroll");
    client
        .enroll_digital_user(EnrollDigitalUserRequest {
            customer: cc("51901591"),
            password: "Rosa2025ab".into(),
            ..Default::default()
        })
        .await
        .expect("enroll");
    let enrolled = client
        .validate_digital_enrollment(check())
        .await
        .unwrap_err();
    assert_error(&enrolled, Code::AlreadyExists, "USER_ALREADY_EXISTS");
    assert_eq!(
        enrolled.get_error_details().error_info().unwrap().metadata["provider_code"],
        "00068"
    );
    app.assert_not_logged(&["Rosa2025ab"]);
}

// ---- S10, S11: card secrets ----------------------------------------------------------------------

#[tokio::test]
async fn card_secrets_are_checked_for_enrollment_and_recovery() {
    let app = app().await;
    let mut client = client(&app);
    client
        .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
            "51901591", CardType::Debit, "4321", "159101"))
        .await
        .expect("right PIN");
    let wrong = client
        .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
            "51901591", CardType::Credit, "999", "159102"))
        .await
        .unwrap_err();
    assert_error(&wrong, Code::FailedPrecondition, "CARD_SECRET_MISMATCH");

    client
        .validate_password_recovery(card_check!(ValidatePasswordRecoveryRequest:
            "1007641", CardType::Debit, "1234", "123456"))
        .await
        .expect("right PIN for recovery");
    let no_user = client
        .validate_password_recovery(card_check!(ValidatePasswordRecoveryRequest:
            "51901591", CardType::Debit, "4321", "159101"))
        .await
        .unwrap_err();
    assert_eq!(no_user.code(), Code::NotFound, "{no_user:?}");
}
