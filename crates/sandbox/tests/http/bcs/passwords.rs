//! Passwords: password status (S1), change (S8), create or recover (S9) and lock / activate
//! (S13), under the bank's password policy.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{camel, ident, password_status, send, start};

#[tokio::test]
async fn password_status_by_document_or_alias() {
    let bcs = start().await;
    let (status, body) = bcs
        .get("/user/password/status?transactionId=4835799410&nameAddrType=N&govIssueIdentType=CC&identSerialNum=1007641")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["responseType"]["value"], "OK");
    assert_eq!(
        body["custPswdInfo"],
        json!({ "pswdStatus": "1", "desc": "Activo" })
    );
    assert_eq!(body["contactInfo"]["cellPhone"], "3175137626");

    let (_, by_alias) = bcs
        .get("/user/password/status?transactionId=1&nameAddrType=N&SPName=ALIAS8985")
        .await;
    assert_eq!(by_alias["contactInfo"], body["contactInfo"]);

    let (_, locked) = bcs.get(&password_status("1030")).await;
    assert_eq!(locked["custPswdInfo"]["pswdStatus"], "3");

    for query in [
        "govIssueIdentType=CC&identSerialNum=51901591",
        "SPName=NOBODY",
        "govIssueIdentType=CC&identSerialNum=1007641&nameAddrType=J",
    ] {
        let (status, body) = bcs.get(&format!("/user/password/status?{query}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query}");
        assert_eq!(camel(&body), ("ER", "32", "OUD"));
    }
    let (status, _) = bcs.get("/user/password/status?transactionId=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn change(current: &str, new: &str) -> Value {
    json!({
        "govIssueIdent": ident("1007641"),
        "custPswd": { "cryptPswd": current },
        "subjectPswd": { "cryptPswd": new },
    })
}

#[tokio::test]
async fn change_password_enforces_the_whole_policy() {
    let bcs = start().await;
    let path = "/user-management/v1/customer";
    let cases = [
        ("Ab1", "1020"),
        ("1007641", "1020"),
        ("10076410", "1012"),
        ("aaaaaaaaa", "1009"),
        ("Clave 2024", "1010"),
        ("Clave#2024", "1010"),
        ("Cláve2024", "1015"),
        ("0Clave24x", "1011"),
        ("84736251", "1012"),
        ("Clavesolx", "1013"),
        ("Clave1234x", "1019"),
        ("Sol2024mar", "1014"),
        ("Luna2023ab", "1018"),
    ];
    for (new, code) in cases {
        let (status, body) = bcs.put(path, change("Sol2024mar", new)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{new}");
        assert_eq!(camel(&body), ("ER", code, "OUD"), "{new}");
        assert!(
            !body.to_string().contains(new),
            "the password is never echoed"
        );
    }
    let (status, body) = bcs
        .put(path, json!({ "govIssueIdent": ident("1007641") }))
        .await;
    assert_eq!((status, camel(&body).1), (StatusCode::BAD_REQUEST, "1016"));

    let (status, body) = bcs.put(path, change("Sol2024mar", "Rio7Mar2x")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({ "responseType": { "value": "OK" } }));
    let (_, body) = bcs.put(path, change("Sol2024mar", "Otra2024x")).await;
    assert_eq!(camel(&body).1, "1003", "the old password no longer opens");
    let (_, body) = bcs.put(path, change("Rio7Mar2x", "Sol2024mar")).await;
    assert_eq!(
        camel(&body).1,
        "1018",
        "the replaced password joined the history"
    );
}

#[tokio::test]
async fn wrong_current_passwords_lock_the_user_until_activated() {
    let bcs = start().await;
    let path = "/user-management/v1/customer";
    for _ in 0..3 {
        let (_, body) = bcs.put(path, change("Wrong2024x", "Rio7Mar2x")).await;
        assert_eq!(camel(&body).1, "1003");
    }
    let (_, body) = bcs.put(path, change("Sol2024mar", "Rio7Mar2x")).await;
    assert_eq!(camel(&body), ("ER", "1005", "OUD"));
    let (_, status) = bcs.get(&password_status("1007641")).await;
    assert_eq!(status["custPswdInfo"]["pswdStatus"], "3");

    let activate = json!({ "govIssueIdent": ident("1007641"), "personName": { "user": "" }, "custPswd": { "status": "Active" } });
    let (status, _) = bcs
        .post("/security-management/v1/customer/password/status", activate)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = bcs.put(path, change("Sol2024mar", "Rio7Mar2x")).await;
    assert_eq!(status, StatusCode::CREATED);
}

pub(super) fn create_user(number: &str, recovering: bool, password: &str) -> Value {
    json!({
        "recuperationFlag": { "value": if recovering { "S" } else { "N" } },
        "govIssueIdent": ident(number),
        "infoPassword": { "password": password },
    })
}

#[tokio::test]
async fn create_user_and_recover_password() {
    let bcs = start().await;
    let path = "/security-management/v1/customer";
    let (status, body) = bcs
        .post(path, create_user("51901591", false, "51901591"))
        .await;
    assert_eq!((status, camel(&body).1), (StatusCode::BAD_REQUEST, "1008"));
    let (status, body) = bcs
        .post(path, create_user("51901591", false, "Rosa2024ab"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = bcs
        .post(path, create_user("51901591", false, "Rosa2024ab"))
        .await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "00068", "OUD"))
    );
    let (_, body) = bcs.get(&password_status("51901591")).await;
    assert_eq!(body["custPswdInfo"]["pswdStatus"], "1");

    let (_, body) = bcs
        .post(path, create_user("1030", true, "Mar2024sol"))
        .await;
    assert_eq!(
        camel(&body).1,
        "1014",
        "recovery may not reuse the current password"
    );
    let (status, _) = bcs
        .post(path, create_user("1030", true, "Nuevo2024x"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = bcs.get(&password_status("1030")).await;
    assert_eq!(body["custPswdInfo"]["pswdStatus"], "1", "recovery unlocks");

    let cases = [
        (
            create_user("80000001", false, "Rosa2024ab"),
            StatusCode::BAD_REQUEST,
            "50002",
            "SCL",
        ),
        (
            create_user("99999999", false, "Rosa2024ab"),
            StatusCode::NOT_FOUND,
            "51011",
            "SCL",
        ),
        (
            create_user("80000005", true, "Rosa2024ab"),
            StatusCode::BAD_REQUEST,
            "1003",
            "OUD",
        ),
        (
            json!({ "recuperationFlag": { "value": "N" }, "govIssueIdent": ident("80000005") }),
            StatusCode::BAD_REQUEST,
            "1016",
            "OUD",
        ),
    ];
    for (request, status, code, kind) in cases {
        let (got, body) = bcs.post(path, request).await;
        assert_eq!((got, camel(&body)), (status, ("ER", code, kind)));
    }
}

#[tokio::test]
async fn password_status_locks_and_activates() {
    let bcs = start().await;
    let path = "/security-management/v1/customer/password/status";
    let request = |number: &str, status: &str| json!({ "govIssueIdent": ident(number), "personName": { "user": "" }, "custPswd": { "status": status } });
    let (status, body) = bcs.post(path, request("1007641", "Locked")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body["status"]["statusDesc"],
        "Cambio estado clave de usuario Exitosa."
    );
    assert_eq!(
        body["status"]["endDt"].as_str().unwrap().len(),
        "2023-06-23-12:57:48.941".len()
    );
    let (_, body) = bcs.get(&password_status("1007641")).await;
    assert_eq!(body["custPswdInfo"]["pswdStatus"], "3");

    let (status, body) = bcs.post(path, request("1007641", "3")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::UNAUTHORIZED, ("ER", "32", "RGN"))
    );
    let (status, body) = bcs.post(path, request("1007641", "Frozen")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "1001", "RGN"))
    );
    let (status, body) = bcs.post(path, request("51901591", "Locked")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::NOT_FOUND, ("ER", "32", "RGN"))
    );
    let (status, body) = bcs.post(path, request("80000003", "Locked")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::UNAUTHORIZED, ("ER", "ZB", "STA"))
    );
    let on_other_channel = bcs
        .call(Method::POST, path)
        .header("X-Invoker-Channel", "015")
        .json(&request("80000003", "Locked"));
    assert_eq!(send(on_other_channel).await.0, StatusCode::CREATED);
}
