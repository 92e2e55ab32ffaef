//! `pasarela serve` replicas as real processes in front of one sandbox and one PostgreSQL
//! ledger, for the tests that kill them: their configuration, their caller's token, kill
//! and restart.

use std::time::Duration;

use serde_json::json;
use tonic::transport::Channel;

use super::{Bearer, TestPostgres, bearer_with, ledger_connection};

/// A signing secret of this test's own: the replicas are `pasarela serve` processes.
pub const REPLICA_SECRET: &str = "money-once-replicas-hs256-secret-for-tests-only";

/// Every scope the kill test's caller needs, method by method.
pub const REPLICA_SCOPES: &[&str] = &[
    "pasarela.recurring_payments.v1.RecurringPaymentsService/RequestSubscription",
    "pasarela.recurring_payments.v1.RecurringPaymentsService/ActivateSubscription",
    "pasarela.recurring_payments.v1.RecurringPaymentsService/ChargeSubscription",
    "pasarela.security.v1.SecurityService/RequestWithdrawalOtp",
    "pasarela.security.v1.SecurityService/WithdrawWithOtp",
    "pasarela.operations.v1.OperationsService/ListUnknownOutcomes",
    "pasarela.operations.v1.OperationsService/SettleUnknownOutcome",
    "pasarela.operations.v1.OperationsService/ProposeSettlement",
    "pasarela.operations.v1.OperationsService/ApproveSettlement",
];

/// One `pasarela serve` process of security and recurring payments in front of
/// `sandbox`, its idempotency in the PostgreSQL `ledger` (a primary, or a primary and its
/// standby) with a 2 s lease; its log lines in `replica.log` of its own directory; killed
/// on drop.
pub struct Replica {
    child: std::process::Child,
    grpc: std::net::SocketAddr,
    dir: tempfile::TempDir,
}

impl Replica {
    pub async fn start(sandbox: &pasarela_sandbox::Sandbox, ledger: &[&TestPostgres]) -> Replica {
        let grpc: std::net::SocketAddr =
            ([127, 0, 0, 1], crate::support::process::free_port()).into();
        let dir = tempfile::tempdir().expect("temp dir");
        write_config(dir.path(), sandbox, ledger, grpc);
        let replica = Replica {
            child: spawn(dir.path()),
            grpc,
            dir,
        };
        replica.serving().await;
        replica
    }

    /// Starts the process again, on the same address with the same configuration.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.dir.path());
        self.serving().await;
    }

    /// Waits for the replica to answer health, for up to half a minute (a loaded machine
    /// starts a process, connects its ledger and checks its schema slowly).
    pub async fn serving(&self) {
        for _ in 0..600 {
            let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc))
                .expect("endpoint");
            if let Ok(channel) = endpoint.connect().await {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                let check = tonic_health::pb::HealthCheckRequest::default();
                if health.check(check).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the replica on {} never served", self.grpc);
    }

    pub fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc))
            .expect("endpoint")
            .connect_lazy()
    }

    /// `kill -9`: no drain, no last write.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pasarela serve` with the configuration in `dir`, its log lines appended to a file there.
fn spawn(dir: &std::path::Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("replica.log"))
        .expect("log file");
    std::process::Command::new(crate::support::pasarela_bin())
        .arg("serve")
        .env_clear()
        .env("PASARELA_CONFIG", dir.join("pasarela.toml"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("pasarela serve starts")
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes a replica's configuration to `pasarela.toml` in `dir`; answers its path.
pub fn write_config(
    dir: &std::path::Path,
    sandbox: &pasarela_sandbox::Sandbox,
    ledger: &[&TestPostgres],
    grpc: std::net::SocketAddr,
) -> std::path::PathBuf {
    let file = dir.join("pasarela.toml");
    std::fs::write(&file, replica_config(sandbox, ledger, grpc)).expect("config");
    file
}

fn replica_config(
    sandbox: &pasarela_sandbox::Sandbox,
    ledger: &[&TestPostgres],
    grpc: std::net::SocketAddr,
) -> String {
    let credentials = &sandbox.credentials;
    let pki = &sandbox.pki;
    format!(
        r#"services = ["security", "recurring-payments"]
listen = "{grpc}"
admin_listen = "127.0.0.1:{admin}"

[shutdown]
drain_delay = "0s"

[auth]
issuer = "{issuer}"
audience = "{audience}"
hs256_secret = "{REPLICA_SECRET}"
allow_hs256 = true
untenanted = "allow"

[auth.methods]
"*" = ["{{method}}"]

[security]
base_url = "{bcs}"
client_id = "{bcs_id}"
client_secret = "{bcs_secret}"
access_token = "{token}"
environment = "sandbox"

[security.outbound.http]
timeout = "1s"

[security.idempotency]
store = "postgres"
lease = "2s"
record_key = "{record_key}"

[security.idempotency.postgres]
{security_ledger}

[security.withdrawal_reconciliation]
not_found = [{{ http = 404, code = "NO FOUND", type = "BDA" }}]

[recurring_payments]
base_url = "{daviplata}"
client_id = "{davi_id}"
client_secret = "{davi_secret}"
payment_provider_id = "00000001"
environment = "sandbox"
lab_otp_passthrough = true

[recurring_payments.outbound.http]
timeout = "1s"
ca_file = "{ca}"
cert_file = "{cert}"
key_file = "{key}"

[recurring_payments.idempotency]
store = "postgres"
lease = "2s"
record_key = "{record_key}"

[recurring_payments.idempotency.postgres]
{payments_ledger}
"#,
        security_ledger = toml_lines(&ledger_connection(ledger, "security")),
        payments_ledger = toml_lines(&ledger_connection(ledger, "recurring_payments")),
        record_key = crate::support::RECORD_KEY,
        admin = crate::support::process::free_port(),
        issuer = pasarela_auth::DEV_ISSUER,
        audience = pasarela_auth::DEV_AUDIENCE,
        bcs = sandbox.bcs_url,
        bcs_id = credentials.bcs_client_id,
        bcs_secret = credentials.bcs_client_secret,
        token = crate::support::security::TOKEN,
        daviplata = sandbox.daviplata_url,
        davi_id = credentials.daviplata_client_id,
        davi_secret = credentials.daviplata_client_secret,
        ca = pki.ca_cert.display(),
        cert = pki.client_cert.display(),
        key = pki.client_key.display(),
    )
}

/// A flat JSON object as TOML `key = value` lines (JSON's strings and booleans are TOML's).
fn toml_lines(object: &serde_json::Value) -> String {
    let object = object.as_object().expect("an object");
    object
        .iter()
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect()
}

/// A caller of the replicas, with a token their auth section accepts.
pub fn replica_bearer() -> Bearer {
    replica_bearer_for("e2e")
}

/// [`replica_bearer`] of the caller `subject`.
pub fn replica_bearer_for(subject: &str) -> Bearer {
    let auth: pasarela_auth::Config = serde_json::from_value(json!({
        "issuer": pasarela_auth::DEV_ISSUER,
        "audience": pasarela_auth::DEV_AUDIENCE,
        "hs256_secret": REPLICA_SECRET,
        "allow_hs256": true,
    }))
    .expect("auth section");
    let scopes: Vec<String> = REPLICA_SCOPES.iter().map(|s| s.to_string()).collect();
    let token = pasarela_auth::mint_dev_token(&auth, subject, &scopes, Duration::from_secs(600))
        .expect("token");
    bearer_with(&token)
}
