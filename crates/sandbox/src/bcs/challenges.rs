//! Transaction challenges ("reto"): the authentication level of a transaction (S16), the
//! one-shot authorization (S5), and the multi-round question engine behind S17 and S19:
//! each round asks one question (a type `M` question sends a code to the outbox), a wrong
//! answer is retried up to the transaction's limit, and the last right answer yields an
//! authorization code. Unknown transactions answer "TX NO PARAMETRIZADA".

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::codes;
use super::enrollment::IDENT_TYPES;
use super::envelope::{BcsError, Fault, Op, Reply, ok};
use super::fixtures::{Question, Transaction};
use super::guard::{admit, header};
use super::input;
use super::state::{Bank, Challenge, CustomerKey, State, now};
use super::wire::{AuthChannelRequest, AuthLevelRequest, ChallengeRequest, GovIssueIdent};

/// The conversation counts the opening request as step 1, so round `n` (0-based) is
/// answered at iteration `n + 2`, as in the spec's examples.
const FIRST_ITERATION: u32 = 2;

/// An answer as received: the option picked and/or the typed value.
struct Given<'a> {
    id: Option<&'a str>,
    value: Option<&'a SecretString>,
}

/// Where a challenge stands after a request.
enum Step {
    Ask {
        question: Question,
        iteration: u32,
        retry: u32,
    },
    Approved,
    Denied {
        iteration: u32,
        retry: u32,
    },
}

fn transaction(bank: &Bank, id: &str) -> Option<Transaction> {
    bank.fixtures
        .transactions
        .iter()
        .find(|t| t.id == id.trim())
        .cloned()
}

fn question(bank: &Bank, id: &str) -> Option<Question> {
    bank.fixtures.questions.iter().find(|q| q.id == id).cloned()
}

/// Opens (or restarts) the customer's challenge for `transaction`.
fn start(bank: &mut Bank, key: &CustomerKey, transaction: Transaction) -> Step {
    let session = (key.clone(), transaction.id.clone());
    let challenge = Challenge {
        transaction,
        round: 0,
        retry: 1,
        sent_code: None,
    };
    bank.challenges.insert(session.clone(), challenge);
    ask(bank, &session)
}

/// The current round's question, sending a code first when the question is of type `M`.
fn ask(bank: &mut Bank, session: &(CustomerKey, String)) -> Step {
    // Only called right after the session was written; a missing one has nothing to ask.
    let Some(challenge) = bank.challenges.get(session) else {
        return Step::Denied {
            iteration: 0,
            retry: 0,
        };
    };
    let (round, retry) = (challenge.round, challenge.retry);
    let Some(next) = challenge
        .transaction
        .questions
        .get(round)
        .and_then(|id| question(bank, id))
    else {
        bank.challenges.remove(session);
        return Step::Approved;
    };
    if next.r#type == "M" && retry == 1 {
        let contact = bank
            .customer(&session.0.ident_type, &session.0.ident_num)
            .map(|c| c.data.contact_info.clone())
            .unwrap_or_default();
        let code = bank.send_code(&session.0, "RETO", contact);
        if let Some(challenge) = bank.challenges.get_mut(session) {
            challenge.sent_code = Some(code);
        }
    }
    Step::Ask {
        question: next,
        iteration: round as u32 + FIRST_ITERATION,
        retry,
    }
}

/// Checks the answer to the round at `iteration` and moves the challenge on.
fn answer(
    bank: &mut Bank,
    key: &CustomerKey,
    tx_id: &str,
    iteration: u32,
    given: &Given,
) -> Result<Step, Fault> {
    let session = (key.clone(), tx_id.trim().to_string());
    let challenge = bank
        .challenges
        .get(&session)
        .ok_or(codes::TX_DATA_INVALID)?;
    if iteration != challenge.round as u32 + FIRST_ITERATION {
        return Err(codes::TX_DATA_INVALID);
    }
    let asked = challenge
        .transaction
        .questions
        .get(challenge.round)
        .and_then(|id| question(bank, id))
        .ok_or(codes::TX_DATA_INVALID)?;
    let right = if asked.r#type == "M" {
        matches!((&challenge.sent_code, given.value), (Some(sent), Some(value)) if sent.expose_secret() == value.expose_secret())
    } else {
        expected_answer(bank, key, &asked.id, given)
    };
    let challenge = bank
        .challenges
        .get_mut(&session)
        .ok_or(codes::TX_DATA_INVALID)?;
    if right {
        challenge.round += 1;
        challenge.retry = 1;
        challenge.sent_code = None;
        return Ok(ask(bank, &session));
    }
    challenge.retry += 1;
    if challenge.retry > challenge.transaction.max_retries {
        let retry = challenge.retry - 1;
        bank.challenges.remove(&session);
        return Ok(Step::Denied { iteration, retry });
    }
    Ok(ask(bank, &session))
}

/// Compares with the customer's recorded answer: the option id and/or the value it names.
fn expected_answer(bank: &Bank, key: &CustomerKey, question_id: &str, given: &Given) -> bool {
    let Some(expected) = bank
        .customer(&key.ident_type, &key.ident_num)
        .and_then(|customer| customer.data.answers.get(question_id))
    else {
        return false;
    };
    let id_ok = expected
        .id
        .as_deref()
        .is_none_or(|id| given.id.is_some_and(|g| g.trim() == id));
    let value_ok = expected.value.as_ref().is_none_or(|value| {
        given
            .value
            .is_some_and(|g| g.expose_secret().trim() == value.expose_secret())
    });
    id_ok && value_ok
}

/// Risk-engine authorization code: 40 hex characters, the transaction code, the caller's
/// transaction id padded to `tx_width`, and a timestamp (`stamp_format`).
fn authorization_code(
    key: &CustomerKey,
    tx_code: &str,
    caller_tx: &str,
    tx_width: usize,
    stamp_format: &str,
) -> String {
    let stamp = now();
    let digest = Sha256::digest(format!(
        "{}{}{tx_code}{caller_tx}{}",
        key.ident_type,
        key.ident_num,
        stamp.to_rfc3339()
    ));
    let hex = hex::encode_upper(digest);
    format!(
        "{}{tx_code}{caller_tx:<tx_width$}{}",
        &hex[..40],
        stamp.format(stamp_format)
    )
}

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

fn channel_transaction(
    trn: &super::wire::AuthChannelTransaction,
    step: Step,
    code: Option<String>,
) -> Value {
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
