//! One-time codes with a purpose: generate (S2 V1, S3 V3) and validate (S4). Codes are
//! "sent by SMS" to the admin outbox, expire, are single use and burn after a few wrong tries.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::codes;
use super::envelope::{BcsError, Op, Reply, ok};
use super::fixtures::ContactInfo;
use super::input;
use super::state::{OneTimeCode, OtcCodeField, OtcContactInfo, State};
use super::wire::{GovIssueIdent, OtcBody, OtcRequest};

/// S2: POST /securityManagement/V1/generateOTC.
pub(super) async fn generate_v1(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    generate(Op::GenerateOtcV1, &state, &headers, &body)
}

/// S3: POST /securityManagement/V3/generateOTC: same as V1, but business errors travel as 206.
pub(super) async fn generate_v3(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    generate(Op::GenerateOtcV3, &state, &headers, &body)
}

/// The code's purpose (`otc.otcIssue`), once the customer and the purpose are both given.
fn purpose<'a>(op: Op, ident: &GovIssueIdent, otc: &'a OtcBody) -> Result<&'a str, BcsError> {
    let issue = otc.otc_issue.trim();
    if ident.is_incomplete() || issue.is_empty() {
        return Err(op.bad_request("govIssueIdent y otc.otcIssue son obligatorios"));
    }
    Ok(issue)
}

/// The contact the request gives, where the bank reads it; one in the place the bank does
/// not read is a property its schema does not have.
fn given_contact(
    op: Op,
    reading: Option<OtcContactInfo>,
    request: &mut OtcRequest,
) -> Result<Option<super::wire::ContactInfo>, BcsError> {
    let (top, inside) = (request.contact_info.take(), request.otc.contact_info.take());
    match reading {
        Some(OtcContactInfo::TopLevel) if inside.is_some() => {
            Err(op.bad_request("propiedad desconocida otc.contactInfo"))
        }
        Some(OtcContactInfo::InOtc) if top.is_some() => {
            Err(op.bad_request("propiedad desconocida contactInfo"))
        }
        _ => Ok(top.or(inside)),
    }
}

/// The code to validate, under the name the bank reads; the other name is a property its
/// schema does not have.
fn given_code(
    op: Op,
    reading: Option<OtcCodeField>,
    otc: &OtcBody,
) -> Result<&SecretString, BcsError> {
    let code = match reading {
        Some(OtcCodeField::OtcValue) if otc.value.is_some() => {
            return Err(op.bad_request("propiedad desconocida otc.value"));
        }
        Some(OtcCodeField::Value) if otc.otc_value.is_some() => {
            return Err(op.bad_request("propiedad desconocida otc.otcValue"));
        }
        _ => otc.otc_value.as_ref().or(otc.value.as_ref()),
    };
    code.ok_or_else(|| op.bad_request("el código de otc es obligatorio"))
}

fn generate(op: Op, state: &State, headers: &HeaderMap, body: &Bytes) -> Reply {
    let mut request: OtcRequest = input::admitted_body(state, op, headers, body)?;
    let reading = state.bank().readings.otc_contact_info;
    let given = given_contact(op, reading, &mut request)?;
    let ident = &request.gov_issue_ident;
    let issue = purpose(op, ident, &request.otc)?;
    let mut bank = state.bank();
    let customer = bank
        .customer(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .ok_or_else(|| op.reject(&codes::OTC_CUSTOMER_NOT_FOUND))?;
    let contact = given
        .map(ContactInfo::from)
        .filter(|given| !given.is_empty())
        .unwrap_or_else(|| customer.data.contact_info.clone());
    if contact.is_empty() {
        return Err(op.reject(&codes::OTC_NO_CONTACT));
    }
    let key = customer.key();
    let code = bank.send_code(&key, issue, contact);
    let expires = bank.expiry();
    bank.otcs.insert(
        (key, issue.to_string()),
        OneTimeCode {
            code,
            expires,
            attempts: 0,
        },
    );
    Ok(ok(StatusCode::CREATED, json!({})))
}

/// S4: POST /securityManagement/V1/validateOTC.
pub(super) async fn validate(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::ValidateOtc;
    let request: OtcRequest = input::admitted_body(&state, op, &headers, &body)?;
    let ident = &request.gov_issue_ident;
    let reading = state.bank().readings.otc_code_field;
    let given = given_code(op, reading, &request.otc)?;
    let issue = purpose(op, ident, &request.otc)?;
    let mut bank = state.bank();
    let max_attempts = bank.fixtures.otc.max_attempts;
    let key = bank
        .customer(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .ok_or_else(|| op.reject(&codes::OTC_CUSTOMER_NOT_FOUND))?
        .key();
    let slot = (key, issue.to_string());
    let otc = bank
        .otcs
        .get_mut(&slot)
        .ok_or_else(|| op.reject(&codes::OTC_NONE))?;
    if otc.attempts >= max_attempts {
        return Err(op.reject(&codes::OTC_ATTEMPTS));
    }
    if Instant::now() >= otc.expires {
        return Err(op.reject(&codes::OTC_EXPIRED));
    }
    if otc.code.expose_secret() != given.expose_secret() {
        otc.attempts += 1;
        let burned = otc.attempts >= max_attempts;
        return Err(op.reject(if burned {
            &codes::OTC_ATTEMPTS
        } else {
            &codes::OTC_WRONG
        }));
    }
    bank.otcs.remove(&slot);
    Ok(ok(StatusCode::OK, json!({})))
}
