//! Credentials rotated without a restart: each provider secret (Banco Caja Social's client
//! secret, Kiban's API key, Daviplata's client secret) replaced in its file while callers
//! keep calling, the provider then withdrawing the old one, and not one call failing; the
//! record key rotated under a ledger, its old records still replayed; the metric saying
//! when each file was last loaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela_provider::Credential;
use serde_json::json;

use crate::support::recurring_payments::{
    self as rp, WALLET, charge, client as rp_client, lab_setup, subscribe,
};
use crate::support::security::{customer, status_request};
use crate::support::tools;
use crate::support::{
    TestApp, TestPostgres, metric, reason, sandbox_with, spawn_app_on, spawn_app_with,
};

/// How long the sandbox's Daviplata tokens live in the rotation under load.
const TOKEN_TTL: Duration = Duration::from_secs(3);

/// A credential file, replaced as a Secret volume replaces it: written aside, renamed.
fn write_secret(path: &Path, value: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, format!("{value}\n")).expect("secret written");
    std::fs::rename(&aside, path).expect("secret in place");
}

/// When pasarela last loaded `file`, from its metrics.
async fn loaded_at(app: &TestApp, file: &Path) -> Option<f64> {
    let series = format!(
        "pasarela_credential_loaded_timestamp_seconds{{file=\"{}\"}}",
        file.display()
    );
    metric(&app.metrics().await, &series)
}

/// Waits until pasarela has loaded `file` again after `before` (a call looks at it at
/// most once a second), for up to ten seconds.
async fn reloaded(app: &TestApp, file: &Path, before: f64) {
    for _ in 0..100 {
        if loaded_at(app, file).await.is_some_and(|at| at > before) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} was never loaded again", file.display());
}

/// Callers of the three services, calling until told to stop; every failure is kept.
struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    async fn start(app: &TestApp) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let mut payments = rp_client(app);
        subscribe(&mut payments, WALLET, 100_000_000).await;
        let mut tasks = Vec::new();
        for worker in 0..2 {
            let (stop, calls) = (stop.clone(), calls.clone());
            let mut security = SecurityServiceClient::with_interceptor(app.channel(), app.bearer());
            let mut bureau = BureauServiceClient::with_interceptor(app.channel(), app.bearer());
            let mut payments = payments.clone();
            tasks.push(tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request = status_request(&format!("{worker}{n:06}"), customer("1007641"));
                    if let Err(status) = security.get_password_status(request).await {
                        failures.push(format!("security: {status:?}"));
                    }
                    if let Err(status) = bureau.get_password_expiration(expiration()).await {
                        failures.push(format!("bureau: {status:?}"));
                    }
                    let key = format!("rotation-{worker}-{n}");
                    if let Err(status) = payments
                        .charge_subscription(charge(&key, WALLET, 100))
                        .await
                    {
                        failures.push(format!("recurring payments: {status:?}"));
                    }
                    calls.fetch_add(3, Ordering::Relaxed);
                }
                failures
            }));
        }
        Load { stop, calls, tasks }
    }

    /// Stops the callers; answers how many calls they made, and every failure.
    async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut failures = Vec::new();
        for task in self.tasks {
            failures.extend(task.await.expect("caller"));
        }
        (self.calls.load(Ordering::Relaxed), failures)
    }
}

fn expiration() -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: "PM00000001".into(),
        password: "Abc12345".into(),
        test_case_id: "663567bb713cf2110a110679".into(),
    }
}

/// The three provider secrets in files of `dir`, as a Deployment mounts them.
struct SecretFiles {
    bcs: PathBuf,
    kiban: PathBuf,
    daviplata: PathBuf,
}

impl SecretFiles {
    fn write(dir: &Path, sandbox: &pasarela_sandbox::SandboxCredentials) -> SecretFiles {
        let files = SecretFiles {
            bcs: dir.join("bcs-client-secret"),
            kiban: dir.join("kiban-api-key"),
            daviplata: dir.join("daviplata-client-secret"),
        };
        write_secret(&files.bcs, &sandbox.bcs_client_secret);
        write_secret(&files.kiban, &sandbox.kiban_api_key);
        write_secret(&files.daviplata, &sandbox.daviplata_client_secret);
        files
    }
}

fn from_file(path: &Path) -> Credential {
    Credential::from_file(path.to_owned()).expect("a credential file")
}

/// One provider's secret rotated as a bank team does it: the provider accepts the new one
/// beside the old, the Secret is replaced, pasarela loads it, the provider withdraws the
/// old one.
async fn rotate(app: &TestApp, provider: &str, file: &Path, old: &str, new: &str) {
    let before = loaded_at(app, file).await.expect("loaded at start");
    let accept = |values: Vec<&str>| json!({ "accepted": values });
    let path = format!("/secrets/{provider}");
    app.admin_send(reqwest::Method::PUT, &path, accept(vec![old, new]))
        .await;
    // The metric counts whole seconds: the new load must be seen to come later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write_secret(file, new);
    reloaded(app, file, before).await;
    app.admin_send(reqwest::Method::PUT, &path, accept(vec![new]))
        .await;
}

