//! Every failure the Daviplata emulator answers, as data: the documented business
//! messages (`codigoError` / `mensajeError`), the IBM API Connect gateway envelopes
//! (`httpCode` / `httpMessage` / `moreInformation`), the OAuth2 errors of the token
//! endpoint, and the documented 5xx bodies used by `status` faults.

use axum::response::{IntoResponse, Json, Response};
use http::StatusCode;
use serde_json::json;

/// A documented business refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TokenInvalid,
    OtpWrong,
    OtpExpiredOrUsed,
    WalletAlreadySubscribed,
    WalletNotEligible,
    SubscriptionInvalid,
    WalletNotSubscribed,
    AmountOverMaximum,
    CannotExecute,
}

/// Status and `mensajeError` of each refusal, as the "Errores conocidos" table gives them.
/// The maximum-amount text is not in the table; it is worded like its neighbours.
const REFUSALS: [(Refusal, (u16, &str)); 9] = [
    (
        Refusal::TokenInvalid,
        (
            401,
            "No cuenta con autorización para realizar la transacción",
        ),
    ),
    (Refusal::OtpWrong, (422, "Otp errado")),
    (
        Refusal::OtpExpiredOrUsed,
        (422, "Otp expirado o ya fue usado"),
    ),
    (
        Refusal::WalletAlreadySubscribed,
        (422, "Monedero ya está asociado al ttp aliado y comercio"),
    ),
    (
        Refusal::WalletNotEligible,
        (
            422,
            "Monedero no asociado al documento o en estado que no permite la suscripción",
        ),
    ),
    (
        Refusal::SubscriptionInvalid,
        (422, "Suscripción inválida o monedero no asociado al aliado"),
    ),
    (
        Refusal::WalletNotSubscribed,
        (422, "Monedero no está asociado al ttp aliado y/o comercio"),
    ),
    (
        Refusal::AmountOverMaximum,
        (
            422,
            "El valor de la transacción supera el valor máximo de la suscripción",
        ),
    ),
    (
        Refusal::CannotExecute,
        (422, "No se puede ejecutar la transacción"),
    ),
];

/// Refusals of the IBM API Connect gateway in front of the APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// No client id, or one the gateway does not know.
    UnknownClient,
    /// No `Authorization: Bearer` header at all.
    NoBearer,
}

const GATEWAY: [(Gateway, (u16, &str, &str)); 2] = [
    (
        Gateway::UnknownClient,
        (401, "Unauthorized", "Invalid client id or secret."),
    ),
    (
        Gateway::NoBearer,
        (
            401,
            "Unauthorized",
            "This server could not verify that you are authorized to access the URL",
        ),
    ),
];

/// OAuth2 errors of the token endpoint (`error` values as the document gives them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuth {
    InvalidClient,
    InvalidScope,
    UnknownGrant,
}

const OAUTH: [(OAuth, &str); 3] = [
    (OAuth::InvalidClient, "invalid_client"),
    (OAuth::InvalidScope, "invalid_scope"),
    (OAuth::UnknownGrant, "unknown"),
];

/// Bodies Daviplata documents for server errors.
pub const DOCUMENTED_FAULT_BODIES: &[(u16, &str)] = &[
    (
        500,
        r#"{"codigoError":"500","mensajeError":"Se atiende la petición pero se dió un error con sistemas dependientes."}"#,
    ),
    (
        502,
        r#"{"codigoError":"502","mensajeError":"Error de sistema retomado por sistemas proveedores del servicio"}"#,
    ),
    (
        504,
        r#"{"codigoError":"504","mensajeError":"Timeout con sistemas proveedores del servicio"}"#,
    ),
];

/// Where the gateway's JSON schema validator says the body was.
const SCHEMA_SOURCE: &str = "Validate REST: xa35://tmp/temp_02777:1:";

/// Any failed answer of the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Refused(Refusal),
    Gateway(Gateway),
    OAuth(OAuth),
    /// 400: a field holds a value the API does not accept. `value` is left out of the
    /// message for secret fields by the caller.
    InvalidValue {
        field: String,
        value: String,
    },
    /// 400: the body is not JSON at all.
    Unreadable,
    /// 422 from the gateway's schema validation: a required property is missing.
    MissingProperty(String),
    /// 422 from the gateway's schema validation: a value of the wrong JSON type, or a
    /// property the schema does not have (named by its value's type, as documented).
    WrongType(&'static str),
}

fn lookup<K: PartialEq + Copy, V: Copy>(table: &[(K, V)], key: K) -> V {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .expect("every variant has a row")
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Failure::Refused(refusal) => {
                let (status, message) = lookup(&REFUSALS, refusal);
                (status, business(status, message))
            }
            Failure::Gateway(gateway) => {
                let (status, http_message, information) = lookup(&GATEWAY, gateway);
                (status, ibm(status, http_message, information))
            }
            Failure::OAuth(error) => (400, json!({ "error": lookup(&OAUTH, error) })),
            Failure::InvalidValue { field, value } => (
                400,
                business(
                    400,
                    &format!("El valor {value} no es válido en el Campo {field}"),
                ),
            ),
            Failure::Unreadable => (
                400,
                business(400, "Error en la estructura o campos de la solicitud"),
            ),
            Failure::MissingProperty(name) => (
                422,
                ibm(
                    422,
                    "Invalid",
                    &format!(
                        "{SCHEMA_SOURCE} [JSV0002] Invalid object: the property '{name}' is missing."
                    ),
                ),
            ),
            Failure::WrongType(kind) => (
                422,
                ibm(
                    422,
                    "Invalid",
                    &format!("{SCHEMA_SOURCE} [JSV0001] Invalid value type '{kind}'."),
                ),
            ),
        };
        let status = StatusCode::from_u16(status).expect("tabled statuses are valid");
        (status, Json(body)).into_response()
    }
}

fn business(status: u16, message: &str) -> serde_json::Value {
    json!({ "codigoError": status.to_string(), "mensajeError": message })
}

fn ibm(status: u16, http_message: &str, information: &str) -> serde_json::Value {
    json!({
        "httpCode": status.to_string(),
        "httpMessage": http_message,
        "moreInformation": information,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_row() {
        let refusals = [
            Refusal::TokenInvalid,
            Refusal::OtpWrong,
            Refusal::OtpExpiredOrUsed,
            Refusal::WalletAlreadySubscribed,
            Refusal::WalletNotEligible,
            Refusal::SubscriptionInvalid,
            Refusal::WalletNotSubscribed,
            Refusal::AmountOverMaximum,
            Refusal::CannotExecute,
        ];
        let failures = refusals
            .map(Failure::Refused)
            .into_iter()
            .chain([Gateway::UnknownClient, Gateway::NoBearer].map(Failure::Gateway))
            .chain(
                [
                    OAuth::InvalidClient,
                    OAuth::InvalidScope,
                    OAuth::UnknownGrant,
                ]
                .map(Failure::OAuth),
            );
        for failure in failures {
            let status = failure.clone().into_response().status();
            assert!(status.is_client_error(), "{failure:?} answers {status}");
        }
    }

    #[test]
    fn documented_bodies_are_json_with_their_status() {
        for (status, body) in DOCUMENTED_FAULT_BODIES {
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["codigoError"], status.to_string());
        }
    }
}
