//! A provider's OAuth2 client-credentials token: cached until shortly before it expires
//! and renewed by exactly one request however many calls wait for it (single flight); a
//! token the provider refuses is dropped so that the next call fetches a new one, and a
//! flight that fails, even by a panic, leaves the next call free to fetch again. Also the
//! reading of a token answer (RFC 6749, 5.1), which every provider words alike.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tonic::Code;

use crate::{Delivery, ProviderError, reasons};

/// An access token and when to stop using it.
#[derive(Debug)]
pub struct Token {
    pub value: SecretString,
    renew_at: Instant,
}

impl Token {
    /// A token valid for `lifetime` from now; see [`usable_for`].
    pub fn new(value: SecretString, lifetime: Duration, margin: Duration) -> Self {
        let now = Instant::now();
        Self {
            value,
            // A lifetime past what the clock can hold is no lifetime: renewed at once.
            renew_at: now.checked_add(usable_for(lifetime, margin)).unwrap_or(now),
        }
    }

    fn is_fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

/// How long a token of `lifetime` is used: renewed `margin` early, but never more than a
/// fifth of its lifetime early, so that short-lived tokens are still used.
fn usable_for(lifetime: Duration, margin: Duration) -> Duration {
    lifetime.saturating_sub(margin.min(lifetime / 5))
}

type Flight = Shared<BoxFuture<'static, Result<Arc<Token>, ProviderError>>>;

#[derive(Default)]
struct State {
    token: Option<Arc<Token>>,
    /// The token request under way, shared by every caller waiting for it.
    flight: Option<Flight>,
}

pub struct TokenCache {
    state: Mutex<State>,
    /// The provider's domain, in the errors of a failed flight.
    domain: &'static str,
}

impl TokenCache {
    pub fn new(domain: &'static str) -> Self {
        Self {
            state: Mutex::default(),
            domain,
        }
    }

    /// A fresh token: the cached one, the one being fetched, or one fetched by `fetch` now.
    pub async fn get<F>(&self, fetch: F) -> Result<Arc<Token>, ProviderError>
    where
        F: FnOnce() -> BoxFuture<'static, Result<Token, ProviderError>>,
    {
        let flight = {
            let mut state = self.lock();
            if let Some(token) = state.token.as_ref().filter(|t| t.is_fresh()) {
                return Ok(Arc::clone(token));
            }
            state
                .flight
                .get_or_insert_with(|| {
                    let domain = self.domain;
                    AssertUnwindSafe(fetch())
                        .catch_unwind()
                        .map(move |fetched| match fetched {
                            Ok(result) => result.map(Arc::new),
                            Err(_) => Err(flight_panicked(domain)),
                        })
                        .boxed()
                        .shared()
                })
                .clone()
        };
        let result = flight.clone().await;
        let mut state = self.lock();
        if state.flight.as_ref().is_some_and(|f| f.ptr_eq(&flight)) {
            state.flight = None;
            if let Ok(token) = &result {
                state.token = Some(Arc::clone(token));
            }
        }
        result
    }

