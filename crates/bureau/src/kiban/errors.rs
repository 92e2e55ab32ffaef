//! Kiban's documented failures as data: its 400 field-error arrays, its envelope statuses
//! and its HTTP statuses, each mapped to a gRPC code and a stable reason. Kiban's own text
//! travels on only when it carries none of the member's credentials.

use std::time::Duration;

use pasarela_provider::{ProviderError, reasons};
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use tonic::Code;

use super::wire::{Envelope, FailureBody, FieldError, Unusable};
use crate::request::ExpiryQuery;

/// `ErrorInfo.domain` of every Kiban failure.
pub const DOMAIN: &str = "kiban.com";

/// Locale of Kiban's human texts (a Mexican provider).
const LOCALE: &str = "es-MX";

/// Reasons specific to the bureau, next to the shared ones in `pasarela_provider::reasons`.
pub mod reason {
    /// The bureau refused the member code or password: the end user's credentials.
    pub const BUREAU_CREDENTIALS_REJECTED: &str = "BUREAU_CREDENTIALS_REJECTED";
    /// The bureau itself rejected the request (Kiban's 406).
    pub const BUREAU_REJECTED: &str = "BUREAU_REJECTED";
    /// Kiban's sandbox knows no test case with the id sent (or needs one).
    pub const TEST_CASE_NOT_FOUND: &str = "TEST_CASE_NOT_FOUND";
    /// Kiban refused a field pasarela's own validation let through.
    pub const PROVIDER_REJECTED_REQUEST: &str = "PROVIDER_REJECTED_REQUEST";
    /// Kiban reports a conflicting request in progress (409).
    pub const PROVIDER_CONFLICT: &str = "PROVIDER_CONFLICT";
    /// Kiban is limiting pasarela's rate.
    pub const PROVIDER_RATE_LIMITED: &str = "PROVIDER_RATE_LIMITED";
}

/// A mapping: gRPC code, reason, what it means for the caller, and whether a retry later
/// can help.
#[derive(Debug, Clone, Copy)]
struct Meaning {
    code: Code,
    reason: &'static str,
    summary: &'static str,
    retryable: bool,
}

const fn meaning(code: Code, reason: &'static str, summary: &'static str) -> Meaning {
    Meaning {
        code,
        reason,
        summary,
        retryable: false,
    }
}

const fn retryable(code: Code, reason: &'static str, summary: &'static str) -> Meaning {
    Meaning {
        code,
        reason,
        summary,
        retryable: true,
    }
}

/// How long a caller should wait before retrying a transient failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Envelope statuses that say more than the HTTP status they come with.
#[rustfmt::skip]
const ENVELOPE_STATUSES: [(u16, &str, Meaning); 1] = [
    (401, "SERVICE_ERROR", meaning(Code::FailedPrecondition, reason::BUREAU_CREDENTIALS_REJECTED, "Buró de Crédito rejected the member code or password")),
];

