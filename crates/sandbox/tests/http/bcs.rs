//! Banco Caja Social emulator over real HTTP: every operation (S1-S19) and rule of the
//! sandbox issue, exercised with reqwest against a running sandbox.

use std::time::Duration;

use pasarela_sandbox::Sandbox;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, TestSandbox, other_code};

const Q_OTC: &str = "202410181111029014581";
const Q_DEBIT: &str = "202410181112571944582";
const Q_CURRENT: &str = "202007161835353254834";
const Q_AMPARADA: &str = "202010081614324767771";

/// A running sandbox and a client that speaks to its Banco Caja Social listener.
struct Bcs {
    sandbox: Sandbox,
    http: reqwest::Client,
    _pki: tempfile::TempDir,
}

/// Which spelling of the credential headers a request uses.
#[derive(Clone, Copy)]
enum Credentials {
    Security,
    Gateway,
    None,
}

async fn start_with(fixtures: Option<std::path::PathBuf>) -> Bcs {
    let TestSandbox {
        sandbox,
        http,
        pki_dir,
    } = support::start_with(|options| options.bcs_fixtures = fixtures).await;
    Bcs {
        sandbox,
        http,
        _pki: pki_dir,
    }
}

async fn start() -> Bcs {
    start_with(None).await
}

impl Bcs {
    fn request(&self, method: Method, path: &str, credentials: Credentials) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.sandbox.bcs_url));
        let id = &self.sandbox.credentials.bcs_client_id;
        let secret = &self.sandbox.credentials.bcs_client_secret;
        match credentials {
            Credentials::Security => builder
                .header("X-Security-ClientID", id)
                .header("X-Security-ClientSecret", secret)
                .header("X-Security-Token", "sandbox-token"),
            Credentials::Gateway => builder
                .header("client_id", id)
                .header("client_secret", secret)
                .header("Authorization", "Bearer sandbox-token"),
            Credentials::None => builder,
        }
    }

    fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path, Credentials::Security)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.call(Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.call(Method::POST, path).json(&body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.call(Method::PUT, path).json(&body)).await
    }

    async fn admin(&self, path: &str) -> (StatusCode, Value) {
        send(
            self.http
                .get(format!("{}/bcs{path}", self.sandbox.admin_url)),
        )
        .await
    }

    /// The last code the customer was "sent by SMS".
    async fn outbox(&self, ident_num: &str) -> String {
        let (status, body) = self.admin(&format!("/otc/CC/{ident_num}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["otc"].as_str().expect("code in outbox").to_string()
    }

    async fn set_code_lifetime(&self, millis: u64) {
        let response = self
            .http
            .put(format!("{}/bcs/otc-ttl", self.sandbox.admin_url))
            .json(&json!({ "millis": millis }))
            .send()
            .await
            .expect("admin answers");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

async fn send(builder: RequestBuilder) -> (StatusCode, Value) {
    let response = builder.send().await.expect("sandbox answers");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `(value, code, type)` of a camelCase error envelope.
fn camel(body: &Value) -> (&str, &str, &str) {
    (
        body["responseType"]["value"].as_str().unwrap_or_default(),
        body["responseDetail"]["errorCode"]
            .as_str()
            .unwrap_or_default(),
        body["responseDetail"]["errorType"]
            .as_str()
            .unwrap_or_default(),
    )
}

/// `errorDesc` of a camelCase error envelope.
fn camel_desc(body: &Value) -> &str {
    body["responseDetail"]["errorDesc"]
        .as_str()
        .unwrap_or_default()
}

/// `(value, code, type)` of a PascalCase error envelope.
fn pascal(body: &Value) -> (&str, &str, &str) {
    (
        body["ResponseType"]["value"].as_str().unwrap_or_default(),
        body["ResponseDetail"]["ErrorCode"]
            .as_str()
            .unwrap_or_default(),
        body["ResponseDetail"]["ErrorType"]
            .as_str()
            .unwrap_or_default(),
    )
}

/// S1's path for a customer of document type CC.
fn password_status(number: &str) -> String {
    format!("/user/password/status?govIssueIdentType=CC&identSerialNum={number}")
}

fn ident(number: &str) -> Value {
    json!({ "govIssueIdentType": "CC", "identSerialNum": number })
}

// ---- client credentials and headers --------------------------------------------------

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

// ---- passwords -----------------------------------------------------------------------

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

fn create_user(number: &str, recovering: bool, password: &str) -> Value {
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

// ---- one-time codes -----------------------------------------------------------------------

fn otc(number: &str, issue: &str, code: Option<&str>) -> Value {
    let mut otc = json!({ "otcIssue": issue });
    if let Some(code) = code {
        otc["otcValue"] = json!(code);
    }
    json!({ "govIssueIdent": ident(number), "otc": otc })
}

const GENERATE_V1: &str = "/securityManagement/V1/generateOTC";
const GENERATE_V3: &str = "/securityManagement/V3/generateOTC";
const VALIDATE: &str = "/securityManagement/V1/validateOTC";

/// S4 for customer 1007641: `code` for `purpose`.
async fn validate_otc(bcs: &Bcs, purpose: &str, code: &str) -> (StatusCode, Value) {
    bcs.post(VALIDATE, otc("1007641", purpose, Some(code)))
        .await
}

#[tokio::test]
async fn an_otc_is_validated_once() {
    let bcs = start().await;
    let (status, body) = bcs
        .post(GENERATE_V1, otc("1007641", "TRANSFERENCIA", None))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(body.get("otc").is_none(), "the code only travels by SMS");
    let code = bcs.outbox("1007641").await;
    assert_eq!(code.len(), 6);

    let wrong = other_code(&code);
    let (status, body) = validate_otc(&bcs, "TRANSFERENCIA", wrong).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "10", "BDA"))
    );
    let (_, body) = validate_otc(&bcs, "OTRO", &code).await;
    assert_eq!(camel(&body).1, "10", "a code only opens its own purpose");
    let (status, body) = validate_otc(&bcs, "TRANSFERENCIA", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = validate_otc(&bcs, "TRANSFERENCIA", &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "single use");
    assert!(camel_desc(&body).contains("No existe"), "{body}");
}

#[tokio::test]
async fn wrong_tries_burn_an_otc() {
    let bcs = start().await;
    bcs.post(GENERATE_V3, otc("1007641", "LOGIN", None)).await;
    let code = bcs.outbox("1007641").await;
    let wrong = other_code(&code);
    for _ in 0..3 {
        validate_otc(&bcs, "LOGIN", wrong).await;
    }
    let (status, body) = validate_otc(&bcs, "LOGIN", &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(camel_desc(&body).contains("intentos"), "{body}");
}

#[tokio::test]
async fn an_otc_expires() {
    let bcs = start().await;
    bcs.set_code_lifetime(200).await;
    bcs.post(GENERATE_V1, otc("1007641", "LOGIN", None)).await;
    let code = bcs.outbox("1007641").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = validate_otc(&bcs, "LOGIN", &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(camel_desc(&body).contains("vencida"), "{body}");
}

#[tokio::test]
async fn otc_errors_by_version() {
    let bcs = start().await;
    let (status, body) = bcs.post(GENERATE_V1, otc("1007641", "", None)).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "1", "BDA"))
    );
    let (status, body) = bcs.post(GENERATE_V3, otc("1007641", "", None)).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::PARTIAL_CONTENT, ("ER", "1", "BDA"))
    );
    for path in [GENERATE_V1, GENERATE_V3] {
        let (status, body) = bcs.post(path, otc("99999999", "LOGIN", None)).await;
        assert_eq!(
            (status, camel(&body)),
            (StatusCode::NOT_FOUND, ("ER", "1006", "BDA"))
        );
    }
    let (status, body) = send(bcs.call(Method::POST, GENERATE_V1).body("{not json")).await;
    assert_eq!((status, camel(&body).1), (StatusCode::BAD_REQUEST, "1"));
}

