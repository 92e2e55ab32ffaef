//! One error model for every service: a gRPC code chosen by meaning plus `google.rpc`
//! details (`ErrorInfo`, `LocalizedMessage`, `RetryInfo`, `BadRequest`).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::delivery::Delivery;

/// Stable `ErrorInfo.reason` values shared by every provider client.
pub mod reasons {
    /// The provider refused pasarela's own credentials (never the caller's fault).
    pub const PROVIDER_AUTH_FAILED: &str = "PROVIDER_AUTH_FAILED";
    /// The provider answered something pasarela cannot read (HTML, truncated JSON, ...).
    pub const PROVIDER_BAD_RESPONSE: &str = "PROVIDER_BAD_RESPONSE";
    /// The provider could not be reached or answered 5xx.
    pub const PROVIDER_UNAVAILABLE: &str = "PROVIDER_UNAVAILABLE";
    /// The provider did not answer within the call's deadline.
    pub const PROVIDER_TIMEOUT: &str = "PROVIDER_TIMEOUT";
    /// A call that moves money or state may have been executed: the answer was lost.
    pub const PROVIDER_OUTCOME_UNKNOWN: &str = "PROVIDER_OUTCOME_UNKNOWN";
    /// Calls fail fast while the provider's circuit is open.
    pub const CIRCUIT_OPEN: &str = "CIRCUIT_OPEN";
    /// The caller's deadline left less than the configured minimum provider budget:
    /// nothing was sent.
    pub const DEADLINE_TOO_SHORT: &str = "DEADLINE_TOO_SHORT";
    /// A success answer that does not belong to the request sent (another transaction id):
    /// the provider may have acted on this request or on another; the outcome is unknown.
    pub const PROVIDER_ANSWER_MISMATCH: &str = "PROVIDER_ANSWER_MISMATCH";
}

/// A failure to hand back to the caller as a rich `tonic::Status`.
///
/// `message` must never carry a secret or a raw provider body: it is what the caller reads.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ProviderError {
    pub code: Code,
    pub reason: String,
    pub domain: String,
    pub message: String,
    /// Whether the provider may have acted: decides an idempotency key's fate. Never sent
    /// to the caller as such.
    pub delivery: Delivery,
    /// The error already tells its caller that the outcome is unknown
    /// ([`ProviderError::outcome_unknown`]): presenting it so again would wrap it twice.
    pub tells_unknown: bool,
    /// Boxed so that `Result<T, ProviderError>` stays small on the happy path.
    pub details: Box<Details>,
}

/// What a provider answered, as its tables key a failure: for a decision made from the
/// answer itself (is this a consulta's "no such withdrawal"?) without reading metadata
/// text back. Never sent to the caller as such.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answered {
    pub http: u16,
    pub code: String,
    pub kind: String,
}

/// The `google.rpc` details of a [`ProviderError`] besides its `ErrorInfo` reason.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// The provider's answer this error was read from, when it answered.
    pub answered: Option<Answered>,
    pub metadata: HashMap<String, String>,
    pub localized: Option<(String, String)>,
    pub retry_after: Option<Duration>,
    pub violations: Vec<(String, String)>,
}

