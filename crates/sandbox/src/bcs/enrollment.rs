//! Digital enrollment: the legacy enrollment pair (S6 enroll, S7 check) and the card checks
//! that precede creating a user (S10, against a debit card PIN or a credit card CVV) or
//! recovering a password (S11).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;
use serde_json::json;

use super::codes;
use super::envelope::{BcsError, Fault, Op, Reply, ok};
use super::fixtures::{Card, CustomerFixture};
use super::input::{self, Query};
use super::state::State;
use super::wire::EnrollmentRequest;

/// Document types the bank issues users for.
pub(crate) const IDENT_TYPES: &[&str] = &["CC", "CE", "PA", "TI", "NI", "PE"];

/// S7: GET /userManagement/v1/Customer: OK while the customer may still enroll.
pub(super) async fn check(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Reply {
    let op = Op::DigitalEnrollmentCheck;
    let query = input::admitted_query(&state, op, &headers, raw)?;
    let (Some(ident_type), Some(ident_num)) =
        (query.get("govIssueIdentType"), query.get("identSerialNum"))
    else {
        return Err(op.bad_request("govIssueIdentType e identSerialNum son obligatorios"));
    };
    let bank = state.bank();
    let customer = bank
        .customer(ident_type, ident_num)
        .ok_or_else(|| op.reject(&codes::RETO_NOT_FOUND))?;
    if customer.data.digital_enrollment {
        return Err(op.reject(&codes::ENROLLMENT_EXISTS));
    }
    Ok(ok(StatusCode::OK, json!({})))
}

/// S6: POST /userManagement/v1/Customer: enrolls the customer in the digital channels.
pub(super) async fn enroll(Shared(state): Shared<State>, headers: HeaderMap, body: Bytes) -> Reply {
    let op = Op::DigitalEnroll;
    let request: EnrollmentRequest = input::admitted_body(&state, op, &headers, &body)?;
    let ident = &request.gov_issue_ident;
    if ident.is_incomplete() {
        return Err(op.bad_request("govIssueIdent es obligatorio"));
    }
    let mut bank = state.bank();
    let customer = bank
        .customer_mut(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .ok_or_else(|| op.reject(&codes::RETO_NOT_FOUND))?;
    if customer.data.digital_enrollment {
        return Err(op.reject(&codes::ENROLLMENT_EXISTS));
    }
    if !customer.data.linkable {
        return Err(op.reject(&codes::NOT_LINKABLE));
    }
    customer.data.digital_enrollment = true;
    Ok(ok(StatusCode::CREATED, json!({})))
}

/// What S10 and S11 require of the customer's digital user.
struct Purpose {
    op: Op,
    not_linkable: Fault,
    /// S10 validates someone who has no user yet; S11 someone who has one.
    wants_user: bool,
    user_fault: Fault,
}

const ENROLLMENT: Purpose = Purpose {
    op: Op::EnrollmentValidation,
    not_linkable: codes::NOT_LINKABLE_REGISTER,
    wants_user: false,
    user_fault: codes::ENROLLMENT_EXISTS,
};

const RECOVERY: Purpose = Purpose {
    op: Op::RecoveryValidation,
    not_linkable: codes::NOT_LINKABLE_RECOVER,
    wants_user: true,
    user_fault: codes::NO_USER_TO_RECOVER,
};

/// A product kind (`acctType`): where its cards are, and the rows for no card of the kind,
/// no card ending in `acctId`, and a wrong secret (PIN or CVV).
struct CardKind {
    acct_type: &'static str,
    cards: fn(&CustomerFixture) -> &[Card],
    no_cards: Fault,
    mismatch: Fault,
    wrong_secret: Fault,
}

const CARD_KINDS: &[CardKind] = &[
    CardKind {
        acct_type: "DBC",
        cards: |c| &c.debit_cards,
        no_cards: codes::NO_DEBIT_CARDS,
        mismatch: codes::DEBIT_CARD_MISMATCH,
        wrong_secret: codes::PIN_MISMATCH,
    },
    CardKind {
        acct_type: "CCA",
        cards: |c| &c.credit_cards,
        no_cards: codes::NO_CREDIT_CARDS,
        mismatch: codes::CREDIT_CARD_MISMATCH,
        wrong_secret: codes::CVV_MISMATCH,
    },
];

/// What S10 and S11 ask: does the customer's card of `kind` ending in `acct_id` have
/// `secret`?
struct CardQuestion<'a> {
    ident_type: &'a str,
    kind: &'static CardKind,
    acct_id: &'a str,
    secret: &'a str,
}

impl<'a> CardQuestion<'a> {
    /// The query's checks, in the order the bank answers them.
    fn read(op: Op, query: &'a Query, ident_num: &str) -> Result<Self, BcsError> {
        let ident_type = query.get("govIssueIdentType").unwrap_or_default();
        if !IDENT_TYPES.contains(&ident_type) {
            return Err(op.reject(&codes::INVALID_IDENT_TYPE));
        }
        if ident_num.is_empty() || !ident_num.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(op.reject(&codes::INVALID_IDENT_NUMBER));
        }
        let (Some(acct_type), Some(secret), Some(acct_id)) = (
            query.get("acctType"),
            query.get("secretId"),
            query.get("acctId"),
        ) else {
            return Err(op.bad_request("acctType, secretId y acctId son obligatorios"));
        };
        if acct_id.len() != 6 || !acct_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(op.bad_request("acctId son los ultimos seis digitos"));
        }
        let kind = CARD_KINDS
            .iter()
            .find(|kind| kind.acct_type == acct_type)
            .ok_or_else(|| op.bad_request("acctType debe ser CCA o DBC"))?;
        Ok(CardQuestion {
            ident_type,
            kind,
            acct_id,
            secret,
        })
    }

    /// The customer's card answers the question, or the row saying why not.
    fn answer(&self, customer: &CustomerFixture) -> Result<(), Fault> {
        let cards = (self.kind.cards)(customer);
        if cards.is_empty() {
            return Err(self.kind.no_cards);
        }
        let card = cards
            .iter()
            .find(|card| card.number.ends_with(self.acct_id))
            .ok_or(self.kind.mismatch)?;
        if card.secret.expose_secret() != self.secret {
            return Err(self.kind.wrong_secret);
        }
        Ok(())
    }
}

