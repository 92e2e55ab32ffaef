//! Transaction challenges ("reto") on the wire: the authentication level of a transaction
//! (S16), the one-shot authorization (S5), and the question rounds of S17 and S19 (driven by
//! `reto`). Unknown transactions answer "TX NO PARAMETRIZADA".

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::codes;
use super::enrollment::IDENT_TYPES;
use super::envelope::{BcsError, Op, Reply, ok};
use super::fixtures::{Question, Transaction};
use super::guard::header;
use super::input;
use super::reto::{Given, Step, answer, authorization_code, start, transaction};
use super::state::{Bank, CustomerKey, State};
use super::wire::{
    AuthChannelRequest, AuthChannelTransaction, AuthLevelRequest, ChallengeRequest, GovIssueIdent,
};

fn customer_key(bank: &Bank, ident: &GovIssueIdent) -> Option<CustomerKey> {
    bank.customer(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .map(|c| c.key())
}

/// The transaction the risk engine knows by `id`, or "TX NO PARAMETRIZADA".
fn parameterised(op: Op, bank: &Bank, id: &str) -> Result<Transaction, BcsError> {
    transaction(bank, id).ok_or_else(|| op.reject(&codes::TX_NOT_PARAMETERIZED))
}

/// S16 and S17 need the transaction and the customer's number.
fn check_reto(op: Op, trn_rq_uid: &str, ident: &GovIssueIdent) -> Result<(), BcsError> {
    if trn_rq_uid.trim().is_empty() || ident.ident_serial_num.is_empty() {
        return Err(op.bad_request("transaction.trnRqUID y govIssueIdent son obligatorios"));
    }
    Ok(())
}

/// S16: POST /reto-management/v1/authentication-level.
pub(super) async fn authentication_level(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::AuthenticationLevel;
    let request: AuthLevelRequest = input::admitted_body(&state, op, &headers, &body)?;
    let trn = &request.transaction;
    check_reto(op, &trn.trn_rq_uid, &trn.gov_issue_ident)?;
    let tx = parameterised(op, &state.bank(), &trn.trn_rq_uid)?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "transaction": {
                "govIssueIdent": {
                    "govIssueIdentType": trn.gov_issue_ident.gov_issue_ident_type,
                    "identSerialNum": trn.gov_issue_ident.ident_serial_num,
                },
                "requestNumber": trn.request_number,
                "desc": tx.desc,
                "trnRqUID": tx.id,
                "authLevel": tx.auth_level,
            }
        }),
    ))
}

/// S17: POST /reto-management/v1/authentication-channel. No `questionList` opens the
/// challenge; an answered question (with `trace.iteration`) continues it.
pub(super) async fn authentication_channel(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::AuthenticationChannel;
    let request: AuthChannelRequest = input::admitted_body(&state, op, &headers, &body)?;
    let trn = &request.transaction;
    check_reto(op, &trn.trn_rq_uid, &trn.gov_issue_ident)?;
    let mut bank = state.bank();
    let tx = parameterised(op, &bank, &trn.trn_rq_uid)?;
    let key = customer_key(&bank, &trn.gov_issue_ident)
        .ok_or_else(|| op.reject(&codes::TX_DATA_INVALID))?;
    let step = match trn.question_list.first() {
        None => start(&mut bank, &key, tx.clone()),
        Some(answered) => {
            let picked = answered.answer_list.first();
            let given = Given {
                id: picked.map(|a| a.status_code.as_str()),
                value: picked.and_then(|a| a.value.as_ref()),
            };
            let iteration = trn.trace.iteration.value.counter().unwrap_or_default();
            answer(&mut bank, &key, &tx.id, iteration, &given).map_err(|fault| op.reject(&fault))?
        }
    };
    let code = matches!(step, Step::Approved)
        .then(|| authorization_code(&key, &tx.id, &trn.tx_id, 14, "%Y%m%d%H%M%S%6f"));
    Ok(ok(
        StatusCode::OK,
        json!({ "transaction": channel_transaction(trn, step, code) }),
    ))
}

fn channel_transaction(trn: &AuthChannelTransaction, step: Step, code: Option<String>) -> Value {
    let (authorization, reason, iteration, retry, questions) = match step {
        Step::Ask {
            question,
            iteration,
            retry,
        } => (
            "TV",
            "",
            iteration,
            retry,
            vec![channel_question(&question)],
        ),
        Step::Approved => ("SI", "", 0, 0, Vec::new()),
        Step::Denied { .. } => ("NO", "NUMERO DE REINTENTOS AGOTADO", 0, 0, Vec::new()),
    };
    json!({
        "govIssueIdent": {
            "govIssueIdentType": trn.gov_issue_ident.gov_issue_ident_type,
            "identSerialNum": trn.gov_issue_ident.ident_serial_num,
        },
        "trnSrcInfo": { "requestNumber": trn.trn_src_info.request_number },
        "question": { "quantity": questions.len() },
        "trace": { "iteration": { "value": iteration }, "retry": { "value": retry } },
        "authorization": { "value": authorization, "code": code.unwrap_or_default() },
        "reason": reason,
        "questionList": questions,
    })
}

