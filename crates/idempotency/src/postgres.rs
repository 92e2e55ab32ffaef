//! The PostgreSQL ledger of money-moving calls, shared by every replica: a claim is one
//! statement (the record, the open key and the transaction id together, or nothing), every
//! commit waits for the synchronous standby the database names (`synchronous_commit = on`
//! on each connection), a running or unknown record never expires, and the database
//! refuses a transaction id it has seen. The pool finds the primary among several hosts
//! by itself (`target_session_attrs=read-write`), closes a connection whose statement
//! failed or timed out, and reads its credentials anew for each connection, so that a
//! rotated password or certificate needs no restart.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::migrations;
use super::{Inserted, Keep, NewKey, Store, StoreResult, StoreUnavailable};

/// The `idempotency.postgres` section: where the ledger is and how to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq URL or `key=value` string. Several hosts with
    /// `target_session_attrs=read-write` let pasarela find a promoted standby by itself
    /// (`postgresql://pasarela_security@db-a:5432,db-b:5432/pasarela?target_session_attrs=read-write`).
    pub url: Option<SecretString>,
    /// The role's password, read again for every new connection (a rotated Secret is used
    /// without a restart); it wins over one in `url`.
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates that sign the database's certificate: TLS is always used and
    /// the server's name always checked.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a database that authenticates by certificate;
    /// read again for every new connection.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The schema of this service's tables (one role per service, each owning its own).
    pub schema: String,
    /// Connections held at most.
    pub pool_size: usize,
    /// Longest time one statement (and the wait for a connection) may take: past it the
    /// money call fails closed.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Applies pending migrations at start-up; otherwise start-up refuses a schema older
    /// than this build (`pasarela migrate` brings it up to date).
    pub migrate_at_start: bool,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: None,
            password_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            schema: "pasarela".to_owned(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(2),
            migrate_at_start: false,
        }
    }
}

/// How long a new connection (TCP, TLS, authentication) may take.
/// How long the TCP connection to one host may take: a host that swallows packets leaves
/// time for the next one within a call's bound (which also bounds TLS and login).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long sent data may go unacknowledged, and a connection idle before it is probed:
/// a connection to a primary that vanished is closed in seconds, not the kernel's minutes.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(5);
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);

/// Takes a key's lock until the transaction ends; the claim statement takes the same.
const LOCK_KEY: &str = "SELECT pg_advisory_xact_lock(hashtext($1::text))";

/// How often expired records are deleted, and how many a statement deletes at most.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_BATCH: i64 = 1_000;

impl PostgresConfig {
    /// The connection settings, with TLS required and every statement bounded.
    fn connection(&self) -> anyhow::Result<tokio_postgres::Config> {
        let url = self.url.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "idempotency.postgres.url is required with idempotency.store = \"postgres\""
            )
        })?;
        // The URL may hold a password: its parse error is not repeated.
        let mut config = tokio_postgres::Config::from_str(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("idempotency.postgres.url is not a PostgreSQL URL"))?;
        let timeout_ms = self.statement_timeout.as_millis().max(1);
        config
            .ssl_mode(SslMode::Require)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_user_timeout(TCP_USER_TIMEOUT)
            .keepalives_idle(KEEPALIVE_IDLE)
            .application_name("pasarela")
            // Every commit waits for the synchronous standby, whatever the server's
            // default; statements and idle transactions are bounded on the server too.
            .options(format!(
                "-c synchronous_commit=on -c statement_timeout={timeout_ms} \
                 -c idle_in_transaction_session_timeout={timeout_ms}"
            ));
        Ok(config)
    }

    /// The schema name, checked: it is written into statements.
    pub fn schema(&self) -> anyhow::Result<&str> {
        let schema = self.schema.as_str();
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        anyhow::ensure!(
            plain,
            "idempotency.postgres.schema must be a lowercase identifier (letters, digits, '_')"
        );
        Ok(schema)
    }
}

/// A password (when one is configured) and the TLS settings of a connection.
type Presented = (Option<SecretString>, Arc<rustls::ClientConfig>);

/// What each new connection presents and trusts, read from files.
struct Credentials {
    config: PostgresConfig,
    /// The last set read in full, used while a rotation leaves a file half-written.
    last_good: Mutex<Presented>,
}

impl Credentials {
    /// Reads the files once: unreadable ones stop the start.
    fn new(config: &PostgresConfig) -> anyhow::Result<Self> {
        Ok(Self {
            last_good: Mutex::new(read_presented(config)?),
            config: config.clone(),
        })
    }

