//! Turns the bank's failures into pasarela's error model: a row of the error table when the
//! answer names a known code, else the meaning of its HTTP status; malformed answers are
//! `PROVIDER_BAD_RESPONSE`. Messages never carry a provider body or a secret.

use std::time::Duration;

use pasarela_provider::{Answered, Delivery, ProviderError, reasons};
use tonic::Code;

use super::error_table::{ERROR_TABLE, ErrorRow};

/// `ErrorInfo.domain` of every error that comes from the bank.
pub const DOMAIN: &str = "bancocajasocial.com";

/// `ErrorInfo.domain` of pasarela's own errors in this service (idempotency, TxIds).
pub const SERVICE_DOMAIN: &str = "pasarela.security";

/// Longest provider text passed on as a `LocalizedMessage`, cut by the client once the
/// text is scrubbed of what it sent.
pub const MAX_TEXT: usize = 300;

/// `ErrorInfo.reason`s this module gives by HTTP status, for callers and tests to name.
pub mod reason {
    pub const PROVIDER_FORBIDDEN: &str = "PROVIDER_FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const PROVIDER_METHOD_NOT_ALLOWED: &str = "PROVIDER_METHOD_NOT_ALLOWED";
    pub const PROVIDER_CONFLICT: &str = "PROVIDER_CONFLICT";
    pub const PROVIDER_RATE_LIMITED: &str = "PROVIDER_RATE_LIMITED";
    pub const PROVIDER_REJECTED: &str = "PROVIDER_REJECTED";
    /// The shared TxId counter handed out a number below one this process already used:
    /// it was moved back in the store, and a TxId could repeat.
    pub const TX_ID_SEQUENCE_REWOUND: &str = "TX_ID_SEQUENCE_REWOUND";
    /// The bank could not read the request pasarela built (`400 400 OUD`, `400 00400
    /// OUD`): pasarela's fault or its configuration's, never the caller's.
    pub const PROVIDER_REQUEST_MALFORMED: &str = "PROVIDER_REQUEST_MALFORMED";
    /// The bank's gateway knows no resource at the path pasarela called (`404 404 OUD`,
    /// `404 00404 OUD` "La solicitud incluye un URI de recursos que no existe"): a path
    /// setting that does not match this bank, never the caller's "not found".
    pub const PROVIDER_PATH_NOT_FOUND: &str = "PROVIDER_PATH_NOT_FOUND";
    /// The bank could not decrypt what it received (`500 00001 WEL`) and the deployment
    /// answers for it: the ally code pasarela sends names the key the bank decrypts with.
    pub const ALLY_NOT_RECOGNISED: &str = "ALLY_NOT_RECOGNISED";
}

/// The bank's code and type for "Error realizando des-encriptacion de la informacion
/// recibida" (S10 and S11's tables).
const DECRYPTION_REFUSED: (&str, &str) = ("00001", "WEL");

/// Who answers for the bank failing to decrypt a customer's secret (`00001 WEL`): the
/// secret is the caller's ciphertext, but `X-Invoker-Ally`, which names the key the bank
/// decrypts with (spec line 108), is the deployment's and no caller can see or change it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecryptionFailure {
    /// `INTERNAL` `ALLY_NOT_RECOGNISED`: an operator checks the ally (the default: a wrong
    /// ally fails every password and card call of a tenant, and must page someone).
    #[default]
    Deployment,
    /// `FAILED_PRECONDITION` `DECRYPTION_FAILED`: the caller encrypted with the wrong key.
    Caller,
}

impl DecryptionFailure {
    /// `error` blamed as this reading says, when the bank answered `00001 WEL`; any other
    /// error as it is.
    pub fn blame(self, mut error: ProviderError) -> ProviderError {
        let decryption = error.details.answered.as_ref().is_some_and(|answered| {
            (answered.code.as_str(), answered.kind.as_str()) == DECRYPTION_REFUSED
        });
        if !decryption || self == DecryptionFailure::Caller {
            return error;
        }
        error.code = Code::Internal;
        error.reason = reason::ALLY_NOT_RECOGNISED.to_owned();
        error.message(
            "Banco Caja Social could not decrypt the request: the ally code pasarela sends \
             (security.invoker.ally, or the tenant's) does not name the key the secret was \
             encrypted with; an operator must check it (security.decryption_failure)",
        )
    }
}

