//! The in-process idempotency store: correct for one replica (the default). It holds at
//! most a configured number of keys: past it, new claims fail closed (nothing is sent)
//! rather than the process growing without bound under callers' keys.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{Store, StoreResult, StoreUnavailable};

/// Expired entries are swept once the map has grown by this many since the last sweep.
const SWEEP_EVERY: usize = 1024;

pub struct MemoryStore {
    entries: Mutex<Entries>,
    max_keys: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_MAX_KEYS)
    }
}

/// Least time between two sweeps of a full store.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Keys held at most when the configuration names no other bound.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct Entries {
    map: HashMap<String, (String, Instant)>,
    next_sweep: usize,
    /// Counters of [`Store::reserve`]: the last number handed out.
    counters: HashMap<String, u64>,
    /// Sets of [`Store::track`].
    sets: HashMap<String, BTreeSet<String>>,
    /// When a sweep last found the map full.
    full_since: Option<Instant>,
}

impl Entries {
    fn live(&mut self, key: &str) -> Option<&String> {
        let now = Instant::now();
        if self
            .map
            .get(key)
            .is_some_and(|(_, expires)| *expires <= now)
        {
            self.map.remove(key);
        }
        self.map.get(key).map(|(value, _)| value)
    }

    /// Whether no new key fits, once expired ones are swept (at capacity, one sweep a
    /// second at most: a flood of new keys costs one scan a second, not one a call).
    fn full(&mut self, max_keys: usize) -> bool {
        if self.map.len() < max_keys {
            return false;
        }
        let now = Instant::now();
        if self
            .full_since
            .is_some_and(|at| now.duration_since(at) < FULL_SWEEP_EVERY)
        {
            return true;
        }
        self.map.retain(|_, (_, expires)| *expires > now);
        self.next_sweep = self.map.len() + SWEEP_EVERY;
        let full = self.map.len() >= max_keys;
        self.full_since = full.then_some(now);
        full
    }

    fn put(&mut self, key: &str, value: &str, ttl: Duration) {
        if self.map.len() >= self.next_sweep {
            let now = Instant::now();
            self.map.retain(|_, (_, expires)| *expires > now);
            self.next_sweep = self.map.len() + SWEEP_EVERY;
        }
        self.map
            .insert(key.to_owned(), (value.to_owned(), Instant::now() + ttl));
    }
}

impl MemoryStore {
    /// A store of at most `max_keys` live keys (counters and sets aside).
    pub fn with_capacity(max_keys: usize) -> Self {
        Self {
            entries: Mutex::default(),
            max_keys,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Entries) -> T) -> T {
        // Each operation replaces whole entries: a panic elsewhere cannot tear one.
        f(&mut self.entries.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies `change` if `key` holds `expected`, under one lock; says whether it did.
    fn if_holds(&self, key: &str, expected: &str, change: impl FnOnce(&mut Entries)) -> bool {
        self.with(|entries| {
            let holds = entries.live(key).is_some_and(|current| current == expected);
            if holds {
                change(entries);
            }
            holds
        })
    }
}

impl Store for MemoryStore {
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<Option<String>>> {
        let max_keys = self.max_keys;
        let existing = self.with(|entries| {
            if let Some(existing) = entries.live(key) {
                return Ok(Some(existing.clone()));
            }
            if entries.full(max_keys) {
                return Err(StoreUnavailable::new(
                    "insert (the memory store holds its maximum of keys)",
                    format!("{max_keys} keys"),
                ));
            }
            entries.put(key, value, ttl);
            Ok(None)
        });
        futures::future::ready(existing).boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        let value = self.with(|entries| entries.live(key).cloned());
        futures::future::ready(Ok(value)).boxed()
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let replaced = self.if_holds(key, expected, |entries| entries.put(key, value, ttl));
        futures::future::ready(Ok(replaced)).boxed()
    }

    fn remove<'a>(&'a self, key: &'a str, expected: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        let removed = self.if_holds(key, expected, |entries| {
            entries.map.remove(key);
        });
        futures::future::ready(Ok(removed)).boxed()
    }

    fn reserve<'a>(
        &'a self,
        key: &'a str,
        count: u64,
        seed: u64,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        let first = self.with(|entries| {
            let last = entries.counters.entry(key.to_owned()).or_insert(seed);
            let first = last.wrapping_add(1);
            *last = last.wrapping_add(count);
            first
        });
        futures::future::ready(Ok(first)).boxed()
    }

    fn track<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        self.with(|entries| {
            entries
                .sets
                .entry(set.to_owned())
                .or_default()
                .insert(member.to_owned())
        });
        futures::future::ready(Ok(())).boxed()
    }

    fn untrack<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        self.with(|entries| {
            if let Some(members) = entries.sets.get_mut(set) {
                members.remove(member);
            }
        });
        futures::future::ready(Ok(())).boxed()
    }

    fn untrack_if<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        key: &'a str,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let removed = self.with(|entries| {
            if entries.live(key).map(String::as_str) != expected {
                return false;
            }
            entries
                .sets
                .get_mut(set)
                .is_some_and(|members| members.remove(member))
        });
        futures::future::ready(Ok(removed)).boxed()
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        let members = self.with(|entries| {
            entries
                .sets
                .get(set)
                .map(|members| members.iter().cloned().collect())
                .unwrap_or_default()
        });
        futures::future::ready(Ok(members)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claims_compare_and_expire() {
        let store = MemoryStore::default();
        let ttl = Duration::from_secs(60);
        crate::tests::claims_compare_and_swap(&store).await;
        assert_eq!(
            store.insert_new("k", "d", Duration::ZERO).await.unwrap(),
            None
        );
        assert_eq!(
            store.insert_new("k", "e", ttl).await.unwrap(),
            None,
            "expired entries are gone"
        );
    }

    #[tokio::test]
    async fn a_full_store_refuses_new_keys_and_keeps_serving_known_ones() {
        let store = MemoryStore::with_capacity(2);
        let ttl = Duration::from_secs(60);
        assert_eq!(store.insert_new("a", "1", ttl).await.unwrap(), None);
        assert_eq!(store.insert_new("b", "1", ttl).await.unwrap(), None);
        assert!(store.insert_new("c", "1", ttl).await.is_err(), "full");
        assert_eq!(
            store.insert_new("a", "2", ttl).await.unwrap().as_deref(),
            Some("1")
        );
        assert!(store.replace("a", "1", "done", ttl).await.unwrap());
        let short = MemoryStore::with_capacity(1);
        assert_eq!(
            short.insert_new("x", "1", Duration::ZERO).await.unwrap(),
            None
        );
        assert_eq!(
            short.insert_new("y", "1", ttl).await.unwrap(),
            None,
            "an expired key makes room"
        );
    }

    #[tokio::test]
    async fn counters_hand_out_disjoint_blocks() {
        let store = MemoryStore::default();
        assert_eq!(store.reserve("seq", 10, 500).await.unwrap(), 501);
        assert_eq!(store.reserve("seq", 10, 0).await.unwrap(), 511);
        assert_eq!(store.reserve("other", 1, 0).await.unwrap(), 1);
    }
}
