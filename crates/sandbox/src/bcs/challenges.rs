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
use super::fixtures::Question;
use super::guard::{admit, header};
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

/// S16: POST /reto-management/v1/authentication-level.
pub(super) async fn authentication_level(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::AuthenticationLevel;
    admit(&state, op, &headers)?;
    let request: AuthLevelRequest = input::body(op, &body)?;
    let trn = &request.transaction;
    if trn.trn_rq_uid.trim().is_empty() || trn.gov_issue_ident.ident_serial_num.is_empty() {
        return Err(op.bad_request("transaction.trnRqUID y govIssueIdent son obligatorios"));
    }
    let bank = state.bank();
    let tx = transaction(&bank, &trn.trn_rq_uid)
        .ok_or_else(|| op.reject(&codes::TX_NOT_PARAMETERIZED))?;
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
    admit(&state, op, &headers)?;
    let request: AuthChannelRequest = input::body(op, &body)?;
    let trn = &request.transaction;
    if trn.trn_rq_uid.trim().is_empty() || trn.gov_issue_ident.ident_serial_num.is_empty() {
        return Err(op.bad_request("transaction.trnRqUID y govIssueIdent son obligatorios"));
    }
    let mut bank = state.bank();
    let tx = transaction(&bank, &trn.trn_rq_uid)
        .ok_or_else(|| op.reject(&codes::TX_NOT_PARAMETERIZED))?;
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

/// S5: POST /retoManagement/v1/Customer: version 1 has no question rounds, so a
/// parameterised transaction of a known customer is authorized at once.
pub(super) async fn create_v1(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::ChallengeV1;
    admit(&state, op, &headers)?;
    let request: ChallengeRequest = input::body(op, &body)?;
    check_challenge(op, &request)?;
    let bank = state.bank();
    let tx = transaction(&bank, &request.tx.id)
        .ok_or_else(|| op.reject(&codes::TX_NOT_PARAMETERIZED))?;
    let key = customer_key(&bank, &request.gov_issue_ident)
        .ok_or_else(|| op.reject(&codes::RETO_NOT_FOUND))?;
    let caller_tx = header(&headers, "X-Invoker-TxId").unwrap_or_default();
    let code = authorization_code(&key, &tx.id, &caller_tx, 20, "%Y%m%d%H%M%S%3f");
    Ok(ok(
        StatusCode::OK,
        json!({ "authorization": { "value": "SI", "code": code } }),
    ))
}

/// S19: POST /reto-management/v2/customer. `requestType` P opens the challenge, R answers.
pub(super) async fn create_v2(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::ChallengeV2;
    admit(&state, op, &headers)?;
    let request: ChallengeRequest = input::body(op, &body)?;
    check_challenge(op, &request)?;
    let mut bank = state.bank();
    let tx = transaction(&bank, &request.tx.id)
        .ok_or_else(|| op.reject(&codes::TX_NOT_PARAMETERIZED))?;
    let key = customer_key(&bank, &request.gov_issue_ident)
        .ok_or_else(|| op.reject(&codes::RETO_NOT_FOUND))?;
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
    let caller_tx = header(&headers, "X-Invoker-TxId").unwrap_or_default();
    let body = match step {
        Step::Ask {
            question,
            iteration,
            retry,
        } => json!({
            "authorization": { "value": "TV", "code": null },
            "trace": trace_v2(iteration, retry),
            "questionList": [ { "question": question_v2(&question) } ],
        }),
        Step::Approved => json!({
            "authorization": { "value": "SI", "code": authorization_code(&key, &tx.id, &caller_tx, 20, "%Y%m%d%H%M%S%3f") }
        }),
        Step::Denied { iteration, retry } => json!({
            "authorization": { "value": "NO", "code": null },
            "trace": trace_v2(iteration, retry),
        }),
    };
    Ok((StatusCode::OK, Json(body)).into_response())
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
