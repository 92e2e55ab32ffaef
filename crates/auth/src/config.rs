//! The auth policy as configuration: who may call (JWT issuers, mTLS identities), what each
//! method requires, what is exempt, and how fast a caller may go.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pasarela_provider::Credential;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::tenancy::{TenantSettings, Untenanted};

/// Issuer and audience of the tokens `pasarela token` mints and `pasarela dev` accepts.
pub const DEV_ISSUER: &str = "pasarela-dev";
pub const DEV_AUDIENCE: &str = "pasarela";

/// The HS256 secret of `pasarela dev`. It is public on purpose: `pasarela token` and
/// `pasarela dev` agree on it with nothing shared by hand, and it grants nothing elsewhere
/// because `serve` refuses HS256 unless `allow_hs256 = true` is configured.
pub(crate) const DEV_HS256_SECRET: &str = "pasarela-dev-only-hs256-secret-never-use-in-production";

/// Longest clock skew tolerated on `exp` and `nbf`.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Shortest HMAC key accepted (HS256, holder names): RFC 7518 asks for a key at least as
/// long as the hash.
pub(crate) const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Required `iss` of bearer tokens.
    pub issuer: Option<String>,
    /// Required `aud` of bearer tokens (pasarela's own name at the issuer).
    pub audience: Option<String>,
    /// Where the issuer publishes its signing keys (RS256, ES256, ...).
    pub jwks: Option<JwksSettings>,
    /// HS256 with a shared secret: for development only, refused unless `allow_hs256`.
    /// One secret per line: the first signs minted tokens, every one verifies.
    pub hs256_secret: Option<Credential>,
    pub allow_hs256: bool,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Scopes each method requires, by method (`pkg.Service/Method`), service
    /// (`pkg.Service`) or `*`; the most specific entry wins, a method matching none is
    /// denied. `{method}` and `{service}` in a scope stand for the called method's names.
    pub methods: BTreeMap<String, Vec<String>>,
    /// A granted scope that satisfies every requirement (dev uses `*`); unset in production.
    pub superuser_scope: Option<String>,
    /// Accepts the published dev secret and a superuser scope: `pasarela dev` and a
    /// development deployment only. Without it, start-up refuses both.
    pub insecure_dev_credentials: bool,
    /// Methods or services callable with no credentials (health probes send none).
    pub exempt: Vec<String>,
    /// Calls to `exempt` methods (and to reflection when open) one peer address may make:
    /// health on the gRPC port is budgeted like any other call (the kubelet's probes use the
    /// admin port). Past it they are refused `RESOURCE_EXHAUSTED`, group `exempt-per-peer`.
    pub exempt_per_peer: Budget,
    /// Such calls one peer address may have under way at once, a `Health/Watch` or
    /// reflection stream counted while it is open; past it, group `exempt-streams-per-peer`.
    pub max_exempt_streams_per_peer: usize,
    /// Who may use server reflection.
    pub reflection: ReflectionAccess,
    pub mtls: MtlsSettings,
    /// Per-principal limits; a method is counted in the first group that matches it.
    pub rate_limits: Vec<RateLimit>,
    /// Calls one peer address may have refused before it is identified (no or a bad
    /// token); past it the peer's failures are answered `RATE_LIMITED`.
    pub unauthenticated_per_peer: Budget,
    /// Calls one principal may have under way at once; past it a call is refused
    /// (`RESOURCE_EXHAUSTED`, group `concurrent-calls`) before its handler runs, so that one
    /// caller's slow or hung calls cannot hold every worker and buffer of the process.
    pub max_concurrent_calls_per_principal: usize,
    /// Checks of one customer's or member's secret (a password, an OTP, a card PIN or
    /// CVV), counted across every caller and, with `rate_limit_redis_url`, every replica:
    /// forty principals guessing one customer's PIN share that customer's budget.
    pub secret_attempts: Budget,
    /// Key of the HMAC that names a secret's holder in the buckets, so that neither Redis
    /// nor memory holds customer ids. Unset, each process draws a random one, which
    /// replicas cannot share: start-up refuses that with `rate_limit_redis_url`. Read
    /// again when its file changes; one key per line, the first names new buckets and every
    /// one is counted.
    pub holder_key: Option<Credential>,
    /// How long a key removed from `holder_key` or `hs256_secret` still counts or
    /// verifies, so that a rotation neither resets a customer's budget nor refuses the
    /// tokens of the old secret at once.
    #[serde(with = "humantime_serde")]
    pub key_overlap: Duration,
    /// Redis holding the rate-limit buckets, so that they hold across replicas; unset, each
    /// process counts alone. While Redis cannot answer, each process counts alone too.
    pub rate_limit_redis_url: Option<SecretString>,
    /// The CA (and client certificate) of a `rediss://` rate-limit Redis.
    pub rate_limit_redis_tls: Option<pasarela_redis::RedisTls>,
    /// Tenants by name: the principals acting for each (docs/auth.md, "Tenants"). What a
    /// tenant may act on is in each service's own `tenants.<name>` section.
    pub tenants: BTreeMap<String, TenantSettings>,
    /// What becomes of a principal listed in no tenant: refused (the default), or served
    /// with the deployment's identity (`allow`, what `pasarela dev` sets).
    pub untenanted: Untenanted,
    /// Methods or services a principal in no tenant may call all the same: the operators'.
    pub tenant_free: Vec<String>,
    /// What every key in the rate-limit Redis starts with. Unset: `pasarela:<service>` for
    /// a server of one service (so each service's ACL user can be limited to its own keys),
    /// else `pasarela`.
    pub rate_limit_redis_prefix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSettings {
    /// One of `url` or `file`.
    pub url: Option<String>,
    pub file: Option<PathBuf>,
    /// How often the key set is re-read.
    #[serde(default = "JwksSettings::default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// Least time between two re-reads caused by an unknown `kid`, so that forged `kid`s
    /// cannot turn pasarela into a flood against the issuer.
    #[serde(default = "JwksSettings::default_cooldown", with = "humantime_serde")]
    pub unknown_kid_cooldown: Duration,
    /// How long keys are trusted without a successful re-read: an issuer that stays down
    /// (or a key it revoked meanwhile) must not be trusted forever.
    #[serde(default = "JwksSettings::default_max_stale", with = "humantime_serde")]
    pub max_stale: Duration,
}

