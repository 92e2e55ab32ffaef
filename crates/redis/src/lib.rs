//! Connections to the Redis pasarela's replicas share for their rate-limit and guessing
//! buckets (money records are in PostgreSQL): one server, plain or TLS (`rediss://`, the
//! server's CA from a file, an optional client certificate), or the primary a set of
//! Sentinels names, followed across failovers; ACL credentials ride in the URL, which is
//! mounted from a file and never logged.
#![forbid(unsafe_code)]

mod address;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, RedisError};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio::sync::Notify;

use address::Target;

/// Longest wait for a connection, at start-up and on every reconnection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest wait for one answer: past it the command fails (and a money-moving call fails
/// closed) instead of hanging on a dead primary.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the sentinels are asked who the primary is, besides after each failure.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// TLS to Redis, besides `rediss://`: whom to trust and what to present.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTls {
    /// PEM CA certificates that sign the server's certificate; the system's roots when
    /// unset (a managed Redis with a public CA).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a Redis that asks for one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// Whether `url` reaches Redis (and its Sentinels) over TLS only: `rediss://` or
/// `rediss+sentinel://`. Without TLS the ACL password crosses the network in clear, and a
/// Sentinel's answer could send it to any host.
pub fn speaks_tls(url: &SecretString) -> anyhow::Result<bool> {
    Ok(address::Target::parse(url.expose_secret())?.tls())
}

/// Whether a Sentinel `url` gives the sentinels credentials of their own
/// (`?sentinel_password=`): an unauthenticated sentinel answers anyone, and anyone who can
/// write to it can name the primary pasarela sends its password to.
pub fn sentinels_authenticated(url: &SecretString) -> anyhow::Result<bool> {
    Ok(address::Target::parse(url.expose_secret())?.sentinels_authenticated())
}

/// One shared Redis, followed across failovers when Sentinel names it; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    shared: Arc<Shared>,
}

struct Shared {
    /// What this connection is for, in messages ("idempotency", "rate-limit").
    purpose: &'static str,
    current: RwLock<ConnectionManager>,
    sentinel: Option<Sentinel>,
    /// Wakes the follower after a failure: the primary may have moved.
    poke: Arc<Notify>,
}

/// Where the sentinels are and how to reach the primary they name.
struct Sentinel {
    sentinels: Vec<(String, u16)>,
    master: String,
    tls: bool,
    node: RedisConnectionInfo,
    /// Credentials the sentinels are asked with.
    credentials: RedisConnectionInfo,
    certificates: Option<redis::TlsCertificates>,
    /// The primary's address the current connection goes to.
    primary: Mutex<(String, u16)>,
}

impl Redis {
    /// Connects now, so that a wrong URL, CA, certificate or password stops the start with
    /// a message saying which (never the URL itself).
    pub async fn connect(
        url: &SecretString,
        tls: Option<&RedisTls>,
        purpose: &'static str,
    ) -> anyhow::Result<Redis> {
        let target = Target::parse(url.expose_secret())
            .with_context(|| format!("the {purpose} redis URL"))?;
        let certificates = match tls {
            Some(tls) => {
                anyhow::ensure!(
                    target.tls(),
                    "{purpose} redis: TLS settings need a rediss:// (or rediss+sentinel://) URL"
                );
                Some(read_certificates(tls).with_context(|| format!("{purpose} redis TLS"))?)
            }
            None => None,
        };
        let (connection, sentinel) = match target {
            Target::Direct(info) => {
                let client = client(info, certificates.as_ref())?;
                (manager(client, purpose).await?, None)
            }
            Target::Sentinel {
                sentinels,
                master,
                tls,
                node,
                sentinel,
            } => {
                let mut sentinel = Sentinel {
                    sentinels,
                    master,
                    tls,
                    node,
                    credentials: sentinel,
                    certificates,
                    primary: Mutex::new((String::new(), 0)),
                };
                let primary = sentinel
                    .primary()
                    .await
                    .with_context(|| format!("{purpose} redis: no sentinel named the primary"))?;
                let connection = sentinel.connect_primary(&primary, purpose).await?;
                sentinel.primary = Mutex::new(primary);
                (connection, Some(sentinel))
            }
        };
        let shared = Arc::new(Shared {
            purpose,
            current: RwLock::new(connection),
            sentinel,
            poke: Arc::new(Notify::new()),
        });
        if shared.sentinel.is_some() {
            follow(Arc::downgrade(&shared), Arc::clone(&shared.poke));
        }
        Ok(Redis { shared })
    }

    /// The connection to the current primary (a handle: clone it per command).
    pub fn connection(&self) -> ConnectionManager {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A command failed: when Sentinel names the primary, it may have moved (a dead
    /// primary, or one demoted to a read-only replica), so the sentinels are asked now.
    pub fn failed(&self, error: &RedisError) {
        if self.shared.sentinel.is_some() {
            tracing::debug!(purpose = self.shared.purpose, error = %error, "redis command failed");
            self.shared.poke.notify_one();
        }
    }
}

/// Asks the sentinels who the primary is, every [`FOLLOW_EVERY`] and after each failure,
/// and moves the connection when it changed; ends with the last [`Redis`] handle.
fn follow(shared: Weak<Shared>, poke: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = poke.notified() => {}
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.follow_primary().await;
        }
    });
}

