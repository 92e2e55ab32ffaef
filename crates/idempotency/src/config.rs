//! The `idempotency` section every idempotent service's configuration carries, and the
//! store it names.

use std::sync::Arc;
use std::time::Duration;

use pasarela_redis::RedisTls;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::{MemoryStore, RedisStore, Seal, Store};

/// Which idempotency store to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In the process: correct for one replica only.
    #[default]
    Memory,
    /// Shared by every replica.
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    pub store: StoreKind,
    /// `redis://host:port/db`, `rediss://` (TLS) or `redis+sentinel://host:26379,.../<name>`
    /// (may carry the ACL user and password); required with `store = "redis"`.
    pub url: Option<SecretString>,
    /// The CA (and client certificate) of a `rediss://` Redis.
    pub tls: Option<RedisTls>,
    /// Replicas that must hold each claim and outcome before it counts (Redis `WAIT`):
    /// with Sentinel, 1 or more, so that a failover cannot lose an acknowledged record;
    /// fewer in time fails the call closed (`IDEMPOTENCY_STORE_UNAVAILABLE`).
    pub replicas: u32,
    /// Accepts a Redis whose `maxmemory-policy` may evict records (a forgotten record is a
    /// payment that may run twice); start-up refuses one otherwise.
    pub allow_eviction: bool,
    /// How long an outcome is kept and replayed.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How long a claim is trusted while its call runs; past it (its replica died) the
    /// outcome counts as unknown. Three times the provider's deadline ceiling when unset.
    #[serde(with = "humantime_serde")]
    pub lease: Option<Duration>,
    /// Most keys the `memory` store holds; past it new calls fail closed
    /// (`IDEMPOTENCY_STORE_UNAVAILABLE`).
    pub max_keys: usize,
    /// Secret of the HMACs that seal each record to its key and key the request
    /// fingerprints, at least 32 bytes, the same for every replica (a mounted Secret:
    /// `*_RECORD_KEY_FROM_FILE`). Required with `store = "redis"`; the memory store draws a
    /// random one.
    pub record_key: Option<SecretString>,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            url: None,
            tls: None,
            allow_eviction: false,
            replicas: 0,
            ttl: Duration::from_secs(24 * 60 * 60),
            lease: None,
            max_keys: super::memory::DEFAULT_MAX_KEYS,
            record_key: None,
        }
    }
}

impl IdempotencyConfig {
    /// The configured lease, or three times `ceiling` (a token wait plus the call). A lease
    /// no longer than the call could let a repeat take over a claim still in flight.
    pub fn lease_or(&self, ceiling: Duration) -> anyhow::Result<Duration> {
        let lease = self.lease.unwrap_or(ceiling * 3);
        anyhow::ensure!(
            lease > ceiling,
            "idempotency.lease ({lease:?}) must be longer than the provider's deadline ceiling \
             ({ceiling:?}): a shorter one lets a retry take over a call still running"
        );
        Ok(lease)
    }

    /// The seal of this store's records: from `record_key`, which a shared store needs
    /// (replicas must open each other's records, and a reader of Redis must not be able to
    /// forge one).
    pub fn seal(&self) -> anyhow::Result<Seal> {
        match (&self.record_key, self.store) {
            (Some(key), _) => Seal::new(key.expose_secret().as_bytes()),
            (None, StoreKind::Memory) => Seal::random(),
            (None, StoreKind::Redis) => anyhow::bail!(
                "idempotency.record_key is required with idempotency.store = \"redis\": \
                 records are sealed with it, so that one forged in Redis is never replayed"
            ),
        }
    }

    /// The Redis URL, required when the store is Redis.
    pub fn redis_url(&self) -> anyhow::Result<&SecretString> {
        self.url.as_ref().ok_or_else(|| {
            anyhow::anyhow!("idempotency.url is required with idempotency.store = \"redis\"")
        })
    }
}

/// Opens the configured store; Redis is connected now, so that a wrong URL stops the start
/// instead of the first call.
pub async fn open_store(config: &IdempotencyConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.store {
        StoreKind::Memory => Arc::new(MemoryStore::with_capacity(config.max_keys)),
        StoreKind::Redis => Arc::new(RedisStore::connect(config).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_store_needs_its_record_key() {
        let redis = IdempotencyConfig {
            store: StoreKind::Redis,
            ..IdempotencyConfig::default()
        };
        let error = redis.seal().err().expect("refused").to_string();
        assert!(
            error.contains("idempotency.record_key is required"),
            "{error}"
        );
        let short = IdempotencyConfig {
            record_key: Some("short".into()),
            ..redis.clone()
        };
        assert!(short.seal().is_err());
        let keyed = IdempotencyConfig {
            record_key: Some("a record key every replica shares".into()),
            ..redis
        };
        keyed.seal().expect("a seal");
        IdempotencyConfig::default()
            .seal()
            .expect("memory draws its own");
    }
}
