//! pasarela's sandbox: stateful emulators of the three provider HTTP APIs (Banco Caja
//! Social, Kiban, Daviplata with mutual TLS) in the providers' own wire format, with fault
//! injection and call counts on an admin listener. Embedded by `pasarela dev` and the
//! tests ([`Sandbox::start`]), or standalone (`pasarela sandbox`, [`run_standalone`]).
#![forbid(unsafe_code)]

mod admin;
mod amount;
pub mod bcs;
mod daviplata;
mod faults;
mod journal;
mod kiban;
mod pki;
mod secrets;
mod serve;
mod standalone;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use faults::Provider;
pub use faults::SENT_TRANSACTION_ID;
pub use pki::DevPki;
pub use standalone::{SandboxArgs, run_standalone};

/// How long an OTP sent by the Daviplata emulator lives, as documented.
const DAVIPLATA_OTP_TTL: Duration = Duration::from_secs(3 * 60);

/// Where and how to run the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub host: IpAddr,
    /// 0 for an ephemeral port (the default), for every listener.
    pub bcs_port: u16,
    pub kiban_port: u16,
    pub daviplata_port: u16,
    pub admin_port: u16,
    /// A user's own Banco Caja Social fixtures; the builtin set when absent.
    pub bcs_fixtures: Option<PathBuf>,
    /// Where the dev CA, server and client PEMs are read from or written to.
    pub pki_dir: PathBuf,
    pub daviplata_token_ttl: Duration,
    /// How long the Banco Caja Social access tokens the sandbox issues live.
    pub bcs_token_ttl: Duration,
    /// The credentials the emulators accept.
    pub credentials: SandboxCredentials,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bcs_port: 0,
            kiban_port: 0,
            daviplata_port: 0,
            admin_port: 0,
            bcs_fixtures: None,
            pki_dir: std::env::temp_dir().join("pasarela-sandbox-pki"),
            daviplata_token_ttl: Duration::from_secs(900),
            bcs_token_ttl: Duration::from_secs(900),
            credentials: SandboxCredentials::default(),
        }
    }
}

/// The dev credentials the emulators accept. They are fixed, public values (see
/// `docs/sandbox.md`): the sandbox guards nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxCredentials {
    pub bcs_client_id: String,
    pub bcs_client_secret: String,
    pub kiban_api_key: String,
    pub daviplata_client_id: String,
    pub daviplata_client_secret: String,
    /// Other Daviplata contracts (client id, secret): a merchant group's own, which a
    /// tenant of pasarela may present instead of the deployment's.
    pub daviplata_contracts: Vec<(String, String)>,
}

impl Default for SandboxCredentials {
    fn default() -> Self {
        SandboxCredentials {
            bcs_client_id: "sandbox-bcs-client".into(),
            bcs_client_secret: "sandbox-bcs-secret".into(),
            kiban_api_key: "sandbox-kiban-api-key".into(),
            daviplata_client_id: "sandbox-daviplata-client".into(),
            daviplata_client_secret: "sandbox-daviplata-secret".into(),
            daviplata_contracts: vec![(
                "sandbox-daviplata-contract-2".into(),
                "sandbox-daviplata-contract-2-secret".into(),
            )],
        }
    }
}

