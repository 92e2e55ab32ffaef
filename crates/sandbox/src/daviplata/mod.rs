//! The Daviplata "Pago Recurrente" emulator (D0-D4): the OAuth2 client-credentials token
//! and the four subscription operations, behind the gateway's checks (client id header,
//! bearer token). Mutual TLS is the listener's job (see `serve` and `pki`).

pub mod errors;
mod state;
mod wire;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use state::{ClientIdHeader, Daviplata, Readings, Settings};

use errors::{Failure, Gateway, OAuth, Refusal};
use wire::{Envelope, Property, Wallet};

pub const TOKEN_PATH: &str = "/oauth2Provider/type1/v1/token";
pub const REQUEST_PATH: &str = "/v1/payments/subscriptions/request";
pub const ACTIVATE_PATH: &str = "/v1/payments/subscriptions/activate";
pub const CANCEL_PATH: &str = "/v1/payments/subscriptions/cancel";
pub const PAYMENT_PATH: &str = "/v1/payments/subscriptions/payment";

/// The only scope the recurring-payment APIs know.
const SCOPE: &str = "pg_recurrente";

/// The document says `client_id`; IBM API Connect's public lab clients send
/// `x-ibm-client-id`. Both are accepted unless a reading names one.
const CLIENT_ID_HEADERS: [&str; 2] = ["client_id", "x-ibm-client-id"];

/// Where a gateway that wants the client's secret on business calls reads it.
const CLIENT_SECRET_HEADERS: [&str; 2] = ["client_secret", "x-ibm-client-secret"];

pub fn router(daviplata: Daviplata) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(REQUEST_PATH, post(request))
        .route(ACTIVATE_PATH, post(activate))
        .route(CANCEL_PATH, post(cancel))
        .route(PAYMENT_PATH, post(payment))
        .with_state(daviplata)
}

#[derive(Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// D0. The checks run in the order the gateway's answers imply: the client must be known
/// before its secret, grant type or scope mean anything.
async fn token(State(daviplata): State<Daviplata>, body: Bytes) -> Response {
    let form: TokenForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let client_id = form.client_id.as_deref().unwrap_or_default();
    let known = daviplata.knows(client_id);
    let checks = [
        (known, Failure::Gateway(Gateway::UnknownClient)),
        (
            known
                && form
                    .client_secret
                    .as_deref()
                    .is_some_and(|secret| daviplata.accepts(client_id, secret)),
            Failure::OAuth(OAuth::InvalidClient),
        ),
        (
            form.grant_type.as_deref() == Some("client_credentials"),
            Failure::OAuth(OAuth::UnknownGrant),
        ),
        (
            form.scope.as_deref() == Some(SCOPE),
            Failure::OAuth(OAuth::InvalidScope),
        ),
    ];
    if let Some((_, failure)) = checks.into_iter().find(|(passed, _)| !passed) {
        return failure.into_response();
    }
    let (access_token, ttl) = daviplata.issue_token(client_id);
    Json(json!({
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": ttl.as_secs(),
        "scope": SCOPE,
    }))
    .into_response()
}

/// The gateway's checks before any business call: a known client id, then a bearer
/// token it issued that has not expired.
fn authorize(daviplata: &Daviplata, headers: &HeaderMap) -> Result<(), Failure> {
    let strict = daviplata
        .readings()
        .client_id_header
        .map(ClientIdHeader::header);
    let accepted: &[&str] = match &strict {
        Some(header) => std::slice::from_ref(header),
        None => &CLIENT_ID_HEADERS,
    };
    let client_id = accepted
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| value.to_str().ok());
    let Some(client_id) = client_id.filter(|id| daviplata.knows(id)) else {
        return Err(Failure::Gateway(Gateway::UnknownClient));
    };
    if daviplata.readings().client_secret_required {
        let secret = CLIENT_SECRET_HEADERS
            .iter()
            .find_map(|name| headers.get(*name))
            .and_then(|value| value.to_str().ok());
        if !secret.is_some_and(|secret| daviplata.accepts(client_id, secret)) {
            return Err(Failure::Gateway(Gateway::UnknownClient));
        }
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or(Failure::Gateway(Gateway::NoBearer))?;
    // A token is its client's: another contract's token under this client id is refused.
    if daviplata.token_is_valid(token.trim(), client_id) {
        Ok(())
    } else {
        Err(Failure::Refused(Refusal::TokenInvalid))
    }
}

/// A business call (D1-D4): the gateway's checks, then the body against `schema`, then
/// the operation.
fn business<D>(
    daviplata: &Daviplata,
    headers: &HeaderMap,
    body: &[u8],
    schema: &[Property],
    operation: impl FnOnce(&Daviplata, Envelope<D>, &Value) -> Result<Value, Failure>,
) -> Response
where
    Envelope<D>: DeserializeOwned,
{
    answer(authorize(daviplata, headers).and_then(|()| backend(daviplata, body, schema, operation)))
}

/// What the backend does with a body the gateway let through.
fn backend<D>(
    daviplata: &Daviplata,
    body: &[u8],
    schema: &[Property],
    operation: impl FnOnce(&Daviplata, Envelope<D>, &Value) -> Result<Value, Failure>,
) -> Result<Value, Failure>
where
    Envelope<D>: DeserializeOwned,
{
    wire::commerce_field(body, daviplata.readings().commerce_id)?;
    let (request, raw) = wire::parse::<Envelope<D>>(body, schema)?;
    operation(daviplata, request, &raw)
}

fn answer(result: Result<Value, Failure>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn request(State(daviplata): State<Daviplata>, headers: HeaderMap, body: Bytes) -> Response {
    business(
        &daviplata,
        &headers,
        &body,
        wire::REQUEST_SCHEMA,
        |daviplata, request: Envelope<Wallet>, _| daviplata.request(request),
    )
}

async fn activate(State(daviplata): State<Daviplata>, headers: HeaderMap, body: Bytes) -> Response {
    // The gateway answers for the client before the backend reads the body.
    let reading = daviplata.readings().activation_document;
    answer(authorize(&daviplata, &headers).and_then(|()| {
        let body = wire::activation_document(&body, reading)?;
        backend(
            &daviplata,
            &body,
            wire::ACTIVATE_SCHEMA,
            Daviplata::activate,
        )
    }))
}

async fn cancel(State(daviplata): State<Daviplata>, headers: HeaderMap, body: Bytes) -> Response {
    let schema = wire::CANCEL_SCHEMA;
    business(&daviplata, &headers, &body, schema, Daviplata::cancel)
}

async fn payment(State(daviplata): State<Daviplata>, headers: HeaderMap, body: Bytes) -> Response {
    let schema = wire::PAYMENT_SCHEMA;
    business(&daviplata, &headers, &body, schema, Daviplata::pay)
}
