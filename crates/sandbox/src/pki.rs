//! The sandbox's own little PKI for Daviplata's mutual TLS: a CA, a server certificate for
//! the loopback names and a client certificate for dev use, written as PEM files to a
//! folder the user names and reused across restarts while they still verify.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, ensure};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

/// Names the server certificate answers to: the URL the sandbox prints uses `localhost`,
/// and clients configured with an address instead must work too.
const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where the dev PKI lives. Clients of the Daviplata emulator trust `ca_cert` and present
/// `client_cert` / `client_key`.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// The PEM texts of one complete PKI.
struct Material {
    ca_cert: String,
    ca_key: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

impl DevPki {
    /// The file layout under `dir` (nothing is read or written).
    pub fn at(dir: &Path) -> DevPki {
        DevPki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        }
    }

    /// The PKI in `dir`: the existing files when they form a valid set, else a new set
    /// (written over whatever was there).
    pub fn load_or_create(dir: &Path) -> anyhow::Result<DevPki> {
        let pki = DevPki::at(dir);
        match pki
            .read()
            .and_then(|material| material.verify().map(|()| material))
        {
            Ok(_) => {
                tracing::debug!(dir = %dir.display(), "reusing the sandbox's dev certificates")
            }
            Err(why) => {
                tracing::info!(dir = %dir.display(), reason = %why, "issuing new sandbox dev certificates");
                pki.write(&Material::generate()?)?;
            }
        }
        Ok(pki)
    }

    /// The rustls server configuration of the Daviplata listener: the server certificate,
    /// and a client certificate signed by the sandbox CA required on every connection.
    pub(crate) fn server_config(&self) -> anyhow::Result<ServerConfig> {
        let material = self.read()?;
        let provider = provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(&material.ca_cert)?),
            Arc::clone(&provider),
        )
        .build()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs(&material.server_cert)?, key(&material.server_key)?)?;
        // HTTP/1.1 only: a `drop` fault closes the connection, and with HTTP/2 that would
        // take unrelated streams down with it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    fn read(&self) -> anyhow::Result<Material> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        Ok(Material {
            ca_cert: read(&self.ca_cert)?,
            ca_key: read(&self.ca_key)?,
            server_cert: read(&self.server_cert)?,
            server_key: read(&self.server_key)?,
            client_cert: read(&self.client_cert)?,
            client_key: read(&self.client_key)?,
        })
    }

    /// Writes each file whole (temporary file, then rename) so that a reader never sees
    /// half a PEM.
    fn write(&self, material: &Material) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let files = [
            (&self.ca_cert, &material.ca_cert),
            (&self.ca_key, &material.ca_key),
            (&self.server_cert, &material.server_cert),
            (&self.server_key, &material.server_key),
            (&self.client_cert, &material.client_cert),
            (&self.client_key, &material.client_key),
        ];
        for (path, text) in files {
            let partial = path.with_extension("pem.partial");
            std::fs::write(&partial, text)
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

impl Material {
    fn generate() -> anyhow::Result<Material> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pasarela sandbox dev CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_names = SERVER_NAMES.map(str::to_owned).to_vec();
        let (server_cert, server_key) = leaf(
            &issuer,
            server_names,
            "pasarela sandbox daviplata",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_cert, client_key) = leaf(
            &issuer,
            Vec::new(),
            "pasarela sandbox dev client",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(Material {
            ca_cert: ca_cert.pem(),
            ca_key: issuer.key().serialize_pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        })
    }

    /// The set is usable when both leaves chain to the CA (for the server, under every
    /// loopback name), are valid now, and each key belongs to its certificate.
    fn verify(&self) -> anyhow::Result<()> {
        let provider = provider();
        let roots = Arc::new(roots(&self.ca_cert)?);
        KeyPair::from_pem(&self.ca_key).context("ca-key.pem")?;
        let server = certified(&self.server_cert, &self.server_key, &provider)?;
        let client = certified(&self.client_cert, &self.client_key, &provider)?;
        let now = UnixTime::now();

        let server_verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::clone(&roots),
            Arc::clone(&provider),
        )
        .build()?;
        for name in SERVER_NAMES {
            server_verifier
                .verify_server_cert(
                    server.end_entity_cert()?,
                    &[],
                    &ServerName::try_from(name)?,
                    &[],
                    now,
                )
                .with_context(|| format!("server.pem does not verify for {name}"))?;
        }
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots, provider).build()?;
        client_verifier
            .verify_client_cert(client.end_entity_cert()?, &[], now)
            .context("client.pem does not verify")?;
        Ok(())
    }
}

/// A certificate signed by `issuer` for `names`, usable for `usage`: (cert PEM, key PEM).
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    names: Vec<String>,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    ensure!(!certs.is_empty(), "no certificate in the PEM file");
    Ok(certs)
}

fn key(pem: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut pem.as_bytes())?
        .ok_or_else(|| anyhow::anyhow!("no private key in the PEM file"))
}

fn roots(ca_pem: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca_pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// The certificate and key, refused when the key is not the certificate's.
fn certified(
    cert_pem: &str,
    key_pem: &str,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    Ok(CertifiedKey::from_der(
        certs(cert_pem)?,
        key(key_pem)?,
        provider,
    )?)
}