// ---- enrollment ---------------------------------------------------------------------------

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

// ---- channel holds --------------------------------------------------------------------

fn holds(number: &str, query: &str) -> String {
    format!("/security-management/v1/channelholds/{number}?GovIssueIdentType=CC&{query}")
}

#[tokio::test]
async fn channel_holds_page_and_filter() {
    let bcs = start().await;
    let (status, body) = bcs
        .get(&holds(
            "38250250",
            "status=T&initialRecord=1&RecordsXPage=20",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = &body["trnSrcInfo"];
    assert_eq!(
        page["resultsPagesGeneric"],
        json!({ "totalRecords": "0025", "recordsXPage": "20" })
    );
    assert_eq!(page["blockingInfo"].as_array().unwrap().len(), 20);
    let first = &page["blockingInfo"][0];
    assert_eq!(
        (first["type"].as_str(), first["status"].as_str()),
        (Some("Product"), Some("Lock"))
    );
    assert_eq!(page["blockingInfo"][1]["status"], "Unlock");
    assert_eq!(page["blockingInfo"][4]["type"], "User");

    let (_, body) = bcs
        .get(&holds(
            "38250250",
            "status=T&initialRecord=21&RecordsXPage=20",
        ))
        .await;
    assert_eq!(
        body["trnSrcInfo"]["resultsPagesGeneric"]["recordsXPage"],
        "05"
    );
    assert_eq!(
        body["trnSrcInfo"]["blockingInfo"].as_array().unwrap().len(),
        5
    );

    for filter in ["B", "Locked"] {
        let (_, body) = bcs
            .get(&holds(
                "38250250",
                &format!("status={filter}&RecordsXPage=20"),
            ))
            .await;
        assert_eq!(
            body["trnSrcInfo"]["resultsPagesGeneric"]["totalRecords"],
            "0013"
        );
        assert!(
            body["trnSrcInfo"]["blockingInfo"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["status"] == "Lock")
        );
    }
    for query in [
        "RecordsXPage=21",
        "RecordsXPage=0",
        "status=X",
        "initialRecord=uno",
    ] {
        let (status, body) = bcs.get(&holds("38250250", query)).await;
        assert_eq!(
            (status, camel(&body).0),
            (StatusCode::BAD_REQUEST, "ER"),
            "{query}"
        );
    }
    let (status, body) = bcs.get(&holds("99999999", "status=T")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::NOT_FOUND, ("ER", "51011", "SCL"))
    );
    let (status, body) = bcs.get(&holds("80000004", "status=T")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, ("ER500", "", ""))
    );
}