    /// Drops `stale` if it is still the cached token (not one renewed meanwhile).
    pub fn invalidate(&self, stale: &Arc<Token>) {
        let mut state = self.lock();
        if state.token.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            state.token = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two options replaced whole: a panic elsewhere cannot tear it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A token request that panicked: every waiter is told, and the next call fetches anew.
fn flight_panicked(domain: &'static str) -> ProviderError {
    tracing::error!(
        provider = domain,
        "a token request panicked; the next call asks again"
    );
    ProviderError::new(Code::Unavailable, reasons::PROVIDER_BAD_RESPONSE, domain)
        .message("the provider's access token could not be obtained")
        .delivery(Delivery::NotSent)
}

/// The longest lifetime a token answer is believed for: providers document minutes (D0:
/// 900 s); a gateway's larger (or absurd) `expires_in` is cut here, so that no clock
/// arithmetic can overflow and a token is renewed at least daily.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A successful token answer's body.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<SecretString>,
    /// Seconds; some gateways send it as a string.
    expires_in: Option<serde_json::Value>,
}

/// The token a successful answer of `domain`'s token endpoint carries, renewed `margin`
/// before it expires ([`Token::new`]); an answer without a token or a lifetime is the
/// provider's fault, and so nothing was sent under it.
pub fn read_answer(
    body: &[u8],
    domain: &'static str,
    margin: Duration,
) -> Result<Token, ProviderError> {
    let bad = |why: &str| {
        ProviderError::new(Code::Unavailable, reasons::PROVIDER_BAD_RESPONSE, domain)
            .message(why)
            .delivery(Delivery::NotSent)
    };
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|_| bad("the token answer is not JSON"))?;
    let value = answer
        .access_token
        .filter(|t| !t.expose_secret().is_empty())
        .ok_or_else(|| bad("the token answer has no access_token"))?;
    let lifetime = answer
        .expires_in
        .as_ref()
        .and_then(seconds)
        .ok_or_else(|| bad("the token answer has no expires_in"))?;
    tracing::info!(
        provider = domain,
        expires_in = lifetime.as_secs(),
        "access token issued"
    );
    Ok(Token::new(value, lifetime, margin))
}

fn seconds(value: &serde_json::Value) -> Option<Duration> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .map(|secs| Duration::from_secs(secs).min(MAX_TOKEN_LIFETIME))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counting_fetch(
        count: &Arc<AtomicUsize>,
        lifetime: Duration,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<Token, ProviderError>> + use<> {
        let count = Arc::clone(count);
        move || {
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(Token::new(
                    format!("token-{n}").into(),
                    lifetime,
                    Duration::ZERO,
                ))
            }
            .boxed()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_waiters_cause_one_fetch() {
        let cache = Arc::new(TokenCache::new("provider.example"));
        let count = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..200)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let fetch = counting_fetch(&count, Duration::from_secs(900));
                tokio::spawn(async move { cache.get(fetch).await.map(|_| ()) })
            })
            .collect();
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidation_forces_one_new_fetch() {
        let cache = TokenCache::new("provider.example");
        let count = Arc::new(AtomicUsize::new(0));
        let first = cache
            .get(counting_fetch(&count, Duration::from_secs(900)))
            .await
            .unwrap();
        let again = cache
            .get(counting_fetch(&count, Duration::from_secs(900)))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        cache.invalidate(&first);
        let renewed = cache
            .get(counting_fetch(&count, Duration::from_secs(900)))
            .await
            .unwrap();
        cache.invalidate(&first);
        let kept = cache
            .get(counting_fetch(&count, Duration::from_secs(900)))
            .await
            .unwrap();
        assert!(
            Arc::ptr_eq(&renewed, &kept),
            "a stale invalidation keeps the new token"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_expired_token_is_renewed() {
        let cache = TokenCache::new("provider.example");
        let count = Arc::new(AtomicUsize::new(0));
        cache
            .get(counting_fetch(&count, Duration::ZERO))
            .await
            .unwrap();
        cache
            .get(counting_fetch(&count, Duration::ZERO))
            .await
            .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_panicking_flight_never_poisons_later_calls() {
        let cache = TokenCache::new("provider.example");
        let failed = cache
            .get(|| async { panic!("a token answer no clock can hold") }.boxed())
            .await
            .expect_err("the panic is an error");
        assert_eq!(failed.reason, reasons::PROVIDER_BAD_RESPONSE);
        let count = Arc::new(AtomicUsize::new(0));
        cache
            .get(counting_fetch(&count, Duration::from_secs(900)))
            .await
            .expect("the next call fetches afresh");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_lifetime_past_the_clock_is_renewed_at_once() {
        let token = Token::new("t".to_owned().into(), Duration::MAX, Duration::ZERO);
        assert!(!token.is_fresh());
    }

    #[test]
    fn answers_are_read_and_their_lifetime_capped() {
        let token = read_answer(
            br#"{"access_token":"abc","expires_in":"900"}"#,
            "provider.example",
            Duration::ZERO,
        )
        .expect("a token");
        assert_eq!(token.value.expose_secret(), "abc");
        assert!(token.is_fresh());
        let capped = read_answer(
            br#"{"access_token":"abc","expires_in":18446744073709551615}"#,
            "provider.example",
            Duration::ZERO,
        )
        .expect("a token");
        assert!(capped.is_fresh(), "cut to a day, not past the clock");
        for bad in [
            &b"not json"[..],
            br#"{"expires_in":900}"#,
            br#"{"access_token":"abc"}"#,
        ] {
            let error = read_answer(bad, "provider.example", Duration::ZERO).unwrap_err();
            assert_eq!(error.reason, reasons::PROVIDER_BAD_RESPONSE);
        }
    }

    #[test]
    fn renewal_margin_is_bounded_by_the_lifetime() {
        let secs = Duration::from_secs;
        assert_eq!(usable_for(secs(900), secs(60)), secs(840));
        assert_eq!(usable_for(secs(10), secs(60)), secs(8));
        assert_eq!(usable_for(secs(0), secs(60)), secs(0));
    }
}
