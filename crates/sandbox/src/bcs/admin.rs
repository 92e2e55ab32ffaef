//! Test helpers on the admin listener (mounted under `/bcs`): the SMS outbox, a customer's
//! password state, the code lifetime, and a reset to the fixtures.

use std::time::Duration;

use axum::extract::{Path, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::state::{CustomerKey, Readings, State};

pub(super) fn router(state: State) -> Router {
    Router::new()
        .route("/otc/{ident_type}/{ident_num}", get(last_code))
        .route("/customers", get(customers))
        .route("/customers/{ident_type}/{ident_num}", get(customer))
        .route("/otc-ttl", put(set_ttl))
        .route("/readings", get(readings).put(set_readings))
        .route("/withdrawals", get(withdrawal_counts))
        .route("/withdrawals/ledger", get(withdrawal_ledger))
        .route("/reset", post(reset))
        .route("/tokens", get(tokens))
        .route("/tokens/expire", post(expire_tokens))
        .with_state(state)
}

/// How many access tokens the sandbox issued (`{"issued": n}`).
async fn tokens(Shared(state): Shared<State>) -> Json<serde_json::Value> {
    Json(json!({ "issued": state.tokens().issued() }))
}

/// Every access token issued so far is refused from now on.
async fn expire_tokens(Shared(state): Shared<State>) -> StatusCode {
    state.tokens().expire_all();
    StatusCode::NO_CONTENT
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": what }))).into_response()
}

/// The last code "sent by SMS" to the customer (OTC, withdrawal OTP or challenge code).
async fn last_code(
    Shared(state): Shared<State>,
    Path((ident_type, ident_num)): Path<(String, String)>,
) -> Response {
    let bank = state.bank();
    let key = CustomerKey {
        ident_type: ident_type.to_ascii_uppercase(),
        ident_num,
    };
    let Some(sent) = bank.outbox.get(&key) else {
        return not_found("no code was sent to this customer");
    };
    Json(json!({
        "otc": sent.code.expose_secret(),
        "purpose": sent.purpose,
        "cellPhone": sent.cell_phone,
        "emailAddr": sent.email_addr,
        "sentAt": sent.sent_at.to_rfc3339(),
    }))
    .into_response()
}

/// Every seeded customer and what it is for.
async fn customers(Shared(state): Shared<State>) -> Response {
    let bank = state.bank();
    let list: Vec<_> = bank
        .customers
        .iter()
        .map(|c| {
            json!({
                "govIssueIdentType": c.data.gov_issue_ident_type,
                "identSerialNum": c.data.ident_serial_num,
                "purpose": c.data.purpose,
            })
        })
        .collect();
    Json(json!({ "customers": list })).into_response()
}

/// What the tests need to see of a customer, without any secret.
async fn customer(
    Shared(state): Shared<State>,
    Path((ident_type, ident_num)): Path<(String, String)>,
) -> Response {
    let bank = state.bank();
    let Some(customer) = bank.customer(&ident_type, &ident_num) else {
        return not_found("no such customer");
    };
    let user = customer.user.as_ref().map(|user| {
        json!({
            "status": if user.locked { "Locked" } else { "Active" },
            "failedAttempts": user.failed_attempts,
            "historySize": user.history.len(),
        })
    });
    Json(json!({
        "user": user,
        "digitalEnrollment": customer.data.digital_enrollment,
        "channelHolds": customer.data.channel_holds.len(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Ttl {
    millis: u64,
}

/// Shortens (or restores) the lifetime of every code issued from now on.
async fn set_ttl(Shared(state): Shared<State>, Json(ttl): Json<Ttl>) -> StatusCode {
    state.set_otc_ttl(Duration::from_millis(ttl.millis));
    StatusCode::NO_CONTENT
}

async fn readings(Shared(state): Shared<State>) -> Response {
    Json(state.bank().readings).into_response()
}

/// Switches how the bank reads what the spec leaves open (see `Readings`).
async fn set_readings(Shared(state): Shared<State>, Json(readings): Json<Readings>) -> StatusCode {
    state.bank().readings = readings;
    StatusCode::NO_CONTENT
}

async fn withdrawal_counts(Shared(state): Shared<State>) -> Response {
    Json(state.bank().withdrawal_counts).into_response()
}

/// Every withdrawal executed: TxId, approval and audit number.
async fn withdrawal_ledger(Shared(state): Shared<State>) -> Response {
    Json(state.bank().withdrawal_ledger.clone()).into_response()
}

async fn reset(Shared(state): Shared<State>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}