fn blocking(number: &str, fields: Value) -> Value {
    let mut info = json!({
        "identSerialNum": number, "govIssueIdentType": "CC", "channel": "", "subChannel": "",
        "acctId": "", "channelDesc": "", "user": "INTERNET", "branchId": "321102",
    });
    info.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    json!({ "trnSrcInfo": { "blockingInfo": info } })
}

#[tokio::test]
async fn lock_and_unlock_channels() {
    let bcs = start().await;
    let path = "/security-management/v1/channelholds";
    let lock = blocking(
        "1007641",
        json!({ "channel": "015", "subChannel": "00", "action": "Lock", "type": "User" }),
    );
    let (status, body) = send(
        bcs.request(Method::POST, path, Credentials::Gateway)
            .json(&lock),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "responseType": { "value": "OK" } }));
    let (_, listed) = bcs.get(&holds("1007641", "status=B")).await;
    assert_eq!(listed["trnSrcInfo"]["blockingInfo"][0]["channel"], "015");
    assert_eq!(listed["trnSrcInfo"]["blockingInfo"][0]["type"], "User");

    let unlock = blocking(
        "1007641",
        json!({ "channel": "015", "subChannel": "00", "action": "N", "type": "C" }),
    );
    assert_eq!(bcs.post(path, unlock).await.0, StatusCode::OK);
    let (_, listed) = bcs.get(&holds("1007641", "status=T")).await;
    let hold = &listed["trnSrcInfo"]["blockingInfo"][0];
    assert_eq!(hold["status"], "Unlock");
    assert_eq!(hold["unblockingInfo"]["user"], "INTERNET");
    let (_, locked) = bcs.get(&holds("1007641", "status=B")).await;
    assert_eq!(
        locked["trnSrcInfo"]["resultsPagesGeneric"]["totalRecords"],
        "0000"
    );

    let by_product = blocking(
        "1007641",
        json!({ "channelDesc": "TODOS", "action": "Lock", "type": "Product", "acctId": "24500012345" }),
    );
    assert_eq!(bcs.post(path, by_product).await.0, StatusCode::OK);
    let (_, locked) = bcs.get(&holds("1007641", "status=B")).await;
    assert_eq!(
        locked["trnSrcInfo"]["resultsPagesGeneric"]["totalRecords"],
        "0003"
    );
    assert!(
        locked["trnSrcInfo"]["blockingInfo"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["acctId"] == "24500012345")
    );

    let rejected = [
        (
            json!({ "channel": "007", "subChannel": "00", "action": "Lock", "type": "Product", "acctId": "1" }),
            "05620",
        ),
        (
            json!({ "channel": "007", "subChannel": "00", "channelDesc": "TODOS", "action": "Lock", "type": "User" }),
            "400",
        ),
        (
            json!({ "channelDesc": "NINGUNO", "action": "Lock", "type": "User" }),
            "400",
        ),
        (
            json!({ "channel": "007", "subChannel": "00", "action": "Freeze", "type": "User" }),
            "400",
        ),
    ];
    for (fields, code) in rejected {
        let (status, body) = bcs.post(path, blocking("1007641", fields)).await;
        assert_eq!((status, camel(&body).1), (StatusCode::BAD_REQUEST, code));
    }
    let faulty = blocking(
        "80000004",
        json!({ "channel": "007", "subChannel": "00", "action": "Lock", "type": "User" }),
    );
    let (status, body) = bcs.post(path, faulty).await;
    assert_eq!(
        (status, camel(&body).0),
        (StatusCode::INTERNAL_SERVER_ERROR, "ER500")
    );
}

