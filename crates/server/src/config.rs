//! pasarela's configuration: defaults, then a TOML file, then `PASARELA_*` environment
//! variables (`__` separates nested keys: `PASARELA_SECURITY__BASE_URL`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::{Figment, Provider};
use pasarela_idempotency::{IdempotencyConfig, StoreKind};
use pasarela_provider::Environment;
use serde::{Deserialize, Serialize};

/// The services one process can serve; a deployment picks one, several or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceName {
    Security,
    Bureau,
    RecurringPayments,
}

impl ServiceName {
    pub const ALL: [ServiceName; 3] = [
        ServiceName::Security,
        ServiceName::Bureau,
        ServiceName::RecurringPayments,
    ];

    /// Whether the service keeps idempotency records an operator may have to settle.
    pub fn moves_money(self) -> bool {
        matches!(self, ServiceName::Security | ServiceName::RecurringPayments)
    }

    /// The fully qualified gRPC service name, as health and reflection know it.
    /// The configuration section the service reads.
    pub fn section(self) -> &'static str {
        match self {
            ServiceName::Security => "security",
            ServiceName::Bureau => "bureau",
            ServiceName::RecurringPayments => "recurring_payments",
        }
    }

    pub fn grpc_name(self) -> &'static str {
        match self {
            ServiceName::Security => "pasarela.security.v1.SecurityService",
            ServiceName::Bureau => "pasarela.bureau.v1.BureauService",
            ServiceName::RecurringPayments => {
                "pasarela.recurring_payments.v1.RecurringPaymentsService"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `pasarela=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
    /// OTLP/gRPC collector (`http://otel-collector:4317`) to export traces to; none when unset.
    pub otlp_endpoint: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
            otlp_endpoint: None,
        }
    }
}

/// How the process stops on SIGTERM: health turns NOT_SERVING, new calls are still served
/// for `drain_delay` (endpoint removal is asynchronous), then in-flight calls get at most
/// `drain_timeout` to finish.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            drain_delay: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(15),
        }
    }
}

/// HTTP/2 limits of the gRPC port: what one connection may hold and how fast it may churn.
/// Without them hyper admits unlimited streams per connection and no bound on streams
/// reset before they are accepted (the rapid-reset attack, RUSTSEC-2024-0003 class).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http2Settings {
    /// Streams one connection may have open at once (advertised in SETTINGS); calls beyond
    /// it wait in the client or are refused.
    pub max_concurrent_streams: u32,
    /// Streams a client may reset before the server accepts them; past it the connection
    /// is closed (GOAWAY).
    pub max_pending_accept_reset_streams: usize,
    /// Streams the server may reset for a client's protocol errors before it closes the
    /// connection.
    pub max_local_error_reset_streams: usize,
    /// Calls handled at once per connection (the rest wait).
    pub concurrency_limit_per_connection: usize,
    /// Largest header block a call may send, in bytes.
    pub max_header_list_size: u32,
    /// A PING after this much silence; the connection is closed when it is not answered
    /// within `keepalive_timeout`.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// How long calls under way may run on once `max_connection_age` closes a connection.
    #[serde(with = "humantime_serde")]
    pub max_connection_age_grace: Duration,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 200,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
            concurrency_limit_per_connection: 200,
            max_header_list_size: 16 * 1024,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_connection_age_grace: Duration::from_secs(30),
        }
    }
}