/// The HTTP status alone, when the body says nothing more specific. Kiban publicly
/// documents 400, 401, 403, 406, 408, 409 and 503; the rest are any gateway's.
#[rustfmt::skip]
const STATUSES: [(u16, Meaning); 12] = [
    (400, meaning(Code::InvalidArgument, reason::PROVIDER_REJECTED_REQUEST, "Kiban rejected the request")),
    // The member's credentials travel in the body, so a bare 401 is pasarela's API key. As
    // for every provider, the caller did nothing wrong and the same call may pass once an
    // operator rotates the key: UNAVAILABLE, the one code of a provider 401.
    (401, meaning(Code::Unavailable, reasons::PROVIDER_AUTH_FAILED, "Kiban refused pasarela's API key")),
    (403, meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Kiban does not allow pasarela's API key this service")),
    (404, meaning(Code::Internal, reasons::PROVIDER_BAD_RESPONSE, "Kiban does not know this path: check the configured path")),
    (406, meaning(Code::FailedPrecondition, reason::BUREAU_REJECTED, "Buró de Crédito rejected the request")),
    (408, retryable(Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT, "Buró de Crédito did not answer Kiban in time")),
    (409, retryable(Code::Aborted, reason::PROVIDER_CONFLICT, "Kiban is processing a conflicting request")),
    (429, retryable(Code::Unavailable, reason::PROVIDER_RATE_LIMITED, "Kiban is limiting pasarela's rate")),
    (500, retryable(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "Kiban failed")),
    (502, retryable(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "Kiban's gateway failed")),
    (503, retryable(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "Kiban is unavailable")),
    (504, retryable(Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT, "Kiban's gateway timed out")),
];

const ANY_SERVER_ERROR: Meaning = retryable(
    Code::Unavailable,
    reasons::PROVIDER_UNAVAILABLE,
    "Kiban failed",
);
const UNEXPECTED: Meaning = meaning(
    Code::Internal,
    reasons::PROVIDER_BAD_RESPONSE,
    "Kiban answered something unexpected",
);

/// Kiban's field-error codes in words, used where Kiban's own message cannot be shown.
const FIELD_CODES: [(&str, &str); 3] = [
    ("LENGTH_ERROR", "has the wrong length"),
    ("EMPTY_ERROR", "is empty"),
    ("FORMAT_ERROR", "has the wrong format"),
];

/// A Kiban field: the request field it comes from, the reason an error on it carries,
/// and whether Kiban's message about it may quote a secret.
struct FieldRule {
    provider: &'static str,
    field: &'static str,
    reason: &'static str,
    secret: bool,
}

#[rustfmt::skip]
const FIELDS: [FieldRule; 3] = [
    FieldRule { provider: "clave", field: "member_code", reason: reason::PROVIDER_REJECTED_REQUEST, secret: false },
    FieldRule { provider: "contrasena", field: "password", reason: reason::PROVIDER_REJECTED_REQUEST, secret: true },
    FieldRule { provider: "testCaseId", field: "test_case_id", reason: reason::TEST_CASE_NOT_FOUND, secret: false },
];

/// The error for a non-success answer (or a success envelope whose status is not
/// `SUCCESS`).
pub fn failure(status: StatusCode, body: FailureBody, query: &ExpiryQuery) -> ProviderError {
    match body {
        FailureBody::Fields(fields) if !fields.is_empty() && status.is_client_error() => {
            from_fields(status, &fields, query)
        }
        FailureBody::Envelope(envelope) => from_envelope(status, &envelope, query),
        _ => error(status, by_status(status)),
    }
}

/// A success answer pasarela cannot use.
pub fn unusable(status: StatusCode, why: Unusable) -> ProviderError {
    error(status, UNEXPECTED)
        .message(why.describe())
        .meta("problem", format!("{why:?}"))
}

fn by_status(status: StatusCode) -> Meaning {
    let code = status.as_u16();
    STATUSES
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, meaning)| *meaning)
        .unwrap_or(if status.is_server_error() {
            ANY_SERVER_ERROR
        } else {
            UNEXPECTED
        })
}

fn error(status: StatusCode, meaning: Meaning) -> ProviderError {
    let error = ProviderError::new(meaning.code, meaning.reason, DOMAIN)
        .message(meaning.summary)
        .meta("http_status", status.as_u16());
    if meaning.retryable {
        error.retry_after(RETRY_AFTER)
    } else {
        error
    }
}

fn from_envelope(status: StatusCode, envelope: &Envelope, query: &ExpiryQuery) -> ProviderError {
    let provider_status = envelope.status.as_deref().unwrap_or_default();
    let meaning = ENVELOPE_STATUSES
        .iter()
        .find(|(http, known, _)| *http == status.as_u16() && *known == provider_status)
        .map(|(_, _, meaning)| *meaning)
        .unwrap_or_else(|| by_status(status));
    let mut error = error(status, meaning);
    if !provider_status.is_empty() {
        error = error.meta("provider_status", provider_status);
    }
    if let Some(id) = &envelope.id {
        error = error.meta("kiban_request_id", id);
    }
    match envelope
        .error_message
        .as_deref()
        .filter(|text| !quotes_credentials(text, query))
    {
        Some(text) => error.localized(LOCALE, text),
        None => error,
    }
}