    /// The files as they are now, or the last good set when they cannot be read.
    fn current(&self) -> Presented {
        let mut last_good = self
            .last_good
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match read_presented(&self.config) {
            Ok(fresh) => *last_good = fresh,
            Err(error) => tracing::warn!(
                error = %error,
                "database credentials unreadable: the last good ones are used"
            ),
        }
        last_good.clone()
    }
}

fn read_presented(config: &PostgresConfig) -> anyhow::Result<Presented> {
    let password = match &config.password_file {
        // A mounted Secret may end in a newline; any other character is the password's.
        Some(path) => Some(SecretString::from(
            read_text(path, "password_file")?.trim_end_matches(['\n', '\r']),
        )),
        None => None,
    };
    Ok((password, Arc::new(tls_config(config)?)))
}

impl deadpool_postgres::Connect for Credentials {
    fn connect(
        &self,
        settings: &tokio_postgres::Config,
    ) -> BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let mut settings = settings.clone();
        let (password, tls) = self.current();
        if let Some(password) = password {
            settings.password(password.expose_secret());
        }
        async move {
            let (client, connection) = settings
                .connect(MakeRustlsConnect::new((*tls).clone()))
                .await?;
            let task = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(error = %error, "database connection ended");
                }
            });
            Ok((client, task))
        }
        .boxed()
    }
}

fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "idempotency.postgres.{what} ({}) cannot be read",
            path.display()
        )
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS to the database: its CA, and the client certificate when one is configured.
fn tls_config(config: &PostgresConfig) -> anyhow::Result<rustls::ClientConfig> {
    let ca_file = config.ca_file.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "idempotency.postgres.ca_file is required: the ledger is reached over TLS only"
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs(ca_file, "ca_file")? {
        roots
            .add(cert)
            .context("idempotency.postgres.ca_file holds an unusable certificate")?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(pem_certs(cert, "cert_file")?, pem_key(key)?)
            .context("idempotency.postgres.cert_file and key_file do not form a pair")?,
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("idempotency.postgres.cert_file and key_file go together"),
    })
}

fn pem_certs(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let text = read_text(path, what)?;
    let certs = rustls_pemfile::certs(&mut text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("idempotency.postgres.{what} is not PEM"))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "idempotency.postgres.{what} holds no certificate"
    );
    Ok(certs)
}

fn pem_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let text = read_text(path, "key_file")?;
    rustls_pemfile::private_key(&mut text.as_bytes())
        .context("idempotency.postgres.key_file is not PEM")?
        .ok_or_else(|| anyhow::anyhow!("idempotency.postgres.key_file holds no key"))
}

/// A pool of connections to the ledger's primary.
pub struct PostgresStore {
    pool: Pool,
    timeout: Duration,
    sql: Statements,
}

/// The store's statements, with the schema written in.
struct Statements {
    claim: String,
    get: String,
    replace: String,
    remove: String,
    reserve: String,
    track: String,
    untrack: String,
    untrack_if: String,
    members: String,
    lease: String,
    bind: String,
    bound: String,
    sweep: String,
}