/// What the gRPC port admits before HTTP/2 begins: each connection, open or still in its
/// handshake, holds memory and a file descriptor, so how many, from whom and for how long
/// silent are bounded. A connection past a bound is closed at once, before any TLS work.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Connections open at once, from every peer together.
    pub max: usize,
    /// Connections open at once from one IP address. Behind a proxy that opens a connection
    /// per client, every client shares the proxy's address: raise it there.
    pub max_per_peer: usize,
    /// TLS handshakes under way at once; a connection arriving past it is closed.
    pub max_tls_handshakes: usize,
    /// TLS handshakes under way at once from one address, so that one peer cannot take
    /// them all.
    pub max_tls_handshakes_per_peer: usize,
    /// Longest a client may take over its TLS handshake.
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// Longest a client may take, once connected (and through TLS), to send the HTTP/2
    /// preface and its first SETTINGS frame.
    #[serde(with = "humantime_serde")]
    pub preface_timeout: Duration,
    /// Longest a request message may take to arrive once begun (the first from the start of
    /// its call): a stream that declares a large message and stalls is answered
    /// `DEADLINE_EXCEEDED` and its buffer freed.
    #[serde(with = "humantime_serde")]
    pub message_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max: 10_000,
            max_per_peer: 256,
            max_tls_handshakes: 128,
            max_tls_handshakes_per_peer: 8,
            tls_handshake_timeout: Duration::from_secs(5),
            preface_timeout: Duration::from_secs(5),
            message_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            [
                self.max,
                self.max_per_peer,
                self.max_tls_handshakes,
                self.max_tls_handshakes_per_peer
            ]
            .iter()
            .all(|bound| *bound > 0),
            "connections.max, max_per_peer, max_tls_handshakes and max_tls_handshakes_per_peer \
             must be at least 1"
        );
        for (key, value) in [
            ("tls_handshake_timeout", self.tls_handshake_timeout),
            ("preface_timeout", self.preface_timeout),
            ("message_timeout", self.message_timeout),
        ] {
            anyhow::ensure!(!value.is_zero(), "connections.{key} must be longer than 0s");
        }
        Ok(())
    }
}

/// How operators settle unknown outcomes (`pasarela.operations.v1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperationsSettings {
    /// Operators a settlement takes: 2, one proposing and another approving (four eyes);
    /// 1 lets one operator settle alone, which `serve` refuses in front of a production
    /// provider.
    pub approvals: u8,
    /// How long a proposed settlement waits for its approval.
    #[serde(with = "humantime_serde")]
    pub proposal_ttl: Duration,
}

impl Default for OperationsSettings {
    fn default() -> Self {
        Self {
            approvals: 2,
            proposal_ttl: Duration::from_secs(60 * 60),
        }
    }
}

impl OperationsSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.approvals, 1 | 2),
            "operations.approvals is 2 (four eyes) or 1 (one operator, development only)"
        );
        anyhow::ensure!(
            !self.proposal_ttl.is_zero(),
            "operations.proposal_ttl must be longer than 0s"
        );
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// gRPC address of every enabled service.
    pub listen: SocketAddr,
    /// Plaintext admin address: `/metrics` and `grpc.health.v1` for probes (the probe
    /// cannot speak mTLS). `None` turns it off.
    pub admin_listen: Option<SocketAddr>,
    pub services: Vec<ServiceName>,
    /// Serve gRPC reflection (v1 and v1alpha); close it in production if wanted.
    pub reflection: bool,
    /// Connections are closed after this age so that new replicas get traffic
    /// (kube-proxy balances connections, not calls).
    #[serde(with = "humantime_serde")]
    pub max_connection_age: Option<Duration>,
    /// Largest request message accepted; larger ones are `RESOURCE_EXHAUSTED`.
    pub max_request_bytes: usize,
    pub http2: Http2Settings,
    pub connections: ConnectionSettings,
    pub operations: OperationsSettings,
    pub shutdown: ShutdownSettings,
    pub log: LogSettings,
    /// Server TLS, optionally requiring client certificates (mTLS).
    pub tls: Option<pasarela_auth::TlsSettings>,
    pub auth: pasarela_auth::Config,
    pub security: Option<pasarela_security::Config>,
    pub bureau: Option<pasarela_bureau::Config>,
    pub recurring_payments: Option<pasarela_recurring_payments::Config>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 50051).into(),
            admin_listen: Some(([0, 0, 0, 0], 9090).into()),
            services: ServiceName::ALL.to_vec(),
            reflection: true,
            max_connection_age: Some(Duration::from_secs(300)),
            max_request_bytes: 256 * 1024,
            http2: Http2Settings::default(),
            connections: ConnectionSettings::default(),
            operations: OperationsSettings::default(),
            shutdown: ShutdownSettings::default(),
            log: LogSettings::default(),
            tls: None,
            auth: pasarela_auth::Config::default(),
            security: None,
            bureau: None,
            recurring_payments: None,
        }
    }
}

/// The keys of `Config` that have plain defaults, fed to figment as the first layer.
#[derive(Serialize)]
struct Defaults {
    listen: SocketAddr,
    services: Vec<ServiceName>,
}