fn from_fields(status: StatusCode, fields: &[FieldError], query: &ExpiryQuery) -> ProviderError {
    let rules: Vec<Option<&FieldRule>> = fields
        .iter()
        .map(|entry| FIELDS.iter().find(|rule| rule.provider == entry.field))
        .collect();
    let reason = rules
        .iter()
        .flatten()
        .map(|rule| rule.reason)
        .next()
        .unwrap_or(reason::PROVIDER_REJECTED_REQUEST);
    let named: Vec<&str> = fields
        .iter()
        .zip(&rules)
        .map(|(entry, rule)| rule.map_or(entry.field.as_str(), |rule| rule.field))
        .collect();
    let codes: Vec<&str> = fields.iter().map(|entry| entry.code.as_str()).collect();
    let mut error = ProviderError::new(Code::InvalidArgument, reason, DOMAIN)
        .message(format!("Kiban rejected {}", named.join(", ")))
        .meta("http_status", status.as_u16())
        .meta("provider_codes", codes.join(","));
    for ((entry, rule), field) in fields.iter().zip(&rules).zip(named) {
        let secret = rule.is_some_and(|rule| rule.secret);
        error = error.violation(field, describe(entry, secret, query));
    }
    error
}

/// Kiban's message about a field, unless it may quote a secret; then the code in words.
fn describe(entry: &FieldError, secret: bool, query: &ExpiryQuery) -> String {
    let shown = !secret && !entry.message.is_empty() && !quotes_credentials(&entry.message, query);
    let text = if shown {
        entry.message.as_str()
    } else {
        FIELD_CODES
            .iter()
            .find(|(code, _)| *code == entry.code)
            .map_or("was refused", |(_, words)| words)
    };
    format!("{text} (Kiban {})", entry.code)
}

/// Whether `text` quotes the member code or password sent (Kiban echoes requests).
fn quotes_credentials(text: &str, query: &ExpiryQuery) -> bool {
    [query.member_code.as_str(), query.password.expose_secret()]
        .iter()
        .any(|secret| !secret.is_empty() && text.contains(secret))
}

#[cfg(test)]
mod tests {
    use tonic::Status;
    use tonic_types::StatusExt as _;

    use super::*;

    fn query() -> ExpiryQuery {
        ExpiryQuery {
            member_code: "FF12345678".into(),
            password: "P4SSW0RD".into(),
            test_case_id: None,
        }
    }

    fn status_of(http: u16, body: &str) -> Status {
        let http = StatusCode::from_u16(http).expect("status");
        failure(http, FailureBody::parse(body.as_bytes()), &query()).into()
    }

    fn reason_of(status: &Status) -> String {
        status
            .get_error_details()
            .error_info()
            .expect("error info")
            .reason
            .clone()
    }

    fn violations_of(status: &Status) -> Vec<(String, String)> {
        status
            .get_error_details()
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn length_errors_become_one_violation_each() {
        let status = status_of(
            400,
            r#"[{"code":"LENGTH_ERROR","message":"should be 10","field":"clave"},
                {"code":"LENGTH_ERROR","message":"should be 8","field":"contrasena"}]"#,
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason_of(&status), reason::PROVIDER_REJECTED_REQUEST);
        assert_eq!(
            violations_of(&status),
            [
                (
                    "member_code".into(),
                    "should be 10 (Kiban LENGTH_ERROR)".into()
                ),
                (
                    "password".into(),
                    "has the wrong length (Kiban LENGTH_ERROR)".into()
                ),
            ]
        );
    }

