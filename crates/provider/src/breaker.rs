//! A circuit breaker per provider: after a run of failures calls fail fast for a while,
//! then one probe call decides whether the provider is back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before a probe is let through.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
        }
    }
}

/// Where the circuit stands; the number is what the metrics gauge reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_started: Instant },
}

#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    /// Lets a call through, or says how long until the circuit may let one through.
    pub fn admit(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Ok(()),
            Inner::Open { until } if now >= until => {
                *inner = Inner::HalfOpen { probe_started: now };
                Ok(())
            }
            Inner::Open { until } => Err(until - now),
            // A probe whose caller went away never reports; let another through after a
            // full open period instead of staying half-open forever.
            Inner::HalfOpen { probe_started } => {
                let next = probe_started.checked_add(self.settings.open_for);
                match next {
                    Some(next) if now < next => Err(next - now),
                    // An open period past the clock lets no second probe through.
                    None => Err(self.settings.open_for),
                    Some(_) => {
                        *inner = Inner::HalfOpen { probe_started: now };
                        Ok(())
                    }
                }
            }
        }
    }

    pub fn record(&self, success: bool) {
        let mut inner = self.lock();
        *inner = match (&*inner, success) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false)
                if failures + 1 < self.settings.failure_threshold =>
            {
                Inner::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => Inner::Open {
                until: crate::deadline::from_now(self.settings.open_for),
            },
        };
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(open_for: Duration) -> Breaker {
        Breaker::new(BreakerSettings {
            failure_threshold: 3,
            open_for,
        })
    }

    #[test]
    fn opens_after_threshold_and_closes_after_probe() {
        let b = breaker(Duration::ZERO);
        for _ in 0..2 {
            b.record(false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_ok(), "open period over: probe admitted");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(true);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_open_period_past_the_clock_keeps_the_circuit_open_without_a_panic() {
        let b = breaker(Duration::MAX);
        for _ in 0..3 {
            b.record(false);
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_err(), "still open");
    }

    #[test]
    fn open_circuit_rejects_with_remaining_time() {
        let b = breaker(Duration::from_secs(60));
        for _ in 0..3 {
            b.record(false);
        }
        let wait = b.admit().unwrap_err();
        assert!(wait > Duration::from_secs(50));
    }

    #[test]
    fn failed_probe_reopens() {
        let b = breaker(Duration::ZERO);
        for _ in 0..3 {
            b.record(false);
        }
        b.admit().unwrap();
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn success_resets_failure_run() {
        let b = breaker(Duration::from_secs(60));
        b.record(false);
        b.record(false);
        b.record(true);
        b.record(false);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