#[tokio::test]
async fn each_provider_secret_rotates_under_load_without_a_restart_or_a_failed_call() {
    let dir = tempfile::tempdir().expect("dir");
    let credentials = pasarela_sandbox::SandboxCredentials::default();
    let files = SecretFiles::write(dir.path(), &credentials);
    let (bcs, kiban, daviplata) = (
        from_file(&files.bcs),
        from_file(&files.kiban),
        from_file(&files.daviplata),
    );
    // Daviplata's secret is shown only for a token: short-lived tokens show it often.
    let (sandbox, pki) = sandbox_with(|options| options.daviplata_token_ttl = TOKEN_TTL).await;
    let app = spawn_app_on(sandbox, move |config| {
        lab_setup(config);
        // One member's password checked again and again: its budget is not what is tested.
        config.auth.secret_attempts = pasarela_auth::Budget {
            per_second: 10_000.0,
            burst: 10_000,
        };
        config.security.as_mut().expect("security").client_secret = bcs;
        config.bureau.as_mut().expect("bureau").api_key = kiban;
        let payments = config.recurring_payments.as_mut().expect("payments");
        payments.client_secret = daviplata;
    })
    .await
    .keeping(pki);
    let load = Load::start(&app).await;

    rotate(
        &app,
        "bcs",
        &files.bcs,
        &credentials.bcs_client_secret,
        "bcs-secret-2",
    )
    .await;
    rotate(
        &app,
        "kiban",
        &files.kiban,
        &credentials.kiban_api_key,
        "kiban-key-2",
    )
    .await;
    let old = &credentials.daviplata_client_secret;
    rotate(
        &app,
        "daviplata",
        &files.daviplata,
        old,
        "daviplata-secret-2",
    )
    .await;
    // Tokens fetched before the withdrawal live on at Daviplata, as at a real gateway:
    // past their lifetime, every call rides a token the new secret obtained.
    tokio::time::sleep(TOKEN_TTL + Duration::from_millis(500)).await;

    let (calls, failures) = load.stop().await;
    assert!(failures.is_empty(), "calls failed: {failures:#?}");
    assert!(calls > 30, "{calls} calls under load");
    // The old secrets are withdrawn: these calls can only pass with the new ones.
    let mut bureau = BureauServiceClient::with_interceptor(app.channel(), app.bearer());
    bureau
        .get_password_expiration(expiration())
        .await
        .expect("Kiban takes the new key");
    let mut payments = rp_client(&app);
    payments
        .charge_subscription(charge("after-rotation", WALLET, 100))
        .await
        .expect("Daviplata issues a token for the new secret");
    app.stop().await;
}

/// The record key rotated under a shared ledger: a retry of a charge made before the
/// rotation is replayed (its record opens and its fingerprint matches under the replaced
/// key), and Daviplata charged once. Without the overlap, the same retry is refused
/// rather than charged again.
#[tokio::test]
async fn a_rotated_record_key_still_replays_what_the_old_key_sealed() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    for overlap in [Duration::from_secs(3600), Duration::ZERO] {
        let db = TestPostgres::start().await;
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("record-key");
        write_secret(&file, "the record key before the rotation, 32+ bytes");
        let mut idempotency: pasarela_idempotency::IdempotencyConfig =
            serde_json::from_value(rp::ledger_store(&db)).expect("ledger");
        idempotency.record_key = Some(from_file(&file));
        idempotency.record_key_overlap = Some(overlap);
        let app = spawn_app_with(move |config| {
            lab_setup(config);
            config
                .recurring_payments
                .as_mut()
                .expect("payments")
                .idempotency = idempotency;
        })
        .await;
        let mut payments = rp_client(&app);
        subscribe(&mut payments, WALLET, 1_000_000).await;
        let first = payments
            .charge_subscription(charge("before-rotation", WALLET, 12_300))
            .await
            .expect("charged")
            .into_inner();

        let before = loaded_at(&app, &file).await.expect("loaded at start");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        write_secret(&file, "the record key after the rotation, 32+ bytes!");
        for n in 0..100 {
            // Fresh charges make pasarela look at the file.
            let fresh = format!("fresh-{n}");
            payments
                .charge_subscription(charge(&fresh, WALLET, 100))
                .await
                .expect("a fresh key is charged under the new record key");
            if loaded_at(&app, &file).await.is_some_and(|at| at > before) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reloaded(&app, &file, before).await;

        let charged = app.daviplata_counter("payments_made").await;
        let retry = payments
            .charge_subscription(charge("before-rotation", WALLET, 12_300))
            .await;
        if overlap.is_zero() {
            let refused = retry.expect_err("no overlap: the old record cannot be opened");
            assert_eq!(reason(&refused), "IDEMPOTENCY_RECORD_TAMPERED");
        } else {
            assert_eq!(retry.expect("replayed").into_inner(), first);
        }
        assert_eq!(
            app.daviplata_counter("payments_made").await,
            charged,
            "the retry charged nothing"
        );
        app.stop().await;
    }
}