impl JwksSettings {
    fn default_max_stale() -> Duration {
        Duration::from_secs(24 * 60 * 60)
    }

    fn default_refresh() -> Duration {
        Duration::from_secs(300)
    }

    fn default_cooldown() -> Duration {
        Duration::from_secs(10)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReflectionAccess {
    /// No credentials needed (grpcurl `list`/`describe` just work).
    Open,
    /// Like any other method: a principal and the scopes `methods` requires.
    Authenticated,
    /// Refused to everybody.
    Closed,
}

/// Client certificates that stand as principals (mTLS on the gRPC port is set up by
/// [`crate::TlsSettings`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtlsSettings {
    /// Certificate identity (SPIFFE URI SAN, else the subject as `CN=..., O=...`) to the
    /// scopes it is granted. A certificate not listed is transport only: its caller still
    /// needs a bearer token.
    pub principals: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Name of the group, in logs and in the `RESOURCE_EXHAUSTED` details.
    pub name: String,
    /// Methods, services or `*` counted in this group.
    pub methods: Vec<String>,
    /// Sustained calls per second of one principal.
    pub per_second: f64,
    /// Calls one principal may make at once above the sustained rate.
    pub burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            jwks: None,
            hs256_secret: None,
            allow_hs256: false,
            leeway: Duration::from_secs(30),
            methods: BTreeMap::new(),
            superuser_scope: None,
            insecure_dev_credentials: false,
            unauthenticated_per_peer: Budget {
                per_second: 10.0,
                burst: 100,
            },
            max_concurrent_calls_per_principal: 100,
            // A customer types a code or PIN a few times in a row, not dozens an hour.
            secret_attempts: Budget {
                per_second: 1.0 / 60.0,
                burst: 10,
            },
            holder_key: None,
            key_overlap: Duration::from_secs(60 * 60),
            exempt: vec!["grpc.health.v1.Health".into()],
            // A load balancer checks a few times a second; a watcher holds one stream.
            exempt_per_peer: Budget {
                per_second: 20.0,
                burst: 50,
            },
            max_exempt_streams_per_peer: 16,
            reflection: ReflectionAccess::Open,
            mtls: MtlsSettings::default(),
            rate_limits: vec![RateLimit {
                name: "default".into(),
                methods: vec!["*".into()],
                per_second: 50.0,
                burst: 100,
            }],
            rate_limit_redis_url: None,
            rate_limit_redis_tls: None,
            tenants: BTreeMap::new(),
            untenanted: Untenanted::Refuse,
            tenant_free: vec!["pasarela.operations.v1.OperationsService".into()],
            rate_limit_redis_prefix: None,
        }
    }
}

