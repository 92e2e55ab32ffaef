//! Fault injection through the admin listener, over real HTTP: forced statuses, malformed
//! bodies, dropped connections, hangs and latency, for one call, N calls or until cleared;
//! the per-route call counts and the request journal.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, TestSandbox, json, token_form};

const KIBAN_PATH: &str = "/api/v1/password-expiry-date-bc-pm";
const TOKEN: &str = "/oauth2Provider/type1/v1/token";

async fn kiban(
    sandbox: &TestSandbox,
    client: &reqwest::Client,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!(
            "{}{KIBAN_PATH}?testCaseId=663567bb713cf2110a110679",
            sandbox.sandbox.kiban_url
        ))
        .header("x-api-key", &sandbox.sandbox.credentials.kiban_api_key)
        .json(&json!({ "clave": "FF12345678", "contrasena": "P4SSW0RD" }))
        .send()
        .await
}

async fn kiban_status(sandbox: &TestSandbox) -> u16 {
    kiban(sandbox, &sandbox.http)
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

async fn token(
    sandbox: &TestSandbox,
    client: &reqwest::Client,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}{TOKEN}", sandbox.sandbox.daviplata_url))
        .body(token_form(&sandbox.sandbox.credentials))
        .send()
        .await
}

fn kiban_rule(fault: Value, times: Option<u32>) -> Value {
    let mut rule =
        json!({ "provider": "kiban", "method": "POST", "path": KIBAN_PATH, "fault": fault });
    if let Some(times) = times {
        rule["times"] = json!(times);
    }
    rule
}

/// A rule for the next Daviplata token request only.
fn next_token_rule(fault: Value) -> Value {
    json!({ "provider": "daviplata", "path": TOKEN, "fault": fault, "times": 1 })
}

#[tokio::test]
async fn a_forced_status_applies_to_one_call() {
    let sandbox = support::start().await;
    let body = json!({ "message": "Service Unavailable" });
    sandbox
        .inject(kiban_rule(
            json!({ "type": "status", "status": 503, "body": body }),
            Some(1),
        ))
        .await;
    let (status, answer) = json(kiban(&sandbox, &sandbox.http).await.unwrap()).await;
    assert_eq!((status, answer), (503, body));
    assert_eq!(kiban_status(&sandbox).await, 200);
}

#[tokio::test]
async fn a_rule_applies_to_exactly_n_calls() {
    let sandbox = support::start().await;
    let rule = sandbox
        .inject(kiban_rule(
            json!({ "type": "status", "status": 500, "body": "<html>oops</html>" }),
            Some(2),
        ))
        .await;
    assert_eq!(rule["remaining"], 2);
    let first = kiban(&sandbox, &sandbox.http).await.unwrap();
    assert_eq!(first.status(), 500);
    assert_eq!(first.text().await.unwrap(), "<html>oops</html>");
    let listed = sandbox.admin_get("/faults").await;
    assert_eq!(listed[0]["remaining"], 1);
    assert_eq!(kiban_status(&sandbox).await, 500);
    assert_eq!(kiban_status(&sandbox).await, 200);
    assert_eq!(sandbox.admin_get("/faults").await, json!([]));
}

