//! Bearer JWTs: verification against the issuer's keys (or the dev HS256 secret), the
//! claims pasarela reads, and minting of dev tokens.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pasarela_provider::Keyring;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::jwks::Jwks;
use crate::principal::{Principal, PrincipalSource};
use crate::rejection::{Reason, Rejection};
use crate::verified::{self, VerifiedTokens};

/// Algorithms accepted with keys from a JWKS; HMAC never is (see `jwks::signing_keys`).
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The claims pasarela reads; `scope` is OAuth2's space-separated string, `scp` the list
/// some issuers send instead.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    /// Required (and checked) by the validation; kept to bound the verification's reuse.
    /// A NumericDate may carry a fraction (RFC 7519, 2).
    exp: f64,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    /// Every other claim, of which only those tenants bind end users with are kept.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    fn into_principal(mut self, kept: &[String]) -> (Principal, u64) {
        let claims = kept
            .iter()
            .filter_map(|name| {
                let value = match self.other.remove(name)? {
                    serde_json::Value::String(text) => text,
                    serde_json::Value::Number(number) => number.to_string(),
                    _ => return None,
                };
                Some((name.clone(), value))
            })
            .collect();
        let spaced = self
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace().map(str::to_owned));
        let scopes = spaced.chain(self.scp.into_iter().flatten()).collect();
        // `client_id` (RFC 9068) names the application in access tokens; `azp`
        // (OpenID Connect's authorized party) where an issuer sends no `client_id`.
        let principal = Principal {
            subject: self.sub,
            client_id: self.client_id.or(self.azp),
            scopes,
            source: PrincipalSource::Jwt,
            claims,
            ..Principal::default()
        };
        // Whole seconds, rounded down: the reuse never outlives the token.
        (principal, self.exp.max(0.0).floor() as u64)
    }
}

pub struct Verifier {
    /// The HS256 secrets' keyring (development only): a rotated secret verifies the old
    /// one's tokens for `auth.key_overlap`.
    hs256: Option<Keyring<DecodingKey>>,
    jwks: Option<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    verified: VerifiedTokens,
    /// Claims kept on the principal: those tenants bind end users with.
    kept_claims: Vec<String>,
}

impl Verifier {
    pub async fn new(config: &Config) -> anyhow::Result<Verifier> {
        let jwks = match &config.jwks {
            Some(settings) => Some(Jwks::load(settings).await?),
            None => None,
        };
        let hs256 = config
            .hs256_secret
            .as_ref()
            .filter(|_| config.allow_hs256)
            .map(|secret| {
                let ring = Keyring::new(
                    secret.clone(),
                    config.key_overlap,
                    crate::config::MIN_KEY_BYTES,
                    DecodingKey::from_secret,
                    "auth.hs256_secret",
                )?;
                // The published dev secret is refused in a reload as at start.
                match config.insecure_dev_credentials {
                    true => Ok(ring),
                    false => ring.refusing(&[crate::config::DEV_HS256_SECRET]),
                }
            })
            .transpose()?;
        if hs256.is_some() {
            tracing::warn!(
                "auth accepts HS256 tokens signed with a shared secret: development only"
            );
        }
        Ok(Verifier {
            hs256,
            jwks,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
            verified: VerifiedTokens::default(),
            kept_claims: crate::tenancy::Tenancy::claims(&config.tenants),
        })
    }

    /// The principal a bearer token proves, or why it proves nothing; a token verified
    /// moments ago is not checked again (see [`VerifiedTokens`]).
    pub async fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        let digest = verified::digest(token);
        if let Some(principal) = self.verified.get(&digest) {
            return Ok(principal);
        }
        let (principal, expires_at) = self.check(token).await?;
        self.verified.put(digest, principal.clone(), expires_at);
        Ok(principal)
    }

    /// The signature and claims of `token`: its principal and `exp`.
    async fn check(&self, token: &str) -> Result<(Principal, u64), Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_rejection(token))?;
        let keys = self.keys_for(&header).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(self.issuer.as_slice());
        validation.set_audience(self.audience.as_slice());
        // Another key's signature says nothing of the token: the next key is tried, and
        // a signature no key verifies is the refusal.
        let mut unsigned = None;
        for key in &keys {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims.into_principal(&self.kept_claims)),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    unsigned.get_or_insert_with(|| rejection(e.kind()));
                }
                Err(e) => return Err(rejection(e.kind())),
            }
        }
        Err(unsigned.unwrap_or_else(|| rejection(&ErrorKind::InvalidSignature)))
    }

    /// The keys that may have signed a token of `header`: one from the issuer's set, or
    /// each HS256 secret that verifies now.
    async fn keys_for(&self, header: &Header) -> Result<Vec<DecodingKey>, Rejection> {
        let not_allowed = || {
            Rejection::new(Reason::TokenAlgorithmNotAllowed)
                .with("alg", format!("{:?}", header.alg))
        };
        if header.alg == Algorithm::HS256 {
            let ring = self.hs256.as_ref().ok_or_else(not_allowed)?;
            return Ok(ring.keys().verifying.clone());
        }
        let jwks = self
            .jwks
            .as_ref()
            .filter(|_| ASYMMETRIC.contains(&header.alg))
            .ok_or_else(not_allowed)?;
        let key = jwks
            .key(header.kid.as_deref())
            .await
            .ok_or_else(|| Rejection::new(Reason::TokenUnknownKey))?;
        match key.algorithm {
            Some(pinned) if pinned.to_string() != format!("{:?}", header.alg) => Err(not_allowed()),
            _ => Ok(vec![key.decoding]),
        }
    }
}

