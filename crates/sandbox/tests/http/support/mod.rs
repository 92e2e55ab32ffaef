//! A sandbox on ephemeral loopback ports with its PKI in a temporary folder, and the
//! clients the tests speak to it with.

use pasarela_sandbox::{Sandbox, SandboxCredentials, SandboxOptions};
use reqwest::{Certificate, Client, Identity, Response};
use serde_json::Value;

pub struct TestSandbox {
    pub sandbox: Sandbox,
    pub http: Client,
    pub pki_dir: tempfile::TempDir,
}

pub async fn start() -> TestSandbox {
    start_with(|_| {}).await
}

/// A sandbox with the options changed by `configure` (the PKI folder is set first).
pub async fn start_with(configure: impl FnOnce(&mut SandboxOptions)) -> TestSandbox {
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let mut options = SandboxOptions {
        pki_dir: pki_dir.path().to_path_buf(),
        ..SandboxOptions::default()
    };
    configure(&mut options);
    let sandbox = Sandbox::start(options).await.expect("sandbox starts");
    TestSandbox {
        sandbox,
        http: Client::new(),
        pki_dir,
    }
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A client that trusts only the sandbox CA, presenting `identity` (certificate and key
/// PEM files) when given.
pub fn tls_client(
    ca: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Client {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(Certificate::from_pem(&read(ca)).expect("CA PEM"));
    if let Some((cert, key)) = identity {
        let mut pem = read(cert);
        pem.extend(read(key));
        builder = builder.identity(Identity::from_pem(&pem).expect("identity PEM"));
    }
    builder.build().expect("TLS client")
}

impl TestSandbox {
    /// A Daviplata client as pasarela is configured in dev: the sandbox CA and client
    /// certificate.
    pub fn daviplata_client(&self) -> Client {
        let pki = &self.sandbox.pki;
        tls_client(&pki.ca_cert, Some((&pki.client_cert, &pki.client_key)))
    }

    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.admin_url)
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.admin(path))
            .json(&body)
            .send()
            .await
            .expect("admin call")
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.http
            .get(self.admin(path))
            .send()
            .await
            .expect("admin call")
            .json()
            .await
            .expect("admin JSON")
    }

    /// Adds a fault rule; fails the test if the sandbox refuses it.
    pub async fn inject(&self, rule: Value) -> Value {
        let response = self.admin_post("/faults", rule).await;
        assert_eq!(response.status(), 201, "fault rule accepted");
        response.json().await.expect("rule JSON")
    }
}

/// The body of `response` as JSON, with its status.
pub async fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// Daviplata's token form with the sandbox's own client credentials.
pub fn token_form(credentials: &SandboxCredentials) -> String {
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=pg_recurrente",
        credentials.daviplata_client_id, credentials.daviplata_client_secret
    )
}

/// A six-digit code that is surely not `code`, to answer wrong on purpose.
pub fn other_code(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}
