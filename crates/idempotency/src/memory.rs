//! The in-process idempotency store: correct for one replica (the default). It holds at
//! most a configured number of keys: past it, new claims fail closed (nothing is sent)
//! rather than the process growing without bound under callers' keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{Inserted, Keep, NewKey, OPEN_RETENTION, Store, StoreResult, StoreUnavailable};

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
    /// Sets of [`Store::track`]: each member with who holds it open.
    sets: HashMap<String, BTreeMap<String, String>>,
    /// The transaction id of each claim, and its key: taken while that key's record lives
    /// (the process's own counter never goes back, so no longer).
    transaction_ids: HashMap<String, String>,
    /// When a sweep last found the map full.
    full_since: Option<Instant>,
    /// Leases of [`Store::lease`]: their holder and when they lapse.
    leases: HashMap<String, (String, Instant)>,
    /// [`Store::bind`]: bound for the life of the process.
    bindings: HashMap<String, String>,
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
        self.sweep(now);
        let full = self.map.len() >= max_keys;
        self.full_since = full.then_some(now);
        full
    }

    /// Keys and transaction ids held.
    fn held(&self) -> usize {
        self.map.len().saturating_add(self.transaction_ids.len())
    }

    fn sweep(&mut self, now: Instant) {
        self.map.retain(|_, (_, expires)| *expires > now);
        let map = &self.map;
        self.transaction_ids.retain(|_, key| map.contains_key(key));
        self.next_sweep = self.held() + SWEEP_EVERY;
    }

    /// Whether a live record's claim holds `transaction_id`.
    fn taken(&mut self, transaction_id: &str) -> bool {
        match self.transaction_ids.get(transaction_id).cloned() {
            Some(key) => self.live(&key).is_some(),
            None => false,
        }
    }

    fn put(&mut self, key: &str, value: &str, keep: Keep) {
        if self.held() >= self.next_sweep {
            self.sweep(Instant::now());
        }
        let ttl = match keep {
            Keep::For(ttl) => ttl,
            Keep::UntilSettled => OPEN_RETENTION,
        };
        let until = pasarela_provider::deadline::from_now(ttl);
        self.map.insert(key.to_owned(), (value.to_owned(), until));
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

/// When a lease taken at `now` for `ttl` lapses; one past any clock lapses at once (its
/// holder renews it each round).
fn lapse(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl).unwrap_or(now)
}

impl Store for MemoryStore {
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        keep: Keep,
        new: NewKey<'a>,
    ) -> BoxFuture<'a, StoreResult<Inserted>> {
        let max_keys = self.max_keys;
        let inserted = self.with(|entries| {
            if let Some(existing) = entries.live(key) {
                return Ok(Inserted::Held(existing.clone()));
            }
            if entries.taken(new.transaction_id) {
                return Ok(Inserted::TransactionIdTaken);
            }
            let held_open = entries.sets.get(new.open_set).map_or(0, |members| {
                members.values().filter(|owner| *owner == new.owner).count()
            });
            if held_open >= new.max_open {
                return Ok(Inserted::OwnerFull);
            }
            if entries.full(max_keys) {
                return Err(StoreUnavailable::new(
                    "insert (the memory store holds its maximum of keys)",
                    format!("{max_keys} keys"),
                ));
            }
            entries.put(key, value, keep);
            entries
                .transaction_ids
                .insert(new.transaction_id.to_owned(), key.to_owned());
            entries
                .sets
                .entry(new.open_set.to_owned())
                .or_default()
                .insert(key.to_owned(), new.owner.to_owned());
            Ok(Inserted::Claimed)
        });
        futures::future::ready(inserted).boxed()
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
        keep: Keep,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let replaced = self.if_holds(key, expected, |entries| entries.put(key, value, keep));
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

    fn lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let held = self.with(|entries| {
            let now = Instant::now();
            let free = entries
                .leases
                .get(name)
                .is_none_or(|(current, until)| current == holder || *until <= now);
            if free {
                entries
                    .leases
                    .insert(name.to_owned(), (holder.to_owned(), lapse(now, ttl)));
            }
            free
        });
        futures::future::ready(Ok(held)).boxed()
    }

    fn track<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, StoreResult<()>> {
        self.with(|entries| {
            entries
                .sets
                .entry(set.to_owned())
                .or_default()
                .insert(member.to_owned(), owner.to_owned())
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
                .is_some_and(|members| members.remove(member).is_some())
        });
        futures::future::ready(Ok(removed)).boxed()
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        let members = self.with(|entries| {
            entries
                .sets
                .get(set)
                .map(|members| members.keys().cloned().collect())
                .unwrap_or_default()
        });
        futures::future::ready(Ok(members)).boxed()
    }

    fn bind<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, StoreResult<String>> {
        let bound = self.with(|entries| {
            entries
                .bindings
                .entry(key.to_owned())
                .or_insert_with(|| value.to_owned())
                .clone()
        });
        futures::future::ready(Ok(bound)).boxed()
    }

    fn bound<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        let bound = self.with(|entries| entries.bindings.get(key).cloned());
        futures::future::ready(Ok(bound)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::new_key;

    const MINUTE: Keep = Keep::For(Duration::from_secs(60));
    const GONE: Keep = Keep::For(Duration::ZERO);

    #[tokio::test]
    async fn claims_compare_and_expire() {
        let store = MemoryStore::default();
        crate::tests::claims_compare_and_swap(&store).await;
        let expired = store.insert_new("k", "d", GONE, new_key("t-k1"));
        assert_eq!(expired.await.unwrap(), Inserted::Claimed);
        let again = store.insert_new("k", "e", MINUTE, new_key("t-k2"));
        assert_eq!(
            again.await.unwrap(),
            Inserted::Claimed,
            "expired entries are gone"
        );
        let reused = store.insert_new("j", "e", MINUTE, new_key("t-k2"));
        assert_eq!(reused.await.unwrap(), Inserted::TransactionIdTaken);
        assert!(store.remove("k", "e").await.unwrap());
        let freed = store.insert_new("j", "e", MINUTE, new_key("t-k2"));
        assert_eq!(
            freed.await.unwrap(),
            Inserted::Claimed,
            "a transaction id is held as long as its key's record"
        );
    }

    #[tokio::test]
    async fn a_full_store_refuses_new_keys_and_keeps_serving_known_ones() {
        let store = MemoryStore::with_capacity(2);
        let claim = async |key: &str, tx: &str| {
            store
                .insert_new(key, "1", Keep::UntilSettled, new_key(tx))
                .await
        };
        assert_eq!(claim("a", "ta").await.unwrap(), Inserted::Claimed);
        assert_eq!(claim("b", "tb").await.unwrap(), Inserted::Claimed);
        assert!(claim("c", "tc").await.is_err(), "full");
        assert_eq!(
            claim("a", "td").await.unwrap(),
            Inserted::Held("1".to_owned())
        );
        assert!(store.replace("a", "1", "done", MINUTE).await.unwrap());
        let short = MemoryStore::with_capacity(1);
        let expired = short.insert_new("x", "1", GONE, new_key("tx"));
        assert_eq!(expired.await.unwrap(), Inserted::Claimed);
        let room = short.insert_new("y", "1", MINUTE, new_key("ty"));
        assert_eq!(
            room.await.unwrap(),
            Inserted::Claimed,
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
