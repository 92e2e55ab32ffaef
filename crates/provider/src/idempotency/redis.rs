//! The Redis idempotency store, shared by every replica: a claim is one atomic
//! `SET NX GET PX` (Redis 7+), compare-and-swap, compare-and-delete and the seeded counter
//! are Lua scripts; the set of open keys is a Redis set.

use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::{Client, Script};
use secrecy::{ExposeSecret as _, SecretString};

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
    connection: ConnectionManager,
    replace: Script,
    remove: Script,
    reserve: Script,
    untrack_if: Script,
}

impl RedisStore {
    /// Connects now, so that a wrong URL stops the start instead of the first charge.
    pub async fn connect(url: &SecretString) -> anyhow::Result<Self> {
        // The URL may carry a password: it never goes into an error message.
        let client = Client::open(url.expose_secret()).context("invalid idempotency redis url")?;
        let connection = ConnectionManager::new(client)
            .await
            .context("connecting to the idempotency redis")?;
        Ok(Self {
            connection,
            replace: Script::new(REPLACE),
            remove: Script::new(REMOVE),
            reserve: Script::new(RESERVE),
            untrack_if: Script::new(UNTRACK_IF),
        })
    }
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
        let mut connection = self.connection.clone();
        async move {
            let existing: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("SET NX GET", error))?;
            Ok(existing)
        }
        .boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        let mut connection = self.connection.clone();
        async move {
            let value: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("GET", error))?;
            Ok(value)
        }
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let mut connection = self.connection.clone();
        async move {
            let replaced: i64 = self
                .replace
                .key(key)
                .arg(expected)
                .arg(value)
                .arg(millis(ttl))
                .invoke_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("compare-and-set", error))?;
            Ok(replaced == 1)
        }
        .boxed()
    }

    fn remove<'a>(&'a self, key: &'a str, expected: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        let mut connection = self.connection.clone();
        async move {
            let removed: i64 = self
                .remove
                .key(key)
                .arg(expected)
                .invoke_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("compare-and-delete", error))?;
            Ok(removed == 1)
        }
        .boxed()
    }

    fn reserve<'a>(
        &'a self,
        key: &'a str,
        count: u64,
        seed: u64,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        let mut connection = self.connection.clone();
        async move {
            // Redis integers are signed 64-bit: callers' counters stay far below that.
            let last: u64 = self
                .reserve
                .key(key)
                .arg(count)
                .arg(seed)
                .invoke_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("reserve", error))?;
            Ok(last - count + 1)
        }
        .boxed()
    }

    fn track<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let mut connection = self.connection.clone();
        async move {
            let _: i64 = redis::cmd("SADD")
                .arg(set)
                .arg(member)
                .query_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("SADD", error))?;
            Ok(())
        }
        .boxed()
    }

    fn untrack<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let mut connection = self.connection.clone();
        async move {
            let _: i64 = redis::cmd("SREM")
                .arg(set)
                .arg(member)
                .query_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("SREM", error))?;
            Ok(())
        }
        .boxed()
    }

    fn untrack_if<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        key: &'a str,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let mut connection = self.connection.clone();
        async move {
            let removed: i64 = self
                .untrack_if
                .key(set)
                .key(key)
                .arg(member)
                .arg(if expected.is_some() { "1" } else { "0" })
                .arg(expected.unwrap_or_default())
                .invoke_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("compare-and-untrack", error))?;
            Ok(removed == 1)
        }
        .boxed()
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        let mut connection = self.connection.clone();
        async move {
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(set)
                .query_async(&mut connection)
                .await
                .map_err(|error| StoreUnavailable::new("SMEMBERS", error))?;
            Ok(members)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use pasarela_test_support::redis_server::TestRedis;

    #[tokio::test]
    async fn claims_compare_and_expire_in_redis() {
        let redis = TestRedis::start().await;
        let store = RedisStore::connect(&SecretString::from(redis.url.clone()))
            .await
            .unwrap();
        crate::idempotency::tests::claims_compare_and_swap(&store).await;
        let ttl = Duration::from_secs(60);
        assert_eq!(store.insert_new("k", "d", ttl).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_of_many_concurrent_claims_wins() {
        let redis = TestRedis::start().await;
        let store = Arc::new(
            RedisStore::connect(&SecretString::from(redis.url.clone()))
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
        let url = SecretString::from(redis.url.clone());
        let stores = [
            Arc::new(RedisStore::connect(&url).await.unwrap()),
            Arc::new(RedisStore::connect(&url).await.unwrap()),
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
