//! Banco Caja Social emulator over real HTTP: every operation (S1-S19) and rule of the
//! sandbox issue, exercised with reqwest against a running sandbox.
//!
//! This module holds the shared harness (the running sandbox, its client and the error
//! envelope readers); each operation family has its own file.

mod challenges;
mod channel_holds;
mod credentials;
mod enrollment;
mod fixtures;
mod one_time_codes;
mod passwords;
mod withdrawal_otp;

use pasarela_sandbox::Sandbox;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, TestSandbox};

/// A running sandbox and a client that speaks to its Banco Caja Social listener.
struct Bcs {
    sandbox: Sandbox,
    http: reqwest::Client,
    _pki: tempfile::TempDir,
}

/// Which spelling of the credential headers a request uses.
#[derive(Clone, Copy)]
enum Credentials {
    Security,
    Gateway,
    None,
}

async fn start_with(fixtures: Option<std::path::PathBuf>) -> Bcs {
    let TestSandbox {
        sandbox,
        http,
        pki_dir,
    } = support::start_with(|options| options.bcs_fixtures = fixtures).await;
    Bcs {
        sandbox,
        http,
        _pki: pki_dir,
    }
}

async fn start() -> Bcs {
    start_with(None).await
}

impl Bcs {
    fn request(&self, method: Method, path: &str, credentials: Credentials) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.sandbox.bcs_url));
        let id = &self.sandbox.credentials.bcs_client_id;
        let secret = &self.sandbox.credentials.bcs_client_secret;
        match credentials {
            Credentials::Security => builder
                .header("X-Security-ClientID", id)
                .header("X-Security-ClientSecret", secret)
                .header("X-Security-Token", "sandbox-token"),
            Credentials::Gateway => builder
                .header("client_id", id)
                .header("client_secret", secret)
                .header("Authorization", "Bearer sandbox-token"),
            Credentials::None => builder,
        }
    }

    fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path, Credentials::Security)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.call(Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.call(Method::POST, path).json(&body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.call(Method::PUT, path).json(&body)).await
    }

    async fn admin(&self, path: &str) -> (StatusCode, Value) {
        send(
            self.http
                .get(format!("{}/bcs{path}", self.sandbox.admin_url)),
        )
        .await
    }

    /// The last code the customer was "sent by SMS".
    async fn outbox(&self, ident_num: &str) -> String {
        let (status, body) = self.admin(&format!("/otc/CC/{ident_num}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["otc"].as_str().expect("code in outbox").to_string()
    }

    async fn set_code_lifetime(&self, millis: u64) {
        let response = self
            .http
            .put(format!("{}/bcs/otc-ttl", self.sandbox.admin_url))
            .json(&json!({ "millis": millis }))
            .send()
            .await
            .expect("admin answers");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

async fn send(builder: RequestBuilder) -> (StatusCode, Value) {
    let response = builder.send().await.expect("sandbox answers");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `(value, code, type)` of a camelCase error envelope.
fn camel(body: &Value) -> (&str, &str, &str) {
    (
        body["responseType"]["value"].as_str().unwrap_or_default(),
        body["responseDetail"]["errorCode"]
            .as_str()
            .unwrap_or_default(),
        body["responseDetail"]["errorType"]
            .as_str()
            .unwrap_or_default(),
    )
}

/// `errorDesc` of a camelCase error envelope.
fn camel_desc(body: &Value) -> &str {
    body["responseDetail"]["errorDesc"]
        .as_str()
        .unwrap_or_default()
}

/// `(value, code, type)` of a PascalCase error envelope.
fn pascal(body: &Value) -> (&str, &str, &str) {
    (
        body["ResponseType"]["value"].as_str().unwrap_or_default(),
        body["ResponseDetail"]["ErrorCode"]
            .as_str()
            .unwrap_or_default(),
        body["ResponseDetail"]["ErrorType"]
            .as_str()
            .unwrap_or_default(),
    )
}

/// S1's path for a customer of document type CC.
fn password_status(number: &str) -> String {
    format!("/user/password/status?govIssueIdentType=CC&identSerialNum={number}")
}

fn ident(number: &str) -> Value {
    json!({ "govIssueIdentType": "CC", "identSerialNum": number })
}