impl Config {
    /// `pasarela dev`: HS256 with the published dev secret, every method requiring a scope
    /// named after it (`pasarela.bureau.v1.BureauService/GetPasswordExpiration`), and `*`
    /// granting everything.
    pub fn dev() -> Config {
        Config {
            issuer: Some(DEV_ISSUER.into()),
            audience: Some(DEV_AUDIENCE.into()),
            hs256_secret: Some(Credential::from(DEV_HS256_SECRET)),
            allow_hs256: true,
            methods: BTreeMap::from([("*".into(), vec!["{method}".into()])]),
            superuser_scope: Some("*".into()),
            insecure_dev_credentials: true,
            untenanted: Untenanted::Allow,
            ..Config::default()
        }
    }

    /// Refuses a policy that names a method or service nobody serves: a typo would leave
    /// its stricter rule (or its own rate limit) silently unused. `services` are
    /// `pkg.Service` names, `methods` `/pkg.Service/Method` paths; `*` stands for every
    /// method, except in `exempt`.
    pub fn check_names(
        &self,
        services: &std::collections::HashSet<String>,
        methods: &std::collections::HashSet<String>,
    ) -> anyhow::Result<()> {
        let known = |name: &str| {
            let name = crate::policy::normalise(name);
            services.contains(&name) || methods.contains(&format!("/{name}"))
        };
        let named = self
            .methods
            .keys()
            .map(|name| ("auth.methods", name))
            .chain(self.rate_limits.iter().flat_map(|limit| {
                limit
                    .methods
                    .iter()
                    .map(|name| ("auth.rate_limits.methods", name))
            }));
        for (key, name) in named {
            anyhow::ensure!(
                name.trim() == "*" || known(name),
                "{key} names {name:?}, which is no service or method pasarela serves \
                 (`pkg.Service`, `pkg.Service/Method` or `*`)"
            );
        }
        for name in &self.tenant_free {
            anyhow::ensure!(
                name.trim() != "*" && known(name),
                "auth.tenant_free names {name:?}: name services or methods pasarela serves, \
                 one by one (`*` would let every principal act for no tenant)"
            );
        }
        for name in &self.exempt {
            anyhow::ensure!(
                known(name),
                "auth.exempt names {name:?}: exempt only services or methods pasarela serves, \
                 one by one (`*` would exempt every method from authentication)"
            );
        }
        Ok(())
    }

