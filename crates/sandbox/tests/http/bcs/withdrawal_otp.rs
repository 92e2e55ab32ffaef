//! Withdrawal OTP: requesting one (S12) and cashing or reversing it at a correspondent
//! (S18), with S18's headers, deduplication readings and amount checks.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::support::other_code;

use super::challenges::challenge;
use super::{Bcs, Credentials, camel, ident, pascal, password_status, send, start};

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