impl Defaults {
    fn new() -> Self {
        Self {
            listen: Config::default().listen,
            services: ServiceName::ALL.to_vec(),
        }
    }
}

impl Config {
    /// The PostgreSQL ledger of each served money-moving service that has one, by section.
    pub fn ledgers(&self) -> Vec<(&'static str, &pasarela_idempotency::PostgresConfig)> {
        self.idempotency_sections()
            .into_iter()
            .filter(|(_, section)| section.store == StoreKind::Postgres)
            .map(|(name, section)| (name, &section.postgres))
            .collect()
    }

    /// The idempotency section of each served service that moves money.
    fn idempotency_sections(&self) -> Vec<(&'static str, &IdempotencyConfig)> {
        self.services
            .iter()
            .filter_map(|name| {
                match name {
                    ServiceName::Security => self.security.as_ref().map(|s| &s.idempotency),
                    ServiceName::RecurringPayments => {
                        self.recurring_payments.as_ref().map(|s| &s.idempotency)
                    }
                    ServiceName::Bureau => None,
                }
                .map(|section| (name.section(), section))
            })
            .collect()
    }

    /// Refuses, whenever a served provider is a production one, the switches only a
    /// development deployment may set (tokens anyone can mint, the lab's OTP handed to
    /// callers: real customers behind published secrets), a Redis reached without TLS,
    /// and a memory store of money records (forgotten at a restart).
    pub fn refuse_unsafe_settings_in_production(&self) -> anyhow::Result<()> {
        let production: Vec<&str> = self
            .services
            .iter()
            .filter_map(|name| {
                let environment = match name {
                    ServiceName::Security => self.security.as_ref().map(|s| s.environment),
                    ServiceName::Bureau => self.bureau.as_ref().map(|s| s.environment),
                    ServiceName::RecurringPayments => {
                        self.recurring_payments.as_ref().map(|s| s.environment)
                    }
                };
                (environment? == Environment::Production).then_some(name.section())
            })
            .collect();
        if production.is_empty() {
            self.warn_unsafe_redis();
            return Ok(());
        }
        let sections = production.join(", ");
        anyhow::ensure!(
            !self.auth.insecure_dev_credentials,
            "auth.insecure_dev_credentials is for development only, and {sections} calls a \
             production provider (its `environment`); remove it"
        );
        anyhow::ensure!(
            self.auth.untenanted == pasarela_auth::Untenanted::Refuse,
            "auth.untenanted = \"allow\" lets a principal in no tenant act for any merchant \
             with the deployment's bank identity, and {sections} calls a production provider: \
             list each caller in auth.tenants"
        );
        let lab_otp = self
            .recurring_payments
            .as_ref()
            .is_some_and(|section| section.lab_otp_passthrough);
        anyhow::ensure!(
            !(lab_otp && production.contains(&"recurring_payments")),
            "recurring_payments.lab_otp_passthrough is for Daviplata's lab only, and \
             recurring_payments calls its production (`environment`); remove it"
        );
        if let Some(url) = &self.auth.rate_limit_redis_url {
            anyhow::ensure!(
                pasarela_redis::speaks_tls(url).context("auth.rate_limit_redis_url")?,
                "auth.rate_limit_redis_url is plain text (redis:// or redis+sentinel://), and {sections} calls a \
                 production provider: its password would cross the network in clear, and a \
                 Sentinel's answer could send it to any host; use rediss:// or \
                 rediss+sentinel:// with rate_limit_redis_tls"
            );
            anyhow::ensure!(
                pasarela_redis::sentinels_authenticated(url)
                    .context("auth.rate_limit_redis_url")?,
                "auth.rate_limit_redis_url asks its Sentinels without credentials, and {sections} \
                 calls a production provider: anyone who can reach a sentinel can name the primary \
                 pasarela sends its password to; add ?sentinel_password= (and sentinel_username=)"
            );
        }
        let money = self.idempotency_sections();
        anyhow::ensure!(
            self.operations.approvals >= 2
                || !money
                    .iter()
                    .any(|(section, _)| production.contains(section)),
            "operations.approvals = 1 lets one operator settle an unknown outcome alone, and \
             {sections} moves money at a production provider: settlements take two operators \
             there (approvals = 2)"
        );
        for (section, idempotency) in money {
            anyhow::ensure!(
                !(idempotency.store == StoreKind::Memory && production.contains(&section)),
                "{section}.idempotency.store = \"memory\" forgets every record when the process \
                 restarts (a retry then moves money again), and {section} calls a production \
                 provider: keep its records in PostgreSQL (store = \"postgres\")"
            );
        }
        let provider_services = ServiceName::ALL.map(ServiceName::grpc_name);
        let opened = self
            .auth
            .exempt
            .iter()
            .map(|name| ("auth.exempt", name))
            .chain(
                self.auth
                    .tenant_free
                    .iter()
                    .map(|name| ("auth.tenant_free", name)),
            )
            .find(|(_, name)| {
                let name = name.trim().trim_start_matches('/');
                provider_services
                    .iter()
                    .any(|service| name.starts_with(service))
            });
        if let Some((key, name)) = opened {
            anyhow::bail!(
                "{key} names {name:?}, a provider's method, and {sections} calls a production \
                 provider: its calls would skip authentication or tenancy"
            );
        }
        if production.contains(&"security")
            && let Some(security) = &self.security
        {
            let problems = security.identity_problems();
            anyhow::ensure!(
                problems.is_empty(),
                "security calls a production bank with an identity it did not assign: {}",
                problems.join("; ")
            );
        }
        Ok(())
    }

