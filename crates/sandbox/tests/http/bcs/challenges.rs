//! Challenges: the one-shot authorization (S5), the authentication level of a transaction
//! (S16), and the question rounds of the authentication channel (S17) and of challenge V2
//! (S19).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::other_code;

use super::{Bcs, Credentials, camel, ident, pascal, send, start};

const Q_OTC: &str = "202410181111029014581";
const Q_DEBIT: &str = "202410181112571944582";
const Q_CURRENT: &str = "202007161835353254834";
const Q_AMPARADA: &str = "202010081614324767771";

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

pub(super) fn challenge(
    number: &str,
    tx: &str,
    trace: Option<(u32, u32)>,
    answer: Option<Value>,
) -> Value {
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