/// A header that does not decode: an algorithm pasarela does not know (`none` among them)
/// is refused as such; anything else is no well-formed JWT.
fn header_rejection(token: &str) -> Rejection {
    use base64::Engine as _;
    let alg = token
        .split('.')
        .next()
        .and_then(|part| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|header| header.get("alg")?.as_str().map(str::to_owned));
    match alg {
        Some(alg) => Rejection::new(Reason::TokenAlgorithmNotAllowed)
            .with("alg", alg.chars().take(16).collect::<String>()),
        None => Rejection::new(Reason::TokenMalformed),
    }
}

/// What each verification failure means to the caller.
fn rejection(kind: &ErrorKind) -> Rejection {
    let reason = match kind {
        ErrorKind::ExpiredSignature => Reason::TokenExpired,
        ErrorKind::ImmatureSignature => Reason::TokenNotYetValid,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::Crypto(_) => Reason::TokenInvalidSignature,
        ErrorKind::InvalidIssuer => Reason::TokenWrongIssuer,
        ErrorKind::InvalidAudience => Reason::TokenWrongAudience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => Reason::TokenAlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidSubject | ErrorKind::Json(_) => {
            Reason::TokenClaimsInvalid
        }
        _ => Reason::TokenMalformed,
    };
    Rejection::new(reason)
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    scope: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    /// Claims of the caller's choice (`azp`, an end user's document).
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}

/// A token `config` accepts, signed with its HS256 secret: what `pasarela token` prints
/// for `pasarela dev`. Refused for a configuration that does not accept HS256.
pub fn mint_dev_token(
    config: &Config,
    subject: &str,
    scopes: &[String],
    ttl: Duration,
) -> anyhow::Result<String> {
    mint_dev_token_with(config, subject, scopes, ttl, &serde_json::Map::new())
}