fn channel_question(question: &Question) -> Value {
    json!({
        "type": question.r#type,
        "code": question.id,
        "value": question.value,
        "desc": "",
        "length": question.length.parse::<u32>().unwrap_or_default(),
        "format": question.format,
        "answerList": question.options.iter().map(|o| json!({ "statusCode": o.id, "value": o.value })).collect::<Vec<_>>(),
    })
}

/// Input checks of S5 and S19 (the field table of "Create Transation Challenge V2").
fn check_challenge(op: Op, request: &ChallengeRequest) -> Result<(), BcsError> {
    let ident = &request.gov_issue_ident;
    let tx = &request.tx;
    let ident_ok = IDENT_TYPES.contains(&ident.gov_issue_ident_type.as_str())
        && !ident.ident_serial_num.is_empty()
        && ident.ident_serial_num.chars().count() <= 30;
    let tx_ok = (1..=6).contains(&tx.id.trim().chars().count())
        && !tx.tx_data.is_empty()
        && tx.tx_data.iter().all(|d| {
            (1..=30).contains(&d.name.chars().count())
                && (1..=50).contains(&d.value.chars().count())
        });
    if !(ident_ok && tx_ok) {
        return Err(op.bad_request("govIssueIdent, tx.id y tx.txData son obligatorios"));
    }
    if tx.amt.as_ref().is_some_and(|amt| amt.cents().is_none()) {
        return Err(op.reject(&codes::TX_DATA_INVALID));
    }
    Ok(())
}

/// What S5 and S19 are about: a parameterised transaction of a known customer.
fn subjects(
    op: Op,
    bank: &Bank,
    request: &ChallengeRequest,
) -> Result<(Transaction, CustomerKey), BcsError> {
    check_challenge(op, request)?;
    let tx = parameterised(op, bank, &request.tx.id)?;
    let key = customer_key(bank, &request.gov_issue_ident)
        .ok_or_else(|| op.reject(&codes::RETO_NOT_FOUND))?;
    Ok((tx, key))
}

/// S5 and S19 print the caller's `X-Invoker-TxId` in 20 characters and a stamp to the
/// millisecond.
fn challenge_code(key: &CustomerKey, tx_id: &str, headers: &HeaderMap) -> String {
    let caller_tx = header(headers, "X-Invoker-TxId").unwrap_or_default();
    authorization_code(key, tx_id, &caller_tx, 20, "%Y%m%d%H%M%S%3f")
}

/// S5: POST /retoManagement/v1/Customer: version 1 has no question rounds, so a
/// parameterised transaction of a known customer is authorized at once.
pub(super) async fn create_v1(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::ChallengeV1;
    let request: ChallengeRequest = input::admitted_body(&state, op, &headers, &body)?;
    let (tx, key) = subjects(op, &state.bank(), &request)?;
    Ok(ok(
        StatusCode::OK,
        json!({ "authorization": { "value": "SI", "code": challenge_code(&key, &tx.id, &headers) } }),
    ))
}

/// S19: POST /reto-management/v2/customer. `requestType` P opens the challenge, R answers.
pub(super) async fn create_v2(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::ChallengeV2;
    let request: ChallengeRequest = input::admitted_body(&state, op, &headers, &body)?;
    let mut bank = state.bank();
    let (tx, key) = subjects(op, &bank, &request)?;
    let step = match (
        request.request_type.value.0.trim(),
        &request.trace,
        request.question_list.first(),
    ) {
        ("P" | "", _, _) => start(&mut bank, &key, tx.clone()),
        ("R", Some(trace), Some(entry)) => {
            let iteration = trace.iteration.value.counter().unwrap_or_default();
            let answered = &entry.question.answer;
            let given = Given {
                id: answered.id.as_deref(),
                value: answered.value.as_ref(),
            };
            answer(&mut bank, &key, &tx.id, iteration, &given).map_err(|fault| op.reject(&fault))?
        }
        _ => return Err(op.bad_request("requestType R requiere trace y questionList")),
    };
    let code = matches!(step, Step::Approved).then(|| challenge_code(&key, &tx.id, &headers));
    Ok((StatusCode::OK, Json(answer_v2(step, code))).into_response())
}

/// S19's answer for where the challenge stands; `code` authorizes an approved one.
fn answer_v2(step: Step, code: Option<String>) -> Value {
    match step {
        Step::Ask {
            question,
            iteration,
            retry,
        } => json!({
            "authorization": { "value": "TV", "code": null },
            "trace": trace_v2(iteration, retry),
            "questionList": [ { "question": question_v2(&question) } ],
        }),
        Step::Approved => json!({ "authorization": { "value": "SI", "code": code } }),
        Step::Denied { iteration, retry } => json!({
            "authorization": { "value": "NO", "code": null },
            "trace": trace_v2(iteration, retry),
        }),
    }
}

fn trace_v2(iteration: u32, retry: u32) -> Value {
    json!({ "iteration": { "value": iteration.to_string() }, "retry": { "value": retry.to_string() } })
}

fn question_v2(question: &Question) -> Value {
    let answers: Vec<Value> = if question.options.is_empty() {
        vec![json!({ "answer": { "id": null, "value": null } })]
    } else {
        question
            .options
            .iter()
            .map(|o| json!({ "answer": { "id": o.id, "value": o.value } }))
            .collect()
    };
    json!({
        "type": question.r#type,
        "id": question.id,
        "value": question.value,
        "desc": null,
        "length": question.length,
        "format": question.format,
        "answerList": answers,
    })
}
