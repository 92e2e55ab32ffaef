//! Turns the time the caller has left into the time a provider call may take.

use std::time::Duration;

/// Time kept back from the caller's deadline so the answer reaches them before it expires.
pub const MARGIN: Duration = Duration::from_millis(20);

/// The budget of one provider call: the caller's `remaining` time (from its call context)
/// minus [`MARGIN`], never more than the operation's configured `ceiling`.
pub fn budget(remaining: Option<Duration>, ceiling: Duration) -> Duration {
    remaining
        .map(|caller| caller.saturating_sub(MARGIN).min(ceiling))
        .unwrap_or(ceiling)
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
}
