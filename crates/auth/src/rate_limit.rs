//! Per-principal rate limits: one token bucket (GCRA) per principal and method group,
//! shared by every connection of the process, and by every replica when the buckets live in
//! Redis, so opening more connections buys no extra calls.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimit;
use crate::policy::{MethodPath, MethodSet};
use crate::shared_buckets::SharedBuckets;

/// Past this many buckets, the full ones (next arrival time already past) are forgotten;
/// the next sweep waits until the map has doubled, so a sweep costs O(1) per call.
const SWEEP_EVERY: usize = 4096;

/// Least time between two sweeps of a full map: a flood of new principals costs one scan
/// a second, not one a call.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Most buckets kept: a new principal past it is refused until buckets refill, rather
/// than memory growing with every subject a token names.
const MAX_BUCKETS: usize = 100_000;

/// Least time between two warnings that Redis is unavailable, so an outage is one line per
/// period rather than one per call.
const WARN_EVERY: Duration = Duration::from_secs(10);

struct Group {
    name: String,
    methods: MethodSet,
    /// Time one call costs: 1 / rate.
    interval: Duration,
    /// How far ahead of now a principal's theoretical arrival time may run (the burst).
    tolerance: Duration,
}

/// Refused: the group that tripped and when a retry will be admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub group: String,
    pub retry_after: Duration,
}

/// (group index, principal key) -> theoretical arrival time of the next call.
struct Buckets {
    map: HashMap<(usize, String), Instant>,
    next_sweep: usize,
    max: usize,
    /// When a sweep last found the map full: at capacity, one sweep a second at most.
    full_since: Option<Instant>,
}

impl Buckets {
    fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            next_sweep: SWEEP_EVERY,
            max,
            full_since: None,
        }
    }

    /// Forgets full buckets once the map has grown past the last sweep's mark; answers
    /// whether a new bucket still fits.
    fn room(&mut self, now: Instant) -> bool {
        let recently_full = self
            .full_since
            .is_some_and(|at| now.duration_since(at) < FULL_SWEEP_EVERY);
        if self.map.len() >= self.next_sweep.min(self.max) && !recently_full {
            self.map.retain(|_, tat| *tat > now);
            self.next_sweep = (self.map.len() * 2).max(SWEEP_EVERY);
            self.full_since = (self.map.len() >= self.max).then_some(now);
        }
        self.map.len() < self.max
    }
}

pub struct RateLimiter {
    groups: Vec<Group>,
    buckets: Mutex<Buckets>,
    /// Buckets of all replicas; the local ones stand in while Redis cannot answer.
    shared: Option<SharedBuckets>,
    last_warning: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(limits: &[RateLimit], shared: Option<SharedBuckets>) -> Self {
        let groups = limits
            .iter()
            .map(|limit| {
                // A rate too slow for a Duration is as slow as one can be (configuration
                // refuses it before this).
                let interval =
                    Duration::try_from_secs_f64(1.0 / limit.per_second).unwrap_or(Duration::MAX);
                Group {
                    name: limit.name.clone(),
                    methods: MethodSet::new(&limit.methods),
                    interval,
                    tolerance: interval.saturating_mul(limit.burst.saturating_sub(1)),
                }
            })
            .collect();
        Self {
            groups,
            buckets: Mutex::new(Buckets::new(MAX_BUCKETS)),
            shared,
            last_warning: Mutex::new(None),
        }
    }

    /// Counts one call of `principal` to `path` against the first group covering it.
    pub async fn check(
        &self,
        principal: &str,
        path: Option<&MethodPath<'_>>,
    ) -> Result<(), Exceeded> {
        let Some((index, group)) = path.and_then(|path| {
            self.groups
                .iter()
                .enumerate()
                .find(|(_, group)| group.methods.contains(path))
        }) else {
            return Ok(());
        };
        self.take(index, group, principal).await
    }

    /// Counts one call of `key` against the first group, whatever the method.
    pub async fn check_first(&self, key: &str) -> Result<(), Exceeded> {
        match self.groups.first() {
            Some(group) => self.take(0, group, key).await,
            None => Ok(()),
        }
    }

    async fn take(&self, index: usize, group: &Group, key: &str) -> Result<(), Exceeded> {
        let wait = match self.shared_wait(group, key).await {
            Some(wait) => wait,
            None => self.local_wait(index, group, key),
        };
        match wait {
            None => Ok(()),
            Some(retry_after) => Err(Exceeded {
                group: group.name.clone(),
                retry_after,
            }),
        }
    }