impl ProviderError {
    pub fn new(code: Code, reason: impl Into<String>, domain: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            code,
            message: reason.to_lowercase().replace('_', " "),
            reason,
            domain: domain.into(),
            delivery: Delivery::default(),
            tells_unknown: false,
            details: Box::default(),
        }
    }

    /// An error that tells its caller the outcome is unknown (`PROVIDER_OUTCOME_UNKNOWN`):
    /// retry with the same key. Its delivery is [`Delivery::Unknown`] unless set otherwise
    /// (a consulta that sent nothing new).
    pub fn outcome_unknown(code: Code, domain: impl Into<String>) -> Self {
        ProviderError {
            tells_unknown: true,
            ..Self::new(code, reasons::PROVIDER_OUTCOME_UNKNOWN, domain)
        }
    }

    /// Records the provider's answer this error was read from.
    pub fn answered(mut self, answered: Answered) -> Self {
        self.details.answered = Some(answered);
        self
    }

    /// Sets whether the provider may have acted (unset: [`Delivery::Unknown`]).
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// How a failure of a state-changing call whose outcome is unknown reads to its caller:
    /// `PROVIDER_OUTCOME_UNKNOWN`, the provider's own reason kept in metadata
    /// `provider_reason`, retry with the same key. A call with any other delivery is
    /// returned as it is.
    pub fn presented_as_unknown_outcome(self) -> Self {
        if self.delivery != Delivery::Unknown || self.tells_unknown {
            return self;
        }
        let code = match self.code {
            Code::DeadlineExceeded => Code::DeadlineExceeded,
            _ => Code::Unavailable,
        };
        let message = format!(
            "{}; the provider may have acted on it: retry with the same idempotency key",
            self.message
        );
        let provider_reason = self.reason.clone();
        ProviderError {
            code,
            reason: reasons::PROVIDER_OUTCOME_UNKNOWN.to_owned(),
            message,
            tells_unknown: true,
            ..self
        }
        .meta("provider_reason", provider_reason)
    }

    /// Every occurrence of each of `secrets` (the request's secret values, pasarela's
    /// credentials) removed from what the provider wrote into this error: its text, its
    /// metadata and its field violations. Empty secrets are ignored.
    pub fn scrub(mut self, secrets: &[&str]) -> Self {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return self;
        }
        let clean = |text: &mut String| {
            for secret in &secrets {
                if text.contains(secret) {
                    *text = text.replace(secret, "***");
                }
            }
        };
        clean(&mut self.message);
        let details = &mut *self.details;
        details.metadata.values_mut().for_each(clean);
        if let Some((_, text)) = details.localized.as_mut() {
            clean(text);
        }
        for (field, description) in &mut details.violations {
            clean(field);
            clean(description);
        }
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Adds an `ErrorInfo.metadata` entry (the provider's own code, type, HTTP status...).
    pub fn meta(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.details.metadata.insert(key.into(), value.to_string());
        self
    }

    /// The provider's human text, for a person reading the error (`es-CO`, `es-MX`).
    pub fn localized(mut self, locale: impl Into<String>, text: impl Into<String>) -> Self {
        self.details.localized = Some((locale.into(), text.into()));
        self
    }

    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.details.retry_after = Some(delay);
        self
    }

    /// A `BadRequest` field violation reported by the provider itself.
    pub fn violation(mut self, field: impl Into<String>, description: impl Into<String>) -> Self {
        self.details
            .violations
            .push((field.into(), description.into()));
        self
    }
}

impl From<ProviderError> for Status {
    fn from(error: ProviderError) -> Self {
        let extra = *error.details;
        let mut details = ErrorDetails::with_error_info(error.reason, error.domain, extra.metadata);
        if let Some((locale, text)) = extra.localized {
            details.set_localized_message(locale, text);
        }
        if let Some(delay) = extra.retry_after {
            details.set_retry_info(Some(delay));
        }
        if !extra.violations.is_empty() {
            details.set_bad_request(
                extra
                    .violations
                    .into_iter()
                    .map(|(field, description)| FieldViolation::new(field, description))
                    .collect::<Vec<_>>(),
            );
        }
        Status::with_error_details(error.code, error.message, details)
    }
}

/// A `INVALID_ARGUMENT` status with one `FieldViolation` per bad field.
pub fn bad_request(violations: Vec<(String, String)>) -> Status {
    let summary = violations
        .iter()
        .map(|(field, _)| field.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let details = ErrorDetails::with_bad_request(
        violations
            .into_iter()
            .map(|(field, description)| FieldViolation::new(field, description))
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {summary}"),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_every_detail() {
        let status: Status = ProviderError::new(Code::FailedPrecondition, "OTP_EXPIRED", "bcs")
            .meta("provider_code", "1020")
            .localized("es-CO", "OTP vencida")
            .retry_after(Duration::from_secs(2))
            .into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "OTP_EXPIRED");
        assert_eq!(info.domain, "bcs");
        assert_eq!(info.metadata["provider_code"], "1020");
        assert_eq!(details.localized_message().unwrap().message, "OTP vencida");
        assert!(details.retry_info().is_some());
    }

    #[test]
    fn bad_request_lists_every_field() {
        let status = bad_request(vec![
            ("a".into(), "required".into()),
            ("b".into(), "too long".into()),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert_eq!(fields, ["a", "b"]);
    }
}