impl Statements {
    fn new(schema: &str) -> Self {
        let live = "expires_at > now()";
        // NULL milliseconds: kept until settled.
        let expiry = |ms: &str| {
            format!("COALESCE(now() + {ms}::bigint * interval '1 millisecond', 'infinity')")
        };
        Self {
            // The record, its transaction id and its open key, or nothing: a key whose
            // record expired is claimed afresh; a transaction id the database has seen is
            // refused, and so is a claim of an owner holding its maximum of open keys (as
            // the statement's snapshot counts them: claims of one owner committing at the
            // same instant may each pass). The key's lock orders the claim with
            // `untrack_if`.
            claim: format!(
                "WITH locked AS (
                   {LOCK_KEY}
                 ), fresh AS (
                   SELECT NOT EXISTS (
                     SELECT 1 FROM {schema}.transaction_ids WHERE transaction_id = $4::text
                   ) AS free FROM locked
                 ), roomy AS (
                   SELECT count(*) < $7::bigint AS room FROM {schema}.open_keys
                   WHERE set_name = $5::text AND owner = $6::text
                 ), claimed AS (
                   INSERT INTO {schema}.records (key, value, expires_at)
                   SELECT $1::text, $2::text, {expiry} FROM fresh, roomy WHERE free AND room
                   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
                   WHERE {schema}.records.expires_at <= now()
                   RETURNING key
                 ), issued AS (
                   INSERT INTO {schema}.transaction_ids (transaction_id, key)
                   SELECT $4::text, key FROM claimed
                 ), opened AS (
                   INSERT INTO {schema}.open_keys (set_name, member, owner)
                   SELECT $5::text, key, $6::text FROM claimed
                   ON CONFLICT (set_name, member) DO UPDATE SET owner = EXCLUDED.owner
                 )
                 SELECT (SELECT count(*) FROM claimed), (SELECT free FROM fresh),
                        (SELECT room FROM roomy)",
                expiry = expiry("$3"),
            ),
            get: format!("SELECT value FROM {schema}.records WHERE key = $1 AND {live}"),
            replace: format!(
                "UPDATE {schema}.records SET value = $3::text, expires_at = {expiry}
                 WHERE key = $1 AND value = $2 AND {live}",
                expiry = expiry("$4"),
            ),
            remove: format!(
                "DELETE FROM {schema}.records WHERE key = $1 AND value = $2 AND {live}"
            ),
            reserve: format!(
                "INSERT INTO {schema}.counters (name, last) VALUES ($1::text, $3::bigint + $2::bigint)
                 ON CONFLICT (name) DO UPDATE SET last = {schema}.counters.last + $2::bigint
                 RETURNING last"
            ),
            track: format!(
                "INSERT INTO {schema}.open_keys (set_name, member, owner) VALUES ($1, $2, $3)
                 ON CONFLICT (set_name, member) DO UPDATE SET owner = EXCLUDED.owner"
            ),
            untrack: format!(
                "DELETE FROM {schema}.open_keys WHERE set_name = $1 AND member = $2"
            ),
            untrack_if: format!(
                "DELETE FROM {schema}.open_keys WHERE set_name = $1 AND member = $2
                 AND (SELECT value FROM {schema}.records WHERE key = $3 AND {live}) IS NOT DISTINCT FROM $4::text"
            ),
            members: format!("SELECT member FROM {schema}.open_keys WHERE set_name = $1"),
            lease: format!(
                "INSERT INTO {schema}.leases (name, holder, expires_at)
                 VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                 WHERE {schema}.leases.expires_at <= now() OR {schema}.leases.holder = EXCLUDED.holder
                 RETURNING holder"
            ),
            // A binding made by a concurrent statement is not in this one's snapshot: then
            // neither branch answers, and the caller asks again.
            bind: format!(
                "WITH made AS (INSERT INTO {schema}.bindings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO NOTHING RETURNING value)
                 SELECT value FROM made UNION ALL
                 SELECT value FROM {schema}.bindings WHERE key = $1 LIMIT 1"
            ),
            bound: format!("SELECT value FROM {schema}.bindings WHERE key = $1"),
            // The outer condition is checked again on a row a claim changed meanwhile.
            sweep: format!(
                "DELETE FROM {schema}.records WHERE expires_at <= now() AND key IN
                 (SELECT key FROM {schema}.records WHERE expires_at <= now() LIMIT $1::bigint)"
            ),
        }
    }
}

impl PostgresStore {
    /// Connects now (a wrong URL, CA or password stops the start), checks the schema
    /// (migrating it first when asked to) and starts the sweep of expired records.
    pub async fn connect(config: &PostgresConfig) -> anyhow::Result<Self> {
        let schema = config.schema()?.to_owned();
        let pool = pool(config)?;
        let client = pool
            .get()
            .await
            .context("the idempotency database cannot be reached")?;
        if config.migrate_at_start {
            migrations::apply(&client, &schema).await?;
        } else {
            migrations::check(&client, &schema).await?;
        }
        check_promises(&client).await?;
        drop(client);
        let store = Self {
            pool,
            timeout: config.statement_timeout,
            sql: Statements::new(&schema),
        };
        store.spawn_sweeper();
        Ok(store)
    }

