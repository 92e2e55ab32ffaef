//! Kiban's wire format as the emulator writes it: the result envelope (which echoes the
//! request, password included, and the raw XML sent to the bureau, exactly like the real
//! one) and the 400 field-error arrays.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Where the real service says it reached the bureau.
const BUREAU_ADDRESS: &str = "128.9.55.100:25400";

/// The member's credentials as received: echoed back in every envelope.
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    pub clave: String,
    pub contrasena: String,
}

/// The envelope of a finished call, successful or not.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    id: String,
    created_at: String,
    finished_at: String,
    /// Milliseconds.
    duration: i64,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'static str>,
    request: Credentials,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_data: Option<Vec<ApiCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Expiry>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Expiry {
    /// `MM/DD/YYYY`.
    fecha_expiracion: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiCall {
    url: &'static str,
    duration: i64,
    request: ApiRequest,
    response: ApiResponse,
}

#[derive(Serialize)]
struct ApiRequest {
    date: String,
    body: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiResponse {
    date: String,
    body: Expiry,
    http_code: u16,
}

/// One entry of a 400 answer.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub message: String,
    pub field: &'static str,
}

pub const CREDENTIALS_ERROR: &str = "Error credentials clave y/o contraseña incorrecta para BC";

/// The start and end of one emulated call.
pub struct Timing {
    pub created: DateTime<Utc>,
    pub finished: DateTime<Utc>,
}

impl Timing {
    fn duration(&self) -> i64 {
        (self.finished - self.created).num_milliseconds()
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A Mongo-style object id, like Kiban's.
fn object_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

impl Envelope {
    /// `SUCCESS`: the bureau answered `expiry` (`MM/DD/YYYY`) for `credentials`.
    pub fn success(credentials: Credentials, expiry: &str, timing: &Timing) -> Envelope {
        let expiry = Expiry {
            fecha_expiracion: expiry.to_owned(),
        };
        let call = ApiCall {
            url: BUREAU_ADDRESS,
            duration: timing.duration(),
            request: ApiRequest {
                date: timestamp(timing.created),
                body: bureau_xml(&credentials),
            },
            response: ApiResponse {
                date: timestamp(timing.finished),
                body: expiry.clone(),
                http_code: 200,
            },
        };
        Envelope {
            status: "SUCCESS",
            error_message: None,
            api_data: Some(vec![call]),
            response: Some(expiry),
            ..Envelope::finished(credentials, timing)
        }
    }

    /// `SERVICE_ERROR`: the bureau refused the member code or password.
    pub fn credentials_rejected(credentials: Credentials, timing: &Timing) -> Envelope {
        Envelope {
            status: "SERVICE_ERROR",
            error_message: Some(CREDENTIALS_ERROR),
            ..Envelope::finished(credentials, timing)
        }
    }

    fn finished(credentials: Credentials, timing: &Timing) -> Envelope {
        Envelope {
            id: object_id(),
            created_at: timestamp(timing.created),
            finished_at: timestamp(timing.finished),
            duration: timing.duration(),
            status: "",
            error_message: None,
            request: credentials,
            api_data: None,
            response: None,
        }
    }
}

/// The XML Kiban sends to the bureau. Only validated alphanumerics reach it, so nothing
/// needs escaping.
fn bureau_xml(credentials: &Credentials) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<bc-request-envelope version=\"1.0\">\n <bc-request>\n <credentials member=\"{}\" password=\"{}\"/>\n <service name=\"getExpirationDate\"/>\n </bc-request>\n</bc-request-envelope>",
        credentials.clave, credentials.contrasena
    )
}
