//! The Kiban emulator (K1): the company password-expiry service of Buró de Crédito as
//! Kiban's sandbox serves it: the API key header (`x-api-key`, or the one a test sets: the
//! Kiban document prints none), field validation with Kiban's error arrays, answers chosen
//! by `testCaseId`, and bureau members seeded from `fixtures/kiban.json`.

mod wire;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::secrets::Accepted;
use wire::{Credentials, Envelope, FieldError, Timing};

/// The company (persona moral) variant of Kiban's password-expiry service.
pub const PATH: &str = "/api/v1/password-expiry-date-bc-pm";

/// How Kiban reads what its document does not print, switchable on the admin listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Readings {
    /// The one header the API key is read from (Kiban's public documentation names
    /// `x-api-key`).
    pub api_key_header: String,
}

impl Default for Readings {
    fn default() -> Self {
        Readings {
            api_key_header: "x-api-key".into(),
        }
    }
}

/// The members the emulated bureau knows, embedded so the sandbox runs without files.
const MEMBERS: &str = include_str!("../../fixtures/kiban.json");

/// What a test case makes the sandbox answer.
#[derive(Debug, Clone, Copy)]
enum TestCase {
    /// The bureau checks the member's credentials and answers their expiration date.
    Success,
    /// The bureau refuses the credentials, whatever they are.
    CredentialsRejected,
}

/// Kiban's documented sandbox test cases.
const TEST_CASES: [(&str, TestCase); 2] = [
    ("663567bb713cf2110a110679", TestCase::Success),
    ("663567bb713cf2110a11067a", TestCase::CredentialsRejected),
];

/// A field of the request body and the length Kiban demands of it.
struct FieldRule {
    name: &'static str,
    length: usize,
}

const FIELDS: [FieldRule; 2] = [
    FieldRule {
        name: "clave",
        length: 10,
    },
    FieldRule {
        name: "contrasena",
        length: 8,
    },
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seed {
    members: Vec<Member>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    clave: String,
    contrasena: String,
    fecha_expiracion: String,
}

/// The emulator's configuration: the API key it accepts and the bureau's members.
#[derive(Clone)]
pub struct Kiban {
    inner: Arc<Inner>,
}

struct Inner {
    api_key: Accepted,
    readings: RwLock<Readings>,
    /// clave -> (contrasena, fechaExpiracion)
    members: HashMap<String, (String, String)>,
}

impl Kiban {
    pub fn new(api_key: Accepted) -> Kiban {
        let seed: Seed =
            serde_json::from_str(MEMBERS).expect("the builtin kiban fixtures are valid");
        let members = seed
            .members
            .into_iter()
            .map(|m| (m.clave, (m.contrasena, m.fecha_expiracion)))
            .collect();
        Kiban {
            inner: Arc::new(Inner {
                api_key,
                readings: RwLock::default(),
                members,
            }),
        }
    }

    pub(crate) fn readings(&self) -> Readings {
        self.inner
            .readings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the API key from `readings.api_key_header` from now on; a name no header can
    /// have is refused.
    pub(crate) fn set_readings(&self, readings: Readings) -> Result<(), String> {
        axum::http::HeaderName::try_from(readings.api_key_header.as_str())
            .map_err(|_| format!("{:?} is not a header name", readings.api_key_header))?;
        *self
            .inner
            .readings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = readings;
        Ok(())
    }

    /// The expiration date of `credentials`' password, when the bureau accepts them.
    fn expiry_of(&self, credentials: &Credentials) -> Option<&str> {
        self.inner
            .members
            .get(&credentials.clave)
            .filter(|(password, _)| *password == credentials.contrasena)
            .map(|(_, expiry)| expiry.as_str())
    }
}

pub fn router(kiban: Kiban) -> Router {
    Router::new()
        .route(PATH, post(password_expiry))
        .with_state(kiban)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestCaseQuery {
    test_case_id: Option<String>,
}

async fn password_expiry(
    State(kiban): State<Kiban>,
    headers: HeaderMap,
    Query(query): Query<TestCaseQuery>,
    body: Bytes,
) -> Response {
    let created = chrono::Utc::now();
    let header = kiban.readings().api_key_header;
    let api_key = headers.get(header.as_str()).and_then(|v| v.to_str().ok());
    if !api_key.is_some_and(|key| kiban.inner.api_key.accepts(key)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "Unauthorized" })),
        )
            .into_response();
    }
    let credentials = match credentials(&body) {
        Ok(credentials) => credentials,
        Err(errors) => return (StatusCode::BAD_REQUEST, Json(errors)).into_response(),
    };
    let Some(case) = test_case(query.test_case_id.as_deref()) else {
        let not_found = [FieldError {
            code: "EMPTY_ERROR",
            message: "test case not found with given id".into(),
            field: "testCaseId",
        }];
        return (StatusCode::BAD_REQUEST, Json(not_found)).into_response();
    };
    let expiry = match case {
        TestCase::Success => kiban.expiry_of(&credentials).map(str::to_owned),
        TestCase::CredentialsRejected => None,
    };
    let timing = Timing {
        created,
        finished: chrono::Utc::now(),
    };
    match expiry {
        Some(expiry) => Json(Envelope::success(credentials, &expiry, &timing)).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(Envelope::credentials_rejected(credentials, &timing)),
        )
            .into_response(),
    }
}

