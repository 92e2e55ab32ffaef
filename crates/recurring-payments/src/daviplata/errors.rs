//! Daviplata's documented failures as data: each known message, provider code, OAuth2
//! error and HTTP status mapped to a gRPC code, a stable reason and what it tells of a
//! state-changing call (refused, declined by the gateway, or unknown). The provider's text
//! travels on as an es-CO `LocalizedMessage`, with secrets and echoed values removed.

use std::sync::LazyLock;

use pasarela_provider::{Answered, Delivery, ProviderError, reasons};
use regex::Regex;
use tonic::Code;

/// `ErrorInfo.domain` of every Daviplata failure.
pub const DOMAIN: &str = "daviplata.com";

/// Reasons specific to Daviplata, next to the shared ones in `pasarela_provider::reasons`.
pub mod reason {
    pub const OTP_INVALID: &str = "OTP_INVALID";
    pub const OTP_EXPIRED: &str = "OTP_EXPIRED";
    pub const SUBSCRIPTION_ALREADY_EXISTS: &str = "SUBSCRIPTION_ALREADY_EXISTS";
    pub const SUBSCRIPTION_INVALID: &str = "SUBSCRIPTION_INVALID";
    pub const SUBSCRIPTION_NOT_FOUND: &str = "SUBSCRIPTION_NOT_FOUND";
    pub const WALLET_NOT_ELIGIBLE: &str = "WALLET_NOT_ELIGIBLE";
    pub const AMOUNT_OVER_MAXIMUM: &str = "AMOUNT_OVER_MAXIMUM";
    pub const TRANSACTION_REJECTED: &str = "TRANSACTION_REJECTED";
    pub const PROVIDER_BUSINESS_ERROR: &str = "PROVIDER_BUSINESS_ERROR";
    pub const PROVIDER_REJECTED_REQUEST: &str = "PROVIDER_REJECTED_REQUEST";
    pub const PROVIDER_RATE_LIMITED: &str = "PROVIDER_RATE_LIMITED";
}

/// A mapping: gRPC code, reason, what it means in words for the caller, and what it tells
/// of a state-changing call (activate, cancel, payment) it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meaning {
    code: Code,
    reason: &'static str,
    summary: &'static str,
    acted: Delivery,
}

const fn meaning(
    code: Code,
    reason: &'static str,
    summary: &'static str,
    acted: Delivery,
) -> Meaning {
    Meaning {
        code,
        reason,
        summary,
        acted,
    }
}

/// The spec documents the answer as a refusal: Daviplata did not act.
const REFUSED: Delivery = Delivery::Refused;
/// The gateway refused pasarela before Daviplata acted, for a reason that may pass.
const DECLINED: Delivery = Delivery::Declined;
/// Daviplata may have acted: every 5xx, every 401 (an invalid token may be found after the
/// request was handed on), every status the spec names no refusal for.
const UNKNOWN: Delivery = Delivery::Unknown;

