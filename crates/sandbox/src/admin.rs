//! The admin listener: fault rules, call counts, the request journal, Daviplata's counters and test helpers,
//! and Banco Caja Social's helpers under `/bcs`. Plain JSON over HTTP, for tests and CI.

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::json;

use crate::daviplata::{Daviplata, Readings};
use crate::faults::{Faults, Provider, RuleSpec};
use crate::kiban::{Kiban, Readings as KibanReadings};
use crate::secrets::Secrets;

#[derive(Clone)]
struct Admin {
    faults: Faults,
    daviplata: Daviplata,
    kiban: Kiban,
    secrets: Secrets,
}

/// The emulators whose state the admin listener reaches.
pub struct Emulators {
    pub daviplata: Daviplata,
    pub kiban: Kiban,
    pub secrets: Secrets,
}

pub fn router(faults: Faults, emulators: Emulators, bcs: Router) -> Router {
    let Emulators {
        daviplata,
        kiban,
        secrets,
    } = emulators;
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/calls", get(calls))
        .route("/journal", get(journal).delete(clear_journal))
        .route("/reset", post(reset))
        .route("/daviplata/counters", get(daviplata_counters))
        .route("/daviplata/ledger", get(daviplata_ledger))
        .route("/daviplata/reset", post(daviplata_reset))
        .route(
            "/daviplata/readings",
            get(daviplata_readings).put(set_daviplata_readings),
        )
        .route("/daviplata/tokens/expire", post(expire_tokens))
        .route(
            "/daviplata/otp-sessions/{id}/expire",
            post(expire_otp_session),
        )
        .route("/secrets/{provider}", put(set_secrets))
        .route(
            "/kiban/readings",
            get(kiban_readings).put(set_kiban_readings),
        )
        .with_state(Admin {
            faults,
            daviplata,
            kiban,
            secrets,
        })
        .nest("/bcs", bcs)
}

#[derive(Deserialize)]
struct AcceptedSecrets {
    accepted: Vec<String>,
}

/// The secrets a provider accepts from now on (`bcs`: the client secret, `kiban`: the API
/// key, `daviplata`: the main client's secret): a rotation adds the new one, then withdraws
/// the old one.
async fn set_secrets(
    State(admin): State<Admin>,
    Path(provider): Path<String>,
    body: Result<Json<AcceptedSecrets>, JsonRejection>,
) -> Response {
    let Some(accepted) = admin.secrets.of(&provider) else {
        return refused(StatusCode::NOT_FOUND, format!("no provider {provider:?}"));
    };
    let values = match body {
        Ok(Json(body)) => body.accepted,
        Err(rejection) => return refused(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match accepted.replace(values) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => refused(StatusCode::BAD_REQUEST, why),
    }
}

fn refused(status: StatusCode, why: impl Into<String>) -> Response {
    (status, Json(json!({ "error": why.into() }))).into_response()
}

async fn add_fault(
    State(admin): State<Admin>,
    spec: Result<Json<RuleSpec>, JsonRejection>,
) -> Response {
    let spec = match spec {
        Ok(Json(spec)) => spec,
        Err(rejection) => return refused(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match admin.faults.add(spec) {
        Ok(rule) => (StatusCode::CREATED, Json(rule)).into_response(),
        Err(why) => refused(StatusCode::BAD_REQUEST, why),
    }
}

async fn list_faults(State(admin): State<Admin>) -> Response {
    Json(admin.faults.rules()).into_response()
}

async fn clear_faults(State(admin): State<Admin>) -> StatusCode {
    admin.faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(admin): State<Admin>, Path(id): Path<u64>) -> Response {
    if admin.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        refused(StatusCode::NOT_FOUND, format!("no fault rule {id}"))
    }
}

async fn calls(State(admin): State<Admin>) -> Response {
    Json(admin.faults.calls()).into_response()
}

/// `?provider=` narrows the journal to one provider.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    provider: Option<Provider>,
}

async fn journal(
    State(admin): State<Admin>,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(query)) => Json(admin.faults.journal(query.provider)).into_response(),
        Err(rejection) => refused(StatusCode::BAD_REQUEST, rejection.body_text()),
    }
}

async fn clear_journal(State(admin): State<Admin>) -> StatusCode {
    admin.faults.clear_journal();
    StatusCode::NO_CONTENT
}

/// Fault rules, every count and the journal go; the emulators' state stays.
async fn reset(State(admin): State<Admin>) -> StatusCode {
    admin.faults.reset();
    admin.daviplata.reset_counters();
    StatusCode::NO_CONTENT
}

async fn daviplata_counters(State(admin): State<Admin>) -> Response {
    Json(admin.daviplata.counters()).into_response()
}

/// Every payment executed: transactionId, approval number and invoice id.
async fn daviplata_ledger(State(admin): State<Admin>) -> Response {
    Json(admin.daviplata.ledger()).into_response()
}

async fn daviplata_reset(State(admin): State<Admin>) -> StatusCode {
    admin.daviplata.reset();
    StatusCode::NO_CONTENT
}

async fn daviplata_readings(State(admin): State<Admin>) -> Response {
    Json(admin.daviplata.readings()).into_response()
}

async fn set_daviplata_readings(
    State(admin): State<Admin>,
    readings: Result<Json<Readings>, JsonRejection>,
) -> Response {
    match readings {
        Ok(Json(readings)) => {
            admin.daviplata.set_readings(readings);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(rejection) => refused(StatusCode::BAD_REQUEST, rejection.body_text()),
    }
}

async fn kiban_readings(State(admin): State<Admin>) -> Response {
    Json(admin.kiban.readings()).into_response()
}

async fn set_kiban_readings(
    State(admin): State<Admin>,
    readings: Result<Json<KibanReadings>, JsonRejection>,
) -> Response {
    let readings = match readings {
        Ok(Json(readings)) => readings,
        Err(rejection) => return refused(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match admin.kiban.set_readings(readings) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => refused(StatusCode::BAD_REQUEST, why),
    }
}

async fn expire_tokens(State(admin): State<Admin>) -> StatusCode {
    admin.daviplata.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn expire_otp_session(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    if admin.daviplata.expire_otp_session(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        refused(StatusCode::NOT_FOUND, format!("no OTP session {id}"))
    }
}
