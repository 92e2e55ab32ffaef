//! The Redis idempotency store, shared by every replica: a claim is one atomic
//! `SET NX GET PX` (Redis 7+), compare-and-swap and compare-and-delete are Lua scripts.

use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::{Client, Script};
use secrecy::{ExposeSecret as _, SecretString};

use super::Store;

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

pub struct RedisStore {
    connection: ConnectionManager,
    replace: Script,
    remove: Script,
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
    ) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
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
                .context("SET NX GET")?;
            Ok(existing)
        }
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
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
                .context("compare-and-set")?;
            Ok(replaced == 1)
        }
        .boxed()
    }

    fn remove<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        let mut connection = self.connection.clone();
        async move {
            let removed: i64 = self
                .remove
                .key(key)
                .arg(expected)
                .invoke_async(&mut connection)
                .await
                .context("compare-and-delete")?;
            Ok(removed == 1)
        }
        .boxed()
    }
}