    /// Deletes expired records in small batches until none is left, each minute, for as
    /// long as the pool lives.
    fn spawn_sweeper(&self) {
        let pool = self.pool.clone();
        let sweep = self.sql.sweep.clone();
        let timeout = self.timeout;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                every.tick().await;
                if pool.is_closed() {
                    return;
                }
                let Ok(client) = pool.get().await else {
                    continue;
                };
                let lease = Lease(Some(client));
                loop {
                    let batch = lease.execute(&sweep, &[&SWEEP_BATCH]);
                    match tokio::time::timeout(timeout, batch).await {
                        Ok(Ok(swept)) if swept == SWEEP_BATCH.unsigned_abs() => {}
                        Ok(Ok(_)) => {
                            lease.keep();
                            break;
                        }
                        // The connection is closed with the lease: it may lead nowhere.
                        Ok(Err(_)) | Err(_) => {
                            tracing::warn!("expired idempotency records not swept");
                            break;
                        }
                    }
                }
            }
        });
    }

    /// One statement's work on a pooled connection, bounded in time; any failure makes
    /// the store unavailable for this call.
    fn bounded<'a, T, F, Fut>(
        &'a self,
        operation: &'static str,
        work: F,
    ) -> BoxFuture<'a, StoreResult<T>>
    where
        T: Send + 'a,
        F: FnOnce(Lease) -> Fut + Send + 'a,
        Fut: Future<Output = Result<(Lease, T), tokio_postgres::Error>> + Send + 'a,
    {
        async move {
            let run = async {
                let client = self
                    .pool
                    .get()
                    .await
                    .map_err(|error| StoreUnavailable::new(operation, error))?;
                let (lease, done) = work(Lease(Some(client)))
                    .await
                    .map_err(|error| StoreUnavailable::new(operation, error))?;
                lease.keep();
                Ok(done)
            };
            tokio::time::timeout(self.timeout, run)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreUnavailable::new(
                        operation,
                        std::io::Error::from(std::io::ErrorKind::TimedOut),
                    ))
                })
        }
        .boxed()
    }
}

/// A pooled connection that goes back to the pool only once its statement succeeded: one
/// that failed or timed out (perhaps to a primary that is gone or frozen) is closed, so
/// that the next call connects afresh and finds the primary.
pub(crate) struct Lease(Option<Object>);

impl Lease {
    fn keep(mut self) {
        drop(self.0.take());
    }
}

impl std::ops::Deref for Lease {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.0
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Object {
        self.0
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.pool.close();
    }
}

/// One connection for `pasarela migrate`, before any store exists.
pub(crate) async fn connect_for_migration(config: &PostgresConfig) -> anyhow::Result<Object> {
    pool(config)?
        .get()
        .await
        .context("the idempotency database cannot be reached")
}