impl Shared {
    async fn follow_primary(&self) {
        let Some(sentinel) = &self.sentinel else {
            return;
        };
        let primary = match sentinel.primary().await {
            Ok(primary) => primary,
            Err(error) => {
                tracing::warn!(purpose = self.purpose, error = %format!("{error:#}"), "no sentinel named the redis primary");
                return;
            }
        };
        if *sentinel
            .primary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            == primary
        {
            return;
        }
        match sentinel.connect_primary(&primary, self.purpose).await {
            Ok(connection) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = connection;
                tracing::warn!(
                    purpose = self.purpose,
                    host = %primary.0,
                    port = primary.1,
                    "the redis primary moved: connected to the new one"
                );
                *sentinel
                    .primary
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = primary;
            }
            Err(error) => tracing::warn!(
                purpose = self.purpose,
                error = %format!("{error:#}"),
                "the redis primary sentinel names cannot be used yet"
            ),
        }
    }
}

impl Sentinel {
    /// The primary's address, as the first sentinel that answers names it.
    async fn primary(&self) -> anyhow::Result<(String, u16)> {
        let mut last = None;
        for (host, port) in &self.sentinels {
            match self.ask(host, *port).await {
                Ok(primary) => return Ok(primary),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no sentinel listed")))
    }

    async fn ask(&self, host: &str, port: u16) -> anyhow::Result<(String, u16)> {
        let info = ConnectionInfo {
            addr: address(host.to_owned(), port, self.tls),
            redis: self.credentials.clone(),
        };
        let client = client(info, self.certificates.as_ref())?;
        let asked = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.master)
                .query_async::<Option<(String, u16)>>(&mut connection)
                .await
        };
        tokio::time::timeout(CONNECT_TIMEOUT, asked)
            .await
            .context("the sentinel did not answer in time")?
            .context("asking a sentinel")?
            .with_context(|| format!("the sentinels know no primary {:?}", self.master))
    }

    /// A connection to `primary`, once it says it is one (mid-failover it may not be yet).
    async fn connect_primary(
        &self,
        (host, port): &(String, u16),
        purpose: &'static str,
    ) -> anyhow::Result<ConnectionManager> {
        let info = ConnectionInfo {
            addr: address(host.clone(), *port, self.tls),
            redis: self.node.clone(),
        };
        let mut connection = manager(client(info, self.certificates.as_ref())?, purpose).await?;
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut connection)
            .await
            .with_context(|| format!("{purpose} redis: ROLE"))?;
        let is_primary =
            matches!(role.first(), Some(redis::Value::BulkString(role)) if role == b"master");
        anyhow::ensure!(
            is_primary,
            "{purpose} redis: {host}:{port} is not a primary"
        );
        Ok(connection)
    }
}

fn address(host: String, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    }
}

fn client(
    info: ConnectionInfo,
    certificates: Option<&redis::TlsCertificates>,
) -> anyhow::Result<Client> {
    match certificates {
        Some(certificates) => Client::build_with_tls(info, clone_certificates(certificates)),
        None => Client::open(info),
    }
    .map_err(|_| anyhow::anyhow!("the redis connection settings are not usable"))
}

/// `TlsCertificates` is not `Clone`; every connection builds its TLS settings anew.
fn clone_certificates(certificates: &redis::TlsCertificates) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: certificates
            .client_tls
            .as_ref()
            .map(|client| redis::ClientTlsConfig {
                client_cert: client.client_cert.clone(),
                client_key: client.client_key.clone(),
            }),
        root_cert: certificates.root_cert.clone(),
    }
}

/// Reads the CA and the client certificate now: a missing file stops the start.
fn read_certificates(tls: &RedisTls) -> anyhow::Result<redis::TlsCertificates> {
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let root_cert = tls.ca_file.as_ref().map(read).transpose()?;
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        (None, None) => None,
        _ => anyhow::bail!("cert_file and key_file go together"),
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert,
    })
}

/// A connection manager that reconnects by itself, with bounded waits. One plain
/// connection is tried first: the manager retries a refusal until its timeout, while the
/// plain attempt says why (`WRONGPASS`, an unknown certificate issuer).
async fn manager(client: Client, purpose: &'static str) -> anyhow::Result<ConnectionManager> {
    tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| anyhow::anyhow!("{purpose} redis: no connection within {CONNECT_TIMEOUT:?}"))?
        // The error names the failure, never the URL.
        .with_context(|| format!("connecting to the {purpose} redis"))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(2)
        .set_factor(50)
        .set_max_delay(500);
    tokio::time::timeout(
        CONNECT_TIMEOUT * 2,
        ConnectionManager::new_with_config(client, config),
    )
    .await
    .map_err(|_| anyhow::anyhow!("{purpose} redis: no connection within {CONNECT_TIMEOUT:?}"))?
    // The error names the failure (refused, TLS, WRONGPASS), never the URL.
    .with_context(|| format!("connecting to the {purpose} redis"))
}
