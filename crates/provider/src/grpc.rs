//! The gRPC wire's names that every layer records a call under: the header of the id that
//! follows a call to the providers, a status code's canonical name, and the status a
//! response carries in its headers.

/// Header carrying the id that follows one call across pasarela and the providers.
pub const REQUEST_ID: &str = "x-request-id";

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
}