/// A failure as the bank wrote it (envelope detail plus HTTP status).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Failure {
    pub http: u16,
    /// `responseType.value` (`ER`, `ER500`, ...), empty when absent.
    pub value: String,
    pub code: String,
    pub kind: String,
    pub desc: String,
}

/// What an HTTP status means when the answer names no known code: (first, last status,
/// gRPC code, reason). The first matching range wins.
const BY_STATUS: &[(u16, u16, Code, &str)] = &[
    (401, 401, Code::Unavailable, reasons::PROVIDER_AUTH_FAILED),
    (403, 403, Code::Internal, reason::PROVIDER_FORBIDDEN),
    (404, 404, Code::NotFound, reason::NOT_FOUND),
    (
        405,
        405,
        Code::Internal,
        reason::PROVIDER_METHOD_NOT_ALLOWED,
    ),
    (408, 408, Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT),
    (409, 409, Code::Aborted, reason::PROVIDER_CONFLICT),
    (
        429,
        429,
        Code::ResourceExhausted,
        reason::PROVIDER_RATE_LIMITED,
    ),
    // A business rejection: an `ER` envelope on 2xx (S3 and the IVR reto answer 206) or a
    // 4xx whose code no table names.
    (
        200,
        299,
        Code::FailedPrecondition,
        reason::PROVIDER_REJECTED,
    ),
    (
        400,
        499,
        Code::FailedPrecondition,
        reason::PROVIDER_REJECTED,
    ),
    (500, 599, Code::Unavailable, reasons::PROVIDER_UNAVAILABLE),
];

/// What a `responseType.value` means when the answer names no known code, whatever its
/// HTTP status: `ER500` (S14, S15, with an empty detail) is the bank's own failure even
/// when it arrives on HTTP 200.
const BY_RESPONSE_TYPE: &[(&str, Code, &str)] =
    &[("ER500", Code::Unavailable, reasons::PROVIDER_UNAVAILABLE)];

/// What a code the bank names on a 5xx means when no table row lists it: each operation
/// says which (`Op::codes_on_5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodesOn5xx {
    /// The bank failed: `UNAVAILABLE`, worth a later retry.
    Failure,
    /// A business refusal, which a retry would only repeat: S5-S7, whose error tables put
    /// "All business validation errors, technical errors" under 500, and S19, which prints
    /// no error table at all (a refusal on 500 is as likely, and a retry would send a
    /// counted challenge answer again).
    Refusal,
}

/// (code, type) pairs whose meaning only their exact HTTP status gives, no nearer status
/// standing in: S13's `32`/RGN is "already in that state" on 401 (its table) and "user does
/// not exist" on 404 (its example); on any other status neither is assumed.
const EXACT_STATUS_ONLY: &[(&str, &str)] = &[("32", "RGN")];

/// What a status means when the answer names no code at all: the bank's table prints a
/// code for every refusal of its own ("no information found" is `404 NO FOUND BDA`), so a
/// bare 404 is a gateway that has no resource at the path pasarela called.
const BY_STATUS_WITHOUT_CODE: &[(u16, Code, &str)] =
    &[(404, Code::Internal, reason::PROVIDER_PATH_NOT_FOUND)];

/// Reasons after which the same call may succeed a moment later.
const RETRYABLE: &[&str] = &[reasons::PROVIDER_UNAVAILABLE, reason::PROVIDER_RATE_LIMITED];

/// The table row for `code`/`kind`: the one printed with the same HTTP status, else one
/// of the same status class, else the first. `None` when no table names the code.
pub fn lookup(http: u16, code: &str, kind: &str) -> Option<&'static ErrorRow> {
    let (code, kind) = (code.trim(), kind.trim());
    let candidates = || {
        ERROR_TABLE
            .iter()
            .filter(move |row| row.code == code && row.kind == kind)
    };
    let exact = candidates().find(|row| row.http == http);
    if EXACT_STATUS_ONLY.contains(&(code, kind)) {
        return exact;
    }
    exact
        .or_else(|| candidates().find(|row| row.http / 100 == http / 100))
        .or_else(|| candidates().next())
}