/// S10: GET /security-management/v1/customer/{identSerialNum}/validate.
pub(super) async fn validate_enrollment(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    Path(ident_num): Path<String>,
    RawQuery(raw): RawQuery,
) -> Reply {
    validate_card(&ENROLLMENT, &state, &headers, &ident_num, raw)
}

/// S11: GET /security-management/v1/customer/{identSerialNum}/password.
pub(super) async fn validate_recovery(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    Path(ident_num): Path<String>,
    RawQuery(raw): RawQuery,
) -> Reply {
    validate_card(&RECOVERY, &state, &headers, &ident_num, raw)
}

fn validate_card(
    purpose: &Purpose,
    state: &State,
    headers: &HeaderMap,
    ident_num: &str,
    raw: Option<String>,
) -> Reply {
    let op = purpose.op;
    let query = input::admitted_query(state, op, headers, raw)?;
    let question = CardQuestion::read(op, &query, ident_num)?;
    let bank = state.bank();
    let customer = bank
        .customer(question.ident_type, ident_num)
        .ok_or_else(|| op.reject(&codes::NO_CLIENT_DATA))?;
    if customer.blocked_on(&input::channel(headers)) {
        return Err(op.reject(&codes::BLOCKED_FOR_CHANNEL));
    }
    if !customer.data.linkable {
        return Err(op.reject(&purpose.not_linkable));
    }
    if customer.user.is_some() != purpose.wants_user {
        return Err(op.reject(&purpose.user_fault));
    }
    if customer.data.contact_info.email_addr.is_empty() {
        return Err(op.reject(&codes::NO_EMAIL));
    }
    question
        .answer(&customer.data)
        .map_err(|fault| op.reject(&fault))?;
    Ok(ok(StatusCode::OK, json!({})))
}