#[tokio::test]
async fn a_rule_without_times_applies_until_cleared() {
    let sandbox = support::start().await;
    sandbox
        .inject(kiban_rule(json!({ "type": "status", "status": 429 }), None))
        .await;
    for _ in 0..3 {
        assert_eq!(kiban_status(&sandbox).await, 429);
    }
    let cleared = sandbox
        .http
        .delete(sandbox.admin("/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert_eq!(kiban_status(&sandbox).await, 200);
}

#[tokio::test]
async fn one_rule_can_be_removed_by_id() {
    let sandbox = support::start().await;
    let rule = sandbox
        .inject(kiban_rule(json!({ "type": "status", "status": 502 }), None))
        .await;
    let url = sandbox.admin(&format!("/faults/{}", rule["id"]));
    assert_eq!(
        sandbox.http.delete(&url).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        sandbox.http.delete(&url).send().await.unwrap().status(),
        404
    );
    assert_eq!(kiban_status(&sandbox).await, 200);
}

#[tokio::test]
async fn rules_only_touch_their_provider_and_route() {
    let sandbox = support::start().await;
    sandbox
        .inject(json!({ "provider": "daviplata", "path": KIBAN_PATH, "fault": { "type": "status", "status": 500 } }))
        .await;
    let mut other_method = kiban_rule(json!({ "type": "status", "status": 500 }), None);
    other_method["method"] = json!("GET");
    sandbox.inject(other_method).await;
    assert_eq!(kiban_status(&sandbox).await, 200);
}

#[tokio::test]
async fn a_documented_body_fills_a_status_without_one() {
    let sandbox = support::start().await;
    sandbox
        .inject(next_token_rule(json!({ "type": "status", "status": 504 })))
        .await;
    let (status, body) = json(token(&sandbox, &sandbox.daviplata_client()).await.unwrap()).await;
    assert_eq!(status, 504);
    assert_eq!(
        body["mensajeError"],
        "Timeout con sistemas proveedores del servicio"
    );
}

#[tokio::test]
async fn a_malformed_body_is_not_json_but_the_call_was_handled() {
    let sandbox = support::start().await;
    sandbox
        .inject(next_token_rule(json!({ "type": "malformed" })))
        .await;
    let response = token(&sandbox, &sandbox.daviplata_client()).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(
        sandbox.admin_get("/daviplata/counters").await["tokens_issued"],
        1
    );
}

#[tokio::test]
async fn a_dropped_connection_gives_no_answer_and_the_next_call_works() {
    let sandbox = support::start().await;
    sandbox
        .inject(kiban_rule(json!({ "type": "drop" }), Some(1)))
        .await;
    let error = kiban(&sandbox, &sandbox.http).await.expect_err("no answer");
    assert!(!error.is_timeout(), "closed, not timed out: {error:?}");
    assert_eq!(kiban_status(&sandbox).await, 200);
}

#[tokio::test]
async fn a_drop_after_the_handler_loses_the_answer_of_an_action_taken() {
    let sandbox = support::start().await;
    sandbox
        .inject(next_token_rule(
            json!({ "type": "drop", "after_handler": true }),
        ))
        .await;
    let client = sandbox.daviplata_client();
    assert!(token(&sandbox, &client).await.is_err());
    assert_eq!(
        sandbox.admin_get("/daviplata/counters").await["tokens_issued"],
        1
    );
    assert!(
        token(&sandbox, &client)
            .await
            .unwrap()
            .status()
            .is_success()
    );
}

#[tokio::test]
async fn a_hang_lasts_until_the_client_gives_up() {
    let sandbox = support::start().await;
    sandbox
        .inject(kiban_rule(json!({ "type": "hang" }), Some(1)))
        .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = kiban(&sandbox, &impatient).await.expect_err("no answer");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(kiban_status(&sandbox).await, 200);
}

#[tokio::test]
async fn latency_delays_the_real_answer() {
    let sandbox = support::start().await;
    sandbox
        .inject(kiban_rule(
            json!({ "type": "latency", "ms": 60_000 }),
            Some(1),
        ))
        .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(
        kiban(&sandbox, &impatient)
            .await
            .expect_err("still waiting")
            .is_timeout()
    );

    sandbox
        .inject(kiban_rule(json!({ "type": "latency", "ms": 10 }), Some(1)))
        .await;
    let (status, body) = json(kiban(&sandbox, &sandbox.http).await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")));
}

#[tokio::test]
async fn faults_reach_the_bcs_emulator_too() {
    let sandbox = support::start().await;
    sandbox
        .inject(json!({ "provider": "bcs", "method": "GET", "path": "/user/password/status", "fault": { "type": "status", "status": 503 }, "times": 1 }))
        .await;
    let url = format!("{}/user/password/status", sandbox.sandbox.bcs_url);
    assert_eq!(sandbox.http.get(&url).send().await.unwrap().status(), 503);
    assert_ne!(sandbox.http.get(&url).send().await.unwrap().status(), 503);
}

#[tokio::test]
async fn calls_are_counted_per_provider_and_route_and_reset() {
    let sandbox = support::start().await;
    for _ in 0..2 {
        kiban_status(&sandbox).await;
    }
    sandbox
        .http
        .get(format!("{}/nowhere", sandbox.sandbox.kiban_url))
        .send()
        .await
        .unwrap();
    let calls = sandbox.admin_get("/calls").await;
    assert_eq!(calls["kiban"][format!("POST {KIBAN_PATH}")], 2);
    assert_eq!(calls["kiban"]["GET /nowhere"], 1);
    sandbox
        .inject(kiban_rule(json!({ "type": "status", "status": 500 }), None))
        .await;
    assert_eq!(sandbox.admin_post("/reset", json!({})).await.status(), 204);
    assert_eq!(sandbox.admin_get("/calls").await, json!({}));
    assert_eq!(kiban_status(&sandbox).await, 200);
}

#[tokio::test]
async fn the_journal_keeps_each_call_as_sent_even_when_a_fault_answers() {
    let sandbox = support::start().await;
    sandbox
        .inject(kiban_rule(
            json!({ "type": "status", "status": 503 }),
            Some(1),
        ))
        .await;
    assert_eq!(kiban_status(&sandbox).await, 503);
    token(&sandbox, &sandbox.daviplata_client())
        .await
        .expect("a token answer");

    let kiban_calls = sandbox.admin_get("/journal?provider=kiban").await;
    let call = &kiban_calls[0];
    assert_eq!(kiban_calls.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (&call["method"], &call["path"]),
        (&json!("POST"), &json!(KIBAN_PATH))
    );
    assert_eq!(call["query"], "testCaseId=663567bb713cf2110a110679");
    let body: Value = serde_json::from_str(call["body"].as_str().expect("a body")).expect("JSON");
    assert_eq!(body["clave"], "FF12345678");
    let headers = call["headers"].as_array().expect("headers");
    assert!(
        headers.iter().any(|pair| pair[0] == "x-api-key"),
        "{headers:?}"
    );
    let everything = sandbox.admin_get("/journal").await;
    assert_eq!(everything.as_array().map(Vec::len), Some(2));
    assert_eq!(everything[1]["provider"], "daviplata");

    let cleared = sandbox
        .http
        .delete(sandbox.admin("/journal"))
        .send()
        .await
        .expect("admin call");
    assert_eq!(cleared.status(), 204);
    assert_eq!(sandbox.admin_get("/journal").await, json!([]));
    let unknown = sandbox
        .http
        .get(sandbox.admin("/journal?provider=nobody"))
        .send()
        .await
        .expect("admin call");
    assert_eq!(unknown.status(), 400);
}

#[tokio::test]
async fn nonsense_rules_are_refused() {
    let sandbox = support::start().await;
    let rules = [
        json!({ "provider": "nobody", "fault": { "type": "drop" } }),
        json!({ "provider": "kiban", "fault": { "type": "explode" } }),
        json!({ "provider": "kiban", "fault": { "type": "drop" }, "times": 0 }),
        json!({ "provider": "kiban", "fault": { "type": "status", "status": 1000 } }),
    ];
    for rule in rules {
        let response = sandbox.admin_post("/faults", rule.clone()).await;
        assert_eq!(response.status(), 400, "{rule}");
    }
}