    /// Refuses policies that would be unsafe or could never admit anybody.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        crate::tenancy::check(&self.tenants)?;
        let jwt = self.jwks.is_some() || self.hs256_secret.is_some();
        anyhow::ensure!(
            jwt || !self.mtls.principals.is_empty(),
            "auth: no way to identify callers; configure auth.jwks, auth.mtls.principals or \
             (development only) auth.hs256_secret with auth.allow_hs256 = true"
        );
        if jwt {
            anyhow::ensure!(
                self.issuer.is_some() && self.audience.is_some(),
                "auth: bearer tokens need auth.issuer and auth.audience"
            );
        }
        let published = self.hs256_secret.as_ref().is_some_and(|secret| {
            // Any line of the keyring verifies tokens: none may be the published one.
            let secrets = secret.current();
            secrets
                .expose_secret()
                .lines()
                .any(|line| line.trim() == DEV_HS256_SECRET)
        });
        anyhow::ensure!(
            self.insecure_dev_credentials || !published,
            "auth: auth.hs256_secret is pasarela's published dev secret: anyone can mint its \
             tokens; set auth.insecure_dev_credentials = true only for a development deployment"
        );
        anyhow::ensure!(
            self.insecure_dev_credentials || self.superuser_scope.is_none(),
            "auth: auth.superuser_scope grants every method to one scope; set \
             auth.insecure_dev_credentials = true only for a development deployment"
        );
        if let Some(secret) = &self.hs256_secret {
            anyhow::ensure!(
                self.allow_hs256,
                "auth: auth.hs256_secret is for development only; set auth.allow_hs256 = true \
                 to accept it"
            );
            anyhow::ensure!(
                secret.current().expose_secret().len() >= MIN_KEY_BYTES,
                "auth: auth.hs256_secret must be at least {MIN_KEY_BYTES} bytes"
            );
        }
        if let Some(jwks) = &self.jwks {
            anyhow::ensure!(
                jwks.url.is_some() != jwks.file.is_some(),
                "auth: auth.jwks needs exactly one of `url` or `file`"
            );
            if let Some(url) = &jwks.url {
                crate::jwks::check_url(url)?;
            }
            anyhow::ensure!(
                jwks.max_stale >= jwks.refresh.saturating_mul(2),
                "auth: auth.jwks.max_stale must be at least twice auth.jwks.refresh, or keys \
                 would go untrusted between two re-reads"
            );
        }
        anyhow::ensure!(
            self.leeway <= MAX_LEEWAY,
            "auth: auth.leeway is at most {}s: a longer one keeps expired tokens alive",
            MAX_LEEWAY.as_secs()
        );
        anyhow::ensure!(
            self.max_concurrent_calls_per_principal > 0 && self.max_exempt_streams_per_peer > 0,
            "auth: auth.max_concurrent_calls_per_principal and \
             auth.max_exempt_streams_per_peer must be at least 1"
        );
        for (key, budget) in [
            ("unauthenticated_per_peer", &self.unauthenticated_per_peer),
            ("exempt_per_peer", &self.exempt_per_peer),
            ("secret_attempts", &self.secret_attempts),
        ] {
            anyhow::ensure!(
                rate_is_sane(budget.per_second) && budget.burst > 0,
                "auth: auth.{key} needs per_second of at least {MIN_PER_SECOND} (one a day) \
                 and burst > 0"
            );
        }
        match &self.holder_key {
            Some(key) => anyhow::ensure!(
                key.current().expose_secret().len() >= MIN_KEY_BYTES,
                "auth: auth.holder_key must be at least {MIN_KEY_BYTES} bytes"
            ),
            None => anyhow::ensure!(
                self.rate_limit_redis_url.is_none(),
                "auth: auth.holder_key must be set with auth.rate_limit_redis_url, or each \
                 replica would name a customer differently and count its secret checks apart"
            ),
        }
        for limit in &self.rate_limits {
            anyhow::ensure!(
                rate_is_sane(limit.per_second) && limit.burst > 0,
                "auth: rate limit {:?} needs per_second of at least {MIN_PER_SECOND} (one a \
                 day) and burst > 0",
                limit.name
            );
        }
        Ok(())
    }
}

/// A budget per key, a peer address or a secret's holder (GCRA: a sustained rate and a
/// burst).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub per_second: f64,
    pub burst: u32,
}

/// Inbound TLS of the gRPC port; with `client_ca_file`, client certificates signed by that
/// CA are verified (and required when `client_auth_required`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_auth_required: bool,
    /// How often [`crate::tls_acceptor`] looks for a renewed certificate and key.
    #[serde(
        default = "TlsSettings::default_reload_every",
        with = "humantime_serde"
    )]
    pub reload_every: Duration,
}

impl TlsSettings {
    fn default_reload_every() -> Duration {
        Duration::from_secs(10)
    }
}

/// The slowest rate a limit or budget may have: one call a day. Slower is a typo, and a
/// rate near zero would make an interval past what the clock holds.
pub const MIN_PER_SECOND: f64 = 1.0 / 86_400.0;

