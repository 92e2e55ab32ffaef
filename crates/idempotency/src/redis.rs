//! The Redis idempotency store, shared by every replica: a claim is one atomic
//! `SET NX GET PX` (Redis 7+), compare-and-swap, compare-and-delete and the seeded counter
//! are Lua scripts; the set of open keys is a Redis set.

use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use pasarela_redis::Redis;
use redis::{RedisError, Script};

use super::config::IdempotencyConfig;

use super::{Store, StoreResult, StoreUnavailable};

const REPLACE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0";

const REMOVE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// KEYS: the set, the record. ARGV: the member, whether a value is expected, the value.
const UNTRACK_IF: &str = r"
local value = redis.call('GET', KEYS[2])
if (ARGV[2] == '0' and value == false) or (ARGV[2] == '1' and value == ARGV[3]) then
  return redis.call('SREM', KEYS[1], ARGV[1])
end
return 0";

/// A counter Redis lost (or never had) starts from the caller's seed, not from zero.
const RESERVE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[2])
end
return redis.call('INCRBY', KEYS[1], ARGV[1])";

pub struct RedisStore {
    redis: Redis,
    /// Replicas that must hold each write before it counts (`WAIT`): a primary lost in a
    /// failover cannot take an acknowledged claim with it.
    replicas: u32,
    replace: Script,
    remove: Script,
    reserve: Script,
    untrack_if: Script,
}

impl RedisStore {
    /// Connects now, so that a wrong URL, CA or password stops the start instead of the
    /// first charge, and refuses a Redis that may evict records unless it is allowed to.
    pub async fn connect(config: &IdempotencyConfig) -> anyhow::Result<Self> {
        let redis = Redis::connect(config.redis_url()?, config.tls.as_ref(), "idempotency").await?;
        redis.check_durable(config.allow_eviction).await?;
        Ok(Self {
            redis,
            replicas: config.replicas,
            replace: Script::new(REPLACE),
            remove: Script::new(REMOVE),
            reserve: Script::new(RESERVE),
            untrack_if: Script::new(UNTRACK_IF),
        })
    }
}

/// Longest wait for replicas to acknowledge a write.
const REPLICATION_TIMEOUT_MS: u64 = 1_000;

/// Longest one store operation may take, reconnection included: a call waiting on a dead
/// primary fails closed instead of hanging until the client gives up.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

impl RedisStore {
    fn bounded<'a, T: Send + 'a>(
        &'a self,
        work: impl Future<Output = StoreResult<T>> + Send + 'a,
    ) -> BoxFuture<'a, StoreResult<T>> {
        async move {
            tokio::time::timeout(OPERATION_TIMEOUT, work)
                .await
                .unwrap_or_else(|_| {
                    let error =
                        RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
                    Err(self.unavailable("timed out", error))
                })
        }
        .boxed()
    }

    /// Waits until `replicas` replicas hold this connection's writes; fewer in time fails
    /// the operation (a claim not replicated must not lead to a payment).
    async fn replicated(
        &self,
        connection: &mut redis::aio::ConnectionManager,
        operation: &'static str,
    ) -> StoreResult<()> {
        if self.replicas == 0 {
            return Ok(());
        }
        let acknowledged: u32 = redis::cmd("WAIT")
            .arg(self.replicas)
            .arg(REPLICATION_TIMEOUT_MS)
            .query_async(connection)
            .await
            .map_err(|error| self.unavailable(operation, error))?;
        if acknowledged < self.replicas {
            return Err(StoreUnavailable::new(
                operation,
                NotReplicated {
                    acknowledged,
                    wanted: self.replicas,
                },
            ));
        }
        Ok(())
    }

    /// A failed command: the store is unavailable for this call, and a Sentinel-named
    /// primary is looked for again.
    fn unavailable(&self, operation: &'static str, error: RedisError) -> StoreUnavailable {
        self.redis.failed(&error);
        StoreUnavailable::new(operation, error)
    }
}

