//! The `idempotency` section every idempotent service's configuration carries, and the
//! store it names.

use std::sync::Arc;
use std::time::Duration;

use pasarela_provider::Credential;
use serde::Deserialize;

use super::{MemoryStore, PostgresConfig, PostgresStore, Seal, Store};

/// Which idempotency store to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In the process: correct for one replica only.
    #[default]
    Memory,
    /// The PostgreSQL ledger every replica shares.
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    pub store: StoreKind,
    /// Where the ledger is, with `store = "postgres"`.
    pub postgres: PostgresConfig,
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
    /// Most keys one caller may hold open (calls running, outcomes unknown); past it a new
    /// key is refused `RESOURCE_EXHAUSTED` `OPEN_KEYS_EXHAUSTED`, nothing sent, while other
    /// callers go on.
    pub max_open_per_caller: usize,
    /// Secret of the HMACs that seal each record to its key and key the request
    /// fingerprints, at least 32 bytes, the same for every replica (a mounted Secret:
    /// `*_RECORD_KEY_FROM_FILE`, read again when it changes). One key per line: the first
    /// seals, every one opens. Required with `store = "postgres"`; the memory store draws
    /// a random one.
    pub record_key: Option<Credential>,
    /// How long a key removed from `record_key` still opens records and matches
    /// fingerprints; unset, `ttl` (a completed record lives that long).
    #[serde(with = "humantime_serde")]
    pub record_key_overlap: Option<Duration>,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            postgres: PostgresConfig::default(),
            ttl: Duration::from_secs(24 * 60 * 60),
            lease: None,
            max_keys: super::memory::DEFAULT_MAX_KEYS,
            max_open_per_caller: super::DEFAULT_MAX_OPEN_PER_CALLER,
            record_key: None,
            record_key_overlap: None,
        }
    }
}

impl IdempotencyConfig {
    /// The configured lease, or three times `ceiling` (a token wait plus the call). A lease
    /// no longer than the call could let a repeat take over a claim still in flight.
    pub fn lease_or(&self, ceiling: Duration) -> anyhow::Result<Duration> {
        let lease = self.lease.unwrap_or(ceiling.saturating_mul(3));
        anyhow::ensure!(
            lease > ceiling,
            "idempotency.lease ({lease:?}) must be longer than the provider's deadline ceiling \
             ({ceiling:?}): a shorter one lets a retry take over a call still running"
        );
        Ok(lease)
    }

    /// The seal of this store's records: from `record_key`, which a shared store needs
    /// (replicas must open each other's records, and a writer of the database must not be
    /// able to forge one).
    pub fn seal(&self) -> anyhow::Result<Seal> {
        match (&self.record_key, self.store) {
            (Some(key), _) => Seal::new(key.clone(), self.record_key_overlap.unwrap_or(self.ttl)),
            (None, StoreKind::Memory) => Seal::random(),
            (None, StoreKind::Postgres) => anyhow::bail!(
                "idempotency.record_key is required with idempotency.store = \"postgres\": \
                 records are sealed with it, so that one forged in the database is never replayed"
            ),
        }
    }
}

/// Opens the configured store; the database is connected now, so that a wrong URL stops
/// the start instead of the first call.
pub async fn open_store(config: &IdempotencyConfig) -> anyhow::Result<Arc<dyn Store>> {
    anyhow::ensure!(
        config.max_open_per_caller > 0,
        "idempotency.max_open_per_caller must be at least 1: 0 would refuse every call"
    );
    Ok(match config.store {
        StoreKind::Memory => Arc::new(MemoryStore::with_capacity(config.max_keys)),
        StoreKind::Postgres => Arc::new(PostgresStore::connect(&config.postgres).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_store_needs_its_record_key() {
        let shared = IdempotencyConfig {
            store: StoreKind::Postgres,
            ..IdempotencyConfig::default()
        };
        let error = shared.seal().err().expect("refused").to_string();
        assert!(
            error.contains("idempotency.record_key is required"),
            "{error}"
        );
        let short = IdempotencyConfig {
            record_key: Some("short".into()),
            ..shared.clone()
        };
        assert!(short.seal().is_err());
        let keyed = IdempotencyConfig {
            record_key: Some("a record key every replica shares".into()),
            ..shared
        };
        keyed.seal().expect("a seal");
        IdempotencyConfig::default()
            .seal()
            .expect("memory draws its own");
    }
}