fn rate_is_sane(per_second: f64) -> bool {
    per_second.is_finite() && per_second >= MIN_PER_SECOND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_policy_is_valid() {
        Config::dev().validate().expect("dev config");
    }

    #[test]
    fn shared_buckets_need_a_holder_key_of_at_least_32_bytes() {
        let shared = Config {
            rate_limit_redis_url: Some("redis://127.0.0.1:6379/".into()),
            ..Config::dev()
        };
        let error = shared.validate().unwrap_err().to_string();
        assert!(error.contains("auth.holder_key must be set"), "{error}");
        let short = Config {
            holder_key: Some("too short".into()),
            ..shared.clone()
        };
        let error = short.validate().unwrap_err().to_string();
        assert!(error.contains("at least 32 bytes"), "{error}");
        assert!(!error.contains("too short"), "the key is never shown");
        let keyed = Config {
            holder_key: Some("a key every replica shares, 32+ bytes".into()),
            ..shared
        };
        keyed.validate().expect("a shared key");
    }

    #[test]
    fn default_policy_admits_nobody_and_says_so() {
        let error = Config::default().validate().unwrap_err().to_string();
        assert!(error.contains("auth.jwks"), "{error}");
    }

    #[test]
    fn hs256_needs_explicit_opt_in_and_the_error_hides_the_secret() {
        let config = Config {
            allow_hs256: false,
            ..Config::dev()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("allow_hs256"), "{error}");
        assert!(!error.contains(DEV_HS256_SECRET), "{error}");
    }

    #[test]
    fn dev_credentials_need_the_insecure_flag_outside_dev() {
        let published = Config {
            insecure_dev_credentials: false,
            superuser_scope: None,
            ..Config::dev()
        };
        let error = published.validate().unwrap_err().to_string();
        assert!(error.contains("insecure_dev_credentials"), "{error}");
        assert!(!error.contains(DEV_HS256_SECRET), "{error}");
        let superuser = Config {
            insecure_dev_credentials: false,
            hs256_secret: Some(Credential::from("a-secret-of-our-own-of-32-bytes-or-more")),
            ..Config::dev()
        };
        let error = superuser.validate().unwrap_err().to_string();
        assert!(error.contains("superuser_scope"), "{error}");
        Config::dev().validate().expect("dev says it is insecure");
    }

    #[test]
    fn leeway_is_bounded() {
        let config = Config {
            leeway: Duration::from_secs(3600),
            ..Config::dev()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("leeway"), "{error}");
    }

    #[test]
    fn short_hs256_secrets_are_refused() {
        let config = Config {
            hs256_secret: Some(Credential::from("short")),
            ..Config::dev()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn jwks_needs_one_source() {
        let config = Config {
            hs256_secret: None,
            allow_hs256: false,
            jwks: Some(JwksSettings {
                url: None,
                file: None,
                refresh: Duration::from_secs(60),
                unknown_kid_cooldown: Duration::from_secs(1),
                max_stale: Duration::from_secs(60),
            }),
            ..Config::dev()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn toml_shape_parses() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp",
            "audience": "pasarela",
            "jwks": { "url": "https://idp/jwks.json", "refresh": "10m" },
            "leeway": "5s",
            "methods": { "pasarela.bureau.v1.BureauService": ["bureau.read"] },
            "reflection": "closed",
            "mtls": { "principals": { "spiffe://cluster.local/ns/a/sa/b": ["bureau.read"] } },
            "rate_limits": [{ "name": "all", "methods": ["*"], "per_second": 5.0, "burst": 5 }],
        }))
        .expect("parses");
        config.validate().expect("valid");
        assert_eq!(config.reflection, ReflectionAccess::Closed);
        assert_eq!(config.jwks.unwrap().refresh, Duration::from_secs(600));
    }

    /// The ```toml blocks of docs/auth.md, which must stay loadable.
    fn documented_toml() -> Vec<&'static str> {
        include_str!("../../../docs/auth.md")
            .split("```toml\n")
            .skip(1)
            .filter_map(|block| block.split("```").next())
            .collect()
    }

    #[test]
    fn documented_configuration_loads() {
        #[derive(Deserialize)]
        struct File {
            auth: Option<Config>,
            tls: Option<TlsSettings>,
        }
        let blocks = documented_toml();
        assert_eq!(blocks.len(), 3, "{blocks:?}");
        let auth = toml::from_str::<File>(blocks[0]).expect("auth block").auth;
        let auth = auth.expect("an [auth] table");
        auth.validate().expect("valid");
        assert_eq!(auth.methods.len(), 4);
        assert_eq!(auth.rate_limits.len(), 2);
        let tls = toml::from_str::<File>(blocks[1]).expect("tls block").tls;
        assert!(tls.expect("a [tls] table").client_ca_file.is_some());
        // The worked tenants (the services' parts are read by tests/e2e/tenancy.rs).
        let value: toml::Value = toml::from_str(blocks[2]).expect("tenants block");
        let tenants: Config = value["auth"].clone().try_into().expect("an [auth] table");
        crate::tenancy::check(&tenants.tenants).expect("valid tenants");
        assert_eq!(tenants.tenants.len(), 2);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let parsed: Result<Config, _> =
            serde_json::from_value(serde_json::json!({ "isuer": "typo" }));
        assert!(parsed.is_err());
    }
}
