//! `pasarela sandbox`: the sandbox as a process of its own, for a team's CI the way
//! stripe-mock or LocalStack are run. Prints one `name=value` line per URL and certificate
//! path, then serves until Ctrl-C or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Sandbox, SandboxCredentials, SandboxOptions};

/// Flags of `pasarela sandbox`.
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address every listener binds to (0.0.0.0 to reach it from other containers).
    #[arg(long, env = "PASARELA_SANDBOX_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port of the admin listener (faults, counters, helpers); 0 for any free port.
    #[arg(long, env = "PASARELA_SANDBOX_ADMIN_PORT", default_value_t = 7700)]
    pub admin_port: u16,
    /// Port of the Banco Caja Social emulator; 0 for any free port.
    #[arg(long, env = "PASARELA_SANDBOX_BCS_PORT", default_value_t = 7701)]
    pub bcs_port: u16,
    /// Port of the Kiban emulator; 0 for any free port.
    #[arg(long, env = "PASARELA_SANDBOX_KIBAN_PORT", default_value_t = 7702)]
    pub kiban_port: u16,
    /// Port of the Daviplata emulator (HTTPS, mutual TLS); 0 for any free port.
    #[arg(long, env = "PASARELA_SANDBOX_DAVIPLATA_PORT", default_value_t = 7703)]
    pub daviplata_port: u16,
    /// Your own Banco Caja Social fixtures (same format as the builtin set).
    #[arg(long, env = "PASARELA_SANDBOX_BCS_FIXTURES")]
    pub bcs_fixtures: Option<PathBuf>,
    /// Folder of the dev CA and the Daviplata server and client certificates; reused
    /// across restarts while valid, created otherwise.
    #[arg(
        long,
        env = "PASARELA_SANDBOX_PKI_DIR",
        default_value = "pasarela-sandbox-pki"
    )]
    pub pki_dir: PathBuf,
    /// Lifetime of Daviplata access tokens, in seconds.
    #[arg(
        long,
        env = "PASARELA_SANDBOX_DAVIPLATA_TOKEN_TTL",
        default_value_t = 900
    )]
    pub daviplata_token_ttl_secs: u64,
    /// Lifetime of the Banco Caja Social access tokens the sandbox issues, in seconds.
    #[arg(long, env = "PASARELA_SANDBOX_BCS_TOKEN_TTL", default_value_t = 900)]
    pub bcs_token_ttl_secs: u64,
}

impl SandboxArgs {
    fn options(self) -> SandboxOptions {
        SandboxOptions {
            host: self.host,
            bcs_port: self.bcs_port,
            kiban_port: self.kiban_port,
            daviplata_port: self.daviplata_port,
            admin_port: self.admin_port,
            bcs_fixtures: self.bcs_fixtures,
            pki_dir: self.pki_dir,
            daviplata_token_ttl: Duration::from_secs(self.daviplata_token_ttl_secs),
            bcs_token_ttl: Duration::from_secs(self.bcs_token_ttl_secs),
            credentials: SandboxCredentials::default(),
        }
    }
}

/// Starts the sandbox, prints where everything is, and serves until Ctrl-C or SIGTERM.
pub async fn run_standalone(args: SandboxArgs) -> anyhow::Result<()> {
    let sandbox = Sandbox::start(args.options()).await?;
    for (name, value) in banner(&sandbox) {
        println!("{name}={value}");
    }
    stopped().await?;
    sandbox.shutdown().await;
    Ok(())
}

/// What a user needs to point clients at the sandbox, in a stable order.
fn banner(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    let path = |p: &PathBuf| p.display().to_string();
    vec![
        ("admin_url", sandbox.admin_url.clone()),
        ("bcs_url", sandbox.bcs_url.clone()),
        ("kiban_url", sandbox.kiban_url.clone()),
        ("daviplata_url", sandbox.daviplata_url.clone()),
        ("daviplata_ca_cert", path(&sandbox.pki.ca_cert)),
        ("daviplata_client_cert", path(&sandbox.pki.client_cert)),
        ("daviplata_client_key", path(&sandbox.pki.client_key)),
    ]
}

async fn stopped() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn flags_become_options() {
        let cli = Cli::parse_from([
            "sandbox",
            "--host",
            "0.0.0.0",
            "--daviplata-port",
            "0",
            "--pki-dir",
            "pki",
            "--daviplata-token-ttl-secs",
            "5",
        ]);
        let options = cli.args.options();
        assert_eq!(options.host.to_string(), "0.0.0.0");
        assert_eq!((options.admin_port, options.daviplata_port), (7700, 0));
        assert_eq!(options.pki_dir, PathBuf::from("pki"));
        assert_eq!(options.daviplata_token_ttl, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_banner_names_every_url_and_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::start(SandboxOptions {
            pki_dir: dir.path().to_path_buf(),
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        let lines = banner(&sandbox);
        let names: Vec<&str> = lines.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "admin_url",
                "bcs_url",
                "kiban_url",
                "daviplata_url",
                "daviplata_ca_cert",
                "daviplata_client_cert",
                "daviplata_client_key"
            ]
        );
        assert!(lines[3].1.starts_with("https://localhost:"));
        assert!(std::path::Path::new(&lines[4].1).is_file());
    }
}