/// A running sandbox. Dropping it, or [`Sandbox::shutdown`], stops every listener.
pub struct Sandbox {
    /// `http://HOST:PORT`, base of Banco Caja Social's paths.
    pub bcs_url: String,
    /// `http://HOST:PORT`, base of Kiban's paths.
    pub kiban_url: String,
    /// `https://localhost:PORT`, base of Daviplata's paths (mutual TLS).
    pub daviplata_url: String,
    /// `http://HOST:PORT`: faults, counters, Daviplata helpers, `/bcs` helpers.
    pub admin_url: String,
    pub pki: DevPki,
    pub credentials: SandboxCredentials,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Sandbox {
    /// Starts the four listeners and returns once they accept connections.
    pub async fn start(options: SandboxOptions) -> anyhow::Result<Sandbox> {
        // Refused here, because a token's expiry computed from it would overflow later.
        anyhow::ensure!(
            Instant::now()
                .checked_add(options.daviplata_token_ttl)
                .is_some(),
            "the Daviplata token lifetime is too long to compute an expiry from"
        );
        let pki = DevPki::load_or_create(&options.pki_dir)
            .with_context(|| format!("dev PKI in {}", options.pki_dir.display()))?;
        let tls = Arc::new(
            pki.server_config()
                .context("Daviplata's TLS configuration")?,
        );
        let [bcs_router, kiban_router, daviplata_router, admin_router] = routers(&options)?;

        let host = options.host;
        let bcs = bind(host, options.bcs_port, "bcs").await?;
        let kiban = bind(host, options.kiban_port, "kiban").await?;
        let daviplata = bind(host, options.daviplata_port, "daviplata").await?;
        let admin = bind(host, options.admin_port, "admin").await?;
        let urls = (
            http_url(bcs.local_addr()?),
            http_url(kiban.local_addr()?),
            format!("https://localhost:{}", daviplata.local_addr()?.port()),
            http_url(admin.local_addr()?),
        );

        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let listeners = [
            (bcs, None, bcs_router),
            (kiban, None, kiban_router),
            (daviplata, Some(tls), daviplata_router),
            (admin, None, admin_router),
        ];
        for (listener, tls, router) in listeners {
            tasks.spawn(serve::run(listener, tls, router, stop.clone()));
        }
        Ok(Sandbox {
            bcs_url: urls.0,
            kiban_url: urls.1,
            daviplata_url: urls.2,
            admin_url: urls.3,
            pki,
            credentials: options.credentials,
            stop,
            tasks,
        })
    }

    /// Stops every listener and closes every connection, then waits for them.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The routers of the four listeners, in the order bcs, kiban, daviplata, admin: each
/// emulator behind the fault layer, and the admin API over their shared state.
fn routers(options: &SandboxOptions) -> anyhow::Result<[Router; 4]> {
    let credentials = &options.credentials;
    let faults = faults::Faults::default();
    let fixtures = match &options.bcs_fixtures {
        Some(path) => bcs::Fixtures::from_path(path)?,
        None => bcs::Fixtures::builtin(),
    };
    let secrets = secrets::Secrets {
        bcs: secrets::Accepted::new(credentials.bcs_client_secret.clone()),
        kiban: secrets::Accepted::new(credentials.kiban_api_key.clone()),
        daviplata: secrets::Accepted::new(credentials.daviplata_client_secret.clone()),
    };
    let bcs_state = bcs::State::new(
        fixtures,
        credentials.bcs_client_id.clone(),
        secrets.bcs.clone(),
    )
    .with_token_ttl(options.bcs_token_ttl);
    let kiban = kiban::Kiban::new(secrets.kiban.clone());
    let daviplata = daviplata::Daviplata::new(daviplata::Settings {
        client_id: credentials.daviplata_client_id.clone(),
        client_secret: secrets.daviplata.clone(),
        contracts: credentials.daviplata_contracts.clone(),
        token_ttl: options.daviplata_token_ttl,
        otp_ttl: DAVIPLATA_OTP_TTL,
    });
    Ok([
        faults.wrap(Provider::Bcs, bcs::router(bcs_state.clone())),
        faults.wrap(Provider::Kiban, kiban::router(kiban.clone())),
        faults.wrap(Provider::Daviplata, daviplata::router(daviplata.clone())),
        admin::router(
            faults,
            admin::Emulators {
                daviplata,
                kiban,
                secrets,
            },
            bcs::admin_router(bcs_state),
        ),
    ])
}

async fn bind(host: IpAddr, port: u16, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding the {name} listener to {host} port {port}"))
}

/// The URL clients use: a wildcard listener is reached through loopback.
/// When something issued now with `lifetime` expires; a lifetime past the clock is none,
/// and the thing is expired at once.
fn later(lifetime: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(lifetime).unwrap_or(now)
}

fn http_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}
