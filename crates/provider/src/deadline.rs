//! Turns the caller's `grpc-timeout` into the time a provider call may take.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// Time kept back from the caller's deadline so the answer reaches them before it expires.
pub const MARGIN: Duration = Duration::from_millis(20);

/// The caller's deadline from the `grpc-timeout` header (`<digits><unit>`, unit one of
/// H, M, S, m, u, n), if it sent one.
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)
}

/// Parses a `grpc-timeout` header value.
pub fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
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

/// The budget of one provider call: the caller's remaining time minus [`MARGIN`], never
/// more than the operation's configured `ceiling`.
pub fn budget(metadata: &MetadataMap, ceiling: Duration) -> Duration {
    grpc_timeout(metadata)
        .map(|caller| caller.saturating_sub(MARGIN).min(ceiling))
        .unwrap_or(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_timeout(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", value.parse().unwrap());
        metadata
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
            assert_eq!(grpc_timeout(&with_timeout(raw)), Some(expected), "{raw}");
        }
        assert_eq!(grpc_timeout(&with_timeout("5x")), None);
        assert_eq!(grpc_timeout(&with_timeout("S")), None);
    }

    #[test]
    fn budget_is_bounded_by_caller_and_ceiling() {
        let ceiling = Duration::from_secs(10);
        assert_eq!(budget(&MetadataMap::new(), ceiling), ceiling);
        assert_eq!(
            budget(&with_timeout("500m"), ceiling),
            Duration::from_millis(480)
        );
        assert_eq!(budget(&with_timeout("60S"), ceiling), ceiling);
    }
}
