//! The command line: `serve`, `migrate`, `dev`, `sandbox`, `health`, `probe` and `token`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::{app, dev, drift, probe, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "pasarela",
    version,
    about = "gRPC gateway to Banco Caja Social, Kiban and Daviplata"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the services named in configuration (one, several or all) on one port.
    Serve {
        /// TOML configuration file; `PASARELA_*` variables override it.
        #[arg(long, env = "PASARELA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Bring the ledger schema of each money-moving service whose records are in
    /// PostgreSQL up to date (all pending migrations of a service in one transaction),
    /// then exit; `serve` refuses an older schema unless `migrate_at_start` is set.
    Migrate {
        /// TOML configuration file; `PASARELA_*` variables override it.
        #[arg(long, env = "PASARELA_CONFIG")]
        config: Option<PathBuf>,
        /// Stop at this schema version instead of the latest this build knows.
        #[arg(long)]
        to: Option<i32>,
    },
    /// All three services plus the sandbox providers, for one machine.
    Dev {
        /// gRPC address.
        #[arg(long, env = "PASARELA_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Optional TOML file overriding the dev configuration.
        #[arg(long, env = "PASARELA_CONFIG")]
        config: Option<PathBuf>,
        /// Where the sandbox keeps its dev certificates.
        #[arg(long, env = "PASARELA_DEV_DIR", default_value = ".pasarela")]
        dir: PathBuf,
    },
    /// The provider emulators alone.
    Sandbox(pasarela_sandbox::SandboxArgs),
    /// Ask a running pasarela whether it is serving (exit 0) or not (exit 1): a health
    /// check for images whose runtime has no shell or grpcurl.
    Health {
        /// The admin (plaintext) address of the process.
        #[arg(long, default_value = "127.0.0.1:9090")]
        addr: SocketAddr,
        /// A service name; empty asks about the whole process.
        #[arg(long, default_value = "")]
        service: String,
    },
    /// Ask the configured providers (from your own network) which reading of their specs
    /// they play, and whether this configuration matches: a table, and exit 1 on a
    /// mismatch. Every check is a harmless read unless `--move-money` is given.
    Probe {
        /// TOML configuration file; `PASARELA_*` variables override it.
        #[arg(long, env = "PASARELA_CONFIG")]
        config: Option<PathBuf>,
        /// Also run the checks that move money in Daviplata's lab: one activation of
        /// `--lab-wallet` per spelling of D2's document number, and a payment of
        /// `--lab-amount` sent twice under one `transactionId` and once under another,
        /// each subscription cancelled after. Refused, before anything is sent, unless
        /// `recurring_payments.environment = "sandbox"`.
        #[arg(long, requires_all = ["lab_wallet", "lab_commerce"])]
        move_money: bool,
        /// The lab wallet to subscribe and charge: TYPE:NUMBER:PHONE.
        #[arg(long, requires = "move_money")]
        lab_wallet: Option<String>,
        /// The merchant the lab subscription is for: ID[:NAME[:CATEGORY]].
        #[arg(long, requires = "move_money")]
        lab_commerce: Option<String>,
        /// Each charge of the money-moving checks, in COP minor units.
        #[arg(long, default_value_t = 100)]
        lab_amount: i64,
        /// Probe again every this long (`10m`) and never exit, exporting each check's
        /// reading on `--metrics-listen` (`pasarela_provider_reading`) for the drift alerts.
        #[arg(long, conflicts_with = "move_money", value_parser = humantime_serde::re::humantime::parse_duration)]
        every: Option<Duration>,
        /// Where `--every` serves `/metrics`.
        #[arg(long, default_value = "0.0.0.0:9091", requires = "every")]
        metrics_listen: SocketAddr,
    },
    /// Mint a bearer token that `pasarela dev` accepts.
    Token {
        /// A scope to grant (repeatable); `*` grants every RPC.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// The token's subject.
        #[arg(long, default_value = "dev")]
        subject: String,
        /// Lifetime, e.g. `1h`, `15m`.
        #[arg(long, default_value = "1h", value_parser = humantime_serde::re::humantime::parse_duration)]
        ttl: Duration,
        /// A claim of the token, `name=value` (repeatable): `azp=billing` names the
        /// application, a tenant's end-user claim binds a customer (docs/auth.md, "Tenants").
        #[arg(long = "claim", value_parser = parse_claim)]
        claims: Vec<(String, String)>,
    },
}

