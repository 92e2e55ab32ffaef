//! `spawn_app`: the sandbox and pasarela started in-process on ephemeral loopback ports,
//! clients with a dev token, captured logs, and the path of the `pasarela` binary for the
//! tests that need a real process.
#![allow(dead_code)] // each test module uses its own part of the harness

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::LazyLock;
use std::time::Duration;

use pasarela_sandbox::Sandbox;
use pasarela_server::Config;
use pasarela_server::app::Running;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

pub mod bank;
pub mod corpus;
pub mod http2;
pub mod process;
pub mod recurring_payments;
pub mod replica;
pub mod security;
mod verbs;

pub use verbs::{body_of, cc, cop, pesos};

use pasarela_test_support::captured_logs;
pub use pasarela_test_support::captured_logs::logs;
pub use pasarela_test_support::postgres_server::TestPostgres;
pub use pasarela_test_support::redis_server::TestRedis;
pub use pasarela_test_support::tools::{self, path as tool};

/// The record key of the tests' shared ledgers: every replica of a test shares it.
pub const RECORD_KEY: &str = "the e2e tests' idempotency record key, 32+ bytes";

/// The idempotency section of a service whose ledger is in `servers` (a primary, or a
/// primary and its standby: the one taking writes is found), in its own `schema`.
pub fn ledger(servers: &[&TestPostgres], schema: &str) -> serde_json::Value {
    serde_json::json!({
        "store": "postgres",
        "record_key": RECORD_KEY,
        "postgres": ledger_connection(servers, schema),
    })
}

/// The `idempotency.postgres` section of [`ledger`].
pub fn ledger_connection(servers: &[&TestPostgres], schema: &str) -> serde_json::Value {
    serde_json::json!({
        "url": TestPostgres::url(servers),
        "password_file": servers[0].password_file(),
        "ca_file": servers[0].ca_file(),
        "schema": schema,
        "migrate_at_start": true,
    })
}

pub struct TestApp {
    pub sandbox: Sandbox,
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    running: Option<Running>,
    channel: Channel,
    /// Files the app reads while it runs (the sandbox's PKI), removed with it.
    files: Vec<tempfile::TempDir>,
}

/// The sandbox plus every service, configured as `pasarela dev` does.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with the configuration changed by `configure` before start.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    capture_logs();
    let (sandbox, pki) = sandbox().await;
    spawn_app_on(sandbox, configure).await.keeping(pki)
}

/// The sandbox alone, its dev PKI in a folder that lives as long as the returned guard.
pub async fn sandbox() -> (Sandbox, tempfile::TempDir) {
    sandbox_with(|_| {}).await
}

/// Like [`sandbox`], its options changed by `adjust` (a token's lifetime).
pub async fn sandbox_with(
    adjust: impl FnOnce(&mut pasarela_sandbox::SandboxOptions),
) -> (Sandbox, tempfile::TempDir) {
    let pki = tempfile::tempdir().expect("temp dir");
    let mut options = pasarela_server::dev::sandbox_options(pki.path());
    adjust(&mut options);
    let sandbox = Sandbox::start(options).await.expect("sandbox starts");
    (sandbox, pki)
}

/// pasarela in front of an already running `sandbox` (two replicas sharing one sandbox).
pub async fn spawn_app_on(sandbox: Sandbox, configure: impl FnOnce(&mut Config)) -> TestApp {
    capture_logs();
    let mut config = pasarela_server::dev::config_for(&sandbox, None).expect("dev config");
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = Some(([127, 0, 0, 1], 0).into());
    configure(&mut config);
    let running = pasarela_server::app::start(config)
        .await
        .expect("pasarela starts");
    let addr = running.grpc_addr;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    TestApp {
        sandbox,
        addr,
        admin_addr: running.admin_addr,
        running: Some(running),
        channel,
        files: Vec::new(),
    }
}

impl TestApp {
    /// Keeps `files` (the folder of the sandbox's PKI) until the app is dropped.
    pub fn keeping(mut self, files: tempfile::TempDir) -> TestApp {
        self.files.push(files);
        self
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A token minted for the dev auth policy with `scopes`.
    pub fn token(&self, scopes: &[&str]) -> String {
        self.token_for("e2e", scopes)
    }

    /// A dev token of the caller `subject` with `scopes`.
    pub fn token_for(&self, subject: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        pasarela_auth::mint_dev_token(
            &pasarela_auth::Config::dev(),
            subject,
            &scopes,
            Duration::from_secs(600),
        )
        .expect("dev token")
    }

    /// Adds a bearer token with every scope to each call.
    pub fn bearer(&self) -> Bearer {
        bearer_with(&self.token(&["*"]))
    }

    /// What the admin port exposes on `/metrics`.
    pub async fn metrics(&self) -> String {
        let admin = self.admin_addr.expect("admin port");
        scrape(&format!("http://{admin}/metrics")).await
    }

    /// Everything logged in this test process so far.
    pub fn logs(&self) -> String {
        logs()
    }

    /// Fails if any of `secrets` appears in what the process logged so far, as a value of
    /// its own: a random six-digit code may also sit by chance inside a longer number (a
    /// latency, a request id), which is no leak.
    #[track_caller]
    pub fn assert_not_logged(&self, secrets: &[&str]) {
        let logs = self.logs();
        for secret in secrets {
            let leaked: Vec<String> = logs
                .lines()
                .filter(|line| contains_token(line, secret))
                .map(|line| line.replace(secret, "<the secret>"))
                .collect();
            assert!(leaked.is_empty(), "a secret reached the logs: {leaked:#?}");
        }
    }

    /// Drains and stops pasarela (the sandbox stops when dropped).
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
    }
}