/// The meaning of a failure no table row names: by its `responseType.value`, then by the
/// operation's own rule for 5xx, then by its HTTP status.
fn unlisted(codes_on_5xx: CodesOn5xx, failure: &Failure) -> (Code, &'static str) {
    let by_type = BY_RESPONSE_TYPE
        .iter()
        .find(|(value, _, _)| value.eq_ignore_ascii_case(&failure.value));
    if let Some((_, code, reason)) = by_type {
        return (*code, reason);
    }
    let named_rejection = (500..=599).contains(&failure.http)
        && !failure.code.trim().is_empty()
        && codes_on_5xx == CodesOn5xx::Refusal;
    if named_rejection {
        return (Code::FailedPrecondition, reason::PROVIDER_REJECTED);
    }
    let codeless = BY_STATUS_WITHOUT_CODE
        .iter()
        .find(|(http, _, _)| *http == failure.http && failure.code.trim().is_empty());
    if let Some((_, code, reason)) = codeless {
        return (*code, reason);
    }
    by_status(failure.http)
}

/// The rich error for a failure answered by `operation`, which reads an unlisted code on a
/// 5xx as `codes_on_5xx` says.
pub fn from_failure(operation: &str, codes_on_5xx: CodesOn5xx, failure: &Failure) -> ProviderError {
    let row = lookup(failure.http, &failure.code, &failure.kind);
    let (code, reason) = match row {
        Some(row) => (row.grpc, row.reason),
        None => unlisted(codes_on_5xx, failure),
    };
    let text = provider_text(&failure.desc).or_else(|| row.map(|row| row.text.to_owned()));
    // Only codes of the spec's tables are quoted in the message: an unlisted one is the
    // bank's free text and stays in the metadata.
    let quoted = match row {
        Some(row) => format!("code {:?}, type {:?}", row.code, row.kind),
        None => "a code not in the spec's tables".to_owned(),
    };
    let mut error = ProviderError::new(code, reason, DOMAIN)
        .message(format!(
            "Banco Caja Social refused {operation}: {} ({quoted}, HTTP {})",
            reason.to_lowercase().replace('_', " "),
            failure.http
        ))
        .meta("provider_code", &failure.code)
        .meta("provider_type", &failure.kind)
        .meta("http_status", failure.http)
        .meta("operation", operation);
    if !failure.value.is_empty() {
        error = error.meta("provider_response_type", &failure.value);
    }
    if let Some(text) = text {
        error = error.localized("es-CO", text);
    }
    if RETRYABLE.contains(&reason) {
        error = error.retry_after(Duration::from_secs(1));
    }
    error.delivery(delivery(failure, row)).answered(Answered {
        http: failure.http,
        code: failure.code.trim().to_owned(),
        kind: failure.kind.trim().to_owned(),
    })
}

/// `errorType` of a refusal by a business rule: S18's `errorType` "describe si el error fue
/// de base de datos o de regla de negocio", and only the latter says nothing was done.
const BUSINESS_RULE: &str = "RGN";

/// Statuses that never say a call was refused before acting, whatever their body: a
/// timeout, a conflict with something under way, a rate limit that may have come after.
const IN_DOUBT: &[u16] = &[408, 409, 429];

/// What an answered failure tells of a withdrawal (S18): refused when its `errorType` is
/// a business rule or its row, printed with this very status, documents a refusal or a
/// gateway's decline; unknown otherwise — every 5xx and `ER500`, every status that is not
/// 2xx or 4xx, 408, 409 and 429, a row found only under another status, a row of another
/// operation's table.
fn delivery(failure: &Failure, row: Option<&ErrorRow>) -> Delivery {
    let bank_failed = failure.value.eq_ignore_ascii_case("ER500");
    let class = failure.http / 100;
    if bank_failed || !matches!(class, 2 | 4) || IN_DOUBT.contains(&failure.http) {
        return Delivery::Unknown;
    }
    if failure.kind.trim().eq_ignore_ascii_case(BUSINESS_RULE) {
        return Delivery::Refused;
    }
    match row {
        Some(row) if row.http == failure.http => row.acted,
        _ => Delivery::Unknown,
    }
}

