//! Rate-limit buckets in Redis, shared by every replica: the same GCRA as the in-process
//! limiter, run atomically in a script on Redis's clock (replicas' clocks may disagree).
//!
//! Every key starts with a prefix (`auth.rate_limit_redis_prefix`; `serve` defaults it to
//! `pasarela:<service>` for a process serving one service), so that each service's Redis
//! ACL user can be limited to its own keys (`~pasarela:<service>:*`, docs/deploy.md,
//! "Redis"): one service's credentials then cannot read or reset another's budgets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pasarela_redis::{Redis, RedisTls};
use redis::Script;
use secrecy::SecretString;

/// The key prefix of a process that names none (and serves several services, or is not a
/// server at all): what every key was before prefixes were per service.
pub const DEFAULT_PREFIX: &str = "pasarela";

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
    /// What every key of this process starts with.
    prefix: Arc<str>,
}

impl SharedBuckets {
    /// Connects now, and runs the buckets' script once on a key of `prefix`
    /// ([`DEFAULT_PREFIX`] when `None`), so that a wrong URL, CA or password, or an ACL user
    /// whose key pattern or commands do not cover the buckets, stops the start instead of
    /// every call being counted in its own replica. Buckets may be evicted: a forgotten
    /// bucket only refills early.
    pub async fn connect(
        url: &SecretString,
        tls: Option<&RedisTls>,
        prefix: Option<&str>,
    ) -> anyhow::Result<Self> {
        let prefix = prefix.unwrap_or(DEFAULT_PREFIX);
        anyhow::ensure!(
            is_plain_prefix(prefix),
            "auth: auth.rate_limit_redis_prefix must be ASCII letters, digits, '-', '_', ':' \
             and '.' only (a Redis ACL key pattern names it), got {prefix:?}"
        );
        let buckets = Self {
            redis: Redis::connect(url, tls, "rate-limit").await?,
            take: Script::new(TAKE),
            prefix: prefix.into(),
        };
        buckets.check_access().await?;
        Ok(buckets)
    }

    /// The key of `group`'s bucket for `key`: `<prefix>:rate:<group>:<key>`.
    pub fn bucket(&self, group: &str, key: &str) -> String {
        format!("{}:rate:{group}:{key}", self.prefix)
    }

    /// One take of a microsecond on `<prefix>:start-up`, which expires within milliseconds:
    /// the script's commands (EVALSHA, SCRIPT LOAD, and GET, SET, TIME inside it) on a key
    /// of the prefix, as every call will run them.
    async fn check_access(&self) -> anyhow::Result<()> {
        let mut connection = self.redis.connection();
        let mut invocation = self.take.key(format!("{}:start-up", self.prefix));
        invocation.arg(1).arg(0);
        invocation
            .invoke_async::<u64>(&mut connection)
            .await
            .with_context(|| {
                format!(
                    "rate-limit redis: the buckets' script on {}:* is refused (the ACL user \
                     needs that key pattern and +evalsha +script|load +get +set +time)",
                    self.prefix
                )
            })?;
        Ok(())
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

/// A prefix a Redis ACL key pattern (`~<prefix>:*`) matches literally: no glob characters,
/// no spaces.
fn is_plain_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_matched_literally_by_an_acl_key_pattern() {
        for good in [
            "pasarela",
            "pasarela:recurring-payments",
            "team_a.pasarela:bureau",
        ] {
            assert!(is_plain_prefix(good), "{good}");
        }
        for bad in [
            "",
            "pasarela:*",
            "pasarela:[ab]",
            "pasarela:?",
            "pasa rela",
            "p\\x",
        ] {
            assert!(!is_plain_prefix(bad), "{bad}");
        }
    }
}
