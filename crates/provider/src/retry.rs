//! Retries for operations safe to repeat: jittered exponential backoff bounded by a
//! retry budget (gRPC A6 throttling), so retries cannot multiply an outage.

use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Retries after the first attempt (0 turns retries off).
    pub max_retries: usize,
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Token bucket size of the retry budget; retries stop while it is at half or less.
    pub budget_tokens: f64,
    /// Tokens a success gives back.
    pub budget_refill: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: 2,
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            budget_tokens: 10.0,
            budget_refill: 0.1,
        }
    }
}

#[derive(Debug)]
pub struct RetryPolicy {
    settings: RetrySettings,
    tokens: Mutex<f64>,
}

impl RetryPolicy {
    pub fn new(settings: RetrySettings) -> Self {
        Self {
            tokens: Mutex::new(settings.budget_tokens),
            settings,
        }
    }

    /// The delays between attempts, jittered; at most `max_retries` of them.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.settings.min_delay)
            .with_max_delay(self.settings.max_delay)
            .with_max_times(self.settings.max_retries)
            .with_jitter()
            .build()
    }

    /// Records an attempt's outcome in the budget.
    pub fn record(&self, success: bool) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        *tokens = if success {
            (*tokens + self.settings.budget_refill).min(self.settings.budget_tokens)
        } else {
            (*tokens - 1.0).max(0.0)
        };
    }

    /// Whether the budget still allows a retry.
    pub fn may_retry(&self) -> bool {
        *self.tokens.lock().unwrap_or_else(|p| p.into_inner()) > self.settings.budget_tokens / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_bounded_in_number_and_size() {
        let policy = RetryPolicy::new(RetrySettings::default());
        let delays: Vec<_> = policy.delays().collect();
        assert_eq!(delays.len(), 2);
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
    }

    #[test]
    fn budget_stops_retries_during_an_outage_and_refills() {
        let policy = RetryPolicy::new(RetrySettings::default());
        assert!(policy.may_retry());
        for _ in 0..5 {
            policy.record(false);
        }
        assert!(!policy.may_retry());
        for _ in 0..20 {
            policy.record(true);
        }
        assert!(policy.may_retry());
    }
}
