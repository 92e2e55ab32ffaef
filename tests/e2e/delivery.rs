//! Did the provider act? The matrix: every money-moving operation (S18 create and its
//! consulta, D2 activate, D3 cancel, D4 payment) against every answer class its provider
//! can give — each row of its error tables, each status class, each envelope shape, lost
//! and hung answers, a deadline too short to send in — asserting what becomes of the key,
//! seen from outside: a repeat under the same key is sent afresh (freed), held as an
//! unknown outcome, or answered the first outcome again (recorded). A documented answer
//! whose fate this file does not decide fails it.

use std::collections::BTreeMap;
use std::time::Duration;

use pasarela::recurring_payments::v1::{
    ActivateSubscriptionRequest, CancelSubscriptionRequest, ChargeSubscriptionRequest,
};
use pasarela_provider::Delivery;
use pasarela_recurring_payments::DocumentedAnswer;
use pasarela_security::bcs::ERROR_TABLE;
use serde_json::{Value, json};

use crate::support::recurring_payments::{
    self as rp, OTHER_WALLET, WALLET, activation, cancellation, charge, request_otp, subscribe,
};
use crate::support::security::{self as sec, withdrawal, withdrawal_otp};
use crate::support::{TestApp, reason, spawn_app_with};

const S18_PATH: &str = "/security-management/v3/withdrawal/otp";
const ACTIVATE_PATH: &str = "/v1/payments/subscriptions/activate";
const CANCEL_PATH: &str = "/v1/payments/subscriptions/cancel";
const PAYMENT_PATH: &str = "/v1/payments/subscriptions/payment";

/// What became of a key, as a repeat under it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The call succeeded; the repeat replays it.
    Succeeded,
    /// The repeat was sent to the provider again.
    Freed,
    /// The repeat was answered `PROVIDER_OUTCOME_UNKNOWN` and nothing new was created.
    Held,
    /// The repeat was answered the first refusal again, and nothing was sent.
    Recorded,
}

/// The fate a delivery fact decides.
fn fate_of(delivery: Delivery) -> Fate {
    match delivery {
        Delivery::NotSent | Delivery::Declined => Fate::Freed,
        Delivery::Refused => Fate::Recorded,
        Delivery::Unknown => Fate::Held,
    }
}

/// One answer class: how the provider answers the first attempt, and the fate expected.
struct Case {
    name: String,
    /// A sandbox fault for the first attempt; `None`: the caller's deadline is too short.
    fault: Option<Value>,
    expected: Fate,
}

fn case(name: impl Into<String>, fault: Value, expected: Fate) -> Case {
    Case {
        name: name.into(),
        fault: Some(fault),
        expected,
    }
}

fn status(http: u16, body: Value) -> Value {
    json!({ "type": "status", "status": http, "body": body })
}

/// Answers every provider shares: lost, hung or cut answers, and no time to send.
fn transport_cases() -> Vec<Case> {
    vec![
        case(
            "dropped before acting",
            json!({ "type": "drop" }),
            Fate::Held,
        ),
        case(
            "dropped after acting",
            json!({ "type": "drop", "after_handler": true }),
            Fate::Held,
        ),
        case(
            "hung after acting",
            json!({ "type": "hang", "after_handler": true }),
            Fate::Held,
        ),
        case(
            "acted, answer cut in half",
            json!({ "type": "malformed" }),
            Fate::Held,
        ),
        Case {
            name: "a deadline too short to send in".into(),
            fault: None,
            expected: Fate::Freed,
        },
    ]
}

/// Bodies that are not the provider's envelope, on statuses of every class.
fn unreadable_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for http in [200, 201, 302, 400, 401, 404, 409, 429, 500, 502, 503] {
        cases.push(case(
            format!("{http} empty"),
            status(http, json!("")),
            Fate::Held,
        ));
        cases.push(case(
            format!("{http} HTML"),
            status(http, json!("<html><body>gateway</body></html>")),
            Fate::Held,
        ));
    }
    for (name, body) in [
        ("truncated JSON", json!("{\"responseType\": {\"val")),
        ("JSON that is not an object", json!([1, 2])),
        ("an empty object", json!({})),
    ] {
        cases.push(case(format!("200 {name}"), status(200, body), Fate::Held));
    }
    cases
}

