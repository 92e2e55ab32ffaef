//! Rate-limit buckets in Redis, shared by every replica: the same GCRA as the in-process
//! limiter, run atomically in a script on Redis's clock (replicas' clocks may disagree).

use std::time::Duration;

use anyhow::Context as _;
use pasarela_redis::{Redis, RedisTls};
use redis::Script;
use secrecy::SecretString;

/// Longest a call waits for Redis before it is counted in this process instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(100);

/// KEYS[1]: the bucket; ARGV[1]: the cost of one call, ARGV[2]: the burst tolerance (µs).
/// Returns 0 when the call is admitted, else the µs to wait.
const TAKE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait > 0 then return wait end
local next = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], next, 'PX', math.ceil((next - now) / 1000) + 1)
return 0";

#[derive(Clone)]
pub struct SharedBuckets {
    redis: Redis,
    take: Script,
}

impl SharedBuckets {
    /// Connects now, so that a wrong URL, CA or password stops the start instead of the
    /// first call. Buckets may be evicted: a forgotten bucket only refills early.
    pub async fn connect(url: &SecretString, tls: Option<&RedisTls>) -> anyhow::Result<Self> {
        Ok(Self {
            redis: Redis::connect(url, tls, "rate-limit").await?,
            take: Script::new(TAKE),
        })
    }

    /// Takes one call from `bucket`: `None` when admitted, else how long to wait.
    pub async fn take(
        &self,
        bucket: &str,
        interval: Duration,
        tolerance: Duration,
    ) -> anyhow::Result<Option<Duration>> {
        let mut connection = self.redis.connection();
        let mut invocation = self.take.key(bucket);
        invocation
            .arg(micros(interval).max(1))
            .arg(micros(tolerance));
        let invocation = invocation.invoke_async::<u64>(&mut connection);
        let wait = tokio::time::timeout(REDIS_TIMEOUT, invocation)
            .await
            .context("rate-limit redis timed out")?
            .inspect_err(|error| self.redis.failed(error))
            .context("rate-limit script")?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
