//! Cash withdrawal at a banking correspondent: the customer requests an OTP for an amount
//! from one of their accounts (S12); the correspondent cashes it, or reverses a payment,
//! with S18's fixed headers and TxId / ProcessId rules. A consulta (`Action: R`) answers
//! what became of a TxId; a repeated create replays the first answer or, when the bank is
//! switched not to deduplicate, is executed again.

use std::sync::LazyLock;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::NaiveTime;
use regex::Regex;
use secrecy::ExposeSecret;

use super::codes;
use super::envelope::{BcsError, Fault, Op, Reply, ok};
use super::guard::{admit, header};
use super::input;
use super::state::{
    Bank, ConsultaNotFound, ExecutedWithdrawal, State, WithdrawalOtp, WithdrawalStage,
};
use super::wire::{self, WithdrawalOtpRequest, WithdrawalRequest};

/// Headers S18 fixes to one value ("Valor fijo"). The channel is also accepted zero-padded
/// to three digits, the width other operations give channels.
const FIXED_HEADERS: &[(&str, &[&str])] = &[
    ("X-Invoker-Channel", &["13", "013"]),
    ("X-Invoker-BranchId", &["1108"]),
    ("X-Invoker-subChannel", &["07"]),
    ("X-Invoker-User", &["NEWCBSER"]),
    ("X-Invoker-ModifierUser", &["NEWCBSER"]),
    ("X-Invoker-Country", &["CO"]),
    ("X-Invoker-Source", &["18"]),
    ("X-Invoker-Action", &["C", "R"]),
];

/// "APIF" + Julian date (last digit of the year, day of the year) + bank code 32 + a
/// ten-digit authorization number: `APIF4087320000000001`. The spec's "maximum 16
/// characters" contradicts its own formula and example (20); the formula wins.
static TX_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^APIF[0-9]([0-9]{3})32[0-9]{10}$").expect("TxId pattern compiles")
});

/// Digits of ProcessId taken from the end of TxId, right-aligned in 12 with a leading zero.
const PROCESS_ID_TAIL: usize = 11;