    #[test]
    fn empty_errors_become_one_violation_each() {
        let status = status_of(
            400,
            r#"[{"code":"EMPTY_ERROR","message":"can't be empty","field":"contrasena"},
                {"code":"EMPTY_ERROR","message":"can't be empty","field":"clave"}]"#,
        );
        let fields: Vec<_> = violations_of(&status).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["password", "member_code"]);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");
        assert_eq!(info.metadata["provider_codes"], "EMPTY_ERROR,EMPTY_ERROR");
    }

    #[test]
    fn an_unknown_test_case_has_its_own_reason() {
        let status = status_of(
            400,
            r#"[{"code":"EMPTY_ERROR","message":"test case not found with given id","field":"testCaseId"}]"#,
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason_of(&status), reason::TEST_CASE_NOT_FOUND);
        assert_eq!(
            violations_of(&status),
            [(
                "test_case_id".into(),
                "test case not found with given id (Kiban EMPTY_ERROR)".into()
            )]
        );
    }

    #[test]
    fn format_errors_and_unknown_fields_are_kept() {
        let status = status_of(
            400,
            r#"[{"code":"FORMAT_ERROR","message":"invalid","field":"rfc"}]"#,
        );
        assert_eq!(
            violations_of(&status),
            [("rfc".into(), "invalid (Kiban FORMAT_ERROR)".into())]
        );
    }

    #[test]
    fn rejected_bureau_credentials_are_the_callers_problem() {
        let status = status_of(
            401,
            r#"{"id":"6699be3b0e17d41228c1e77a","status":"SERVICE_ERROR",
                "errorMessage":"Error credentials clave y/o contraseña incorrecta para BC",
                "request":{"clave":"FF12345678","contrasena":"P4SSW0RD"}}"#,
        );
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(reason_of(&status), reason::BUREAU_CREDENTIALS_REJECTED);
        let details = status.get_error_details();
        let info = details.error_info().expect("info");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(
            info.metadata["kiban_request_id"],
            "6699be3b0e17d41228c1e77a"
        );
        assert_eq!(info.metadata["provider_status"], "SERVICE_ERROR");
        let localized = details.localized_message().expect("localized");
        assert_eq!(localized.locale, "es-MX");
        assert!(localized.message.contains("incorrecta"));
        assert!(!format!("{status:?}").contains("P4SSW0RD"));
    }

    #[test]
    fn a_refused_api_key_is_pasarelas_problem() {
        let cases = [
            (401, r#"{"message":"Unauthorized"}"#, Code::Unavailable),
            (403, "Forbidden", Code::Internal),
        ];
        for (http, body, code) in cases {
            let status = status_of(http, body);
            assert_eq!(status.code(), code, "{http}");
            assert_eq!(reason_of(&status), reasons::PROVIDER_AUTH_FAILED, "{http}");
        }
    }

    #[test]
    fn every_documented_status_has_a_meaning() {
        let expected = [
            (406, Code::FailedPrecondition, reason::BUREAU_REJECTED),
            (408, Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT),
            (409, Code::Aborted, reason::PROVIDER_CONFLICT),
            (503, Code::Unavailable, reasons::PROVIDER_UNAVAILABLE),
            (500, Code::Unavailable, reasons::PROVIDER_UNAVAILABLE),
            (599, Code::Unavailable, reasons::PROVIDER_UNAVAILABLE),
            (504, Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT),
            (418, Code::Internal, reasons::PROVIDER_BAD_RESPONSE),
            (302, Code::Internal, reasons::PROVIDER_BAD_RESPONSE),
        ];
        for (http, code, reason) in expected {
            let status = status_of(http, "<html>error</html>");
            assert_eq!(status.code(), code, "{http}");
            assert_eq!(reason_of(&status), reason, "{http}");
        }
    }

    #[test]
    fn transient_failures_say_when_to_retry() {
        assert!(
            status_of(503, "")
                .get_error_details()
                .retry_info()
                .is_some()
        );
        assert!(
            status_of(406, "")
                .get_error_details()
                .retry_info()
                .is_none()
        );
    }

    #[test]
    fn texts_quoting_a_credential_are_dropped() {
        let status = status_of(
            400,
            r#"[{"code":"FORMAT_ERROR","message":"FF12345678 is not valid","field":"clave"},
                {"code":"FORMAT_ERROR","message":"x","field":"contrasena"}]"#,
        );
        let rendered = format!("{status:?}");
        assert!(!rendered.contains("FF12345678"), "{rendered}");
        let status = status_of(
            401,
            r#"{"status":"SERVICE_ERROR","errorMessage":"password P4SSW0RD rejected"}"#,
        );
        assert!(status.get_error_details().localized_message().is_none());
        assert!(!format!("{status:?}").contains("P4SSW0RD"));
    }
}