/// Documented `mensajeError` texts (accents and case folded), most specific first.
#[rustfmt::skip]
const MESSAGES: [(&str, Meaning); 18] = [
    ("otp errado", meaning(Code::FailedPrecondition, reason::OTP_INVALID, "the OTP is wrong", REFUSED)),
    ("otp expirado o ya fue usado", meaning(Code::FailedPrecondition, reason::OTP_EXPIRED, "the OTP expired or was already used", REFUSED)),
    ("monedero ya esta asociado", meaning(Code::AlreadyExists, reason::SUBSCRIPTION_ALREADY_EXISTS, "the wallet is already subscribed to this merchant", REFUSED)),
    ("suscripcion invalida", meaning(Code::FailedPrecondition, reason::SUBSCRIPTION_INVALID, "the subscription is not valid or the wallet is not subscribed", REFUSED)),
    ("monedero no esta asociado", meaning(Code::NotFound, reason::SUBSCRIPTION_NOT_FOUND, "the wallet has no subscription with this merchant", REFUSED)),
    ("monedero no asociado al documento", meaning(Code::FailedPrecondition, reason::WALLET_NOT_ELIGIBLE, "the wallet does not belong to the document or cannot subscribe", REFUSED)),
    ("supera el valor maximo", meaning(Code::FailedPrecondition, reason::AMOUNT_OVER_MAXIMUM, "the amount exceeds the subscription's maximum", REFUSED)),
    ("no se puede ejecutar la transaccion", meaning(Code::FailedPrecondition, reason::TRANSACTION_REJECTED, "Daviplata refused to execute the transaction", REFUSED)),
    ("error de negocio retornado por el backend", meaning(Code::FailedPrecondition, reason::PROVIDER_BUSINESS_ERROR, "Daviplata's backend refused the transaction", REFUSED)),
    ("no cuenta con autorizacion", meaning(Code::Unavailable, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused pasarela's access token", UNKNOWN)),
    ("could not verify that you are authorized", meaning(Code::Unavailable, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused pasarela's access token", UNKNOWN)),
    ("not registered with mutual tls", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata has no client certificate registered for pasarela", UNKNOWN)),
    ("invalid client cert", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused pasarela's client certificate", UNKNOWN)),
    ("invalid client id or secret", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused pasarela's client id or secret", UNKNOWN)),
    ("timeout con sistemas proveedores", meaning(Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT, "Daviplata's own providers timed out", UNKNOWN)),
    ("error de sistema ret", meaning(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "Daviplata's own providers failed", UNKNOWN)),
    // Types, extra or missing properties of the body pasarela built from a validated
    // request (spec line 590-592): pasarela's fault, never the caller's.
    ("validate rest", meaning(Code::Internal, reason::PROVIDER_REJECTED_REQUEST, "Daviplata rejected the structure of the request pasarela built", REFUSED)),
    // "El valor {valueField} no es válido en el Campo {nameField}", 400: "Error en la
    // estructura o campos de la solicitud".
    ("no es valido en el campo", meaning(Code::InvalidArgument, reason::PROVIDER_REJECTED_REQUEST, "Daviplata rejected a field of the request", REFUSED)),
];

/// Documented generic provider codes (`2100- Internal Server Error`, ...).
#[rustfmt::skip]
const PROVIDER_CODES: [(&str, Meaning); 4] = [
    ("2100", meaning(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "a Daviplata service is not available", UNKNOWN)),
    ("3200", meaning(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "Daviplata's service bus failed", UNKNOWN)),
    ("2103", meaning(Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT, "a Daviplata service timed out", UNKNOWN)),
    ("6842", meaning(Code::Internal, reason::PROVIDER_REJECTED_REQUEST, "Daviplata's backend rejected the message structure", REFUSED)),
];

/// OAuth2 `error` values of the token endpoint: pasarela's own credentials or settings
/// are wrong, which no retry by the caller can fix.
#[rustfmt::skip]
const OAUTH_ERRORS: [(&str, Meaning); 6] = [
    ("invalid_client", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused pasarela's client id or secret", UNKNOWN)),
    ("invalid_scope", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused the token scope", UNKNOWN)),
    ("unknown", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused the grant type", UNKNOWN)),
    ("unsupported_grant_type", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused the grant type", UNKNOWN)),
    ("unauthorized_client", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata does not allow pasarela this grant", UNKNOWN)),
    ("invalid_request", meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused the token request", UNKNOWN)),
];

/// The HTTP status alone, when nothing more specific matched.
#[rustfmt::skip]
const STATUSES: [(u16, Meaning); 9] = [
    (400, meaning(Code::InvalidArgument, reason::PROVIDER_REJECTED_REQUEST, "Daviplata rejected a field of the request", UNKNOWN)),
    (401, meaning(Code::Unavailable, reasons::PROVIDER_AUTH_FAILED, "Daviplata refused pasarela's credentials", UNKNOWN)),
    (403, meaning(Code::Internal, reasons::PROVIDER_AUTH_FAILED, "pasarela's token lacks the scope of this operation", DECLINED)),
    (404, meaning(Code::Internal, reasons::PROVIDER_BAD_RESPONSE, "Daviplata does not know this path: check the configured paths", UNKNOWN)),
    (422, meaning(Code::FailedPrecondition, reason::PROVIDER_BUSINESS_ERROR, "Daviplata refused the transaction", REFUSED)),
    (429, meaning(Code::Unavailable, reason::PROVIDER_RATE_LIMITED, "Daviplata is limiting pasarela's rate", UNKNOWN)),
    (502, meaning(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "Daviplata's gateway failed", UNKNOWN)),
    (503, meaning(Code::Unavailable, reasons::PROVIDER_UNAVAILABLE, "Daviplata is unavailable", UNKNOWN)),
    (504, meaning(Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT, "Daviplata timed out", UNKNOWN)),
];

const ANY_SERVER_ERROR: Meaning = meaning(
    Code::Unavailable,
    reasons::PROVIDER_UNAVAILABLE,
    "Daviplata failed",
    UNKNOWN,
);
const UNEXPECTED: Meaning = meaning(
    Code::Internal,
    reasons::PROVIDER_BAD_RESPONSE,
    "Daviplata answered something unexpected",
    UNKNOWN,
);

/// Where the envelope puts its message and code, in every casing seen.
const MESSAGE_KEYS: [&str; 8] = [
    "mensajeError",
    "MensajeError",
    "message",
    "Message",
    "errorMessage",
    "moreInformation",
    "httpMessage",
    "error_description",
];
const CODE_KEYS: [&str; 6] = [
    "codigoError",
    "CodigoError",
    "errorCode",
    "ErrorCode",
    "code",
    "httpCode",
];
const NESTED_KEYS: [&str; 3] = ["resultStatus", "ResultStatus", "error"];

/// "El valor {valueField} no es válido en el Campo {nameField}": the value is dropped (it
/// may be an OTP); the field becomes a `BadRequest` violation.
static FIELD_REJECTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)el valor\s.*\sno es v[aá]lido en el campo\s+([A-Za-z0-9_.\[\]]+)")
        .expect("valid regex")
});

/// One answer Daviplata's tables document for a business operation, as the table keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentedAnswer {
    /// A `mensajeError` (lower case, without accents), matched as a part of the text.
    Message(&'static str),
    /// A provider code (`codigoError`, `errorCode`).
    Code(&'static str),
    /// An HTTP status whose body says nothing more specific.
    Status(u16),
}

/// Every documented answer of the business operations, for a test that must decide what
/// each tells of a state change.
pub fn documented_answers() -> impl Iterator<Item = DocumentedAnswer> {
    let messages = MESSAGES.iter().map(|(m, _)| DocumentedAnswer::Message(m));
    let codes = PROVIDER_CODES
        .iter()
        .map(|(c, _)| DocumentedAnswer::Code(c));
    let statuses = STATUSES.iter().map(|(s, _)| DocumentedAnswer::Status(*s));
    messages.chain(codes).chain(statuses)
}

/// A failed answer, read as far as it can be.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fault {
    pub http: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    pub oauth_error: Option<String>,
}

impl Fault {
    /// Reads any body: JSON with any of the known keys, or nothing usable (HTML, empty).
    pub fn parse(http: u16, body: &[u8]) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let scopes = std::iter::once(&json).chain(NESTED_KEYS.iter().filter_map(|k| json.get(k)));
        let mut fault = Fault {
            http,
            oauth_error: json
                .get("error")
                .and_then(|e| e.as_str())
                .map(str::to_owned),
            ..Fault::default()
        };
        for scope in scopes {
            fault.message = fault.message.or_else(|| first_text(scope, &MESSAGE_KEYS));
            fault.code = fault.code.or_else(|| first_text(scope, &CODE_KEYS));
        }
        fault
    }

    /// A fault carried by a success status: `resultStatus.status` other than 0.
    pub fn declined(http: u16, status: i64, message: &str) -> Self {
        Fault {
            http,
            code: Some(status.to_string()),
            message: Some(message.to_owned()),
            oauth_error: None,
        }
    }
}

fn first_text(scope: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| match scope.get(key)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Lower case without Spanish accents, so the table matches however the text is cased.
fn fold(text: &str) -> String {
    const ACCENTS: [(char, char); 6] = [
        ('á', 'a'),
        ('é', 'e'),
        ('í', 'i'),
        ('ó', 'o'),
        ('ú', 'u'),
        ('ü', 'u'),
    ];
    text.to_lowercase()
        .chars()
        .map(|c| {
            ACCENTS
                .iter()
                .find(|(a, _)| *a == c)
                .map_or(c, |(_, plain)| *plain)
        })
        .collect()
}

fn lookup<K: PartialEq>(table: &[(K, Meaning)], key: &K) -> Option<Meaning> {
    table.iter().find(|(k, _)| k == key).map(|(_, m)| *m)
}

/// Every documented text `message` holds, most specific first.
fn by_message(message: &str) -> Vec<Meaning> {
    let folded = fold(message);
    MESSAGES
        .iter()
        .filter(|(needle, _)| folded.contains(needle))
        .map(|(_, m)| *m)
        .collect()
}

fn by_status(http: u16) -> Meaning {
    lookup(&STATUSES, &http).unwrap_or(if http >= 500 {
        ANY_SERVER_ERROR
    } else {
        UNEXPECTED
    })
}

/// Statuses that never say a call was refused before acting, whatever their body.
const IN_DOUBT: [u16; 3] = [408, 409, 429];

/// The error of a business operation (request, activate, cancel, payment), with what it
/// tells of a state change: the most cautious reading of every documented text and code the
/// answer carries (a refusal's text beside a timeout's code is a timeout), else of its
/// status; unknown on any 5xx, 408, 409 or 429 whatever the text. `secrets` are removed
/// from any provider text passed on.
pub fn business_error(fault: &Fault, secrets: &[&str]) -> ProviderError {
    let by_text = fault.message.as_deref().map(by_message).unwrap_or_default();
    let by_code = fault
        .code
        .as_deref()
        .and_then(|code| lookup(&PROVIDER_CODES, &code));
    let named: Vec<Meaning> = by_text.iter().copied().chain(by_code).collect();
    let meaning = named
        .first()
        .copied()
        .unwrap_or_else(|| by_status(fault.http));
    let acted = named
        .iter()
        .map(|m| m.acted)
        .reduce(Delivery::most_cautious)
        .unwrap_or(meaning.acted);
    let acted = match fault.http {
        http if IN_DOUBT.contains(&http) => Delivery::Unknown,
        200..=299 | 400..=499 => acted,
        _ => Delivery::Unknown,
    };
    let mut error = build(meaning, fault, secrets).delivery(acted);
    if let Some(field) = fault.message.as_deref().and_then(rejected_field) {
        error = error.violation(field, "rejected by Daviplata");
    }
    error
}

/// Statuses with which the token endpoint refuses pasarela's credentials or grant; any
/// other unexpected answer is a bad response, not a refusal.
const TOKEN_REFUSALS: [u16; 3] = [400, 401, 403];

const TOKEN_REFUSED: Meaning = meaning(
    Code::Internal,
    reasons::PROVIDER_AUTH_FAILED,
    "Daviplata refused pasarela's token request",
    UNKNOWN,
);

/// The error of the token request (D0).
pub fn token_error(fault: &Fault) -> ProviderError {
    let meaning = fault
        .oauth_error
        .as_deref()
        .and_then(|e| lookup(&OAUTH_ERRORS, &e))
        .or_else(|| {
            fault
                .message
                .as_deref()
                .and_then(|message| by_message(message).first().copied())
        })
        .unwrap_or_else(|| {
            if TOKEN_REFUSALS.contains(&fault.http) {
                TOKEN_REFUSED
            } else {
                by_status(fault.http)
            }
        });
    build(meaning, fault, &[])
}

fn build(meaning: Meaning, fault: &Fault, secrets: &[&str]) -> ProviderError {
    let mut error = ProviderError::new(meaning.code, meaning.reason, DOMAIN)
        .message(meaning.summary)
        .meta("http_status", fault.http)
        .answered(Answered {
            http: fault.http,
            code: fault.code.clone().unwrap_or_default(),
            kind: String::new(),
        });
    if let Some(code) = &fault.code {
        error = error.meta("provider_code", code);
    }
    if let Some(oauth) = &fault.oauth_error {
        error = error.meta("oauth_error", oauth);
    }
    if let Some(text) = fault.message.as_deref().map(without_echoed_value) {
        error = error.localized("es-CO", text);
    }
    if meaning.code == Code::Unavailable && meaning.reason != reasons::PROVIDER_AUTH_FAILED {
        error = error.retry_after(std::time::Duration::from_secs(1));
    }
    error.scrub(secrets)
}

fn rejected_field(message: &str) -> Option<String> {
    FIELD_REJECTED
        .captures(message)
        .map(|c| format!("provider.{}", &c[1]))
}

/// The provider's text without a value it echoes back ("El valor {valueField} no es
/// válido en el Campo {nameField}": the value may be an OTP).
fn without_echoed_value(message: &str) -> String {
    match FIELD_REJECTED.captures(message) {
        Some(field) => format!("El valor no es válido en el Campo {}", &field[1]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(message: &str) -> Vec<u8> {
        serde_json::json!({"codigoError": "422", "mensajeError": message})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn every_documented_message_has_its_meaning() {
        let cases = [
            ("Otp errado", Code::FailedPrecondition, reason::OTP_INVALID),
            (
                "Otp expirado o ya fue usado",
                Code::FailedPrecondition,
                reason::OTP_EXPIRED,
            ),
            (
                "Monedero ya está asociado al ttp aliado y comercio",
                Code::AlreadyExists,
                reason::SUBSCRIPTION_ALREADY_EXISTS,
            ),
            (
                "Suscripción inválida o monedero no asociado al aliado",
                Code::FailedPrecondition,
                reason::SUBSCRIPTION_INVALID,
            ),
            (
                "Monedero no está asociado al ttp aliado y/o comercio",
                Code::NotFound,
                reason::SUBSCRIPTION_NOT_FOUND,
            ),
            (
                "Monedero no asociado al documento o en estado que no permite la suscripción",
                Code::FailedPrecondition,
                reason::WALLET_NOT_ELIGIBLE,
            ),
            (
                "No se puede ejecutar la transacción",
                Code::FailedPrecondition,
                reason::TRANSACTION_REJECTED,
            ),
            (
                "Error de negocio retornado por el backend",
                Code::FailedPrecondition,
                reason::PROVIDER_BUSINESS_ERROR,
            ),
            (
                "Validate REST: xa35://tmp/temp_02653:1: [JSV0001] Invalid value type 'integer'.",
                Code::Internal,
                reason::PROVIDER_REJECTED_REQUEST,
            ),
        ];
        for (message, code, expected) in cases {
            let error = business_error(&Fault::parse(422, &body(message)), &[]);
            assert_eq!(
                (error.code, error.reason.as_str()),
                (code, expected),
                "{message}"
            );
            assert_eq!(error.details.localized.as_ref().unwrap().1, message);
            assert_eq!(error.details.metadata["provider_code"], "422");
        }
    }

    #[test]
    fn statuses_and_codes_without_a_known_message() {
        let cases = [
            (400, "", Code::InvalidArgument),
            (401, "", Code::Unavailable),
            (403, "", Code::Internal),
            (422, "", Code::FailedPrecondition),
            (502, "", Code::Unavailable),
            (504, "", Code::DeadlineExceeded),
            (500, "2103", Code::DeadlineExceeded),
            (500, "2100", Code::Unavailable),
            (500, "6842", Code::Internal),
            (418, "", Code::Internal),
        ];
        for (http, code, expected) in cases {
            let body = serde_json::json!({"errorCode": code, "message": ""}).to_string();
            let error = business_error(&Fault::parse(http, body.as_bytes()), &[]);
            assert_eq!(error.code, expected, "{http} {code}");
        }
    }

    #[test]
    fn server_errors_of_state_changes_are_unknown_outcomes() {
        let fault = Fault::parse(504, b"<html>gateway timeout</html>");
        let charge = business_error(&fault, &[]);
        assert_eq!(charge.reason, reasons::PROVIDER_TIMEOUT);
        assert_eq!(charge.delivery, Delivery::Unknown);
        let presented = charge.presented_as_unknown_outcome();
        assert_eq!(presented.code, Code::DeadlineExceeded);
        assert_eq!(presented.reason, reasons::PROVIDER_OUTCOME_UNKNOWN);
        assert_eq!(
            presented.details.metadata["provider_reason"],
            reasons::PROVIDER_TIMEOUT
        );
        let refused = business_error(&Fault::parse(422, &body("Otp errado")), &[]);
        assert_eq!(refused.reason, reason::OTP_INVALID);
        assert_eq!(refused.delivery, Delivery::Refused);
        let on_a_500 = business_error(&Fault::parse(500, &body("Otp errado")), &[]);
        assert_eq!(
            on_a_500.delivery,
            Delivery::Unknown,
            "a 500 is never a refusal"
        );
        for http in [408, 409, 429] {
            let in_doubt = business_error(&Fault::parse(http, &body("Otp errado")), &[]);
            assert_eq!(in_doubt.delivery, Delivery::Unknown, "{http}");
        }
        let timed_out =
            br#"{"codigoError":"2103","mensajeError":"No se puede ejecutar la transaccion"}"#;
        let mixed = business_error(&Fault::parse(422, timed_out), &[]);
        assert_eq!(
            mixed.delivery,
            Delivery::Unknown,
            "a timeout's code beside a refusal"
        );
        let both = body("Otp errado: timeout con sistemas proveedores");
        let both = business_error(&Fault::parse(422, &both), &[]);
        assert_eq!(
            both.delivery,
            Delivery::Unknown,
            "a timeout's text beside a refusal"
        );
    }

    #[test]
    fn answers_no_table_names_leave_a_state_change_unknown() {
        let faults = [
            Fault::declined(200, 77, "Transacción en proceso"),
            Fault::parse(408, b""),
            Fault::parse(409, b"{}"),
            Fault::parse(302, b""),
        ];
        for fault in faults {
            let error = business_error(&fault, &[]);
            assert_eq!(error.reason, reasons::PROVIDER_BAD_RESPONSE, "{fault:?}");
            assert_eq!(
                error.delivery,
                Delivery::Unknown,
                "{fault:?}: Daviplata may have acted"
            );
        }
    }

    #[test]
    fn echoed_values_and_secrets_never_pass() {
        let fault = Fault::parse(
            400,
            &body("El valor 847687 no es válido en el Campo otpValue"),
        );
        let error = business_error(&fault, &["847687"]);
        assert_eq!(error.code, Code::InvalidArgument);
        assert_eq!(error.details.violations[0].0, "provider.otpValue");
        let text = format!("{error:?}");
        assert!(!text.contains("847687"), "{text}");
        let echoed = business_error(
            &Fault::parse(422, &body("otp 123456 bloqueada")),
            &["123456"],
        );
        assert!(!format!("{echoed:?}").contains("123456"));
    }

    #[test]
    fn token_errors_are_never_unauthenticated() {
        let cases = [
            (
                br#"{"error":"invalid_client"}"#.as_slice(),
                400,
                Code::Internal,
            ),
            (
                br#"{"error":"invalid_scope"}"#.as_slice(),
                400,
                Code::Internal,
            ),
            (br#"{"error":"unknown"}"#.as_slice(), 400, Code::Internal),
            (
                br#"{"httpCode":"401","moreInformation":"Invalid client id or secret."}"#
                    .as_slice(),
                401,
                Code::Internal,
            ),
            (b"".as_slice(), 503, Code::Unavailable),
        ];
        for (body, http, code) in cases {
            let error = token_error(&Fault::parse(http, body));
            assert_eq!(error.code, code, "{}", String::from_utf8_lossy(body));
            assert!(error.reason == reasons::PROVIDER_AUTH_FAILED || http >= 500);
        }
    }

    #[test]
    fn reads_nested_and_oddly_cased_envelopes() {
        let fault = Fault::parse(
            422,
            br#"{"ResultStatus":{"status":"ER","Message":"Otp errado"}}"#,
        );
        assert_eq!(fault.message.as_deref(), Some("Otp errado"));
        assert_eq!(
            Fault::parse(502, b"<html/>"),
            Fault {
                http: 502,
                ..Fault::default()
            }
        );
    }
}