fn test_case(id: Option<&str>) -> Option<TestCase> {
    let id = id?;
    TEST_CASES
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(_, case)| *case)
}

/// The body's credentials, or every field error Kiban would list.
fn credentials(body: &[u8]) -> Result<Credentials, Vec<FieldError>> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let errors: Vec<FieldError> = FIELDS
        .iter()
        .filter_map(|rule| field_error(rule, body.get(rule.name)))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    Ok(Credentials {
        clave: text("clave"),
        contrasena: text("contrasena"),
    })
}

fn field_error(rule: &FieldRule, value: Option<&Value>) -> Option<FieldError> {
    let error = |code, message: String| {
        Some(FieldError {
            code,
            message,
            field: rule.name,
        })
    };
    match value {
        None | Some(Value::Null) => error("EMPTY_ERROR", "can't be empty".into()),
        Some(Value::String(text)) if text.is_empty() => {
            error("EMPTY_ERROR", "can't be empty".into())
        }
        Some(Value::String(text)) if text.chars().count() != rule.length => {
            error("LENGTH_ERROR", format!("should be {}", rule.length))
        }
        Some(Value::String(text)) if !text.chars().all(|c| c.is_ascii_alphanumeric()) => {
            error("FORMAT_ERROR", "should be alphanumeric".into())
        }
        Some(Value::String(_)) => None,
        Some(_) => error("FORMAT_ERROR", "should be a string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_checked_in_field_order() {
        let errors = credentials(br#"{"clave":"123","contrasena":""}"#).unwrap_err();
        let codes: Vec<_> = errors.iter().map(|e| (e.code, e.field)).collect();
        assert_eq!(
            codes,
            [("LENGTH_ERROR", "clave"), ("EMPTY_ERROR", "contrasena")]
        );
        let errors = credentials(br#"{"clave":"FF1234567-","contrasena":12345678}"#).unwrap_err();
        assert!(errors.iter().all(|e| e.code == "FORMAT_ERROR"));
        assert_eq!(credentials(b"not json").unwrap_err().len(), 2);
    }

    #[test]
    fn builtin_members_load() {
        let kiban = Kiban::new(Accepted::new("k".into()));
        let known = Credentials {
            clave: "FF12345678".into(),
            contrasena: "P4SSW0RD".into(),
        };
        assert_eq!(kiban.expiry_of(&known), Some("08/29/2022"));
        let wrong = Credentials {
            contrasena: "P4SSW0RX".into(),
            ..known
        };
        assert_eq!(kiban.expiry_of(&wrong), None);
    }
}