// ---- challenges ---------------------------------------------------------------------------

const V2_HEADERS: [(&str, &str); 10] = [
    ("Accept", "*/*"),
    ("X-Invoker-Ally", "example_qa"),
    ("X-Invoker-UserIPAddress", "10.5.46.143"),
    ("X-Invoker-ServerIPAddress", "192.168.169.197"),
    ("X-Invoker-UserMACAddress", "00-16-17-81-41-5F"),
    ("X-Invoker-ServerMACAddress", "00-16-17-81-41-5F"),
    ("X-Invoker-ProcessDate", "2024-10-18"),
    ("X-Invoker-Country", "CO"),
    ("X-Invoker-ProcessId", "APII427032263283212"),
    ("X-Invoker-User", "CC11233"),
];

async fn challenge_v2(bcs: &Bcs, body: Value) -> (StatusCode, Value) {
    let mut request = bcs.request(
        Method::POST,
        "/reto-management/v2/customer",
        Credentials::Gateway,
    );
    for (name, value) in V2_HEADERS {
        request = request.header(name, value);
    }
    send(
        request
            .header("X-Invoker-TxId", "APII427032263281789")
            .json(&body),
    )
    .await
}

fn challenge(number: &str, tx: &str, trace: Option<(u32, u32)>, answer: Option<Value>) -> Value {
    let mut body = json!({
        "clientType": { "value": "N" },
        "govIssueIdent": ident(number),
        "requestType": { "value": if trace.is_some() { "R" } else { "P" } },
        "tx": {
            "id": tx,
            "txData": [ { "name": "NOMBRE_COMERCIO", "value": "COLEGIO JONATHAN SWIFT" } ],
            "amt": "10000",
            "sourceAccountNumber": "222222",
        },
    });
    if let Some((iteration, retry)) = trace {
        body["trace"] = json!({ "iteration": { "value": iteration.to_string() }, "retry": { "value": retry.to_string() } });
        body["question"] = json!({ "quantity": "1" });
        body["questionList"] = json!([ { "question": { "type": "M", "id": "x", "value": "x", "answer": answer.unwrap_or(Value::Null) } } ]);
    }
    body
}

/// S19 opens the builtin challenge of customer 111111 for transaction 100090.
async fn open_challenge(bcs: &Bcs) -> (StatusCode, Value) {
    challenge_v2(bcs, challenge("111111", "100090", None, None)).await
}

/// S19 answers that challenge at `trace` (iteration, retry) with `answer`.
async fn answer_challenge(bcs: &Bcs, trace: (u32, u32), answer: Value) -> (StatusCode, Value) {
    challenge_v2(
        bcs,
        challenge("111111", "100090", Some(trace), Some(answer)),
    )
    .await
}

#[tokio::test]
async fn challenge_v2_runs_question_rounds_to_an_authorization() {
    let bcs = start().await;
    let (status, body) = open_challenge(&bcs).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["authorization"],
        json!({ "value": "TV", "code": null })
    );
    assert_eq!(
        body["trace"],
        json!({ "iteration": { "value": "2" }, "retry": { "value": "1" } })
    );
    assert_eq!(body["questionList"][0]["question"]["id"], Q_OTC);
    let code = bcs.outbox("111111").await;

    let wrong = other_code(&code);
    let (_, body) = answer_challenge(&bcs, (2, 1), json!({ "value": wrong })).await;
    assert_eq!(
        body["trace"]["retry"]["value"], "2",
        "a wrong answer retries the round"
    );
    assert_eq!(body["questionList"][0]["question"]["id"], Q_OTC);

    let (_, body) = answer_challenge(&bcs, (2, 2), json!({ "value": code })).await;
    assert_eq!(
        body["trace"],
        json!({ "iteration": { "value": "3" }, "retry": { "value": "1" } })
    );
    let question = &body["questionList"][0]["question"];
    assert_eq!(
        (question["id"].as_str(), question["type"].as_str()),
        (Some(Q_DEBIT), Some("SM"))
    );
    assert_eq!(question["answerList"][1]["answer"]["id"], "B");

    let answer = json!({ "id": "A", "value": "2580" });
    let (_, body) = answer_challenge(&bcs, (3, 1), answer).await;
    assert_eq!(body["authorization"]["value"], "SI", "{body}");
    let code = body["authorization"]["code"].as_str().unwrap();
    assert!(code[..40].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(&code[40..46], "100090");
    assert!(code[46..].starts_with("APII427032263281789 "));
}

