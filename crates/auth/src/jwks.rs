//! The issuer's public signing keys (a JWK set from a URL or a file), cached, re-read on a
//! schedule and when a token names a key id the cache does not know (key rotation).

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use anyhow::Context as _;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use tokio::time::Instant;

use crate::config::JwksSettings;

/// Longest wait for the issuer's key set.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest key set read; an issuer's is a few KiB.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The key set travels over TLS (a key injected on the way would sign anything), but for
/// a loopback address (a sidecar, a test).
pub(crate) fn check_url(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).context("auth.jwks.url is not a URL")?;
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback),
        "auth.jwks.url must be https (plain http only to a loopback address)"
    );
    Ok(())
}

/// One signing key of the set.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    /// The algorithm the issuer pinned the key to, when it did.
    pub algorithm: Option<KeyAlgorithm>,
}

enum Source {
    Url(reqwest::Client, String),
    File(PathBuf),
}

pub struct Jwks {
    source: Source,
    /// The keys and when they were last read successfully.
    keys: RwLock<(Arc<Vec<Key>>, Instant)>,
    max_stale: Duration,
    /// When an unknown `kid` last caused a re-read; held across the re-read so that many
    /// calls with the same new `kid` cause one request.
    unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
}

impl Jwks {
    /// Reads the key set once (a wrong URL or file fails start-up, not the first call)
    /// and re-reads it every `refresh` for as long as the returned handle lives.
    pub async fn load(settings: &JwksSettings) -> anyhow::Result<Arc<Jwks>> {
        let source = match (&settings.url, &settings.file) {
            (Some(url), _) => {
                check_url(url)?;
                Source::Url(
                    reqwest::Client::builder()
                        .timeout(FETCH_TIMEOUT)
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .context("JWKS HTTP client")?,
                    url.clone(),
                )
            }
            (None, Some(file)) => Source::File(file.clone()),
            (None, None) => anyhow::bail!("auth.jwks needs `url` or `file`"),
        };
        let keys = source.fetch().await?;
        let jwks = Arc::new(Jwks {
            source,
            keys: RwLock::new((Arc::new(keys), Instant::now())),
            max_stale: settings.max_stale,
            unknown_kid_fetch: tokio::sync::Mutex::new(None),
            cooldown: settings.unknown_kid_cooldown,
        });
        tokio::spawn(refresh_every(Arc::downgrade(&jwks), settings.refresh));
        Ok(jwks)
    }

    /// The key a token names; on an unknown `kid` the set is re-read (at most once per
    /// cooldown) before giving up. A token without `kid` is accepted only when the set
    /// holds a single key.
    pub async fn key(&self, kid: Option<&str>) -> Option<Key> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let kid = kid?;
        let mut last = self.unknown_kid_fetch.lock().await;
        if let Some(key) = self.cached(Some(kid)) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.cooldown) {
            return None;
        }
        *last = Some(Instant::now());
        tracing::info!(kid, "unknown signing key id; re-reading the JWKS");
        self.refresh().await;
        self.cached(Some(kid))
    }

    fn cached(&self, kid: Option<&str>) -> Option<Key> {
        let (keys, read_at) = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        if read_at.elapsed() > self.max_stale {
            tracing::warn!(
                "the JWKS has not been read for longer than auth.jwks.max_stale; no key is trusted"
            );
            return None;
        }
        match kid {
            Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned(),
            None if keys.len() == 1 => keys.first().cloned(),
            None => None,
        }
    }

    /// Re-reads the set; on failure the keys already known stay in use.
    async fn refresh(&self) {
        match self.source.fetch().await {
            Ok(keys) => {
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) =
                    (Arc::new(keys), Instant::now());
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "JWKS refresh failed; keeping the cached keys")
            }
        }
    }
}