/// An answer pasarela cannot read (HTML, truncated JSON, an empty body, a field of the
/// wrong shape). `what` says which part, never its content.
pub fn bad_response(operation: &str, http: u16, what: &str) -> ProviderError {
    // Whatever the bank did is not in an answer pasarela cannot read.
    ProviderError::new(Code::Internal, reasons::PROVIDER_BAD_RESPONSE, DOMAIN)
        .delivery(Delivery::Unknown)
        .message(format!(
            "Banco Caja Social answered {operation} with HTTP {http} and {what}"
        ))
        .meta("http_status", http)
        .meta("operation", operation)
}

/// A consulta (S18 `Action: R`) that did not say what became of a withdrawal whose answer
/// was lost: the outcome stays unknown (a later retry asks again, an operator may settle
/// it), the consulta's own reason kept in metadata `consulta_reason`.
pub fn still_unknown(consulta: ProviderError) -> ProviderError {
    let code = match consulta.code {
        Code::DeadlineExceeded => Code::DeadlineExceeded,
        _ => Code::Unavailable,
    };
    let mut error = ProviderError::outcome_unknown(code, DOMAIN)
        .message(
            "the bank did not say what became of the withdrawal whose answer was lost (its \
             consulta failed); nothing was sent again: retry later with the same key",
        )
        .meta("consulta_reason", &consulta.reason)
        .delivery(Delivery::NotSent);
    if let Some(answered) = &consulta.details.answered {
        error = error.meta("http_status", answered.http);
    }
    error
}

/// A consulta found no withdrawal, but too soon after the attempt whose outcome is unknown
/// to believe it: the bank may still be executing it. Nothing is created; retry after `wait`.
pub fn not_found_yet(wait: Duration) -> ProviderError {
    ProviderError::outcome_unknown(Code::Unavailable, DOMAIN)
        .message(
            "the bank has no withdrawal under this TxId yet, but may still be executing the \
             attempt whose answer was lost; nothing was sent again: retry later with the same key",
        )
        .meta("consulta_reason", "NOT_FOUND_TOO_SOON")
        .delivery(Delivery::NotSent)
        .retry_after(wait)
}

fn by_status(http: u16) -> (Code, &'static str) {
    BY_STATUS
        .iter()
        .find(|(first, last, _, _)| (*first..=*last).contains(&http))
        .map(|(_, _, code, reason)| (*code, *reason))
        .unwrap_or((Code::Internal, reasons::PROVIDER_BAD_RESPONSE))
}

