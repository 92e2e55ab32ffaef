//! Provider credentials that live: Banco Caja Social's access token fetched from a
//! client-credentials endpoint and renewed before it expires, once more after the bank
//! refuses it (never by re-sending a withdrawal), and a token file read again when a
//! rotation changes it — against a sandbox that issues expiring tokens and refuses expired
//! ones.

use std::path::Path;
use std::time::{Duration, Instant};

use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela_provider::Credential;
use pasarela_sandbox::Sandbox;
use pasarela_security::TokenSettings;
use tonic::Code;

use crate::support::security::{client, customer, status_request, withdrawal, withdrawal_otp};
use crate::support::{TestApp, admin, reason, sandbox_with, spawn_app_on};

/// The sandbox's Banco Caja Social token endpoint.
const TOKEN_PATH: &str = "/oauth2/token";

/// A sandbox whose Banco Caja Social tokens live `ttl`, and the folder of its PKI.
async fn sandbox_with_tokens_of(ttl: Duration) -> (Sandbox, tempfile::TempDir) {
    sandbox_with(|options| options.bcs_token_ttl = ttl).await
}

fn renewed_from(sandbox_url: &str) -> TokenSettings {
    TokenSettings {
        url: format!("{sandbox_url}{TOKEN_PATH}"),
        client_id: None,
        client_secret: None,
        scope: None,
        auth_style: pasarela_security::AuthStyle::Basic,
        // Renewed a fifth of its life early: before the bank expires it.
        refresh_margin: Duration::from_secs(1),
    }
}

/// Where pasarela takes its bank token from in a test.
enum TokenSource {
    Endpoint(TokenSettings),
    File(std::path::PathBuf),
}

/// pasarela taking its bank token from `source`.
async fn app_with((sandbox, pki): (Sandbox, tempfile::TempDir), source: TokenSource) -> TestApp {
    let app = spawn_app_on(sandbox, move |config| {
        let security = config.security.as_mut().expect("security");
        (security.access_token, security.token) = match source {
            TokenSource::Endpoint(settings) => (None, Some(settings)),
            TokenSource::File(file) => (
                Some(Credential::from_file(file).expect("a token file")),
                None,
            ),
        };
        for limit in &mut config.auth.rate_limits {
            limit.burst = 10_000;
            limit.per_second = 10_000.0;
        }
    })
    .await;
    app.keeping(pki)
}

async fn tokens_issued(app: &TestApp) -> u64 {
    admin(&app.sandbox, reqwest::Method::GET, "/bcs/tokens", None).await["issued"]
        .as_u64()
        .expect("a count")
}

async fn expire_tokens(app: &TestApp) {
    admin(
        &app.sandbox,
        reqwest::Method::POST,
        "/bcs/tokens/expire",
        None,
    )
    .await;
}

#[tokio::test]
async fn the_banks_token_is_renewed_before_it_expires_under_load() {
    let sandbox = sandbox_with_tokens_of(Duration::from_secs(2)).await;
    let url = sandbox.0.bcs_url.clone();
    let app = app_with(sandbox, TokenSource::Endpoint(renewed_from(&url))).await;
    let until = Instant::now() + Duration::from_secs(5);
    let callers: Vec<_> = (0..6)
        .map(|n| {
            let mut client = SecurityServiceClient::with_interceptor(app.channel(), app.bearer());
            tokio::spawn(async move {
                let mut calls = 0;
                while Instant::now() < until {
                    client
                        .get_password_status(status_request(&format!("{n}"), customer("1007641")))
                        .await
                        .expect("every call carries a live token");
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let mut calls = 0;
    for caller in callers {
        calls += caller.await.expect("caller");
    }
    let issued = tokens_issued(&app).await;
    assert!(calls > 20, "{calls} calls");
    // Two-second tokens over five seconds: renewed as they lapse, one flight at a time.
    assert!(
        (3..=6).contains(&issued),
        "{issued} tokens for {calls} calls"
    );
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_for_a_read_and_never_for_a_withdrawal() {
    let sandbox = sandbox_with_tokens_of(Duration::from_secs(900)).await;
    let url = sandbox.0.bcs_url.clone();
    let app = app_with(sandbox, TokenSource::Endpoint(renewed_from(&url))).await;
    let mut client = client(&app);
    client
        .get_password_status(status_request("1", customer("1007641")))
        .await
        .expect("the first token");
    assert_eq!(tokens_issued(&app).await, 1);

    expire_tokens(&app).await;
    client
        .get_password_status(status_request("2", customer("1007641")))
        .await
        .expect("refused once, renewed, sent again");
    assert_eq!(tokens_issued(&app).await, 2);

    let otp = withdrawal_otp(&mut client).await;
    let before = app.admin_get("/calls").await;
    expire_tokens(&app).await;
    let refused = client
        .withdraw_with_otp(withdrawal(&otp, "under-a-refused-token"))
        .await
        .expect_err("a withdrawal refused for its token is not sent again");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "PROVIDER_AUTH_FAILED");
    let after = app.admin_get("/calls").await;
    let s18 = |calls: &serde_json::Value| {
        calls["bcs"]["POST /security-management/v3/withdrawal/otp"]
            .as_u64()
            .unwrap_or_default()
    };
    assert_eq!(s18(&after), s18(&before) + 1, "sent once");
    // The refused token was forgotten: the next call renews it.
    client
        .get_password_status(status_request("3", customer("1007641")))
        .await
        .expect("a new token");
    assert_eq!(tokens_issued(&app).await, 3);
}

/// A token the sandbox issues, fetched as an operator's rotation job would.
async fn fetch_token(app: &TestApp) -> String {
    fetch_token_from(&app.sandbox).await
}

async fn fetch_token_from(sandbox: &Sandbox) -> String {
    let credentials = &sandbox.credentials;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}{TOKEN_PATH}", sandbox.bcs_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", credentials.bcs_client_id.as_str()),
            ("client_secret", credentials.bcs_client_secret.as_str()),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("a token answer");
    answer["access_token"].as_str().expect("a token").to_owned()
}

fn write_token(path: &Path, token: &str) {
    // Written aside and renamed, as a Secret volume's update is: never half a token.
    let aside = path.with_extension("new");
    std::fs::write(&aside, format!("{token}\n")).expect("token written");
    std::fs::rename(&aside, path).expect("token in place");
}

#[tokio::test]
async fn a_token_file_is_read_again_when_a_rotation_changes_it() {
    let sandbox = sandbox_with_tokens_of(Duration::from_secs(900)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("access-token");
    // A token the sandbox issued, so that it refuses it once revoked (any other token it
    // takes as a fixed one).
    write_token(&file, &fetch_token_from(&sandbox.0).await);
    let app = app_with(sandbox, TokenSource::File(file.clone())).await;
    let mut client = client(&app);
    client
        .get_password_status(status_request("1", customer("1007641")))
        .await
        .expect("the file's token");

    // The bank revokes it and the operator rotates the file: no restart, no failed call.
    expire_tokens(&app).await;
    write_token(&file, &fetch_token(&app).await);
    for n in 2..5 {
        client
            .get_password_status(status_request(&n.to_string(), customer("1007641")))
            .await
            .expect("the rotated token");
    }
}