/// A write fewer replicas hold than configured.
#[derive(Debug, thiserror::Error)]
#[error("{acknowledged} of {wanted} replicas acknowledged the write in time")]
struct NotReplicated {
    acknowledged: u32,
    wanted: u32,
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store for RedisStore {
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<Option<String>>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let existing: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("SET NX GET", error))?;
            if existing.is_none() {
                self.replicated(&mut connection, "SET NX GET").await?;
            }
            Ok(existing)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let value: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("GET", error))?;
            Ok(value)
        })
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let replaced: i64 = self
                .replace
                .key(key)
                .arg(expected)
                .arg(value)
                .arg(millis(ttl))
                .invoke_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("compare-and-set", error))?;
            if replaced == 1 {
                self.replicated(&mut connection, "compare-and-set").await?;
            }
            Ok(replaced == 1)
        })
    }

    fn remove<'a>(&'a self, key: &'a str, expected: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let removed: i64 = self
                .remove
                .key(key)
                .arg(expected)
                .invoke_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("compare-and-delete", error))?;
            if removed == 1 {
                self.replicated(&mut connection, "compare-and-delete")
                    .await?;
            }
            Ok(removed == 1)
        })
    }

    fn reserve<'a>(
        &'a self,
        key: &'a str,
        count: u64,
        seed: u64,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            // Redis integers are signed 64-bit: callers' counters stay far below that.
            let last: u64 = self
                .reserve
                .key(key)
                .arg(count)
                .arg(seed)
                .invoke_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("reserve", error))?;
            self.replicated(&mut connection, "reserve").await?;
            Ok(last - count + 1)
        })
    }

    fn track<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let _: i64 = redis::cmd("SADD")
                .arg(set)
                .arg(member)
                .query_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("SADD", error))?;
            self.replicated(&mut connection, "SADD").await?;
            Ok(())
        })
    }

    fn untrack<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let _: i64 = redis::cmd("SREM")
                .arg(set)
                .arg(member)
                .query_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("SREM", error))?;
            Ok(())
        })
    }

    fn untrack_if<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        key: &'a str,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let removed: i64 = self
                .untrack_if
                .key(set)
                .key(key)
                .arg(member)
                .arg(if expected.is_some() { "1" } else { "0" })
                .arg(expected.unwrap_or_default())
                .invoke_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("compare-and-untrack", error))?;
            Ok(removed == 1)
        })
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        let mut connection = self.redis.connection();
        self.bounded(async move {
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(set)
                .query_async(&mut connection)
                .await
                .map_err(|error| self.unavailable("SMEMBERS", error))?;
            Ok(members)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::StoreKind;
    use pasarela_test_support::redis_server::TestRedis;

    fn redis_config(url: &str) -> IdempotencyConfig {
        IdempotencyConfig {
            store: StoreKind::Redis,
            url: Some(url.to_owned().into()),
            ..IdempotencyConfig::default()
        }
    }

    #[tokio::test]
    async fn claims_compare_and_expire_in_redis() {
        let redis = TestRedis::start().await;
        let store = RedisStore::connect(&redis_config(&redis.url))
            .await
            .unwrap();
        crate::tests::claims_compare_and_swap(&store).await;
        let ttl = Duration::from_secs(60);
        assert_eq!(store.insert_new("k", "d", ttl).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_of_many_concurrent_claims_wins() {
        let redis = TestRedis::start().await;
        let store = Arc::new(
            RedisStore::connect(&redis_config(&redis.url))
                .await
                .unwrap(),
        );
        let claims: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let value = format!("claim-{i}");
                    store
                        .insert_new("race", &value, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .is_none()
                })
            })
            .collect();
        let mut winners = 0;
        for claim in claims {
            winners += usize::from(claim.await.unwrap());
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_clients_of_one_redis_never_reserve_the_same_number() {
        let redis = TestRedis::start().await;
        let config = redis_config(&redis.url);
        let stores = [
            Arc::new(RedisStore::connect(&config).await.unwrap()),
            Arc::new(RedisStore::connect(&config).await.unwrap()),
        ];
        let reservations: Vec<_> = (0..40)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                tokio::spawn(async move { store.reserve("seq", 5, 1_000).await.unwrap() })
            })
            .collect();
        let mut numbers = std::collections::HashSet::new();
        for reservation in reservations {
            let first = reservation.await.unwrap();
            assert!(first > 1_000, "the seed starts the counter");
            for n in first..first + 5 {
                assert!(numbers.insert(n), "{n} reserved twice");
            }
        }
        assert_eq!(numbers.len(), 200);
    }
}
