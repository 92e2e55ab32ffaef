//! S2, S3, S4 end to end: one-time codes sent, validated once, expired or wrong.

use super::*;

// ---- S2, S3, S4: one-time codes -----------------------------------------------------------

#[tokio::test]
async fn a_one_time_code_validates_once() {
    let app = app().await;
    let mut client = client(&app);
    client
        .generate_otc(GenerateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            ..Default::default()
        })
        .await
        .expect("generate");
    let code = outbox(&app, "1007641").await;
    let validate = || ValidateOtcRequest {
        customer: cc("1007641"),
        purpose: "LOGIN".into(),
        code: code.clone(),
        ..Default::default()
    };
    client.validate_otc(validate()).await.expect("first use");
    let reused = client.validate_otc(validate()).await.unwrap_err();
    assert_error(&reused, Code::FailedPrecondition, "OTC_REJECTED");
    assert!(
        localized(&reused).contains("No existe Otc vigente"),
        "{reused:?}"
    );
    assert!(!reused.message().contains(&code));
    app.assert_not_logged(&[&code]);
}

#[tokio::test]
async fn an_expired_or_wrong_one_time_code_is_refused() {
    let app = app().await;
    let mut client = client(&app);
    app.admin_send(reqwest::Method::PUT, "/bcs/otc-ttl", json!({ "millis": 1 }))
        .await;
    client
        .generate_otc_v3(GenerateOtcV3Request {
            customer: cc("1007641"),
            purpose: "PAGO".into(),
            contact: Some(ContactInfo {
                cell_phone: "3175137626".into(),
                email: String::new(),
            }),
            ..Default::default()
        })
        .await
        .expect("generate v3");
    let code = outbox(&app, "1007641").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let expired = client
        .validate_otc(ValidateOtcRequest {
            customer: cc("1007641"),
            purpose: "PAGO".into(),
            code: code.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&expired, Code::FailedPrecondition, "OTC_REJECTED");
    assert!(localized(&expired).contains("vencida"), "{expired:?}");

    let unknown = client
        .generate_otc_v3(GenerateOtcV3Request {
            customer: cc("424242"),
            purpose: "PAGO".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    app.assert_not_logged(&[&code]);
}