#[tokio::test]
async fn challenge_v2_denies_when_retries_run_out() {
    let bcs = start().await;
    open_challenge(&bcs).await;
    let code = bcs.outbox("111111").await;
    let wrong = other_code(&code);
    for retry in 1..=2 {
        let (_, body) = answer_challenge(&bcs, (2, retry), json!({ "value": wrong })).await;
        assert_eq!(body["authorization"]["value"], "TV");
    }
    let (_, body) = answer_challenge(&bcs, (2, 3), json!({ "value": wrong })).await;
    assert_eq!(
        body["authorization"],
        json!({ "value": "NO", "code": null })
    );
    let (status, body) = answer_challenge(&bcs, (2, 1), json!({ "value": code })).await;
    assert_eq!(
        (status, pascal(&body).1),
        (StatusCode::INTERNAL_SERVER_ERROR, "20005"),
        "the session is over"
    );
}

#[tokio::test]
async fn a_challenge_code_expires() {
    let bcs = start().await;
    bcs.set_code_lifetime(200).await;
    open_challenge(&bcs).await;
    let code = bcs.outbox("111111").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, body) = answer_challenge(&bcs, (2, 1), json!({ "value": code })).await;
    assert_eq!(body["authorization"]["value"], "TV");
    assert_eq!(
        body["trace"]["retry"]["value"], "2",
        "an expired code is a wrong answer"
    );
}

#[tokio::test]
async fn challenge_v2_rejections() {
    let bcs = start().await;
    let (status, body) = challenge_v2(&bcs, challenge("111111", "999999", None, None)).await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, ("ER", "100", ""))
    );
    assert_eq!(body["ResponseDetail"]["ErrorDesc"], "TX NO PARAMETRIZADA");

    open_challenge(&bcs).await;
    let (status, body) = answer_challenge(&bcs, (5, 1), json!({ "value": "1" })).await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, ("ER", "20005", "RGN"))
    );

    let (status, body) = challenge_v2(&bcs, challenge("99999999", "100090", None, None)).await;
    assert_eq!(
        (status, pascal(&body).1),
        (StatusCode::NOT_FOUND, "NO FOUND")
    );

    let mut missing_tx_data = challenge("111111", "100090", None, None);
    missing_tx_data["tx"]["txData"] = json!([]);
    let (status, body) = challenge_v2(&bcs, missing_tx_data).await;
    assert_eq!(
        (status, pascal(&body).1),
        (StatusCode::BAD_REQUEST, "BAD REQUEST")
    );

    let without_headers = bcs.request(
        Method::POST,
        "/reto-management/v2/customer",
        Credentials::Gateway,
    );
    let (status, body) =
        send(without_headers.json(&challenge("111111", "100090", None, None))).await;
    assert_eq!(
        (status, pascal(&body).1),
        (StatusCode::BAD_REQUEST, "BAD REQUEST")
    );
}

#[tokio::test]
async fn challenge_v1_authorizes_parameterised_transactions() {
    let bcs = start().await;
    let (status, body) = bcs
        .post(
            "/retoManagement/v1/Customer",
            challenge("111111", "100090", None, None),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["responseType"]["value"], "OK");
    assert_eq!(body["authorization"]["value"], "SI");
    let (status, body) = bcs
        .post(
            "/retoManagement/v1/Customer",
            challenge("111111", "424242", None, None),
        )
        .await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, ("ER", "100", ""))
    );
    let mut bad_amount = challenge("111111", "100090", None, None);
    bad_amount["tx"]["amt"] = json!("diez mil");
    let (status, body) = bcs.post("/retoManagement/v1/Customer", bad_amount).await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, ("ER", "20005", "RGN"))
    );
}

#[tokio::test]
async fn authentication_level_of_a_transaction() {
    let bcs = start().await;
    let request = |tx: &str| {
        json!({ "transaction": {
            "processDate": "2020-05-26 14:23:12.713290", "workingDayFrame": "N",
            "govIssueIdent": { "govIssueIdentType": "CC", "identSerialNum": "1030" },
            "requestNumber": "257896", "adviser": ident("1025"), "trnRqUID": tx, "authSystem": "SIEBEL",
        } })
    };
    let (status, body) = bcs
        .post(
            "/reto-management/v1/authentication-level",
            request("101261"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["transaction"]["authLevel"], "3");
    assert_eq!(body["transaction"]["requestNumber"], "257896");
    let (status, body) = bcs
        .post(
            "/reto-management/v1/authentication-level",
            request("000001"),
        )
        .await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::PARTIAL_CONTENT, ("ER", "100", ""))
    );
    assert_eq!(body["responseDetail"]["errorDesc"], "TX NO PARAMETRIZADA");
}

