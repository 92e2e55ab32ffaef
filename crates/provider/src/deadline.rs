//! A caller's deadline: read from its `grpc-timeout`, and turned into the time a provider
//! call may take.

use std::time::{Duration, Instant};

/// The gRPC deadline header (`<digits><unit>`).
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The longest wait added to the clock: a setting past a century is read as one.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The shortest period a timer ticks at: a setting of zero (which tokio refuses with a
/// panic) ticks every second.
const SHORTEST_PERIOD: Duration = Duration::from_secs(1);

/// A timer's period from a setting: at least a second, at most a century, so that neither
/// a zero nor a period past the clock panics a background task (tokio adds the period to
/// each tick).
pub fn period(every: Duration) -> Duration {
    every.clamp(SHORTEST_PERIOD, LONGEST)
}

/// A timer that ticks every `every` (as [`period`] reads it), the first tick one period
/// from now, on tokio's clock (which tests pause).
pub fn ticks_after(every: Duration) -> tokio::time::Interval {
    let every = period(every);
    let now = tokio::time::Instant::now();
    tokio::time::interval_at(now.checked_add(every).unwrap_or(now), every)
}

/// `by` from now, `by` capped at a century, so that no setting (a TTL, a breaker's open
/// time, a refresh period) can overflow the clock into a panic.
pub fn from_now(by: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(by.min(LONGEST)).unwrap_or(now)
}

/// Time kept back from the caller's deadline so the answer reaches them before it expires.
pub const MARGIN: Duration = Duration::from_millis(20);

/// The budget of one provider call: the caller's `remaining` time (from its call context)
/// minus [`MARGIN`], never more than the operation's configured `ceiling`.
pub fn budget(remaining: Option<Duration>, ceiling: Duration) -> Duration {
    remaining
        .map(|caller| caller.saturating_sub(MARGIN).min(ceiling))
        .unwrap_or(ceiling)
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
    fn budget_is_bounded_by_caller_and_ceiling() {
        let ceiling = Duration::from_secs(10);
        assert_eq!(budget(None, ceiling), ceiling);
        assert_eq!(
            budget(Some(Duration::from_millis(500)), ceiling),
            Duration::from_millis(480)
        );
        assert_eq!(budget(Some(Duration::from_secs(60)), ceiling), ceiling);
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
    fn no_setting_overflows_the_clock() {
        let before = Instant::now();
        assert!(
            from_now(Duration::MAX) > before,
            "a century at most, never a panic"
        );
        assert!(from_now(Duration::ZERO) >= before);
    }
}
