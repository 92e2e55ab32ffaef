//! Builds the one pooled HTTP client of a provider: rustls, optional client certificate
//! (mutual TLS) and private CA, connect and request timeouts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::Deserialize;

/// Transport settings of one provider, from configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Time allowed to open a connection (TCP + TLS).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Ceiling of one provider call when the caller sends no deadline.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The least time a call must have left for pasarela to send it; a caller's deadline
    /// shorter than this is refused (`DEADLINE_EXCEEDED`) before anything is sent.
    #[serde(with = "humantime_serde")]
    pub min_budget: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// PEM bundle of the CA that signs the provider's certificate; the system's web PKI
    /// roots when absent.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain pasarela presents (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            min_budget: Duration::from_millis(100),
            pool_max_idle_per_host: 256,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

/// Builds the client; fails on unreadable or invalid certificate files.
pub fn build_client(settings: &HttpSettings) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(settings.connect_timeout)
        .pool_max_idle_per_host(settings.pool_max_idle_per_host)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca_file) = &settings.ca_file {
        let pem = std::fs::read(ca_file)
            .with_context(|| format!("reading CA bundle {}", ca_file.display()))?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing CA bundle {}", ca_file.display()))?
        {
            builder = builder.add_root_certificate(certificate);
        }
        builder = builder.tls_built_in_root_certs(false);
    }
    match (&settings.cert_file, &settings.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let mut pem = std::fs::read(cert_file)
                .with_context(|| format!("reading client certificate {}", cert_file.display()))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key_file)
                    .with_context(|| format!("reading client key {}", key_file.display()))?,
            );
            let identity =
                reqwest::Identity::from_pem(&pem).context("parsing client certificate and key")?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => anyhow::bail!("cert_file and key_file must be given together"),
    }
    builder.build().context("building the HTTP client")
}

/// How often the certificate files are looked at for a change.
const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(10);

/// A client rebuilt when its CA, certificate or key file changes: Kubernetes updates a
/// mounted Secret under a running pod, and a rotated client certificate must be used
/// without a restart. The files are watched by a task of their own: a call only reads
/// the current client, never the file system.
#[derive(Debug)]
pub struct ReloadingClient {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    settings: HttpSettings,
    client: RwLock<reqwest::Client>,
    /// What the files looked like when last looked at.
    seen: Mutex<Vec<FileStamp>>,
}

/// Modification time and size of a file, `None` where unreadable.
type FileStamp = Option<(SystemTime, u64)>;

impl ReloadingClient {
    /// Builds the client; with certificate files and a tokio runtime, starts watching
    /// them. `domain` names the provider in the log of a reload.
    pub fn new(settings: &HttpSettings, domain: &'static str) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            client: RwLock::new(build_client(settings)?),
            seen: Mutex::new(stamps(settings)),
            settings: settings.clone(),
        });
        let has_files = settings.ca_file.is_some() || settings.cert_file.is_some();
        if let (true, Ok(runtime)) = (has_files, tokio::runtime::Handle::try_current()) {
            runtime.spawn(watch(Arc::downgrade(&shared), domain, RELOAD_CHECK_EVERY));
        }
        Ok(Self { shared })
    }

    /// The client to use now.
    pub fn current(&self) -> reqwest::Client {
        self.shared
            .client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Looks at the files every `every` until the client is dropped; file reads and client
/// builds run on the blocking pool.
async fn watch(shared: Weak<Shared>, domain: &'static str, every: Duration) {
    let mut ticks = crate::deadline::ticks_after(every);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || shared.reload_if_changed(domain)).await;
    }
}

impl Shared {
    /// Rebuilds the client if a file changed since last looked at; says whether one did.
    fn reload_if_changed(&self, domain: &str) -> bool {
        let now = stamps(&self.settings);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return false;
            }
            *seen = now;
        }
        match build_client(&self.settings) {
            Ok(client) => {
                tracing::info!(
                    provider = domain,
                    "certificate files changed: client rebuilt"
                );
                *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
            }
            Err(error) => tracing::warn!(
                provider = domain,
                error = %format!("{error:#}"),
                "certificate files changed but cannot be used; keeping the previous client"
            ),
        }
        true
    }
}

/// The stamp of each certificate file.
fn stamps(settings: &HttpSettings) -> Vec<FileStamp> {
    [&settings.ca_file, &settings.cert_file, &settings.key_file]
        .into_iter()
        .flatten()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_certificate_file_is_noticed_once() {
        let dir = std::env::temp_dir().join(format!("pasarela-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "").unwrap();
        let settings = HttpSettings {
            ca_file: Some(ca.clone()),
            ..HttpSettings::default()
        };
        let shared = Shared {
            client: RwLock::new(reqwest::Client::new()),
            seen: Mutex::new(stamps(&settings)),
            settings,
        };
        assert!(!shared.reload_if_changed("test"));
        std::fs::write(&ca, "rotated").unwrap();
        // An unusable new file keeps the previous client instead of failing calls.
        assert!(shared.reload_if_changed("test"));
        assert!(!shared.reload_if_changed("test"), "the change is seen once");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn half_an_identity_is_refused() {
        let settings = HttpSettings {
            cert_file: Some("client.pem".into()),
            ..HttpSettings::default()
        };
        let error = build_client(&settings).unwrap_err();
        assert!(error.to_string().contains("together"));
    }

    #[test]
    fn missing_ca_file_names_the_file() {
        let settings = HttpSettings {
            ca_file: Some("no-such-ca.pem".into()),
            ..HttpSettings::default()
        };
        let error = format!("{:#}", build_client(&settings).unwrap_err());
        assert!(error.contains("no-such-ca.pem"), "{error}");
    }
}
