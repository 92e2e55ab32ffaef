//! Users and passwords: password status and contact data (S1), change (S8), create or
//! recover (S9) and lock / activate (S13), under the bank's password policy.

use axum::body::Bytes;
use axum::extract::{MatchedPath, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::codes;
use super::envelope::{self, BcsError, Op, Reply, ok};
use super::fixtures::PasswordPolicy;
use super::input;
use super::policy::{Candidate, policy_problem, violation};
use super::state::{State, StatusValues, User, now};
use super::wire::{ChangePasswordRequest, CreateUserRequest, SetPasswordStatusRequest};

/// S1: GET /user/password/status, by document or by user alias (`SPName`); at the path
/// the bank's reading names alone, when it names one.
pub(super) async fn status(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    path: MatchedPath,
    RawQuery(raw): RawQuery,
) -> Reply {
    let op = Op::PasswordStatus;
    let served_at = state.bank().readings.password_status_path;
    if served_at.is_some_and(|reading| reading.path() != path.as_str()) {
        return Err(envelope::unknown_resource());
    }
    let query = input::admitted_query(&state, op, &headers, raw)?;
    let bank = state.bank();
    let customer = match (
        query.get("govIssueIdentType"),
        query.get("identSerialNum"),
        query.get("SPName"),
    ) {
        (Some(ident_type), Some(ident_num), _) => bank.customer(ident_type, ident_num),
        (_, _, Some(alias)) => bank.customer_by_alias(alias),
        _ => return Err(op.bad_request("envie govIssueIdentType e identSerialNum, o SPName")),
    };
    let name_addr_type = query.get("nameAddrType");
    let customer = customer.filter(|c| {
        name_addr_type.is_none_or(|kind| kind.eq_ignore_ascii_case(&c.data.name_addr_type))
    });
    let Some((customer, user)) = customer.and_then(|c| c.user.as_ref().map(|user| (c, user)))
    else {
        return Err(op.reject(&codes::USER_NOT_FOUND));
    };
    let (status, desc) = if user.locked {
        ("3", "Bloqueado")
    } else {
        ("1", "Activo")
    };
    Ok(ok(
        StatusCode::OK,
        json!({
            "custPswdInfo": { "pswdStatus": status, "desc": desc },
            "contactInfo": {
                "cellPhone": customer.data.contact_info.cell_phone,
                "emailAddr": customer.data.contact_info.email_addr,
            }
        }),
    ))
}

/// S8: PUT /user-management/v1/customer. Wrong current passwords count towards a lock.
pub(super) async fn change(Shared(state): Shared<State>, headers: HeaderMap, body: Bytes) -> Reply {
    let op = Op::ChangePassword;
    let request: ChangePasswordRequest = input::admitted_body(&state, op, &headers, &body)?;
    let ident = &request.gov_issue_ident;
    let (Some(current), Some(new)) = (
        request.cust_pswd.crypt_pswd,
        request.subject_pswd.crypt_pswd,
    ) else {
        return Err(op.reject(&codes::MISSING_FIELDS));
    };
    if ident.is_incomplete() {
        return Err(op.reject(&codes::MISSING_FIELDS));
    }
    let mut bank = state.bank();
    let policy = bank.fixtures.password_policy.clone();
    if let Some(problem) = policy_problem(&policy, false) {
        return Err(op.reject(&problem));
    }
    let user = bank
        .customer_mut(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .and_then(|customer| customer.user.as_mut())
        .ok_or_else(|| op.reject(&codes::INVALID_CREDENTIALS))?;
    if user.locked {
        return Err(op.reject(&codes::PASSWORD_LOCKED));
    }
    if user.password.expose_secret() != current.expose_secret() {
        user.failed_attempts += 1;
        user.locked = user.failed_attempts >= policy.max_failed_attempts;
        return Err(op.reject(&codes::INVALID_CREDENTIALS));
    }
    user.failed_attempts = 0;
    check_new_password(op, &new, &ident.ident_serial_num, Some(user), &policy)?;
    user.replace_password(new, policy.history);
    Ok(ok(StatusCode::CREATED, json!({})))
}

/// S9: POST /security-management/v1/customer: creates the user (`recuperationFlag` N) or
/// sets a new password for an existing one (S).
pub(super) async fn create_or_recover(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::CreateUser;
    let request: CreateUserRequest = input::admitted_body(&state, op, &headers, &body)?;
    let ident = &request.gov_issue_ident;
    let recovering = match request.recuperation_flag.value.0.trim() {
        "S" => true,
        "N" => false,
        "" => return Err(op.reject(&codes::MISSING_FIELDS)),
        _ => return Err(op.bad_request("recuperationFlag debe ser S o N")),
    };
    let Some(password) = request.info_password.password else {
        return Err(op.reject(&codes::MISSING_FIELDS));
    };
    if ident.is_incomplete() {
        return Err(op.reject(&codes::MISSING_FIELDS));
    }
    let mut bank = state.bank();
    let policy = bank.fixtures.password_policy.clone();
    if let Some(problem) = policy_problem(&policy, true) {
        return Err(op.reject(&problem));
    }
    let customer = bank
        .customer_mut(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .ok_or_else(|| op.reject(&codes::CUSTOMER_NOT_FOUND))?;
    if !customer.data.linkable {
        return Err(op.reject(&codes::NOT_LINKABLE));
    }
    match (&mut customer.user, recovering) {
        (Some(_), false) => Err(op.reject(&codes::USER_EXISTS)),
        (None, true) => Err(op.reject(&codes::INVALID_CREDENTIALS)),
        (None, false) => {
            check_new_password(op, &password, &ident.ident_serial_num, None, &policy)?;
            customer.user = Some(User::new(password));
            Ok(ok(StatusCode::CREATED, json!({})))
        }
        (Some(user), true) => {
            check_new_password(op, &password, &ident.ident_serial_num, Some(user), &policy)?;
            user.replace_password(password, policy.history);
            Ok(ok(StatusCode::CREATED, json!({})))
        }
    }
}

fn check_new_password(
    op: Op,
    password: &SecretString,
    ident_serial_num: &str,
    user: Option<&User>,
    policy: &PasswordPolicy,
) -> Result<(), BcsError> {
    let candidate = Candidate {
        password: password.expose_secret(),
        ident_serial_num,
        current: user.map(|user| &user.password),
        history: user.map_or(&[], |user| user.history.as_slice()),
        policy,
    };
    violation(&candidate).map_or(Ok(()), |broken| Err(op.reject(&broken)))
}

/// The states S13 accepts, by the spec's names and by its numeric codes (Active 1, Locked 3).
const PASSWORD_STATES: &[(&str, bool, StatusValues)] = &[
    ("Active", false, StatusValues::Words),
    ("1", false, StatusValues::Digits),
    ("Locked", true, StatusValues::Words),
    ("3", true, StatusValues::Digits),
];

/// S13: POST /security-management/v1/customer/password/status (lock or activate).
pub(super) async fn set_status(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let op = Op::SetPasswordStatus;
    let request: SetPasswordStatusRequest = input::admitted_body(&state, op, &headers, &body)?;
    let ident = &request.gov_issue_ident;
    if ident.is_incomplete() {
        return Err(op.bad_request("govIssueIdent es obligatorio"));
    }
    let read = state.bank().readings.password_status_values;
    let Some(&(_, lock, _)) = PASSWORD_STATES.iter().find(|(name, _, values)| {
        name.eq_ignore_ascii_case(request.cust_pswd.status.trim())
            && read.is_none_or(|read| read == *values)
    }) else {
        return Err(op.reject(&codes::INVALID_PASSWORD_STATUS));
    };
    let channel = input::channel(&headers);
    let mut bank = state.bank();
    let customer = bank
        .customer_mut(&ident.gov_issue_ident_type, &ident.ident_serial_num)
        .ok_or_else(|| op.reject(&codes::STATUS_USER_NOT_FOUND))?;
    if customer.blocked_on(&channel) {
        return Err(op.reject(&codes::BLOCKED_FOR_CHANNEL_STATUS));
    }
    let user = customer
        .user
        .as_mut()
        .ok_or_else(|| op.reject(&codes::STATUS_USER_NOT_FOUND))?;
    if user.locked == lock {
        return Err(op.reject(&codes::ALREADY_IN_STATE));
    }
    user.locked = lock;
    user.failed_attempts = 0;
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "status": {
                "statusDesc": "Cambio estado clave de usuario Exitosa.",
                "endDt": now().format("%Y-%m-%d-%H:%M:%S%.3f").to_string(),
            }
        }),
    ))
}