fn channel_request(number: &str, tx: &str, iteration: u32, answer: Option<&str>) -> Value {
    let questions = answer.map_or(json!([]), |picked| {
        json!([ { "type": "S", "code": "q", "value": "q", "answerList": [ { "statusCode": picked, "value": "" } ] } ])
    });
    json!({ "transaction": {
        "workingDayFrame": "N", "type": "R", "trnRqUID": tx, "txId": "API429",
        "govIssueIdent": ident(number),
        "trnSrcInfo": { "requestNumber": "1234", "requestType": "" },
        "question": { "quantity": 0 },
        "trace": { "iteration": { "value": iteration }, "retry": { "value": 1 } },
        "questionList": questions,
    } })
}

#[tokio::test]
async fn authentication_channel_rounds() {
    let bcs = start().await;
    let path = "/reto-management/v1/authentication-channel";
    let (status, body) = bcs
        .post(path, channel_request("51901591", "900006", 0, None))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let trn = &body["transaction"];
    assert_eq!(trn["authorization"]["value"], "TV");
    assert_eq!(trn["trace"]["iteration"]["value"], 2);
    assert_eq!(trn["questionList"][0]["code"], Q_CURRENT);
    assert_eq!(
        trn["questionList"][0]["answerList"][0],
        json!({ "statusCode": "A", "value": "SI" })
    );

    let (_, body) = bcs
        .post(path, channel_request("51901591", "900006", 2, Some("A")))
        .await;
    assert_eq!(body["transaction"]["questionList"][0]["code"], Q_AMPARADA);
    let (_, body) = bcs
        .post(path, channel_request("51901591", "900006", 3, Some("A")))
        .await;
    let trn = &body["transaction"];
    assert_eq!(trn["authorization"]["value"], "SI", "{body}");
    assert_eq!(
        trn["trace"],
        json!({ "iteration": { "value": 0 }, "retry": { "value": 0 } })
    );
    assert!(
        trn["authorization"]["code"]
            .as_str()
            .unwrap()
            .contains("900006API429        ")
    );

    bcs.post(path, channel_request("51901591", "900006", 0, None))
        .await;
    bcs.post(path, channel_request("51901591", "900006", 2, Some("B")))
        .await;
    let (_, body) = bcs
        .post(path, channel_request("51901591", "900006", 2, Some("B")))
        .await;
    assert_eq!(
        body["transaction"]["authorization"]["value"], "NO",
        "two tries per round"
    );

    let (status, body) = bcs
        .post(path, channel_request("51901591", "123456", 0, None))
        .await;
    assert_eq!(
        (status, camel(&body).1),
        (StatusCode::PARTIAL_CONTENT, "100")
    );
}

// ---- withdrawal OTP -----------------------------------------------------------------------

const OTP_REQUEST: &str = "/security-management/v1/withdrawal/otp";
const WITHDRAW: &str = "/security-management/v3/withdrawal/otp";

async fn request_withdrawal_otp(
    bcs: &Bcs,
    account: &str,
    amount: impl Into<Value>,
) -> (StatusCode, Value) {
    let body = json!({
        "govIssueIdent": ident("1028780657"),
        "xFerInfo": { "depAcctIdFrom": { "acctId": account }, "curAmt": { "amt": amount.into() } },
        "otc": { "idOtc": "001" },
    });
    let request = bcs
        .call(Method::POST, OTP_REQUEST)
        .header("X-Invoker-Source", "18")
        .header("X-Security-CustLoginId", "CC1028780657")
        .json(&body);
    send(request).await
}