/// `name=value` of `pasarela token --claim`.
fn parse_claim(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} is not name=value"))?;
    Ok((name.trim().to_owned(), value.to_owned()))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(config.as_deref())?;
            config.refuse_unsafe_settings_in_production()?;
            let telemetry = telemetry::init(&config.log)?;
            let result = app::start(config).await?.run_until(stop_signal()).await;
            telemetry.shutdown().await;
            result
        }
        Command::Migrate { config, to } => {
            let config = Config::load(config.as_deref())?;
            for (section, ledger) in config.ledgers() {
                let migrated = pasarela_idempotency::migrate(ledger, to).await?;
                println!(
                    "{section}: schema {} at version {} (was {})",
                    ledger.schema, migrated.to, migrated.from
                );
            }
            Ok(())
        }
        Command::Dev {
            listen,
            config,
            dir,
        } => {
            anyhow::ensure!(
                listen.ip().is_loopback(),
                "pasarela dev accepts tokens anyone can mint: it listens on loopback only, not \
                 {listen}; deploy with `pasarela serve`"
            );
            let sandbox = pasarela_sandbox::Sandbox::start(dev::sandbox_options(&dir)).await?;
            let mut config = dev::config_for(&sandbox, config.as_deref())?;
            dev::ensure_sandbox_only(&config, &sandbox)?;
            config.listen = listen;
            let telemetry = telemetry::init(&config.log)?;
            let running = app::start(config).await?;
            print_dev_banner(&running, &sandbox);
            let result = running.run_until(stop_signal()).await;
            telemetry.shutdown().await;
            result
        }
        Command::Sandbox(args) => pasarela_sandbox::run_standalone(args).await,
        Command::Probe {
            config,
            move_money,
            lab_wallet,
            lab_commerce,
            lab_amount,
            every,
            metrics_listen,
        } => {
            let config = Config::load(config.as_deref())?;
            if let Some(every) = every {
                let _telemetry = telemetry::init(&config.log)?;
                return drift::watch(config, every, metrics_listen, stop_signal()).await;
            }
            let lab = match (move_money, lab_wallet, lab_commerce) {
                (true, Some(wallet), Some(commerce)) => {
                    Some(probe::lab_account(&wallet, &commerce, lab_amount)?)
                }
                _ => None,
            };
            let findings = probe::findings(&config, lab.as_ref()).await?;
            print!("{}", probe::table(&findings));
            let mismatched: Vec<&str> = findings
                .iter()
                .filter(|finding| finding.matches() == Some(false))
                .map(|finding| finding.key)
                .collect();
            anyhow::ensure!(
                mismatched.is_empty(),
                "the configuration does not match the provider: {}",
                mismatched.join(", ")
            );
            Ok(())
        }
        Command::Health { addr, service } => check_health(addr, service).await,
        Command::Token {
            scopes,
            subject,
            ttl,
            claims,
        } => {
            let extra = claims
                .into_iter()
                .map(|(name, value)| (name, serde_json::Value::String(value)))
                .collect();
            let token = pasarela_auth::mint_dev_token_with(
                &pasarela_auth::Config::dev(),
                &subject,
                &scopes,
                ttl,
                &extra,
            )?;
            println!("{token}");
            Ok(())
        }
    }
}

fn print_dev_banner(running: &app::Running, sandbox: &pasarela_sandbox::Sandbox) {
    let grpc = running.grpc_addr;
    println!("pasarela dev: gRPC on {grpc} (security, bureau, recurring-payments)");
    if let Some(admin) = running.admin_addr {
        println!("metrics: http://{admin}/metrics");
    }
    println!(
        "sandbox: bcs {} kiban {} daviplata {} admin {}",
        sandbox.bcs_url, sandbox.kiban_url, sandbox.daviplata_url, sandbox.admin_url
    );
    println!(
        "try: grpcurl -plaintext -H \"authorization: Bearer $(pasarela token --scope '*')\" {grpc} list"
    );
}

async fn check_health(addr: SocketAddr, service: String) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service })
        .await?
        .into_inner()
        .status();
    anyhow::ensure!(status == ServingStatus::Serving, "not serving: {status:?}");
    println!("SERVING");
    Ok(())
}

/// SIGTERM (Kubernetes) or Ctrl-C (a terminal).
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
