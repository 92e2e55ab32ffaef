//! Builds the one pooled HTTP client of a provider: rustls, optional client certificate
//! (mutual TLS) and private CA, connect and request timeouts.

use std::path::PathBuf;
use std::time::Duration;

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
            pool_max_idle_per_host: 32,
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

#[cfg(test)]
mod tests {
    use super::*;

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
