//! Enrollment: the card checks before creating a user (S10, PIN or CVV) or recovering a
//! password (S11), and the legacy digital enrollment pair (S6 enroll, S7 check).

use reqwest::StatusCode;
use serde_json::json;

use super::{ident, pascal, start};

#[tokio::test]
async fn enrollment_validation_checks_pin_and_cvv() {
    let bcs = start().await;
    let validate = |number: &str, query: &str| {
        format!("/security-management/v1/customer/{number}/validate?govIssueIdentType=CC&{query}")
    };
    let cases = [
        (
            "51901591",
            "acctType=DBC&secretId=4321&acctId=159101",
            StatusCode::OK,
            "",
        ),
        (
            "51901591",
            "acctType=CCA&secretId=456&acctId=159102",
            StatusCode::OK,
            "",
        ),
        (
            "51901591",
            "acctType=DBC&secretId=9999&acctId=159101",
            StatusCode::BAD_REQUEST,
            "00301",
        ),
        (
            "51901591",
            "acctType=DBC&secretId=4321&acctId=999999",
            StatusCode::BAD_REQUEST,
            "00403",
        ),
        (
            "51901591",
            "acctType=CCA&secretId=999&acctId=159102",
            StatusCode::BAD_REQUEST,
            "00201",
        ),
        (
            "51901591",
            "acctType=CCA&secretId=456&acctId=999999",
            StatusCode::NOT_FOUND,
            "00103",
        ),
        (
            "80000005",
            "acctType=DBC&secretId=1234&acctId=123456",
            StatusCode::BAD_REQUEST,
            "00402",
        ),
        (
            "80000005",
            "acctType=CCA&secretId=123&acctId=123456",
            StatusCode::BAD_REQUEST,
            "00102",
        ),
        (
            "1007641",
            "acctType=DBC&secretId=1234&acctId=123456",
            StatusCode::BAD_REQUEST,
            "00068",
        ),
        (
            "80000001",
            "acctType=DBC&secretId=1111&acctId=000101",
            StatusCode::BAD_REQUEST,
            "1003",
        ),
        (
            "80000002",
            "acctType=DBC&secretId=2222&acctId=000202",
            StatusCode::BAD_REQUEST,
            "1002",
        ),
        (
            "80000003",
            "acctType=DBC&secretId=3333&acctId=000303",
            StatusCode::INTERNAL_SERVER_ERROR,
            "ZB",
        ),
        (
            "99999999",
            "acctType=DBC&secretId=1234&acctId=123456",
            StatusCode::NOT_FOUND,
            "00097",
        ),
    ];
    for (number, query, status, code) in cases {
        let (got, body) = bcs.get(&validate(number, query)).await;
        assert_eq!(got, status, "{number} {query}: {body}");
        if status == StatusCode::OK {
            assert_eq!(body, json!({ "responseType": { "value": "OK" } }));
        } else {
            assert_eq!(pascal(&body).1, code, "{number} {query}");
        }
    }
    let (status, body) = bcs
        .get("/security-management/v1/customer/51901591/validate?govIssueIdentType=XX&acctType=DBC&secretId=1&acctId=159101")
        .await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "45", "VAL"))
    );
}

#[tokio::test]
async fn recovery_validation_needs_an_existing_user() {
    let bcs = start().await;
    let recover = |number: &str, query: &str| {
        format!("/security-management/v1/customer/{number}/password?govIssueIdentType=CC&{query}")
    };
    let (status, _) = bcs
        .get(&recover(
            "1007641",
            "acctType=DBC&secretId=1234&acctId=123456",
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = bcs
        .get(&recover(
            "51901591",
            "acctType=DBC&secretId=4321&acctId=159101",
        ))
        .await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::NOT_FOUND, ("ER", "00401", "RGN"))
    );
    let (status, body) = bcs
        .get(&recover(
            "80000001",
            "acctType=DBC&secretId=1111&acctId=000101",
        ))
        .await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "1004", "ADM"))
    );
}

#[tokio::test]
async fn digital_enrollment_happens_once() {
    let bcs = start().await;
    let path = "/userManagement/v1/Customer";
    let (status, _) = bcs
        .get(&format!(
            "{path}?govIssueIdentType=CC&identSerialNum=51901591"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = bcs
        .post(path, json!({ "govIssueIdent": ident("51901591") }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = bcs
        .get(&format!(
            "{path}?govIssueIdentType=CC&identSerialNum=51901591"
        ))
        .await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "00068", "OUD"))
    );
    let (status, body) = bcs
        .post(path, json!({ "govIssueIdent": ident("51901591") }))
        .await;
    assert_eq!(
        (status, pascal(&body).1),
        (StatusCode::BAD_REQUEST, "00068")
    );
    let (status, body) = bcs
        .get(&format!(
            "{path}?govIssueIdentType=CC&identSerialNum=99999999"
        ))
        .await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::NOT_FOUND, ("ER", "NO FOUND", "BDA"))
    );
}
