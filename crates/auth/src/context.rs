//! One call's context, read once: the request id, the caller's deadline and who is
//! calling, and the name its outcome is recorded under. The server's RPC layer sets the context as a request
//! extension; the audit line and every handler read it from there, and only a service run
//! without that layer (a test, an embedding) reads headers.

use std::time::{Duration, Instant};

use crate::principal::Principal;

/// Header carrying the id that follows one call across pasarela and the providers.
pub const REQUEST_ID: &str = "x-request-id";

/// The gRPC deadline header (`<digits><unit>`).
const GRPC_TIMEOUT: &str = "grpc-timeout";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The caller's `x-request-id`, or the one the RPC layer made; empty when unknown.
    pub request_id: String,
    /// When the caller stops waiting (`grpc-timeout` from the call's arrival).
    pub deadline: Option<Instant>,
    /// Who is calling, as the auth layer identified it; none without that layer.
    pub principal: Option<Principal>,
}

impl CallContext {
    /// The context of a gRPC request: the RPC layer's, else read from its metadata.
    pub fn of<T>(request: &tonic::Request<T>) -> CallContext {
        let mut context = request
            .extensions()
            .get::<CallContext>()
            .cloned()
            .unwrap_or_else(|| {
                Self::read(|name| request.metadata().get(name).and_then(|v| v.to_str().ok()))
            });
        // The RPC layer sets its context before the auth layer has identified anybody.
        context.principal = request.extensions().get::<Principal>().cloned();
        context
    }

    /// The context of an HTTP request: its extension, else read from its headers.
    pub fn of_http<B>(request: &http::Request<B>) -> CallContext {
        request
            .extensions()
            .get::<CallContext>()
            .cloned()
            .unwrap_or_else(|| Self::from_headers(request.headers()))
    }

    /// Read from headers, the deadline counted from now.
    pub fn from_headers(headers: &http::HeaderMap) -> CallContext {
        Self::read(|name| headers.get(name).and_then(|v| v.to_str().ok()))
    }

    fn read<'a>(header: impl Fn(&str) -> Option<&'a str>) -> CallContext {
        CallContext {
            request_id: header(REQUEST_ID).unwrap_or_default().to_owned(),
            deadline: header(GRPC_TIMEOUT)
                .and_then(parse_grpc_timeout)
                .and_then(deadline_after),
            principal: None,
        }
    }

    /// How long is left before the caller's deadline, if it set one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// `PermissionDenied` -> `PERMISSION_DENIED`: how a call's gRPC code is spelt wherever it
/// is recorded (audit lines, the server's metric labels).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The gRPC status in `headers` (a trailers-only answer, or the trailers of a stream).
pub fn status_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(value))
}

/// When a call given `timeout` from now must be over; `None` past what the clock holds
/// (no arithmetic on a caller's value may panic).
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Longest `TimeoutValue` the gRPC spec allows: "positive integer as ASCII string of at
/// most 8 digits".
const MAX_TIMEOUT_DIGITS: usize = 8;

/// Parses a `grpc-timeout` header value as the gRPC spec writes it: 1 to 8 ASCII digits and
/// a unit (H, M, S, m, u, n). Anything else is malformed and read as no timeout.
pub fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    if !raw.is_ascii() {
        return None;
    }
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let well_formed = (1..=MAX_TIMEOUT_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_read_from_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_code(&headers), None);
        headers.insert("grpc-status", "7".parse().unwrap());
        assert_eq!(status_code(&headers), Some(tonic::Code::PermissionDenied));
    }

    #[test]
    fn codes_use_canonical_names() {
        // The canonical name is the variant's name in SCREAMING_SNAKE_CASE.
        for value in 0..=16 {
            let code = tonic::Code::from_i32(value);
            let mut expected = String::new();
            for (i, c) in format!("{code:?}").chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    expected.push('_');
                }
                expected.push(c.to_ascii_uppercase());
            }
            assert_eq!(code_name(code), expected);
        }
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("5S", Duration::from_secs(5)),
            ("250m", Duration::from_millis(250)),
            ("7u", Duration::from_micros(7)),
            ("9n", Duration::from_nanos(9)),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_grpc_timeout(raw), Some(expected), "{raw}");
        }
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        for malformed in [
            "123456789S",
            "18446744073709551615S",
            "+5S",
            "-5S",
            " 5S",
            "5 S",
            "5é",
            "",
        ] {
            assert_eq!(parse_grpc_timeout(malformed), None, "{malformed:?}");
        }
        let longest = parse_grpc_timeout("99999999H").expect("8 digits are allowed");
        assert!(
            deadline_after(longest).is_some(),
            "the longest one is a deadline"
        );
        assert_eq!(deadline_after(Duration::MAX), None, "never a panic");
    }

    #[test]
    fn the_layers_context_wins_over_headers() {
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert(REQUEST_ID, "from-header".parse().unwrap());
        request
            .metadata_mut()
            .insert(GRPC_TIMEOUT, "500m".parse().unwrap());
        let read = CallContext::of(&request);
        assert_eq!(read.request_id, "from-header");
        assert!(
            read.remaining()
                .is_some_and(|left| left <= Duration::from_millis(500))
        );
        let set = CallContext {
            request_id: "from-layer".into(),
            ..CallContext::default()
        };
        request.extensions_mut().insert(set.clone());
        assert_eq!(CallContext::of(&request), set);
    }
}