    /// The shared bucket's answer, or `None` when there is no shared bucket or Redis
    /// cannot answer now.
    async fn shared_wait(&self, group: &Group, principal: &str) -> Option<Option<Duration>> {
        let shared = self.shared.as_ref()?;
        let bucket = shared.bucket(&group.name, principal);
        match shared.take(&bucket, group.interval, group.tolerance).await {
            Ok(wait) => Some(wait),
            Err(error) => {
                self.warn_unshared(&error);
                None
            }
        }
    }

    fn warn_unshared(&self, error: &anyhow::Error) {
        let now = Instant::now();
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *last = Some(now);
            tracing::warn!(error = %format!("{error:#}"), "rate-limit redis unavailable; counting in this replica alone");
        }
    }

    /// A limiter of one group counting anything under `name`: a budget per key (a peer).
    pub fn budget(name: &str, per_second: f64, burst: u32) -> Self {
        Self::new(
            &[RateLimit {
                name: name.to_owned(),
                methods: vec!["*".into()],
                per_second,
                burst,
            }],
            None,
        )
    }

    /// How long until `key` may spend from a [`RateLimiter::budget`] again; `None` when
    /// it may now. Spends nothing.
    pub fn exhausted(&self, key: &str) -> Option<Duration> {
        let group = self.groups.first()?;
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tat = buckets.map.get(&(0, key.to_owned()))?;
        let earliest = tat.checked_sub(group.tolerance).unwrap_or(now);
        (earliest > now).then(|| earliest - now)
    }

    /// Spends one from `key`'s [`RateLimiter::budget`].
    pub fn spend(&self, key: &str) {
        if let Some(group) = self.groups.first() {
            let _ = self.local_wait(0, group, key);
        }
    }

    /// GCRA on this process's buckets: `None` when admitted, else how long to wait.
    fn local_wait(&self, index: usize, group: &Group, principal: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = (index, principal.to_owned());
        if !buckets.map.contains_key(&key) && !buckets.room(now) {
            tracing::warn!(
                buckets = buckets.map.len(),
                "rate limiter full: a new principal is refused until buckets refill"
            );
            return Some(group.interval);
        }
        let tat = buckets.map.entry(key).or_insert(now);
        let earliest = tat.checked_sub(group.tolerance).unwrap_or(now);
        if earliest > now {
            return Some(earliest - now);
        }
        // Past the clock the call waits a whole interval instead of a panic.
        let Some(next) = (*tat).max(now).checked_add(group.interval) else {
            return Some(group.interval);
        };
        *tat = next;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(
            &[
                RateLimit {
                    name: "charges".into(),
                    methods: vec!["p.Payments/Charge".into()],
                    per_second,
                    burst,
                },
                RateLimit {
                    name: "rest".into(),
                    methods: vec!["*".into()],
                    per_second: 1000.0,
                    burst: 1000,
                },
            ],
            None,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_refusal_then_recovery() {
        let limiter = limiter(10.0, 3);
        let charge = MethodPath::parse("/p.Payments/Charge");
        for _ in 0..3 {
            assert!(limiter.check("jwt:a", charge.as_ref()).await.is_ok());
        }
        let refused = limiter.check("jwt:a", charge.as_ref()).await.unwrap_err();
        assert_eq!(refused.group, "charges");
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_millis(100));
        tokio::time::advance(refused.retry_after).await;
        assert!(limiter.check("jwt:a", charge.as_ref()).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_are_bounded_and_full_ones_make_room() {
        let limiter = limiter(1.0, 1);
        *limiter.buckets.lock().unwrap() = Buckets::new(3);
        let charge = MethodPath::parse("/p.Payments/Charge");
        for principal in ["jwt:a", "jwt:b", "jwt:c"] {
            assert!(limiter.check(principal, charge.as_ref()).await.is_ok());
        }
        assert!(
            limiter.check("jwt:d", charge.as_ref()).await.is_err(),
            "no room for a fourth principal"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            limiter.check("jwt:d", charge.as_ref()).await.is_ok(),
            "refilled buckets are forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn principals_and_groups_are_counted_apart() {
        let limiter = limiter(1.0, 1);
        let charge = MethodPath::parse("/p.Payments/Charge");
        let cancel = MethodPath::parse("/p.Payments/Cancel");
        assert!(limiter.check("jwt:a", charge.as_ref()).await.is_ok());
        assert!(limiter.check("jwt:a", charge.as_ref()).await.is_err());
        assert!(limiter.check("jwt:b", charge.as_ref()).await.is_ok());
        assert!(limiter.check("jwt:a", cancel.as_ref()).await.is_ok());
    }
}