/// Runs `case` through `attempt` (the money-moving call under `key`, answering whether it
/// succeeded and the status it failed with) and `sent` (how many state-changing calls
/// reached the provider so far); asserts the fate.
async fn check(
    app: &TestApp,
    provider: &str,
    path: &str,
    case: &Case,
    attempt: impl AsyncFn(Option<Duration>) -> Result<(), tonic::Status>,
    sent: impl AsyncFn() -> usize,
) -> Fate {
    app.clear_journal().await;
    let deadline = match &case.fault {
        Some(fault) => {
            app.inject_once(provider, path, fault.clone()).await;
            None
        }
        None => Some(Duration::from_millis(30)),
    };
    let first = attempt(deadline).await;
    let before = sent().await;
    let second = attempt(None).await;
    let after = sent().await;
    let fate = match (&first, &second) {
        (Ok(()), Ok(())) => Fate::Succeeded,
        (Err(_), _) if after > before => Fate::Freed,
        // Held, then learnt from the provider by a consulta (S18): nothing was created.
        (Err(first), Ok(())) if reason(first) == "PROVIDER_OUTCOME_UNKNOWN" => Fate::Held,
        (Err(first), Err(second)) if reason(second) == "PROVIDER_OUTCOME_UNKNOWN" => {
            assert_eq!(
                reason(first),
                "PROVIDER_OUTCOME_UNKNOWN",
                "{}: a held key's first answer says so",
                case.name
            );
            Fate::Held
        }
        (Err(first), Err(second))
            if (first.code(), first.message()) == (second.code(), second.message()) =>
        {
            assert_ne!(
                reason(first),
                "CIRCUIT_OPEN",
                "{}: pasarela answered",
                case.name
            );
            Fate::Recorded
        }
        other => panic!("{}: no fate reads {other:?}", case.name),
    };
    if fate == Fate::Recorded || fate == Fate::Held {
        assert_eq!(after, before, "{}: nothing new was created", case.name);
    }
    app.clear_faults().await;
    fate
}

/// Asserts each case's fate; reports every miss at once.
async fn run_all(label: &str, cases: &[Case], mut one: impl AsyncFnMut(usize, &Case) -> Fate) {
    let mut missed = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let fate = one(n, case).await;
        if fate != case.expected {
            missed.push(format!(
                "{}: {fate:?}, expected {:?}",
                case.name, case.expected
            ));
        }
    }
    println!("{label}: {} answer classes", cases.len());
    assert!(missed.is_empty(), "{label}:\n{}", missed.join("\n"));
}

// ---- S18: the withdrawal ----------------------------------------------------------------

/// The bank's error envelope.
fn er(value: &str, code: &str, kind: &str) -> Value {
    json!({
        "responseType": { "value": value },
        "responseDetail": { "errorCode": code, "errorDesc": "Error", "errorType": kind },
    })
}

/// Every answer class of S18.
fn withdrawal_cases() -> Vec<Case> {
    let mut cases = transport_cases();
    cases.extend(unreadable_cases());
    for row in ERROR_TABLE.iter() {
        let in_doubt = !matches!(row.http / 100, 2 | 4) || [408, 409, 429].contains(&row.http);
        let on_own_status = match in_doubt {
            true => Fate::Held,
            false => fate_of(row.acted),
        };
        cases.push(case(
            format!("{} {} {} on its status", row.http, row.code, row.kind),
            status(row.http, er("ER", row.code, row.kind)),
            on_own_status,
        ));
        // Under another status than its own a row says nothing; a business rule still does.
        let on_200 = match row.kind == "RGN" {
            true => Fate::Recorded,
            false => Fate::Held,
        };
        cases.push(case(
            format!("{} {} {} on 200", row.http, row.code, row.kind),
            status(200, er("ER", row.code, row.kind)),
            on_200,
        ));
    }
    let shapes = [
        ("ER500 on 200", 200, er("ER500", "", ""), Fate::Held),
        ("ER500 on 201", 201, er("ER500", "", ""), Fate::Held),
        (
            "an unlisted RGN code on 400",
            400,
            er("ER", "77777", "RGN"),
            Fate::Recorded,
        ),
        (
            "an unlisted RGN code on 200",
            200,
            er("ER", "77777", "RGN"),
            Fate::Recorded,
        ),
        (
            "an unlisted RGN code on 500",
            500,
            er("ER", "77777", "RGN"),
            Fate::Held,
        ),
        (
            "an unlisted code of another type",
            400,
            er("ER", "77777", "XYZ"),
            Fate::Held,
        ),
        ("a warning WR on 200", 200, er("WR", "", ""), Fate::Held),
        (
            "OK without an approval",
            200,
            json!({ "responseType": { "value": "OK" } }),
            Fate::Held,
        ),
    ];
    for (name, http, body, expected) in shapes {
        cases.push(case(name, status(http, body), expected));
    }
    cases
}