async fn refresh_every(jwks: Weak<Jwks>, period: Duration) {
    let mut ticks = pasarela_provider::deadline::ticks_after(period);
    loop {
        ticks.tick().await;
        let Some(jwks) = jwks.upgrade() else { return };
        jwks.refresh().await;
    }
}

impl Source {
    async fn fetch(&self) -> anyhow::Result<Vec<Key>> {
        let set: JwkSet = match self {
            Source::Url(client, url) => {
                let mut response = client
                    .get(url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .with_context(|| format!("fetching JWKS from {url}"))?;
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .with_context(|| format!("reading JWKS from {url}"))?
                {
                    anyhow::ensure!(
                        body.len() + chunk.len() <= MAX_JWKS_BYTES,
                        "the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes"
                    );
                    body.extend_from_slice(&chunk);
                }
                serde_json::from_slice(&body)
                    .with_context(|| format!("JWKS at {url} is not a JWK set"))?
            }
            Source::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .with_context(|| format!("reading JWKS file {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("JWKS file {} is not a JWK set", path.display()))?
            }
        };
        let keys = signing_keys(&set);
        // An empty set is a broken issuer answer, not a revocation of every key.
        anyhow::ensure!(!keys.is_empty(), "the JWKS holds no usable signing key");
        Ok(keys)
    }
}

/// The public signing keys of a set. Symmetric (`oct`) keys are dropped: an issuer's
/// published keys are public, so a shared secret among them would let anyone sign.
fn signing_keys(set: &JwkSet) -> Vec<Key> {
    set.keys
        .iter()
        .filter(|jwk| !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)))
        // A key published for encryption signs nothing.
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter_map(|jwk| {
            let decoding = DecodingKey::from_jwk(jwk)
                .inspect_err(|error| tracing::warn!(kid = ?jwk.common.key_id, %error, "skipping unusable JWK"))
                .ok()?;
            Some(Key {
                kid: jwk.common.key_id.clone(),
                decoding,
                algorithm: jwk.common.key_algorithm,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_set_travels_over_tls_but_to_loopback() {
        assert!(check_url("https://login.example.com/.well-known/jwks.json").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        for refused in [
            "http://login.example.com/jwks",
            "ftp://127.0.0.1/jwks",
            "not a url",
        ] {
            assert!(check_url(refused).is_err(), "{refused}");
        }
    }

    #[tokio::test]
    async fn keys_not_read_for_longer_than_max_stale_are_not_trusted() {
        let dir = std::env::temp_dir().join(format!("pasarela-jwks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("jwks.json");
        let set = serde_json::json!({ "keys": [
            { "kty": "EC", "kid": "ec", "crv": "P-256", "alg": "ES256",
              "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
              "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" },
        ]});
        std::fs::write(&file, set.to_string()).unwrap();
        let settings = |max_stale| JwksSettings {
            url: None,
            file: Some(file.clone()),
            refresh: Duration::from_secs(3600),
            unknown_kid_cooldown: Duration::from_secs(3600),
            max_stale,
        };
        let fresh = Jwks::load(&settings(Duration::from_secs(3600)))
            .await
            .unwrap();
        assert!(fresh.key(Some("ec")).await.is_some());
        let stale = Jwks::load(&settings(Duration::ZERO)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(stale.cached(Some("ec")).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn encryption_keys_sign_nothing() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256",
              "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
              "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" },
            { "kty": "EC", "kid": "sig", "use": "sig", "crv": "P-256",
              "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
              "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" },
        ]}))
        .expect("jwk set");
        let keys = signing_keys(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("sig"));
    }

    #[test]
    fn symmetric_keys_in_a_jwks_are_ignored() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "oct", "kid": "shared", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" },
            { "kty": "EC", "kid": "ec", "crv": "P-256", "alg": "ES256",
              "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
              "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" },
        ]}))
        .expect("jwk set");
        let keys = signing_keys(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ec"));
        assert_eq!(keys[0].algorithm, Some(KeyAlgorithm::ES256));
    }
}
