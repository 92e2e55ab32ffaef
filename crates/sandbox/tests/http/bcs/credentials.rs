//! Client credentials and headers: the 401s of missing or wrong credentials, the invoker
//! header patterns, and the envelope of unknown paths.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Credentials, camel, camel_desc, ident, pascal, password_status, send, start};

#[tokio::test]
async fn missing_or_wrong_credentials_get_the_operation_401() {
    let bcs = start().await;
    let status_path = password_status("1007641");
    let (status, body) = send(bcs.request(Method::GET, &status_path, Credentials::None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(camel(&body), ("ER", "401", "OUD"));

    let wrong_secret = bcs
        .http
        .post(format!(
            "{}/securityManagement/V1/generateOTC",
            bcs.sandbox.bcs_url
        ))
        .header(
            "X-Security-ClientID",
            &bcs.sandbox.credentials.bcs_client_id,
        )
        .header("X-Security-ClientSecret", "not-the-secret")
        .header("X-Security-Token", "sandbox-token")
        .json(&json!({ "govIssueIdent": ident("1007641"), "otc": { "otcIssue": "LOGIN" } }));
    let (status, body) = send(wrong_secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(camel(&body), ("ER", "1004", "BDA"));
    assert!(!body.to_string().contains("not-the-secret"));

    let no_token = bcs
        .http
        .get(format!(
            "{}/security-management/v1/customer/51901591/validate",
            bcs.sandbox.bcs_url
        ))
        .header("client_id", &bcs.sandbox.credentials.bcs_client_id)
        .header("client_secret", &bcs.sandbox.credentials.bcs_client_secret);
    let (status, body) = send(no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(pascal(&body), ("ER", "00401", "OUD"));

    let gateway_spelling = bcs.request(Method::GET, &status_path, Credentials::Gateway);
    assert_eq!(send(gateway_spelling).await.0, StatusCode::OK);
}

#[tokio::test]
async fn invoker_headers_follow_the_pattern_table() {
    let bcs = start().await;
    let path = password_status("1007641");
    let valid = [
        ("X-Invoker-Channel", "007"),
        ("X-Invoker-UserMACAddress", "00-16-17-81-41-5F"),
        ("X-Invoker-ProcessDate", "2024-10-04"),
        ("X-Invoker-UserIPAddress", "10.5.46.143"),
        ("X-Invoker-Country", "CO"),
        ("X-Invoker-Network", "    "),
        ("X-Ident-TransactionDate", "2019-10-01T23:57:59.700"),
    ];
    let mut request = bcs.call(Method::GET, &path);
    for (name, value) in valid {
        request = request.header(name, value);
    }
    assert_eq!(send(request).await.0, StatusCode::OK);

    let violations = [
        ("X-Invoker-UserMACAddress", "11-16-17-81-41-T7"),
        ("X-Invoker-Channel", "007007007007007007007"),
        ("X-Invoker-ProcessDate", "10/4/2024"),
        ("X-Invoker-Network", "3232X"),
        ("X-Invoker-User", "CC 11233"),
        ("X-Invoker-Country", "COLO"),
        ("X-Ident-TransactionDate", "01/10/2019 23:57"),
    ];
    for (name, value) in violations {
        let (status, body) = send(bcs.call(Method::GET, &path).header(name, value)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {value}");
        assert_eq!(camel(&body), ("ER", "400", "OUD"), "{name}");
        assert!(camel_desc(&body).contains(name), "{body}");
    }
}

#[tokio::test]
async fn unknown_paths_answer_the_apikit_envelope() {
    let bcs = start().await;
    let (status, body) = bcs.get("/security-management/v9/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(camel(&body), ("ER", "404", "OUD"));
}