/// The bearer token on every call: a named interceptor, so that client types can be spelt.
#[derive(Clone)]
pub struct Bearer(pub MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A dev token of every scope for `subject`: a principal of its own.
pub fn principal_token(subject: &str) -> String {
    pasarela_auth::mint_dev_token(
        &pasarela_auth::Config::dev(),
        subject,
        &["*".to_owned()],
        std::time::Duration::from_secs(600),
    )
    .expect("dev token")
}

/// A dev token of every scope for `subject` with `claims` (`azp`, an end user's document).
pub fn token_with_claims(subject: &str, claims: &[(&str, &str)]) -> String {
    let extra = claims
        .iter()
        .map(|(name, value)| ((*name).to_owned(), serde_json::Value::from(*value)))
        .collect();
    pasarela_auth::mint_dev_token_with(
        &pasarela_auth::Config::dev(),
        subject,
        &["*".to_owned()],
        std::time::Duration::from_secs(600),
        &extra,
    )
    .expect("dev token")
}

/// Another pasarela in front of a running app's sandbox, configured apart (a caller the
/// first one never saw).
pub struct Beside {
    running: Running,
    channel: Channel,
}

impl Beside {
    pub async fn start(sandbox: &Sandbox, configure: impl FnOnce(&mut Config)) -> Beside {
        let mut config = pasarela_server::dev::config_for(sandbox, None).expect("dev config");
        config.listen = ([127, 0, 0, 1], 0).into();
        config.admin_listen = None;
        configure(&mut config);
        let running = pasarela_server::app::start(config)
            .await
            .expect("pasarela starts");
        let channel = Endpoint::from_shared(format!("http://{}", running.grpc_addr))
            .expect("endpoint")
            .connect_lazy();
        Beside { running, channel }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub async fn stop(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

/// The `ErrorInfo.metadata` value `key` of a refusal, or empty.
pub fn error_metadata(status: &tonic::Status, key: &str) -> String {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get(key).cloned())
        .unwrap_or_default()
}

/// An interceptor sending `token` as the bearer of every call.
pub fn bearer_with(token: &str) -> Bearer {
    Bearer(format!("Bearer {token}").parse().expect("ascii token"))
}

/// Every log line of the process as `pasarela serve` writes it, pasarela's own crates at
/// TRACE, so that tests read the lines operators get and can prove no secret reaches a log.
fn capture_logs() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    captured_logs::capture_with(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "info,audit=trace,pasarela=trace,pasarela_server=trace,pasarela_auth=trace,\
             pasarela_provider=trace,pasarela_security=trace,pasarela_bureau=trace,\
             pasarela_recurring_payments=trace,pasarela_sandbox=debug",
        );
        let lines = pasarela_server::telemetry::json_layer(|| captured_logs::LogWriter);
        let _ = tracing_subscriber::registry()
            .with(lines.with_filter(filter))
            .try_init();
    });
}

/// The metrics text at `url`.
pub async fn scrape(url: &str) -> String {
    reqwest::get(url)
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text")
}

/// The value of one `series` (its name and labels, as exposed) in a metrics text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn contains_token(haystack: &str, needle: &str) -> bool {
    let bytes = haystack.as_bytes();
    let at = |i: Option<usize>| i.and_then(|i| bytes.get(i)).copied();
    let alnum = |i: Option<usize>| at(i).is_some_and(|b| b.is_ascii_alphanumeric());
    let digit = |i: Option<usize>| at(i).is_some_and(|b| b.is_ascii_digit());
    // Digits after a decimal point, or before one, belong to a longer number (a latency).
    let point = |i: Option<usize>| at(i) == Some(b'.');
    haystack.match_indices(needle).any(|(start, _)| {
        let before = start.checked_sub(1);
        let after = start + needle.len();
        let fraction = point(before) && digit(before.and_then(|i| i.checked_sub(1)));
        let integer = point(Some(after)) && digit(Some(after + 1));
        !alnum(before) && !alnum(Some(after)) && !fraction && !integer
    })
}

#[test]
fn the_leak_check_finds_a_value_of_its_own_and_not_digits_of_a_longer_number() {
    assert!(contains_token("otc=123456 sent", "123456"));
    assert!(contains_token("the code was 123456.", "123456"));
    assert!(!contains_token("latency_ms=0.123456", "123456"));
    assert!(!contains_token("latency_ms=123456.25", "123456"));
    assert!(!contains_token("request 91234567", "123456"));
}

/// The `ErrorInfo` reason of a refusal, or empty when it carries none.
pub fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Calls the sandbox's admin API; a refusal fails the test. Answers the JSON body, or null.
pub async fn admin(
    sandbox: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let request = reqwest::Client::new().request(method, format!("{}{path}", sandbox.admin_url));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.expect("sandbox admin answers");
    assert!(
        response.status().is_success(),
        "admin {path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(serde_json::Value::Null)
}

/// The `pasarela` binary the process-level tests run: `PASARELA_BIN`, or the workspace's
/// own, built once per run of the tests (nothing to do when `./scripts/test` built it), so
/// that a plain `cargo test` neither fails for want of it nor runs a stale one.
pub fn pasarela_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PASARELA_BIN") {
        return path.into();
    }
    static BUILT: LazyLock<PathBuf> = LazyLock::new(build_pasarela);
    BUILT.clone()
}

/// `cargo build` of the `pasarela` binary, in the profile and target directory of this
/// test binary.
fn build_pasarela() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--locked",
            "-p",
            "pasarela-server",
            "--bin",
            "pasarela",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let output = build.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build of the pasarela binary failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir.join("pasarela")
}