/// A pool over `config`, reading the credential files for each connection.
fn pool(config: &PostgresConfig) -> anyhow::Result<Pool> {
    let settings = config.connection()?;
    let credentials = Credentials::new(config)?;
    let manager = Manager::from_connect(
        settings,
        credentials,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .wait_timeout(Some(config.statement_timeout))
        .create_timeout(Some(config.statement_timeout))
        .recycle_timeout(Some(config.statement_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .context("the idempotency database pool")
}

/// What the database must promise a ledger, checked where it can be: commits are not
/// acknowledged before they are durable, and a standby holds them before they count.
async fn check_promises(client: &Object) -> anyhow::Result<()> {
    let fsync: String = client.query_one("SHOW fsync", &[]).await?.get(0);
    anyhow::ensure!(
        fsync == "on",
        "the idempotency database runs with fsync = {fsync}: an acknowledged record may be lost"
    );
    let standbys: String = client
        .query_one("SHOW synchronous_standby_names", &[])
        .await?
        .get(0);
    if standbys.trim().is_empty() {
        tracing::warn!(
            "the idempotency database names no synchronous standby: a failover to an \
             asynchronous one can lose acknowledged records (managed databases that replicate \
             storage synchronously show none here)"
        );
    }
    Ok(())
}

/// A record's lifetime in milliseconds; `None` keeps it until settled.
fn millis(keep: Keep) -> Option<i64> {
    match keep {
        Keep::For(ttl) => Some(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)),
        Keep::UntilSettled => None,
    }
}

fn counter(value: u64, what: &'static str) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreUnavailable::new(what, "a counter past 2^63"))
}

impl Store for PostgresStore {
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        keep: Keep,
        new: NewKey<'a>,
    ) -> BoxFuture<'a, StoreResult<Inserted>> {
        async move {
            // A claim refused for its key is looked at; one whose record went between the
            // two statements is tried again.
            for _ in 0..3 {
                let max_open = i64::try_from(new.max_open).unwrap_or(i64::MAX);
                let (claimed, free, room) = self
                    .bounded("claim", move |lease| async move {
                        let statement = lease.prepare_cached(&self.sql.claim).await?;
                        let parameters: [&(dyn ToSql + Sync); 7] = [
                            &key,
                            &value,
                            &millis(keep),
                            &new.transaction_id,
                            &new.open_set,
                            &new.owner,
                            &max_open,
                        ];
                        match lease.query_one(&statement, &parameters).await {
                            Ok(row) => Ok((
                                lease,
                                (
                                    row.get::<_, i64>(0) == 1,
                                    row.get::<_, bool>(1),
                                    row.get::<_, bool>(2),
                                ),
                            )),
                            // Only `transaction_ids` has no `ON CONFLICT` here: a claim of
                            // the same transaction id under another key committed first.
                            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                                Ok((lease, (false, false, true)))
                            }
                            Err(error) => Err(error),
                        }
                    })
                    .await?;
                match (claimed, free) {
                    (true, _) => return Ok(Inserted::Claimed),
                    (false, false) => return Ok(Inserted::TransactionIdTaken),
                    (false, true) => {}
                }
                if let Some(existing) = self.get(key).await? {
                    return Ok(Inserted::Held(existing));
                }
                if !room {
                    return Ok(Inserted::OwnerFull);
                }
            }
            Err(StoreUnavailable::new(
                "claim",
                "the key changed under every attempt",
            ))
        }
        .boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        self.bounded("get", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.get).await?;
            let row = lease.query_opt(&statement, &[&key]).await?;
            Ok((lease, row.map(|row| row.get(0))))
        })
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
        value: &'a str,
        keep: Keep,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        self.bounded("compare-and-set", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.replace).await?;
            let changed = lease
                .execute(&statement, &[&key, &expected, &value, &millis(keep)])
                .await?;
            Ok((lease, changed == 1))
        })
    }

    fn remove<'a>(&'a self, key: &'a str, expected: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        self.bounded("compare-and-delete", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.remove).await?;
            let removed = lease.execute(&statement, &[&key, &expected]).await?;
            Ok((lease, removed == 1))
        })
    }

    fn reserve<'a>(
        &'a self,
        key: &'a str,
        count: u64,
        seed: u64,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        async move {
            let count_sql = counter(count, "reserve")?;
            let seed_sql = counter(seed, "reserve")?;
            let last: i64 = self
                .bounded("reserve", move |lease| async move {
                    let statement = lease.prepare_cached(&self.sql.reserve).await?;
                    let row = lease
                        .query_one(&statement, &[&key, &count_sql, &seed_sql])
                        .await?;
                    Ok((lease, row.get(0)))
                })
                .await?;
            u64::try_from(last)
                .ok()
                .and_then(|last| last.checked_sub(count))
                .and_then(|before| before.checked_add(1))
                .ok_or_else(|| StoreUnavailable::new("reserve", "the counter is out of range"))
        }
        .boxed()
    }

    fn lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.bounded("lease", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.lease).await?;
            let row = lease
                .query_opt(&statement, &[&name, &holder, &millis])
                .await?;
            Ok((lease, row.is_some()))
        })
    }

    fn bind<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, StoreResult<String>> {
        async move {
            for _ in 0..3 {
                let row = self
                    .bounded("bind", move |lease| async move {
                        let statement = lease.prepare_cached(&self.sql.bind).await?;
                        let row = lease.query_opt(&statement, &[&key, &value]).await?;
                        Ok((lease, row.map(|row| row.get::<_, String>(0))))
                    })
                    .await?;
                if let Some(bound) = row {
                    return Ok(bound);
                }
            }
            Err(StoreUnavailable::new(
                "bind",
                "the binding changed under every attempt",
            ))
        }
        .boxed()
    }

    fn bound<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        self.bounded("bound", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.bound).await?;
            let row = lease.query_opt(&statement, &[&key]).await?;
            Ok((lease, row.map(|row| row.get(0))))
        })
    }

    fn track<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, StoreResult<()>> {
        self.bounded("track", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.track).await?;
            lease.execute(&statement, &[&set, &member, &owner]).await?;
            Ok((lease, ()))
        })
    }

    fn untrack<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        self.bounded("untrack", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.untrack).await?;
            lease.execute(&statement, &[&set, &member]).await?;
            Ok((lease, ()))
        })
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        self.bounded("members", move |lease| async move {
            let statement = lease.prepare_cached(&self.sql.members).await?;
            let rows = lease.query(&statement, &[&set]).await?;
            Ok((lease, rows.iter().map(|row| row.get(0)).collect()))
        })
    }

    fn untrack_if<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        key: &'a str,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        self.bounded("compare-and-untrack", move |mut lease| async move {
            // The key's lock first, then a fresh look: a claim that committed meanwhile
            // is seen, and keeps its open key.
            let transaction = lease.transaction().await?;
            let lock = transaction.prepare_cached(LOCK_KEY).await?;
            transaction.execute(&lock, &[&key]).await?;
            let statement = transaction.prepare_cached(&self.sql.untrack_if).await?;
            let removed = transaction
                .execute(&statement, &[&set, &member, &key, &expected])
                .await?;
            transaction.commit().await?;
            Ok((lease, removed == 1))
        })
    }
}

#[cfg(test)]
mod tests;
