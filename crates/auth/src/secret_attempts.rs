//! Checks of one holder's secret (a customer's PIN, OTP or password, a bureau member's
//! password) counted across every caller: the per-principal limits stop one caller
//! guessing, these stop forty callers guessing the same customer together. Holders are
//! named by an HMAC, so buckets in memory or Redis never hold a customer id.

use std::sync::Arc;

use pasarela_provider::{Credential, Keyring};
use ring::hmac;

use crate::config::{Config, RateLimit};
use crate::rate_limit::RateLimiter;
use crate::rejection::{Reason, Rejection};
use crate::shared_buckets::SharedBuckets;

/// The `group` of a refusal because a holder's secret was checked too often.
pub const SECRET_ATTEMPTS: &str = "secret-attempts";

/// Bytes of the HMAC kept in a bucket's name: 128 bits, no collision between holders.
const HOLDER_NAME_BYTES: usize = 16;

/// Shared by every service of the process; cheap to clone.
#[derive(Clone)]
pub struct SecretAttempts {
    inner: Arc<Inner>,
}

struct Inner {
    limiter: RateLimiter,
    /// The holder key's keyring: a rotation keeps counting under the replaced key for
    /// `auth.key_overlap`, so that it resets no customer's budget.
    keys: Keyring<hmac::Key>,
}

impl SecretAttempts {
    /// Budgets counted in this process alone, for a service run without the auth layer
    /// (a test, an embedding); the layer's own share its Redis.
    pub fn local(config: &Config) -> anyhow::Result<Self> {
        Self::new(config, None)
    }

    pub(crate) fn new(config: &Config, shared: Option<SharedBuckets>) -> anyhow::Result<Self> {
        let credential = match &config.holder_key {
            Some(key) => key.clone(),
            None => {
                let random: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())
                    .map_err(|_| anyhow::anyhow!("no randomness for the holder key"))?
                    .expose();
                Credential::fixed(hex::encode(random))
            }
        };
        let keys = Keyring::new(
            credential,
            config.key_overlap,
            crate::config::MIN_KEY_BYTES,
            |key| hmac::Key::new(hmac::HMAC_SHA256, key),
            "auth.holder_key",
        )?;
        let budget = &config.secret_attempts;
        let group = RateLimit {
            name: SECRET_ATTEMPTS.to_owned(),
            methods: vec!["*".to_owned()],
            per_second: budget.per_second,
            burst: budget.burst,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(&[group], shared),
                keys,
            }),
        })
    }

    /// Counts one check of the secret `holder` owns at `provider` (a document type and
    /// number, a member code); past the holder's budget the call is refused with
    /// `RESOURCE_EXHAUSTED` (`RATE_LIMITED`, group `secret-attempts`) and nothing is sent.
    /// The holder is counted under each key of the keyring: while a replaced key
    /// overlaps, its bucket keeps the attempts made before the rotation.
    pub async fn check(&self, provider: &str, holder: &str) -> Result<(), tonic::Status> {
        let keys = self.inner.keys.keys();
        for key in &keys.verifying {
            let name = holder_name(key, provider, holder);
            self.inner
                .limiter
                .check_first(&name)
                .await
                .map_err(|exceeded| {
                    Rejection::new(Reason::RateLimited)
                        .with("group", exceeded.group)
                        .retry_after(exceeded.retry_after)
                        .into_status()
                })?;
        }
        Ok(())
    }
}

fn holder_name(key: &hmac::Key, provider: &str, holder: &str) -> String {
    let mut context = hmac::Context::with_key(key);
    context.update(provider.as_bytes());
    context.update(&[0]);
    context.update(holder.as_bytes());
    hex::encode(&context.sign().as_ref()[..HOLDER_NAME_BYTES])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Budget;

    fn attempts(burst: u32) -> SecretAttempts {
        let config = Config {
            secret_attempts: Budget {
                per_second: 0.01,
                burst,
            },
            ..Config::default()
        };
        SecretAttempts::new(&config, None).unwrap()
    }

    impl SecretAttempts {
        fn holder_name(&self, provider: &str, holder: &str) -> String {
            holder_name(&self.inner.keys.keys().signing, provider, holder)
        }
    }

    #[tokio::test]
    async fn a_rotated_holder_key_keeps_the_budget_spent_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("holder-key");
        std::fs::write(&file, "the first holder key, 32 bytes or more\n").unwrap();
        let key = Credential::from_file(file.clone()).unwrap();
        let config = |overlap| Config {
            secret_attempts: Budget {
                per_second: 0.01,
                burst: 2,
            },
            holder_key: Some(key.clone()),
            key_overlap: overlap,
            ..Config::default()
        };
        let overlapping = SecretAttempts::new(&config(Duration::from_secs(3600)), None).unwrap();
        let forgetful = SecretAttempts::new(&config(Duration::ZERO), None).unwrap();
        for attempts in [&overlapping, &forgetful] {
            attempts.check("bcs", "CC:1").await.unwrap();
            attempts.check("bcs", "CC:1").await.unwrap();
        }
        let before = overlapping.holder_name("bcs", "CC:1");

        std::fs::write(&file, "the second holder key, 32 bytes or more\n").unwrap();
        key.look_again();
        assert_ne!(overlapping.holder_name("bcs", "CC:1"), before, "renamed");
        let refused = overlapping.check("bcs", "CC:1").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        forgetful
            .check("bcs", "CC:1")
            .await
            .expect("without an overlap the rotation gave the holder a new budget");
    }

    #[tokio::test]
    async fn a_holder_is_refused_past_its_budget_and_others_are_not() {
        let attempts = attempts(2);
        for _ in 0..2 {
            attempts.check("bcs", "CC:1").await.unwrap();
        }
        let refused = attempts.check("bcs", "CC:1").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        attempts.check("bcs", "CC:2").await.unwrap();
        attempts.check("kiban", "CC:1").await.unwrap();
    }

    #[test]
    fn holders_are_named_by_a_keyed_hash() {
        let (one, other) = (attempts(1), attempts(1));
        let name = one.holder_name("bcs", "CC:1");
        assert_eq!(name.len(), HOLDER_NAME_BYTES * 2);
        assert_ne!(name, other.holder_name("bcs", "CC:1"), "random keys differ");
        assert_ne!(name, one.holder_name("bcs", "CC:2"));
        assert_ne!(
            one.holder_name("bc", "sCC:1"),
            name,
            "provider and holder apart"
        );
    }
}
