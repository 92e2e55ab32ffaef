//! Banco Caja Social's error examples, served with their documented status, map to their
//! documented gRPC code and reason.

use super::*;

// ---- Banco Caja Social: error examples -----------------------------------------------------------

/// Each error example: fixture, operation, the status it is served with when the fixture
/// has none (and why), the gRPC code and reason pasarela documents for it.
const BCS_ERRORS: &[(&str, &str, u16, Code, &str)] = &[
    // S1 prints no error table; a missing user answers 404 (docs/spec-decisions.md).
    (
        "bcs/s1-password-status-error-32-oud.json",
        "s1",
        404,
        Code::NotFound,
        "USER_NOT_FOUND",
    ),
    // S2 and S4: code 10 is in no table; their tables (lines 261, 459) give 400 to BDA refusals.
    (
        "bcs/s2-generate-otc-v1-error-10-bda.json",
        "s2",
        400,
        Code::FailedPrecondition,
        "OTC_REJECTED",
    ),
    // S3: business errors travel with 206 (table line 366).
    (
        "bcs/s3-generate-otc-v3-error-10-bda.json",
        "s3",
        206,
        Code::FailedPrecondition,
        "OTC_REJECTED",
    ),
    (
        "bcs/s4-validate-otc-error-10-bda.json",
        "s4",
        400,
        Code::FailedPrecondition,
        "OTC_REJECTED",
    ),
    // S5-S7: "All business validation errors ... in this code" is 500 (lines 563, 662, 761).
    (
        "bcs/s5-create-challenge-error-20005-rgn.json",
        "s5",
        500,
        Code::InvalidArgument,
        "TRANSACTION_DATA_INVALID",
    ),
    (
        "bcs/s6-digital-enrollment-error-hv-sta.json",
        "s6",
        500,
        Code::FailedPrecondition,
        "HASH_VALIDATION_FAILED",
    ),
    (
        "bcs/s7-validate-digital-enrollment-error-00068-oud.json",
        "s7",
        500,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    // S8: 1005 is in no table; the table's password refusals are 400 (lines 850-856).
    (
        "bcs/s8-change-password-error-1005-oud.json",
        "s8",
        400,
        Code::FailedPrecondition,
        "PASSWORD_LOCKED",
    ),
    (
        "bcs/s9-create-user-error-400-00068-oud.json",
        "s9",
        400,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    (
        "bcs/s10-user-validation-error-400-00068-oud.json",
        "s10",
        400,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    (
        "bcs/s11-recover-password-validation-error-400-00068-oud.json",
        "s11",
        400,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    // S12: the only table row (line 1724) is OSB's; "no such loan" is a 404.
    (
        "bcs/s12-withdrawal-otp-error-00001-rgn.json",
        "s12",
        404,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    ),
    // S13: "El usuario no existe" is 404; the table's 401 32/RGN (line 1869) is the other meaning.
    (
        "bcs/s13-password-status-update-error-32-rgn.json",
        "s13",
        404,
        Code::NotFound,
        "USER_NOT_FOUND",
    ),
    // S14/S15: ER500 arrives on HTTP 200 (no status printed): the bank failed.
    (
        "bcs/s14-consult-channel-error-er500.json",
        "s14",
        200,
        Code::Unavailable,
        "PROVIDER_UNAVAILABLE",
    ),
    (
        "bcs/s15-lock-unlock-channel-error-er500.json",
        "s15",
        200,
        Code::Unavailable,
        "PROVIDER_UNAVAILABLE",
    ),
    (
        "bcs/s16-authentication-level-error-206-100.json",
        "s16",
        206,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    ),
    (
        "bcs/s17-authentication-channel-error-206-100.json",
        "s17",
        206,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    ),
    // S18 prints no table; the refusal of an unknown account is a 400 and not ambiguous.
    (
        "bcs/s18-retiro-otp-error-05620-rgn.json",
        "s18",
        400,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    ),
];

#[tokio::test]
async fn bcs_error_examples_map_to_their_documented_codes() {
    let app = security::app().await;
    let mut failures = Vec::new();
    for (rel, op, status, code, expected) in BCS_ERRORS {
        let fx = fixture(rel);
        serve(&app, op, fx.http_status.unwrap_or(*status), &fx.example).await;
        match call_bcs(&app, op).await {
            Ok(()) => failures.push(format!("{rel}: answered Ok")),
            Err(e) if (e.code(), reason(&e).as_str()) != (*code, *expected) => {
                failures.push(format!(
                    "{rel}: {:?} {} (expected {code:?} {expected})",
                    e.code(),
                    reason(&e)
                ));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn er500_on_http_200_and_500_is_the_bank_failing() {
    let app = security::app().await;
    let body = example("bcs/s14-consult-channel-error-er500.json");
    for status in [200, 500] {
        serve(&app, "s14", status, &body).await;
        let failed = call_bcs(&app, "s14").await.unwrap_err();
        assert_error(&failed, Code::Unavailable, "PROVIDER_UNAVAILABLE");
        assert!(
            failed.get_details_retry_info().is_some(),
            "{status}: a failure worth retrying"
        );
    }
}

#[tokio::test]
async fn the_bank_unable_to_parse_pasarelas_json_is_internal() {
    let app = security::app().await;
    for (code, desc) in [
        (
            "00400",
            "Bad Request Hay un error en la estructuración del JSON de entrada",
        ),
        ("400", "Bad Request"),
    ] {
        let body = json!({
            "responseType": { "value": "ER" },
            "responseDetail": { "errorCode": code, "errorDesc": desc, "errorType": "OUD" }
        });
        serve(&app, "s13", 400, &body).await;
        let failed = call_bcs(&app, "s13").await.unwrap_err();
        assert_eq!(failed.code(), Code::Internal, "{code}: {failed:?}");
        assert_eq!(reason(&failed), "PROVIDER_REQUEST_MALFORMED", "{code}");
    }
}

#[tokio::test]
async fn unlisted_codes_of_the_500_tables_are_rejections_not_retries() {
    let app = security::app().await;
    let body = json!({
        "ResponseType": { "value": "ER" },
        "ResponseDetail": { "ErrorCode": "77777", "ErrorDesc": "REGLA DE NEGOCIO", "ErrorType": "RGN" }
    });
    // S19 answers its business refusals on 500 as well: a counted challenge answer is
    // never invited to be sent again.
    for op in ["s5", "s6", "s7", "s19"] {
        serve(&app, op, 500, &body).await;
        let failed = call_bcs(&app, op).await.unwrap_err();
        assert_error(&failed, Code::FailedPrecondition, "PROVIDER_REJECTED");
        assert!(
            failed.get_details_retry_info().is_none(),
            "{op}: no retry of a rejection"
        );
    }
    // Elsewhere an unlisted code on 500 stays the bank failing.
    serve(&app, "s8", 500, &body).await;
    let failed = call_bcs(&app, "s8").await.unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
}

#[tokio::test]
async fn s13_32_rgn_is_told_apart_by_its_http_status() {
    let app = security::app().await;
    let body = |desc: &str| {
        json!({
            "responseType": { "value": "ER" },
            "responseDetail": { "errorCode": "32", "errorDesc": desc, "errorType": "RGN" }
        })
    };
    let cases = [
        (
            401,
            "La clave ya se encuentra en el estado solicitado",
            Code::FailedPrecondition,
            "PASSWORD_STATUS_UNCHANGED",
        ),
        (
            404,
            "El usuario no existe",
            Code::NotFound,
            "USER_NOT_FOUND",
        ),
        // Neither documented status: neither meaning is assumed.
        (
            400,
            "El usuario no existe",
            Code::FailedPrecondition,
            "PROVIDER_REJECTED",
        ),
        (
            500,
            "El usuario no existe",
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
        ),
    ];
    for (status, desc, code, expected) in cases {
        serve(&app, "s13", status, &body(desc)).await;
        let failed = call_bcs(&app, "s13").await.unwrap_err();
        assert_eq!(
            (failed.code(), reason(&failed).as_str()),
            (code, expected),
            "{status}"
        );
    }
}