/// S18 creates (not consultas) the bank received since the journal was cleared.
async fn creates(app: &TestApp) -> usize {
    app.journal("bcs")
        .await
        .iter()
        .filter(|call| call["path"] == S18_PATH)
        .filter(|call| {
            call["headers"].as_array().is_some_and(|headers| {
                headers
                    .iter()
                    .any(|pair| pair[0] == "x-invoker-action" && pair[1] == "C")
            })
        })
        .count()
}

async fn short_ceilings() -> TestApp {
    spawn_app_with(|config| {
        rp::lab_setup(config);
        let security = config.security.as_mut().expect("security");
        security.access_token = Some(sec::TOKEN.to_owned().into());
        security.outbound.http.timeout = Duration::from_millis(500);
        // Hundreds of failures in a row: no circuit may open and answer in their place.
        security.outbound.breaker.failure_threshold = u32::MAX;
        let payments = config
            .recurring_payments
            .as_mut()
            .expect("recurring payments");
        payments.outbound.http.timeout = Duration::from_millis(500);
        payments.outbound.breaker.failure_threshold = u32::MAX;
    })
    .await
}

#[tokio::test]
async fn every_answer_to_a_withdrawal_decides_its_key_by_what_the_bank_did() {
    let app = short_ceilings().await;
    let mut client = sec::client(&app);
    let cases = withdrawal_cases();
    assert!(cases.len() > ERROR_TABLE.len() * 2, "every row, twice");
    run_all("S18", &cases, async |n, case| {
        let otp = withdrawal_otp(&mut client).await;
        let request = withdrawal(&otp, &format!("matrix-s18-{n}"));
        let attempt = async |deadline: Option<Duration>| {
            let mut call = tonic::Request::new(request.clone());
            if let Some(deadline) = deadline {
                call.set_timeout(deadline);
            }
            client.clone().withdraw_with_otp(call).await.map(|_| ())
        };
        check(&app, "bcs", S18_PATH, case, attempt, async || {
            creates(&app).await
        })
        .await
    })
    .await;
    let success = {
        let otp = withdrawal_otp(&mut client).await;
        let request = withdrawal(&otp, "matrix-s18-ok");
        let first = client
            .withdraw_with_otp(request.clone())
            .await
            .expect("paid");
        let again = client.withdraw_with_otp(request).await.expect("replayed");
        first.into_inner() == again.into_inner()
    };
    assert!(success, "a success is recorded and replayed");
}

#[tokio::test]
async fn a_row_of_the_bank_that_may_follow_a_payment_is_never_a_refusal() {
    assert!(
        ERROR_TABLE.iter().any(|row| row.acted == Delivery::Refused),
        "some rows refuse"
    );
    // The safety invariants, independent of how the mapping file decided each row.
    for row in ERROR_TABLE.iter() {
        let may_have_paid = row.http >= 500
            || row.http == 408
            || row.kind == "BE"
            || (row.http / 100 == 2 && row.code.chars().all(|c| c.is_ascii_uppercase()));
        if may_have_paid {
            assert_eq!(row.acted, Delivery::Unknown, "{row:?}");
        }
        if row.acted == Delivery::Declined {
            assert!(
                matches!(row.http, 401 | 403 | 404 | 405),
                "only a gateway's refusal of credentials, path or method declines: {row:?}"
            );
        }
        if row.acted == Delivery::Refused {
            let validation = row.http == 400
                && ["1 BDA", "BAD REQUEST BDA", "400 OUD", "00400 OUD"]
                    .contains(&format!("{} {}", row.code, row.kind).as_str());
            assert!(
                row.kind == "RGN" || validation,
                "only a business rule or the message's validation refuses a withdrawal: {row:?}"
            );
        }
    }
}

