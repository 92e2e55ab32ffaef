//! The sandbox as a whole: health, shutdown, and a client configured once that keeps
//! working after a restart on the same PKI folder.

use pasarela_sandbox::{Sandbox, SandboxOptions};

use crate::support::{self, tls_client, token_form};

const TOKEN: &str = "/oauth2Provider/type1/v1/token";

#[tokio::test]
async fn the_admin_listener_reports_health() {
    let sandbox = support::start().await;
    let response = sandbox
        .http
        .get(sandbox.admin("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn shutdown_closes_every_listener() {
    let sandbox = support::start().await;
    let urls = [
        format!("{}/health", sandbox.sandbox.admin_url),
        format!(
            "{}/api/v1/password-expiry-date-bc-pm",
            sandbox.sandbox.kiban_url
        ),
        format!("{}/user/password/status", sandbox.sandbox.bcs_url),
    ];
    let http = reqwest::Client::new();
    for url in &urls {
        http.get(url).send().await.expect("serving before shutdown");
    }
    sandbox.sandbox.shutdown().await;
    for url in &urls {
        assert!(http.get(url).send().await.is_err(), "{url} still answers");
    }
}

#[tokio::test]
async fn a_client_configured_once_works_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let options = || SandboxOptions {
        pki_dir: dir.path().to_path_buf(),
        ..SandboxOptions::default()
    };
    let first = Sandbox::start(options()).await.unwrap();
    let pki = first.pki.clone();
    let client = tls_client(&pki.ca_cert, Some((&pki.client_cert, &pki.client_key)));
    first.shutdown().await;

    let second = Sandbox::start(options()).await.unwrap();
    let response = client
        .post(format!("{}{TOKEN}", second.daviplata_url))
        .body(token_form(&second.credentials))
        .send()
        .await
        .expect("the old client is still trusted");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_token_lifetime_too_long_to_count_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = SandboxOptions {
        pki_dir: dir.path().to_path_buf(),
        daviplata_token_ttl: std::time::Duration::MAX,
        ..SandboxOptions::default()
    };
    assert!(Sandbox::start(options).await.is_err());
}