/// S18's required headers for `tx_id` (ProcessId derived from it), with `overrides`.
fn correspondent_with(
    bcs: &Bcs,
    tx_id: &str,
    action: &str,
    overrides: &[(&str, &str)],
) -> RequestBuilder {
    let process_id = format!("0{}", &tx_id[tx_id.len().saturating_sub(11)..]);
    let mut headers = vec![
        ("X-Invoker-Channel", "13"),
        ("X-Invoker-BranchId", "1108"),
        ("X-Invoker-TerminalId", "PDS0001"),
        ("X-Invoker-UserIPAddress", "10.1.2.3"),
        ("X-Invoker-ServerIPAddress", "10.1.2.4"),
        ("X-Invoker-ProcessDate", "2024-03-27"),
        ("X-Invoker-SessionKey", "sandbox-token"),
        ("X-Invoker-Country", "CO"),
        ("X-Invoker-subChannel", "07"),
        ("X-Invoker-User", "NEWCBSER"),
        ("X-Invoker-ModifierUser", "NEWCBSER"),
        ("X-Invoker-Ally", "ALIADO01"),
        ("X-Invoker-ATMId", "   "),
        ("X-Invoker-Action", action),
        ("X-Invoker-TxId", tx_id),
        ("X-Invoker-ProcessId", &process_id),
    ];
    for (name, value) in overrides {
        if let Some(slot) = headers.iter_mut().find(|(known, _)| known == name) {
            slot.1 = value;
        }
    }
    let mut request = bcs.request(Method::POST, WITHDRAW, Credentials::Gateway);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

/// S18's headers for authorization number `n`.
fn correspondent(bcs: &Bcs, n: u64, action: &str) -> RequestBuilder {
    correspondent_with(bcs, &format!("APIF4087320{n:09}"), action, &[])
}

fn cash(otp: &str, amount: u64, kind: &str) -> Value {
    json!({ "trn": {
        "transactionHour": "15:37:59", "trnRqUID": "017269", "code": "0000000059",
        "branchName": "MI OFICINA BETTY", "cityId": "25386", "city": "LA MESA", "stateProv": "25",
        "depAcctIdFrom": { "acctId": "83000109863" },
        "otp": { "type": kind, "curAmt": { "amt": amount }, "otpValue": otp, "govIssueIdent": { "identSerialNum": "1028780657" } },
    } })
}

/// S18 with authorization number `n`: cash (`Normal`) or reverse (`Reverse`) `otp`.
async fn cash_out(bcs: &Bcs, n: u64, otp: &str, amount: u64, kind: &str) -> (StatusCode, Value) {
    send(correspondent(bcs, n, "C").json(&cash(otp, amount, kind))).await
}

#[tokio::test]
async fn a_withdrawal_otp_is_cashed_once() {
    let bcs = start().await;
    let (status, body) = request_withdrawal_otp(&bcs, "26500084997", 20000).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let otp = body["otpInfo"]["otpValue"].as_str().unwrap().to_string();
    assert_eq!(otp.len(), 6);

    let wrong = other_code(&otp);
    let (status, body) = cash_out(&bcs, 1, wrong, 20000, "Normal").await;
    assert_eq!((status, camel(&body).1), (StatusCode::BAD_REQUEST, "05621"));
    let (_, body) = cash_out(&bcs, 2, &otp, 19000, "Normal").await;
    assert_eq!(
        camel(&body).1,
        "05624",
        "the amount must be the requested one"
    );

    let (status, paid) = cash_out(&bcs, 3, &otp, 20000, "Normal").await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["responseType"]["value"], "OK");
    assert_eq!(
        paid["trn"]["depAcctId"],
        json!({ "acctId": "26500084997", "acctType": "AHORROS" })
    );

    let (_, replay) = cash_out(&bcs, 3, &otp, 20000, "Normal").await;
    assert_eq!(replay, paid, "a repeated TxId replays the first answer");
    let (_, read) = send(correspondent(&bcs, 3, "R")).await;
    assert_eq!(read, paid);
    let (status, body) = send(correspondent(&bcs, 9, "R")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::NOT_FOUND, ("ER", "NO FOUND", "BDA")),
        "the spec's generic query refusal"
    );

    let (_, body) = cash_out(&bcs, 4, &otp, 20000, "Normal").await;
    assert_eq!(camel(&body).1, "05623", "single use");
    let (status, reversed) = cash_out(&bcs, 5, &otp, 20000, "Reverse").await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(reversed["trn"]["approvalId"], paid["trn"]["approvalId"]);
    let (_, body) = cash_out(&bcs, 6, &otp, 20000, "Reverse").await;
    assert_eq!(camel(&body).1, "05626", "a payment is reversed once");
    let (_, counts) = bcs.admin("/withdrawals").await;
    assert_eq!(counts, json!({ "creates": 7, "queries": 2, "executed": 2 }));
}

/// The other reading of what S18 leaves open: no deduplication by TxId, and a consulta of
/// an unknown TxId refused with a business code.
#[tokio::test]
async fn a_bank_that_does_not_deduplicate_executes_a_repeated_tx_id() {
    let bcs = start().await;
    let response = bcs
        .http
        .put(format!("{}/bcs/readings", bcs.sandbox.admin_url))
        .json(&json!({ "dedup_tx_ids": false, "consulta_not_found": "rgn" }))
        .send()
        .await
        .expect("admin answers");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, body) = request_withdrawal_otp(&bcs, "26500084997", 20000).await;
    let otp = body["otpInfo"]["otpValue"].as_str().unwrap().to_string();
    let (status, paid) = cash_out(&bcs, 3, &otp, 20000, "Normal").await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    let (_, again) = cash_out(&bcs, 3, &otp, 20000, "Normal").await;
    assert_eq!(camel(&again).1, "05623", "executed again: the OTP is spent");
    let (_, read) = send(correspondent(&bcs, 3, "R")).await;
    assert_eq!(read, paid, "the consulta still reads the withdrawal");
    let (status, body) = send(correspondent(&bcs, 9, "R")).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::NOT_FOUND, ("ER", "05626", "RGN"))
    );
    let (_, readings) = bcs.admin("/readings").await;
    assert_eq!(readings["dedup_tx_ids"], false);
}

