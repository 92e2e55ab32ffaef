//! Inbound TLS of the gRPC port, optionally verifying client certificates (mTLS): tonic's
//! static set-up, or an acceptor whose certificate, key and client CA files are re-read
//! when they change (Kubernetes rewrites mounted Secrets under a running pod).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio_rustls::TlsAcceptor;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsSettings;

/// tonic's TLS set-up for the gRPC port, read once. With `client_ca_file`, a client
/// certificate is verified against that CA (a certificate from any other CA fails the
/// handshake) and is required when `client_auth_required`.
pub fn server_tls_config(settings: &TlsSettings) -> anyhow::Result<ServerTlsConfig> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let identity = Identity::from_pem(read(&settings.cert_file)?, read(&settings.key_file)?);
    let config = ServerTlsConfig::new().identity(identity);
    match &settings.client_ca_file {
        Some(ca) => Ok(config
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(!settings.client_auth_required)),
        None => {
            ensure_ca_when_required(settings)?;
            Ok(config)
        }
    }
}

fn ensure_ca_when_required(settings: &TlsSettings) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.client_ca_file.is_some() || !settings.client_auth_required,
        "tls.client_auth_required needs tls.client_ca_file"
    );
    Ok(())
}

/// The TLS side of the gRPC port, with the same rules as [`server_tls_config`], for a
/// listener of the caller's own; the server certificate and key, and the client CA, are
/// re-read every `reload_every` when their files changed (for new handshakes). The handler
/// side sees the same `TlsConnectInfo` (client certificates) as with tonic's own TLS.
pub fn tls_acceptor(settings: &TlsSettings) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certificate = Arc::new(ReloadingCertificate::load(settings, provider.clone())?);
    ensure_ca_when_required(settings)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &settings.client_ca_file {
        Some(ca) => {
            let verifier = Arc::new(ReloadingClientCa::load(
                ca.clone(),
                settings.client_auth_required,
                provider,
            )?);
            tokio::spawn(reload_every(
                Arc::downgrade(&verifier),
                settings.reload_every,
            ));
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_client_cert_verifier(WebPkiClientVerifier::no_client_auth()),
    };
    let mut config = builder.with_cert_resolver(certificate.clone());
    // gRPC clients (grpc-go among them) insist on negotiating HTTP/2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio::spawn(reload_every(
        Arc::downgrade(&certificate),
        settings.reload_every,
    ));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A verifier of client certificates signed by the CA in `ca`.
fn client_verifier(
    ca: &Path,
    required: bool,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))?
    {
        roots
            .add(cert.with_context(|| format!("a certificate of {}", ca.display()))?)
            .with_context(|| format!("a CA of {}", ca.display()))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().context("client certificate verifier")
}

/// When each of the certificate and key files was last modified.
type Stamp = [Option<SystemTime>; 2];

/// The server's certificate and key, swapped when the files change.
struct ReloadingCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

impl fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertificate")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertificate {
    fn load(settings: &TlsSettings, provider: Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let (cert_file, key_file) = (settings.cert_file.clone(), settings.key_file.clone());
        let stamp = stamp(&cert_file, &key_file);
        let key = certified_key(&cert_file, &key_file, &provider)?;
        pasarela_provider::credential::loaded(&cert_file);
        Ok(Self {
            cert_file,
            key_file,
            provider,
            current: RwLock::new((Arc::new(key), stamp)),
        })
    }

    /// Re-reads the files if they changed; a pair that does not load (the key written
    /// before the certificate, say) keeps the current one and is tried again next time.
    fn reload_if_changed(&self) {
        let stamp = stamp(&self.cert_file, &self.key_file);
        if stamp == self.current.read().unwrap_or_else(|p| p.into_inner()).1 {
            return;
        }
        match certified_key(&self.cert_file, &self.key_file, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(key), stamp);
                pasarela_provider::credential::loaded(&self.cert_file);
                tracing::info!(cert_file = %self.cert_file.display(), "server certificate reloaded");
            }
            Err(error) => {
                pasarela_provider::credential::not_loaded(&self.cert_file);
                tracing::warn!(error = %format!("{error:#}"), "server certificate not reloaded; keeping the current one")
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .clone(),
        )
    }
}

/// Files of the TLS set-up that are looked at again while the acceptor lives.
trait Reload: Send + Sync + 'static {
    fn reload_if_changed(&self);
}

impl Reload for ReloadingCertificate {
    fn reload_if_changed(&self) {
        ReloadingCertificate::reload_if_changed(self);
    }
}

impl Reload for ReloadingClientCa {
    fn reload_if_changed(&self) {
        ReloadingClientCa::reload_if_changed(self);
    }
}

async fn reload_every<R: Reload>(files: Weak<R>, period: Duration) {
    let mut ticks = pasarela_provider::deadline::ticks_after(period);
    loop {
        ticks.tick().await;
        let Some(files) = files.upgrade() else {
            return;
        };
        files.reload_if_changed();
    }
}

/// The client CA's verifier, rebuilt when the CA file changes, so that a rotated CA is
/// trusted (and a withdrawn one refused) from the next handshake on, without a restart.
struct ReloadingClientCa {
    ca_file: PathBuf,
    required: bool,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<dyn ClientCertVerifier>, Option<SystemTime>)>,
}

impl fmt::Debug for ReloadingClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingClientCa")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl ReloadingClientCa {
    fn load(
        ca_file: PathBuf,
        required: bool,
        provider: Arc<CryptoProvider>,
    ) -> anyhow::Result<Self> {
        let stamp = modified(&ca_file);
        let verifier = client_verifier(&ca_file, required, provider.clone())?;
        pasarela_provider::credential::loaded(&ca_file);
        Ok(Self {
            ca_file,
            required,
            provider,
            current: RwLock::new((verifier, stamp)),
        })
    }

    fn reload_if_changed(&self) {
        let stamp = modified(&self.ca_file);
        if stamp == self.current.read().unwrap_or_else(|p| p.into_inner()).1 {
            return;
        }
        match client_verifier(&self.ca_file, self.required, self.provider.clone()) {
            Ok(verifier) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = (verifier, stamp);
                pasarela_provider::credential::loaded(&self.ca_file);
                tracing::info!(ca_file = %self.ca_file.display(), "client CA reloaded");
            }
            Err(error) => {
                pasarela_provider::credential::not_loaded(&self.ca_file);
                tracing::warn!(error = %format!("{error:#}"), "client CA not reloaded; keeping the current one")
            }
        }
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()).0)
    }
}

impl ClientCertVerifier for ReloadingClientCa {
    fn offer_client_auth(&self) -> bool {
        self.verifier().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.verifier().client_auth_mandatory()
    }

    /// No hints: the subjects of a CA that may change cannot be lent out; a client sends
    /// its certificate without them.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn stamp(cert_file: &Path, key_file: &Path) -> Stamp {
    [cert_file, key_file].map(modified)
}

fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates of {}", cert_file.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "no certificate in {}",
        cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("reading the private key of {}", key_file.display()))?;
    CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!(
            "{} and {} do not make a pair",
            cert_file.display(),
            key_file.display()
        )
    })
}