/// S12: POST /security-management/v1/withdrawal/otp.
pub(super) async fn request_otp(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::WithdrawalOtp;
    let request: WithdrawalOtpRequest = input::admitted_body(&state, op, &headers, &body)?;
    let ident = &request.gov_issue_ident;
    let acct_id = request.x_fer_info.dep_acct_id_from.acct_id.trim();
    let amount = request.x_fer_info.cur_amt.amt.cents();
    let missing =
        ident.is_incomplete() || acct_id.is_empty() || request.otc.id_otc.trim().is_empty();
    let (false, Some(amount_cents)) = (missing, amount) else {
        return Err(
            op.bad_request("govIssueIdent, acctId, amt (positivo) e idOtc son obligatorios")
        );
    };
    let mut bank = state.bank();
    let customer = bank
        .customer(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .ok_or_else(|| op.reject(&codes::CUSTOMER_NOT_FOUND))?;
    let account = customer
        .owns_account(acct_id)
        .cloned()
        .ok_or_else(|| op.reject(&codes::ACCOUNT_NOT_FOUND))?;
    let (key, contact) = (customer.key(), customer.data.contact_info.clone());
    let code = bank.send_code(&key, "RETIRO OTP", contact);
    let expires = bank.expiry();
    let body = wire::withdrawal_otp_issued(code.expose_secret());
    bank.withdrawal_otps.push(WithdrawalOtp {
        ident_serial_num: key.ident_num,
        account,
        amount_cents,
        code,
        expires,
        attempts: 0,
        stage: WithdrawalStage::Pending,
    });
    Ok(ok(StatusCode::CREATED, body))
}

/// S18: POST /security-management/v3/withdrawal/otp.
pub(super) async fn withdraw(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::Withdrawal;
    admit(&state, op, &headers)?;
    let tx_id = check_headers(op, &headers)?;
    let asked_to_read =
        header(&headers, "X-Invoker-Action").is_some_and(|action| action.trim() == "R");
    let mut bank = state.bank();
    if asked_to_read && !bank.readings.consulta_ignores_action {
        bank.withdrawal_counts.queries += 1;
        return match bank.withdrawals.get(&tx_id) {
            Some(answer) => Ok((StatusCode::OK, Json(answer.clone())).into_response()),
            None => Err(op.reject(match bank.readings.consulta_not_found {
                ConsultaNotFound::NoFound => &codes::QUERY_NOT_FOUND,
                ConsultaNotFound::Rgn => &codes::NO_TRANSACTION,
            })),
        };
    }
    bank.withdrawal_counts.creates += 1;
    if bank.readings.dedup_tx_ids
        && let Some(answer) = bank.withdrawals.get(&tx_id)
    {
        return Ok((StatusCode::OK, Json(answer.clone())).into_response());
    }
    let request: WithdrawalRequest = input::body(op, &body)?;
    let cashing = Cashing::read(op, &bank, &request)?;
    let index = cashing
        .target(&mut bank)
        .map_err(|fault| op.reject(&fault))?;
    let approval_id = format!("{:06}", bank.next_sequence());
    let settled = &mut bank.withdrawal_otps[index];
    settled.stage = cashing.outcome;
    let account = &settled.account;
    let answer = wire::withdrawal_paid(&approval_id, &account.acct_id, &account.acct_type);
    bank.withdrawal_counts.executed += 1;
    bank.withdrawal_ledger.push(ExecutedWithdrawal {
        tx_id: tx_id.clone(),
        approval_id,
        audit_number: request.trn.trn_rq_uid.clone(),
    });
    bank.withdrawals.insert(tx_id, answer.clone());
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// `otp.type`: what cashing a code does to its withdrawal OTP.
const OTP_TYPES: &[(&str, WithdrawalStage)] = &[
    ("Normal", WithdrawalStage::Paid),
    ("Reverse", WithdrawalStage::Reversed),
];

/// What S18's body asks: pay (or reverse) the customer's OTP for an amount.
struct Cashing<'a> {
    ident_num: &'a str,
    code: &'a str,
    amount_cents: u128,
    outcome: WithdrawalStage,
}

impl<'a> Cashing<'a> {
    /// The body's checks, in the order the bank answers them.
    fn read(op: Op, bank: &Bank, request: &'a WithdrawalRequest) -> Result<Self, BcsError> {
        let trn = &request.trn;
        let otp = &trn.otp;
        let hour_ok = trn.transaction_hour.is_empty()
            || NaiveTime::parse_from_str(&trn.transaction_hour, "%H:%M:%S").is_ok();
        let complete = !trn.trn_rq_uid.trim().is_empty()
            && !trn.dep_acct_id_from.acct_id.trim().is_empty()
            && !otp.gov_issue_ident.ident_serial_num.trim().is_empty();
        let (true, true, Some(given), Some(amount_cents)) = (
            hour_ok,
            complete,
            otp.otp_value.as_ref(),
            otp.cur_amt.amt.cents(),
        ) else {
            return Err(op.bad_request("trn incompleto: trnRqUID, depAcctIdFrom, otp.otpValue, otp.curAmt.amt, otp.govIssueIdent"));
        };
        let ident_num = otp.gov_issue_ident.ident_serial_num.trim();
        if bank.customer_by_number(ident_num).is_none() {
            return Err(op.reject(&codes::CUSTOMER_NOT_FOUND));
        }
        let Some(&(_, outcome)) = OTP_TYPES
            .iter()
            .find(|(name, _)| *name == otp.r#type.trim())
        else {
            return Err(op.bad_request("otp.type debe ser Normal o Reverse"));
        };
        Ok(Cashing {
            ident_num,
            code: given.expose_secret(),
            amount_cents,
            outcome,
        })
    }

    /// The index of the withdrawal OTP this cashing settles, or why none can be.
    fn target(&self, bank: &mut Bank) -> Result<usize, Fault> {
        if self.outcome == WithdrawalStage::Reversed {
            find_reversible(bank, self).ok_or(codes::NO_TRANSACTION)
        } else {
            find_payable(bank, self)
        }
    }
}

/// S18's fixed values and its TxId / ProcessId rules; returns the TxId.
fn check_headers(op: Op, headers: &HeaderMap) -> Result<String, BcsError> {
    for (name, allowed) in FIXED_HEADERS {
        if let Some(value) = header(headers, name)
            && !allowed.contains(&value.trim())
        {
            return Err(op.bad_request(format!("{name} debe ser {}", allowed.join(" o "))));
        }
    }
    let tx_id = header(headers, "X-Invoker-TxId")
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    let day_ok = TX_ID
        .captures(&tx_id)
        .and_then(|captures| captures[1].parse::<u32>().ok())
        .is_some_and(|day| (1..=366).contains(&day));
    if !day_ok {
        return Err(
            op.bad_request("X-Invoker-TxId debe ser APIF + fecha juliana + 32 + 10 digitos")
        );
    }
    let expected = format!("0{}", &tx_id[tx_id.len() - PROCESS_ID_TAIL..]);
    if header(headers, "X-Invoker-ProcessId").is_none_or(|id| id.trim() != expected) {
        return Err(op.bad_request(
            "X-Invoker-ProcessId debe ser 0 + los ultimos 11 digitos de X-Invoker-TxId",
        ));
    }
    Ok(tx_id)
}

/// The pending OTP the code opens, or why none does. A wrong code counts against the
/// customer's newest pending OTP, which burns at the configured number of attempts.
fn find_payable(bank: &mut Bank, cashing: &Cashing) -> Result<usize, Fault> {
    let max_attempts = bank.fixtures.otc.max_attempts;
    let now = Instant::now();
    let mine = |otp: &WithdrawalOtp| otp.ident_serial_num == cashing.ident_num;
    let matching = bank
        .withdrawal_otps
        .iter()
        .rposition(|otp| mine(otp) && otp.code.expose_secret() == cashing.code);
    let Some(index) = matching else {
        let newest = bank
            .withdrawal_otps
            .iter_mut()
            .rev()
            .find(|otp| mine(otp) && otp.stage == WithdrawalStage::Pending);
        if let Some(otp) = newest {
            otp.attempts += 1;
            if otp.attempts >= max_attempts {
                otp.stage = WithdrawalStage::Burned;
                return Err(codes::OTP_ATTEMPTS);
            }
        }
        return Err(codes::OTP_INVALID);
    };
    let otp = &bank.withdrawal_otps[index];
    match otp.stage {
        WithdrawalStage::Paid | WithdrawalStage::Reversed => Err(codes::OTP_USED),
        WithdrawalStage::Burned => Err(codes::OTP_ATTEMPTS),
        WithdrawalStage::Pending if now >= otp.expires => Err(codes::OTP_EXPIRED),
        WithdrawalStage::Pending if otp.amount_cents != cashing.amount_cents => {
            Err(codes::OTP_AMOUNT)
        }
        WithdrawalStage::Pending => Ok(index),
    }
}

/// The paid withdrawal a reversal undoes: same customer, code and amount.
fn find_reversible(bank: &Bank, cashing: &Cashing) -> Option<usize> {
    bank.withdrawal_otps.iter().rposition(|otp| {
        otp.ident_serial_num == cashing.ident_num
            && otp.code.expose_secret() == cashing.code
            && otp.amount_cents == cashing.amount_cents
            && otp.stage == WithdrawalStage::Paid
    })
}