/// Like [`mint_dev_token`], with `extra` claims (an application's `azp`, the claim a
/// tenant binds end users with), which cannot replace the standard ones.
pub fn mint_dev_token_with(
    config: &Config,
    subject: &str,
    scopes: &[String],
    ttl: Duration,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<String> {
    const STANDARD: [&str; 7] = ["iss", "aud", "sub", "scope", "iat", "nbf", "exp"];
    if let Some(name) = extra.keys().find(|name| STANDARD.contains(&name.as_str())) {
        anyhow::bail!("the claim {name:?} is set by the minting itself");
    }
    let secret = config
        .hs256_secret
        .as_ref()
        .filter(|_| config.allow_hs256)
        .context(
            "minting needs auth.hs256_secret with auth.allow_hs256 = true (development only)",
        )?;
    let issuer = config
        .issuer
        .as_deref()
        .context("minting needs auth.issuer")?;
    let audience = config
        .audience
        .as_deref()
        .context("minting needs auth.audience")?;
    anyhow::ensure!(!subject.is_empty(), "a token needs a subject");
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = MintedClaims {
        iss: issuer,
        aud: audience,
        sub: subject,
        scope: scopes.join(" "),
        iat: now,
        nbf: now,
        exp: now.saturating_add(ttl.as_secs()),
        extra,
    };
    let ring = Keyring::new(
        secret.clone(),
        Duration::ZERO,
        crate::config::MIN_KEY_BYTES,
        EncodingKey::from_secret,
        "auth.hs256_secret",
    )?;
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &ring.keys().signing,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    async fn dev_verifier() -> Verifier {
        Verifier::new(&Config::dev()).await.expect("verifier")
    }

    #[tokio::test]
    async fn dev_tokens_round_trip() {
        let token = mint_dev_token(
            &Config::dev(),
            "alice",
            &scopes(&["a", "b"]),
            Duration::from_secs(60),
        )
        .expect("token");
        let principal = dev_verifier().await.verify(&token).await.expect("valid");
        assert_eq!(principal.subject, "alice");
        assert_eq!(principal.scopes, scopes(&["a", "b"]));
        assert_eq!(principal.source, PrincipalSource::Jwt);
    }

    #[tokio::test]
    async fn a_rotated_secret_verifies_the_old_ones_tokens_for_the_overlap_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hs256");
        std::fs::write(&file, "the first hs256 secret, 32 bytes or more\n").unwrap();
        let secret = pasarela_provider::Credential::from_file(file.clone()).unwrap();
        let config = |overlap| Config {
            hs256_secret: Some(secret.clone()),
            key_overlap: overlap,
            ..Config::dev()
        };
        let old =
            mint_dev_token(&config(Duration::ZERO), "ops", &[], Duration::from_secs(60)).unwrap();
        let overlapping = Verifier::new(&config(Duration::from_secs(3600)))
            .await
            .unwrap();
        let strict = Verifier::new(&config(Duration::ZERO)).await.unwrap();
        for verifier in [&overlapping, &strict] {
            verifier
                .check(&old)
                .await
                .expect("the first secret's token");
        }

        std::fs::write(&file, "the second hs256 secret, 32 bytes or more\n").unwrap();
        secret.look_again();
        let new =
            mint_dev_token(&config(Duration::ZERO), "ops", &[], Duration::from_secs(60)).unwrap();
        assert_ne!(old, new, "signed with the new secret");
        overlapping
            .check(&old)
            .await
            .expect("the old token, within the overlap");
        overlapping.check(&new).await.expect("the new token");
        let refused = strict.check(&old).await.unwrap_err();
        assert_eq!(refused.reason, Reason::TokenInvalidSignature);
        strict.check(&new).await.expect("the new token");
    }

    #[tokio::test]
    async fn wrong_secret_wrong_audience_and_garbage_are_told_apart() {
        let verifier = dev_verifier().await;
        let other = Config {
            hs256_secret: Some("another-secret-of-at-least-thirty-two-bytes".into()),
            ..Config::dev()
        };
        let forged =
            mint_dev_token(&other, "eve", &scopes(&["*"]), Duration::from_secs(60)).unwrap();
        let reason = |token: String| {
            let verifier = &verifier;
            async move { verifier.verify(&token).await.unwrap_err().reason }
        };
        assert_eq!(reason(forged).await, Reason::TokenInvalidSignature);
        let elsewhere = Config {
            audience: Some("someone-else".into()),
            ..Config::dev()
        };
        let token = mint_dev_token(&elsewhere, "bob", &[], Duration::from_secs(60)).unwrap();
        assert_eq!(reason(token).await, Reason::TokenWrongAudience);
        assert_eq!(reason("not.a.jwt".into()).await, Reason::TokenMalformed);
    }

    #[tokio::test]
    async fn an_unsigned_token_is_an_algorithm_not_allowed() {
        use base64::Engine as _;
        let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let unsigned = format!(
            "{}.{}.",
            encode(r#"{"alg":"none","typ":"JWT"}"#),
            encode(r#"{"sub":"mallory","iss":"pasarela-dev","aud":"pasarela","exp":9999999999}"#)
        );
        let verifier = Verifier::new(&Config::dev()).await.unwrap();
        let rejected = verifier.verify(&unsigned).await.unwrap_err();
        assert_eq!(rejected.reason, Reason::TokenAlgorithmNotAllowed);
        let headless = format!("{}.{}.", encode(r#"{"typ":"JWT"}"#), encode("{}"));
        assert_eq!(
            verifier.verify(&headless).await.unwrap_err().reason,
            Reason::TokenMalformed
        );
    }

    #[tokio::test]
    async fn hs256_is_refused_when_not_configured() {
        let token = mint_dev_token(&Config::dev(), "alice", &[], Duration::from_secs(60)).unwrap();
        let verifier = Verifier {
            hs256: None,
            jwks: None,
            issuer: Config::dev().issuer,
            audience: Config::dev().audience,
            leeway: Duration::ZERO,
            verified: VerifiedTokens::default(),
            kept_claims: Vec::new(),
        };
        let rejected = verifier.verify(&token).await.unwrap_err();
        assert_eq!(rejected.reason, Reason::TokenAlgorithmNotAllowed);
    }

    #[test]
    fn minting_needs_an_hs256_config() {
        let config = Config {
            allow_hs256: false,
            ..Config::dev()
        };
        assert!(mint_dev_token(&config, "a", &[], Duration::from_secs(1)).is_err());
    }

    #[test]
    fn claims_accept_scope_string_and_scp_list() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": "s", "exp": 1.75, "scope": "a b", "scp": ["c"], "azp": "app"
        }))
        .unwrap();
        let (principal, expires_at) = claims.into_principal(&[]);
        assert_eq!(expires_at, 1);
        assert_eq!(principal.scopes, scopes(&["a", "b", "c"]));
        assert_eq!(principal.client_id.as_deref(), Some("app"));
    }
}
