//! Checks of one holder's secret (a customer's PIN, OTP or password, a bureau member's
//! password) counted across every caller: the per-principal limits stop one caller
//! guessing, these stop forty callers guessing the same customer together. Holders are
//! named by an HMAC, so buckets in memory or Redis never hold a customer id.

use std::sync::Arc;

use ring::hmac;
use secrecy::ExposeSecret as _;

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
    key: hmac::Key,
}

impl SecretAttempts {
    /// Budgets counted in this process alone, for a service run without the auth layer
    /// (a test, an embedding); the layer's own share its Redis.
    pub fn local(config: &Config) -> anyhow::Result<Self> {
        Self::new(config, None)
    }

    pub(crate) fn new(config: &Config, shared: Option<SharedBuckets>) -> anyhow::Result<Self> {
        let key = match &config.holder_key {
            Some(key) => hmac::Key::new(hmac::HMAC_SHA256, key.expose_secret().as_bytes()),
            None => hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("no randomness for the holder key"))?,
        };
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
                key,
            }),
        })
    }

    /// Counts one check of the secret `holder` owns at `provider` (a document type and
    /// number, a member code); past the holder's budget the call is refused with
    /// `RESOURCE_EXHAUSTED` (`RATE_LIMITED`, group `secret-attempts`) and nothing is sent.
    pub async fn check(&self, provider: &str, holder: &str) -> Result<(), tonic::Status> {
        let name = self.holder_name(provider, holder);
        self.inner
            .limiter
            .check_first(&name)
            .await
            .map_err(|exceeded| {
                Rejection::new(Reason::RateLimited)
                    .with("group", exceeded.group)
                    .retry_after(exceeded.retry_after)
                    .into_status()
            })
    }

    fn holder_name(&self, provider: &str, holder: &str) -> String {
        let mut context = hmac::Context::with_key(&self.inner.key);
        context.update(provider.as_bytes());
        context.update(&[0]);
        context.update(holder.as_bytes());
        hex::encode(&context.sign().as_ref()[..HOLDER_NAME_BYTES])
    }
}

#[cfg(test)]
mod tests {
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