/// The bank's own text, trimmed, without control characters, bounded to four times what
/// is passed on: the client scrubs it of what it sent, then cuts it to [`MAX_TEXT`], so a
/// secret cut in two at this bound is never in what is passed on.
fn provider_text(desc: &str) -> Option<String> {
    let text: String = desc
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT.saturating_mul(4))
        .collect();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(http: u16, code: &str, kind: &str) -> Failure {
        Failure {
            http,
            value: "ER".into(),
            code: code.into(),
            kind: kind.into(),
            desc: String::new(),
        }
    }

    const FAILURE: CodesOn5xx = CodesOn5xx::Failure;
    const REFUSAL: CodesOn5xx = CodesOn5xx::Refusal;

    #[test]
    fn a_failed_decryption_is_the_deployments_unless_told_it_is_the_callers() {
        let wel = || from_failure("change_password", FAILURE, &failure(500, "00001", "WEL"));
        let ours = DecryptionFailure::default().blame(wel());
        assert_eq!(
            (ours.code, ours.reason.as_str()),
            (Code::Internal, reason::ALLY_NOT_RECOGNISED)
        );
        assert!(
            ours.message.contains("security.invoker.ally"),
            "{}",
            ours.message
        );
        assert_eq!(
            ours.delivery,
            wel().delivery,
            "what the bank did is unchanged"
        );
        let theirs = DecryptionFailure::Caller.blame(wel());
        assert_eq!(
            (theirs.code, theirs.reason.as_str()),
            (Code::FailedPrecondition, "DECRYPTION_FAILED")
        );
        let other = from_failure("change_password", FAILURE, &failure(500, "00100", "TRX"));
        let kept = DecryptionFailure::default().blame(other.clone());
        assert_eq!((kept.code, kept.reason), (other.code, other.reason));
    }

    #[test]
    fn a_withdrawal_answer_is_refused_only_when_a_row_says_so() {
        let er = |http: u16, value: &str, code: &str, kind: &str| Failure {
            http,
            value: value.into(),
            code: code.into(),
            kind: kind.into(),
            desc: String::new(),
        };
        let cases = [
            (er(400, "ER", "05621", "RGN"), Delivery::Refused),
            (er(200, "ER", "05620", "RGN"), Delivery::Refused),
            (er(500, "ER", "500", "BDA"), Delivery::Unknown),
            (er(200, "ER", "500", "BDA"), Delivery::Unknown),
            (er(201, "ER500", "", ""), Delivery::Unknown),
            (er(200, "ER", "00001", "BE"), Delivery::Unknown),
            (er(400, "ER", "00001", "BE"), Delivery::Unknown),
            (er(504, "", "", ""), Delivery::Unknown),
            (er(408, "ER", "00408", "OUD"), Delivery::Unknown),
            (er(206, "ER", "1", "BDA"), Delivery::Unknown),
            (er(400, "ER", "1", "BDA"), Delivery::Refused),
            (er(408, "ER", "1", "BDA"), Delivery::Unknown),
            (er(429, "ER", "05621", "RGN"), Delivery::Unknown),
            (er(404, "ER", "51011", "SCL"), Delivery::Unknown),
            (er(401, "ER", "401", "OUD"), Delivery::Declined),
            (er(200, "ER", "401", "OUD"), Delivery::Unknown),
            (er(404, "", "", ""), Delivery::Unknown),
            (er(429, "", "", ""), Delivery::Unknown),
            (er(400, "ER", "99999", "XYZ"), Delivery::Unknown),
            (er(302, "", "", ""), Delivery::Unknown),
        ];
        for (answer, expected) in cases {
            let error = from_failure("withdraw_with_otp", FAILURE, &answer);
            assert_eq!(error.delivery, expected, "{answer:?}");
        }
        let lost = bad_response("withdraw_with_otp", 200, "truncated JSON");
        assert_eq!(lost.delivery, Delivery::Unknown);
    }

    #[test]
    fn the_http_status_separates_rows_sharing_a_code() {
        assert_eq!(lookup(400, "1", "BDA").unwrap().reason, "BAD_REQUEST");
        assert_eq!(
            lookup(206, "1", "BDA").unwrap().reason,
            "BUSINESS_RULE_REJECTED"
        );
        assert_eq!(
            lookup(401, "32", "RGN").unwrap().reason,
            "PASSWORD_STATUS_UNCHANGED"
        );
        assert_eq!(lookup(404, "32", "RGN").unwrap().reason, "USER_NOT_FOUND");
        assert!(
            lookup(400, "32", "RGN").is_none(),
            "32/RGN takes no nearer status"
        );
        assert!(lookup(500, "32", "RGN").is_none());
        assert_eq!(
            lookup(500, "00001", "BE").unwrap().reason,
            reasons::PROVIDER_UNAVAILABLE
        );
    }

    #[test]
    fn er500_is_the_bank_failing_on_any_status() {
        for http in [200, 206, 500] {
            let mut answer = failure(http, "", "");
            answer.value = "ER500".into();
            let error = from_failure("list_channel_holds", FAILURE, &answer);
            assert_eq!(error.code, Code::Unavailable, "{http}");
            assert!(error.details.retry_after.is_some(), "{http}");
        }
    }

    #[test]
    fn an_unlisted_code_on_a_500_of_s5_to_s7_is_a_rejection_without_retry() {
        let error = from_failure(
            "enroll_digital_user",
            REFUSAL,
            &failure(500, "77777", "RGN"),
        );
        assert_eq!(error.code, Code::FailedPrecondition);
        assert_eq!(error.reason, reason::PROVIDER_REJECTED);
        assert!(error.details.retry_after.is_none());
        let elsewhere = from_failure("change_password", FAILURE, &failure(500, "77777", "RGN"));
        assert_eq!(elsewhere.code, Code::Unavailable);
        let no_code = from_failure("enroll_digital_user", REFUSAL, &failure(503, "", ""));
        assert_eq!(
            no_code.code,
            Code::Unavailable,
            "no code named: the bank failed"
        );
    }

    #[test]
    fn the_bank_unable_to_read_pasarelas_json_is_internal() {
        for (code, kind) in [("00400", "OUD"), ("400", "OUD")] {
            let error = from_failure("update_password_status", FAILURE, &failure(400, code, kind));
            assert_eq!(error.code, Code::Internal, "{code}");
            assert_eq!(error.reason, reason::PROVIDER_REQUEST_MALFORMED);
        }
    }

    #[test]
    fn a_resource_uri_the_bank_does_not_have_is_internal() {
        for (code, kind) in [("00404", "OUD"), ("404", "OUD")] {
            let error = from_failure("get_password_status", FAILURE, &failure(404, code, kind));
            assert_eq!(error.code, Code::Internal, "{code}");
            assert_eq!(error.reason, reason::PROVIDER_PATH_NOT_FOUND);
        }
        let nothing = from_failure(
            "list_channel_holds",
            FAILURE,
            &failure(404, "NO FOUND", "BDA"),
        );
        assert_eq!(nothing.code, Code::NotFound, "a query that found nothing");
        let bare = from_failure("get_password_status", FAILURE, &failure(404, "", ""));
        assert_eq!(
            (bare.code, bare.reason.as_str()),
            (Code::Internal, reason::PROVIDER_PATH_NOT_FOUND),
            "a 404 naming no code is a gateway's"
        );
    }

    #[test]
    fn a_401_row_of_the_bank_is_never_unauthenticated() {
        let error = from_failure("change_password", FAILURE, &failure(401, "401", "OUD"));
        assert_eq!(error.code, Code::Unavailable);
        assert_eq!(error.reason, reasons::PROVIDER_AUTH_FAILED);
        let error = from_failure("change_password", FAILURE, &failure(401, "", ""));
        assert_eq!(error.reason, reasons::PROVIDER_AUTH_FAILED);
    }

    #[test]
    fn unknown_codes_fall_back_to_the_status() {
        let cases = [
            (206, Code::FailedPrecondition, "PROVIDER_REJECTED"),
            (400, Code::FailedPrecondition, "PROVIDER_REJECTED"),
            (404, Code::NotFound, "NOT_FOUND"),
            (503, Code::Unavailable, reasons::PROVIDER_UNAVAILABLE),
            (302, Code::Internal, reasons::PROVIDER_BAD_RESPONSE),
        ];
        for (http, code, reason) in cases {
            let error = from_failure("op", FAILURE, &failure(http, "99999", "XYZ"));
            assert_eq!(
                (error.code, error.reason.as_str()),
                (code, reason),
                "{http}"
            );
        }
    }

    #[test]
    fn metadata_and_text_come_from_the_answer() {
        let mut answer = failure(400, "1008", "OUD");
        answer.desc = "La clave es igual al numero de identificacion\n".into();
        let error = from_failure("change_password", FAILURE, &answer);
        assert_eq!(error.code, Code::InvalidArgument);
        assert_eq!(error.reason, "PASSWORD_EQUALS_ID");
        assert_eq!(error.details.metadata["provider_code"], "1008");
        assert_eq!(error.details.metadata["provider_type"], "OUD");
        assert_eq!(error.details.metadata["http_status"], "400");
        assert_eq!(
            error.details.localized,
            Some((
                "es-CO".into(),
                "La clave es igual al numero de identificacion".into()
            ))
        );
    }

    #[test]
    fn the_table_text_stands_in_for_an_empty_description() {
        let error = from_failure(
            "update_password_status",
            FAILURE,
            &failure(401, "32", "RGN"),
        );
        assert_eq!(
            error.details.localized.unwrap().1,
            "La clave ya se encuentra en el estado solicitado"
        );
    }
}