/// A consulta after a lost withdrawal: whatever it answers but a success or a configured
/// "no such withdrawal", nothing is created and the key stays unknown.
#[tokio::test]
async fn a_consulta_that_does_not_say_what_happened_creates_nothing() {
    let app = short_ceilings().await;
    let mut client = sec::client(&app);
    let mut consultas = vec![
        case("dropped", json!({ "type": "drop" }), Fate::Held),
        case("hung", json!({ "type": "hang" }), Fate::Held),
        case("ER500 on 200", status(200, er("ER500", "", "")), Fate::Held),
        case(
            "an unlisted RGN",
            status(404, er("ER", "05626", "RGN")),
            Fate::Held,
        ),
        case(
            "a database error",
            status(200, er("ER", "00001", "BE")),
            Fate::Held,
        ),
    ];
    consultas.extend(unreadable_cases());
    let mut missed = Vec::new();
    for (n, consulta) in consultas.iter().enumerate() {
        let otp = withdrawal_otp(&mut client).await;
        let request = withdrawal(&otp, &format!("matrix-consulta-{n}"));
        app.inject_once("bcs", S18_PATH, json!({ "type": "drop" }))
            .await;
        let lost = client.withdraw_with_otp(request.clone()).await.unwrap_err();
        assert_eq!(reason(&lost), "PROVIDER_OUTCOME_UNKNOWN");
        app.clear_journal().await;
        app.inject_once("bcs", S18_PATH, consulta.fault.clone().expect("a fault"))
            .await;
        let asked = client.withdraw_with_otp(request).await.unwrap_err();
        let created = creates(&app).await;
        app.clear_faults().await;
        if reason(&asked) != "PROVIDER_OUTCOME_UNKNOWN" || created != 0 {
            missed.push(format!(
                "{}: {} and {created} creates",
                consulta.name,
                reason(&asked)
            ));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

// ---- Daviplata: activate, cancel, payment -------------------------------------------------

/// Daviplata's error envelope.
fn davi_error(code: &str, message: &str) -> Value {
    json!({ "codigoError": code, "mensajeError": message })
}

/// A success envelope with `status` and `message`, naming `transaction_id`.
fn davi_result(status: Value, message: &str, transaction_id: &str) -> Value {
    json!({ "resultStatus": {
        "status": status, "message": message, "transactionId": transaction_id,
        "transactionDate": "2023-08-02T20:25:45.040-05:00", "approvalNumber": "0000000000009999",
    }})
}

/// What this file decides of each documented answer, independently of the tables.
fn documented_fate(answer: DocumentedAnswer) -> Option<Fate> {
    const REFUSALS: &[&str] = &[
        "otp errado",
        "otp expirado o ya fue usado",
        "monedero ya esta asociado",
        "suscripcion invalida",
        "monedero no esta asociado",
        "monedero no asociado al documento",
        "supera el valor maximo",
        "no se puede ejecutar la transaccion",
        "error de negocio retornado por el backend",
        "validate rest",
        "no es valido en el campo",
    ];
    const UNKNOWN: &[&str] = &[
        "no cuenta con autorizacion",
        "could not verify that you are authorized",
        "not registered with mutual tls",
        "invalid client cert",
        "invalid client id or secret",
        "timeout con sistemas proveedores",
        "error de sistema ret",
    ];
    let statuses = BTreeMap::from([
        (400, Fate::Held),
        (401, Fate::Held),
        (403, Fate::Freed),
        (404, Fate::Held),
        (422, Fate::Recorded),
        (429, Fate::Held),
        (502, Fate::Held),
        (503, Fate::Held),
        (504, Fate::Held),
    ]);
    match answer {
        DocumentedAnswer::Message(m) if REFUSALS.contains(&m) => Some(Fate::Recorded),
        DocumentedAnswer::Message(m) if UNKNOWN.contains(&m) => Some(Fate::Held),
        DocumentedAnswer::Message(_) => None,
        DocumentedAnswer::Code("6842") => Some(Fate::Recorded),
        DocumentedAnswer::Code("2100" | "3200" | "2103") => Some(Fate::Held),
        DocumentedAnswer::Code(_) => None,
        DocumentedAnswer::Status(http) => statuses.get(&http).copied(),
    }
}

/// Every answer class of a Daviplata state change.
fn daviplata_cases() -> Vec<Case> {
    let mut cases = transport_cases();
    cases.extend(unreadable_cases());
    let undecided: Vec<_> = pasarela_recurring_payments::documented_answers()
        .filter(|answer| documented_fate(*answer).is_none())
        .collect();
    assert!(
        undecided.is_empty(),
        "documented answers whose fate this matrix does not decide: {undecided:?}"
    );
    for answer in pasarela_recurring_payments::documented_answers() {
        let expected = documented_fate(answer).expect("decided");
        match answer {
            DocumentedAnswer::Message(message) => {
                cases.push(case(
                    format!("{message:?} on 422"),
                    status(422, davi_error("422", message)),
                    expected,
                ));
                cases.push(case(
                    format!("{message:?} on 500"),
                    status(500, davi_error("500", message)),
                    Fate::Held,
                ));
                cases.push(case(
                    format!("{message:?} in a declined success envelope"),
                    status(
                        200,
                        davi_result(json!(7), message, pasarela_sandbox::SENT_TRANSACTION_ID),
                    ),
                    expected,
                ));
            }
            DocumentedAnswer::Code(code) => {
                cases.push(case(
                    format!("code {code} on 422"),
                    status(422, json!({ "errorCode": code, "message": "" })),
                    expected,
                ));
                cases.push(case(
                    format!("code {code} on 500"),
                    status(500, json!({ "errorCode": code, "message": "" })),
                    Fate::Held,
                ));
            }
            DocumentedAnswer::Status(http) => {
                cases.push(case(
                    format!("bare {http}"),
                    status(http, json!("")),
                    expected,
                ));
            }
        }
    }
    let shapes = [
        ("a status no table names", 418, json!(""), Fate::Held),
        ("a conflict", 409, json!("{}"), Fate::Held),
        (
            "a success for another transaction",
            200,
            davi_result(
                json!(0),
                "Transacción aprobada",
                "5b7f5a6e-0000-4000-8000-000000000000",
            ),
            Fate::Held,
        ),
        (
            "a success showing another wallet's subscription",
            200,
            {
                let mut body = davi_result(
                    json!(0),
                    "Transacción aprobada",
                    pasarela_sandbox::SENT_TRANSACTION_ID,
                );
                body["Subscription"] = json!({
                    "subscriptionId": "16f5f77b-eb1c-4b31-a9af-5dfa557df179",
                    "Product": { "productCode": "DVP_CO", "productNumber": "3999999999" },
                });
                body
            },
            Fate::Held,
        ),
        (
            "a non-numeric status",
            200,
            davi_result(json!("x"), "?", pasarela_sandbox::SENT_TRANSACTION_ID),
            Fate::Held,
        ),
        (
            "a status no table names in a success envelope",
            200,
            davi_result(
                json!(77),
                "Transacción en proceso",
                pasarela_sandbox::SENT_TRANSACTION_ID,
            ),
            Fate::Held,
        ),
    ];
    for (name, http, body, expected) in shapes {
        cases.push(case(name, status(http, body), expected));
    }
    cases
}

/// Calls to `path` since the journal was cleared.
async fn daviplata_calls(app: &TestApp, path: &str) -> usize {
    app.journal("daviplata")
        .await
        .iter()
        .filter(|call| call["path"] == path)
        .count()
}

fn with_deadline<T>(message: T, deadline: Option<Duration>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    request
}

#[tokio::test]
async fn every_answer_to_a_daviplata_state_change_decides_its_key_by_what_daviplata_did() {
    let app = short_ceilings().await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    let cases = daviplata_cases();

    run_all("D4 payment", &cases, async |n, case| {
        let request: ChargeSubscriptionRequest = charge(&format!("matrix-d4-{n}"), WALLET, 5_000);
        let attempt = async |deadline: Option<Duration>| {
            let call = with_deadline(request.clone(), deadline);
            client.clone().charge_subscription(call).await.map(|_| ())
        };
        let sent = async || daviplata_calls(&app, PAYMENT_PATH).await;
        check(&app, "daviplata", PAYMENT_PATH, case, attempt, sent).await
    })
    .await;

    // Each activation of an unsubscribed wallet with a live OTP: what Daviplata does when it
    // acts is subscribe.
    run_all("D2 activate", &cases, async |n, case| {
        let _ = client
            .cancel_subscription(cancellation(&format!("matrix-d2-reset-{n}"), OTHER_WALLET))
            .await;
        let (session, otp) = request_otp(&mut client, OTHER_WALLET).await;
        let request: ActivateSubscriptionRequest = activation(
            &format!("matrix-d2-{n}"),
            OTHER_WALLET,
            &session,
            &otp,
            500_000,
        );
        let attempt = async |deadline: Option<Duration>| {
            let call = with_deadline(request.clone(), deadline);
            client.clone().activate_subscription(call).await.map(|_| ())
        };
        let sent = async || daviplata_calls(&app, ACTIVATE_PATH).await;
        check(&app, "daviplata", ACTIVATE_PATH, case, attempt, sent).await
    })
    .await;

    // Each cancellation of a live subscription: what Daviplata does when it acts is cancel.
    run_all("D3 cancel", &cases, async |n, case| {
        let _ = client
            .cancel_subscription(cancellation(&format!("matrix-d3-reset-{n}"), WALLET))
            .await;
        subscribe(&mut client, WALLET, 1_000_000).await;
        let request: CancelSubscriptionRequest = cancellation(&format!("matrix-d3-{n}"), WALLET);
        let attempt = async |deadline: Option<Duration>| {
            let call = with_deadline(request.clone(), deadline);
            client.clone().cancel_subscription(call).await.map(|_| ())
        };
        let sent = async || daviplata_calls(&app, CANCEL_PATH).await;
        check(&app, "daviplata", CANCEL_PATH, case, attempt, sent).await
    })
    .await;
    assert!(
        app.logs()
            .contains("daviplata answered a success for another request"),
        "a mismatched answer is logged at error level"
    );
}

// ---- Read-only operations -------------------------------------------------------------------

/// A read (S1) and a call that changes no money (D1, an SMS) hold no key: whatever the
/// provider answers, the next call is sent afresh; and a read, safe to repeat, never says
/// its outcome is unknown.
#[tokio::test]
async fn a_read_after_any_answer_is_sent_afresh_and_never_unknown() {
    let app = short_ceilings().await;
    let mut bank = sec::client(&app);
    let mut payments = rp::client(&app);
    let cases: Vec<Case> = transport_cases()
        .into_iter()
        .chain(unreadable_cases())
        .filter(|case| case.fault.is_some())
        .collect();
    let mut missed = Vec::new();
    for case in &cases {
        let fault = case.fault.clone().expect("a fault");
        app.clear_journal().await;
        app.inject_once("bcs", "/user/password/status", fault.clone())
            .await;
        let read = || sec::status_request("1", sec::customer("1007641"));
        let first = bank.get_password_status(read()).await;
        let second = bank.get_password_status(read()).await;
        let sent = app
            .journal("bcs")
            .await
            .iter()
            .filter(|call| call["path"] == "/user/password/status")
            .count();
        if let Err(status) = &first
            && reason(status) == "PROVIDER_OUTCOME_UNKNOWN"
        {
            missed.push(format!("S1 {}: unknown", case.name));
        }
        if second.is_err() || sent < 2 {
            missed.push(format!(
                "S1 {}: the next read {second:?} after {sent} sent",
                case.name
            ));
        }

        app.clear_journal().await;
        app.inject_once("daviplata", "/v1/payments/subscriptions/request", fault)
            .await;
        let request = || pasarela::recurring_payments::v1::RequestSubscriptionRequest {
            commerce: rp::commerce(),
            wallet: rp::wallet(WALLET),
            transaction: None,
        };
        let _ = payments.request_subscription(request()).await;
        let again = payments.request_subscription(request()).await;
        let sent = daviplata_calls(&app, "/v1/payments/subscriptions/request").await;
        if again.is_err() || sent < 2 {
            missed.push(format!(
                "D1 {}: the next request {again:?} after {sent} sent",
                case.name
            ));
        }
        app.clear_faults().await;
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}