#[tokio::test]
async fn withdrawal_otp_requests_are_checked() {
    let bcs = start().await;
    let (status, body) = request_withdrawal_otp(&bcs, "11111111111", 20000).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "05620", "RGN"))
    );
    let (status, body) = request_withdrawal_otp(&bcs, "26500084997", 0).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "OSB-382505", "EXP"))
    );
    let without_login = bcs
        .call(Method::POST, OTP_REQUEST)
        .header("X-Invoker-Source", "18")
        .json(&json!({ "govIssueIdent": ident("1028780657") }));
    let (status, body) = send(without_login).await;
    assert_eq!(
        (status, camel(&body).1),
        (StatusCode::BAD_REQUEST, "OSB-382505")
    );
}

/// 10^38 fits an `i128`, a hundred times it does not: the sandbox once multiplied it into
/// cents unchecked.
const AMOUNT_BEYOND_CENTS: &str = "100000000000000000000000000000000000000";

#[tokio::test]
async fn an_amount_too_large_to_hold_is_refused_not_a_crash() {
    let bcs = start().await;
    let (status, body) = request_withdrawal_otp(&bcs, "26500084997", AMOUNT_BEYOND_CENTS).await;
    assert_eq!(
        (status, camel(&body)),
        (StatusCode::BAD_REQUEST, ("ER", "OSB-382505", "EXP"))
    );

    let mut challenge = challenge("111111", "100090", None, None);
    challenge["tx"]["amt"] = json!(AMOUNT_BEYOND_CENTS);
    let (status, body) = bcs.post("/retoManagement/v1/Customer", challenge).await;
    assert_eq!(
        (status, pascal(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, ("ER", "20005", "RGN"))
    );
    let (status, _) = bcs.get(&password_status("1007641")).await;
    assert_eq!(status, StatusCode::OK, "the sandbox still serves");
}

#[tokio::test]
async fn withdrawal_otps_expire_and_burn() {
    let bcs = start().await;
    bcs.set_code_lifetime(200).await;
    let (_, body) = request_withdrawal_otp(&bcs, "26500084997", 5000).await;
    let otp = body["otpInfo"]["otpValue"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, body) = cash_out(&bcs, 1, &otp, 5000, "Normal").await;
    assert_eq!(camel(&body).1, "05622");

    bcs.set_code_lifetime(60_000).await;
    let (_, body) = request_withdrawal_otp(&bcs, "26500084998", 7000).await;
    let otp = body["otpInfo"]["otpValue"].as_str().unwrap().to_string();
    let wrong = other_code(&otp);
    let mut last = Value::Null;
    for n in 2..5 {
        last = cash_out(&bcs, n, wrong, 7000, "Normal").await.1;
    }
    assert_eq!(camel(&last).1, "05625");
    let (_, body) = cash_out(&bcs, 5, &otp, 7000, "Normal").await;
    assert_eq!(camel(&body).1, "05625", "a burned OTP stays burned");
}

#[tokio::test]
async fn the_correspondent_headers_follow_s18() {
    let bcs = start().await;
    let body = cash("123456", 1000, "Normal");
    for tx_id in [
        "APIF4087330000000001",
        "APIF4999320000000001",
        "APIF40873200001",
        "APII4087320000000001",
    ] {
        let (status, _) = send(correspondent_with(&bcs, tx_id, "C", &[]).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{tx_id}");
    }
    let overrides = [
        ("X-Invoker-ProcessId", "20000000001"),
        ("X-Invoker-ProcessId", "000000000001"),
        ("X-Invoker-Channel", "007"),
        ("X-Invoker-BranchId", "1102"),
        ("X-Invoker-User", "OTRO"),
        ("X-Invoker-Action", "D"),
        ("X-Invoker-Ally", " "),
        ("X-Invoker-ProcessDate", "27/03/2024"),
    ];
    for (name, value) in overrides {
        let request = correspondent_with(&bcs, "APIF4087320000000001", "C", &[(name, value)]);
        let (status, body) = send(request.json(&body)).await;
        assert_eq!(
            (status, camel(&body).1),
            (StatusCode::BAD_REQUEST, "400"),
            "{name}: {value}"
        );
    }
    let padded_channel = correspondent_with(
        &bcs,
        "APIF4087320000000001",
        "C",
        &[("X-Invoker-Channel", "013")],
    );
    let (_, body) = send(padded_channel.json(&body)).await;
    assert_eq!(
        camel(&body).1,
        "05621",
        "past the headers, the unknown OTP is what fails"
    );
}

// ---- fixtures -----------------------------------------------------------------------------

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
