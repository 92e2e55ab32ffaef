//! The question engine behind the challenge operations (S17, S19): each round asks one
//! question (a type `M` question sends a code to the outbox), a wrong answer is retried up
//! to the transaction's limit, and the last right answer yields an authorization code.

use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::codes;
use super::envelope::Fault;
use super::fixtures::{Question, Transaction};
use super::state::{Bank, Challenge, CustomerKey, now};

/// The conversation counts the opening request as step 1, so round `n` (0-based) is
/// answered at iteration `n + 2`, as in the spec's examples.
const FIRST_ITERATION: u32 = 2;

/// An answer as received: the option picked and/or the typed value.
pub(crate) struct Given<'a> {
    pub id: Option<&'a str>,
    pub value: Option<&'a SecretString>,
}

/// Where a challenge stands after a request.
pub(crate) enum Step {
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

pub(crate) fn transaction(bank: &Bank, id: &str) -> Option<Transaction> {
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
pub(crate) fn start(bank: &mut Bank, key: &CustomerKey, transaction: Transaction) -> Step {
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

/// The current round's question, sending a code first when the question is of type `M`;
/// `Approved` once every round is answered.
fn ask(bank: &mut Bank, session: &(CustomerKey, String)) -> Step {
    let challenge = bank
        .challenges
        .get(session)
        .expect("a challenge is asked right after its session is written");
    let (round, retry) = (challenge.round, challenge.retry);
    let Some(question_id) = challenge.transaction.questions.get(round).cloned() else {
        bank.challenges.remove(session);
        return Step::Approved;
    };
    let next = question(bank, &question_id).expect("fixtures only name known questions");
    if next.r#type == "M" && retry == 1 {
        let contact = bank
            .customer(&session.0.ident_type, &session.0.ident_num)
            .map(|c| c.data.contact_info.clone())
            .unwrap_or_default();
        let code = bank.send_code(&session.0, "RETO", contact);
        let expires = bank.expiry();
        if let Some(challenge) = bank.challenges.get_mut(session) {
            challenge.sent_code = Some((code, expires));
        }
    }
    Step::Ask {
        question: next,
        iteration: round as u32 + FIRST_ITERATION,
        retry,
    }
}

/// Checks the answer to the round at `iteration` and moves the challenge on.
pub(crate) fn answer(
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
        sent_code_matches(challenge, given)
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

/// A type `M` question has no recorded answer: the code sent for this round, while it is
/// alive, is the only right one.
fn sent_code_matches(challenge: &Challenge, given: &Given) -> bool {
    matches!(
        (&challenge.sent_code, given.value),
        (Some((sent, expires)), Some(value))
            if Instant::now() < *expires && sent.expose_secret() == value.expose_secret()
    )
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
pub(crate) fn authorization_code(
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
