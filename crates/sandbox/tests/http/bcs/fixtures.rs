//! Fixtures and admin: a user's own fixtures file, and the admin listener's customer
//! listing and reset.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::passwords::create_user;
use super::{camel, password_status, start, start_with};

#[tokio::test]
async fn a_users_own_fixtures_file_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bcs.json");
    let fixtures = json!({
        "passwordPolicy": { "minLength": 12, "maxLength": 10, "maxRun": 3, "history": 4, "maxFailedAttempts": 3 },
        "customers": [ {
            "govIssueIdentType": "CE", "identSerialNum": "777",
            "contactInfo": { "cellPhone": "3000000777" },
            "password": { "value": "Prueba2024x", "status": "Active" },
        } ],
    });
    std::fs::write(&path, fixtures.to_string()).unwrap();
    let bcs = start_with(Some(path.clone())).await;
    let (status, body) = bcs
        .get("/user/password/status?govIssueIdentType=CE&identSerialNum=777")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["contactInfo"]["cellPhone"], "3000000777");
    let (_, body) = bcs.get(&password_status("1007641")).await;
    assert_eq!(camel(&body).1, "32", "only the file's customers exist");
    let request = json!({
        "govIssueIdent": { "govIssueIdentType": "CE", "identSerialNum": "777" },
        "custPswd": { "cryptPswd": "Prueba2024x" }, "subjectPswd": { "cryptPswd": "Nueva2024xy" },
    });
    let (_, body) = bcs.put("/user-management/v1/customer", request).await;
    assert_eq!(
        camel(&body).1,
        "1025",
        "a policy with min above max is itself invalid"
    );

    std::fs::write(
        &path,
        r#"{ "customers": [ { "govIssueIdentType": "CC" } ] }"#,
    )
    .unwrap();
    assert!(pasarela_sandbox::bcs::Fixtures::from_path(&path).is_err());
}

#[tokio::test]
async fn admin_lists_customers_and_resets() {
    let bcs = start().await;
    let (_, body) = bcs.admin("/customers").await;
    assert!(body["customers"].as_array().unwrap().len() >= 10);
    bcs.post(
        "/security-management/v1/customer",
        create_user("51901591", false, "Rosa2024ab"),
    )
    .await;
    let (_, body) = bcs.admin("/customers/CC/51901591").await;
    assert_eq!(body["user"]["status"], "Active");
    let reset = bcs
        .http
        .post(format!("{}/bcs/reset", bcs.sandbox.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let (_, body) = bcs.admin("/customers/CC/51901591").await;
    assert_eq!(body["user"], Value::Null);
    let (status, _) = bcs.admin("/otc/CC/51901591").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
