//! `pasarela dev`: the embedded sandbox plus every service configured against it, so a new
//! user has all three services answering `grpcurl` with one command.

use std::path::Path;

use figment::providers::Serialized;
use pasarela_sandbox::{Sandbox, SandboxOptions};
use serde_json::json;

use crate::config::Config;

/// Where the sandbox of `pasarela dev` writes its certificates.
pub fn sandbox_options(dir: &Path) -> SandboxOptions {
    SandboxOptions {
        pki_dir: dir.join("pki"),
        ..SandboxOptions::default()
    }
}

/// pasarela's configuration pointed at `sandbox`: loopback addresses, human-readable
/// logs, the dev auth policy, and each provider's sandbox URL, credentials and PKI.
pub fn config_for(sandbox: &Sandbox, config_file: Option<&Path>) -> anyhow::Result<Config> {
    let mut config = Config::load_over(Serialized::defaults(dev_values(sandbox)), config_file)?;
    config.auth = pasarela_auth::Config::dev();
    Ok(config)
}

/// `pasarela dev` accepts tokens anyone can mint, so it fronts its own sandbox only: a
/// configuration file or variable pointing a provider section elsewhere (where real
/// credentials would be spent) stops it.
pub fn ensure_sandbox_only(config: &Config, sandbox: &Sandbox) -> anyhow::Result<()> {
    let sections = [
        (
            "security.base_url",
            config.security.as_ref().map(|s| s.base_url.as_str()),
            sandbox.bcs_url.as_str(),
        ),
        (
            "bureau.base_url",
            config.bureau.as_ref().map(|s| s.base_url.as_str()),
            sandbox.kiban_url.as_str(),
        ),
        (
            "recurring_payments.base_url",
            config
                .recurring_payments
                .as_ref()
                .map(|s| s.base_url.as_str()),
            sandbox.daviplata_url.as_str(),
        ),
    ];
    for (key, given, own) in sections {
        if let Some(given) = given {
            anyhow::ensure!(
                given.trim_end_matches('/') == own.trim_end_matches('/'),
                "pasarela dev fronts its own sandbox only, and {key} points elsewhere; use \
                 `pasarela serve` with real credentials and real authentication"
            );
        }
    }
    // A path is joined to the base URL: `@host/...` or `//host/...` would leave it.
    let paths_are_the_sandboxs = config
        .security
        .as_ref()
        .is_none_or(|s| s.paths == pasarela_security::Paths::default())
        && config
            .bureau
            .as_ref()
            .is_none_or(|s| s.path == pasarela_bureau::config::default_path())
        && config
            .recurring_payments
            .as_ref()
            .is_none_or(|s| s.paths == pasarela_recurring_payments::Paths::default());
    anyhow::ensure!(
        paths_are_the_sandboxs,
        "pasarela dev fronts its own sandbox only, with its own operation paths; a configured \
         path could lead elsewhere: use `pasarela serve`"
    );
    Ok(())
}

fn dev_values(sandbox: &Sandbox) -> serde_json::Value {
    let credentials = &sandbox.credentials;
    json!({
        "listen": "127.0.0.1:50051",
        "admin_listen": "127.0.0.1:9090",
        "log": { "format": "pretty" },
        "shutdown": { "drain_delay": "0s" },
        // One developer settles their own unknown outcomes.
        "operations": { "approvals": 1 },
        "security": {
            "base_url": sandbox.bcs_url,
            "client_id": credentials.bcs_client_id,
            "client_secret": credentials.bcs_client_secret,
            // The BCS emulator wants a token header and accepts any non-empty one.
            "access_token": "sandbox-bcs-token",
            "environment": "sandbox",
            // The emulator counts S14's records from one, as it does by default.
            "holds_record_base": "one",
        },
        "bureau": {
            "base_url": sandbox.kiban_url,
            "api_key": credentials.kiban_api_key,
            "environment": "sandbox",
        },
        "recurring_payments": {
            "base_url": sandbox.daviplata_url,
            "client_id": credentials.daviplata_client_id,
            "client_secret": credentials.daviplata_client_secret,
            // The spec's example id, which the sandbox (like Daviplata's lab) accepts.
            "payment_provider_id": "00000001",
            "environment": "sandbox",
            // The sandbox hands the OTP back like Daviplata's lab, so a developer with
            // grpcurl can finish an activation.
            "lab_otp_passthrough": true,
            "outbound": { "http": {
                "ca_file": sandbox.pki.ca_cert,
                "cert_file": sandbox.pki.client_cert,
                "key_file": sandbox.pki.client_key,
            }},
        },
    })
}