    /// Refuses a service's tenant that `auth.tenants` does not name (its principals would be
    /// nobody), and a merchant in two tenants.
    pub fn check_tenants(&self) -> anyhow::Result<()> {
        let known: std::collections::BTreeSet<String> = self.auth.tenants.keys().cloned().collect();
        let security_tenants = self.security.iter().flat_map(|s| s.tenants.keys());
        if let Some(name) = security_tenants
            .into_iter()
            .find(|name| !known.contains(*name))
        {
            anyhow::bail!("security.tenants.{name}: no such tenant in auth.tenants");
        }
        if let Some(payments) = &self.recurring_payments {
            pasarela_recurring_payments::Tenants::check(&payments.tenants, &known)?;
        }
        Ok(())
    }

    /// Outside production, a Redis reached in clear or through unauthenticated sentinels
    /// is allowed, and said at start-up.
    fn warn_unsafe_redis(&self) {
        let Some(url) = &self.auth.rate_limit_redis_url else {
            return;
        };
        let plain = !pasarela_redis::speaks_tls(url).unwrap_or(true);
        let open_sentinels = !pasarela_redis::sentinels_authenticated(url).unwrap_or(true);
        if plain || open_sentinels {
            tracing::warn!(
                plain_text = plain,
                unauthenticated_sentinels = open_sentinels,
                "auth.rate_limit_redis_url is allowed only because no served provider is a \
                 production one: serve refuses it in front of production"
            );
        }
    }

    /// Defaults, then `file` (if any), then `PASARELA_*` variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        Self::load_over(Serialized::defaults(Defaults::new()), file)
    }

    /// Like [`Config::load`], with `base` between the defaults and the file (the values
    /// `pasarela dev` derives from its sandbox).
    pub fn load_over(base: impl Provider, file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Defaults::new())).merge(base);
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "configuration file {} not found",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        figment
            .merge(
                Env::prefixed("PASARELA_")
                    .split("__")
                    .filter(|key| is_config_key(key) && !names_a_file(key)),
            )
            .merge(Serialized::defaults(values_from_files(std::env::vars())?))
            .extract()
            .context("invalid configuration")
    }
}

/// Suffix of a variable naming a file that holds a key's value:
/// `PASARELA_SECURITY__CLIENT_SECRET_FROM_FILE=/secrets/bcs/client-secret` sets
/// `security.client_secret`, so credentials mounted from a Secret never sit in the
/// environment.
const FROM_FILE: &str = "_from_file";

/// Keys (by their last part) that hold credentials: from a file, such a key is set to
/// `{ file = ... }`, so that the credential is read again whenever the file changes (a
/// rotated Secret); other keys are set to the file's content, read once.
const ROTATING: [&str; 6] = [
    "client_secret",
    "access_token",
    "api_key",
    "hs256_secret",
    "holder_key",
    "record_key",
];

/// The values of every `PASARELA_<KEY>_FROM_FILE` variable, nested as the key says: a
/// credential names its file, any other key takes the file's content (one trailing
/// newline dropped). Every file must be readable now.
fn values_from_files(
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<serde_json::Value> {
    let mut root = serde_json::Map::new();
    for (name, path) in vars {
        let lower = name.to_ascii_lowercase();
        let Some(key) = lower
            .strip_prefix("pasarela_")
            .and_then(|k| k.strip_suffix(FROM_FILE))
        else {
            continue;
        };
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("{name}: reading {path}"))?;
        let value = text.strip_suffix('\n').unwrap_or(&text);
        let value = value.strip_suffix('\r').unwrap_or(value);
        let keys: Vec<&str> = key.split("__").collect();
        let value = match keys.last() {
            Some(last) if ROTATING.contains(last) => serde_json::json!({ "file": path }),
            _ => serde_json::Value::String(value.to_owned()),
        };
        insert_path(&mut root, &keys, value);
    }
    Ok(serde_json::Value::Object(root))
}

fn insert_path(
    map: &mut serde_json::Map<String, serde_json::Value>,
    path: &[&str],
    value: serde_json::Value,
) {
    match path {
        [] => {}
        [last] => {
            map.insert((*last).to_owned(), value);
        }
        [head, rest @ ..] => {
            let child = map
                .entry((*head).to_owned())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(child) = child {
                insert_path(child, rest, value);
            }
        }
    }
}

/// Top-level keys `PASARELA_*` variables may set; other `PASARELA_*` variables (such as
/// `PASARELA_CONFIG`, the file's path) are not configuration keys.
const KEYS: [&str; 16] = [
    "listen",
    "admin_listen",
    "services",
    "reflection",
    "max_connection_age",
    "max_request_bytes",
    "http2",
    "connections",
    "operations",
    "shutdown",
    "log",
    "tls",
    "auth",
    "security",
    "bureau",
    "recurring_payments",
];

/// Whether a variable's key is a `*_FROM_FILE` one; variables keep their case here
/// (`SECURITY.CLIENT_SECRET_FROM_FILE`).
fn names_a_file(key: &figment::value::UncasedStr) -> bool {
    key.as_str().to_ascii_lowercase().ends_with(FROM_FILE)
}

fn is_config_key(key: &figment::value::UncasedStr) -> bool {
    let top = key.as_str().split('.').next().unwrap_or_default();
    KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_named_by_variables() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("client-secret");
        std::fs::write(&secret, "s3cr3t\n").unwrap();
        let vars = [
            (
                "PASARELA_SECURITY__CLIENT_SECRET_FROM_FILE".to_owned(),
                secret.display().to_string(),
            ),
            ("PASARELA_LISTEN".to_owned(), "ignored here".to_owned()),
            ("HOME".to_owned(), "/".to_owned()),
        ];
        let values = values_from_files(vars.into_iter()).unwrap();
        assert_eq!(
            values,
            serde_json::json!({"security": {"client_secret": {"file": secret}}}),
            "a credential names its file, to be read again when it changes"
        );
        let url = dir.path().join("url");
        std::fs::write(&url, "postgres://ledger\n").unwrap();
        let vars = [(
            "PASARELA_SECURITY__IDEMPOTENCY__POSTGRES__URL_FROM_FILE".to_owned(),
            url.display().to_string(),
        )];
        assert_eq!(
            values_from_files(vars.into_iter()).unwrap(),
            serde_json::json!({"security": {"idempotency": {"postgres": {"url": "postgres://ledger"}}}})
        );
    }

    #[test]
    fn file_variables_are_not_keys_themselves() {
        let key = figment::value::UncasedStr::new("BUREAU.API_KEY_FROM_FILE");
        assert!(names_a_file(key));
        assert!(!names_a_file(figment::value::UncasedStr::new(
            "bureau.api_key"
        )));
    }

    #[test]
    fn a_missing_secret_file_is_named() {
        let vars = [(
            "PASARELA_BUREAU__API_KEY_FROM_FILE".to_owned(),
            "no-such-file".to_owned(),
        )];
        let error = format!("{:#}", values_from_files(vars.into_iter()).unwrap_err());
        assert!(
            error.contains("PASARELA_BUREAU__API_KEY_FROM_FILE"),
            "{error}"
        );
        assert!(error.contains("no-such-file"), "{error}");
    }
}
