//! A real tonic server behind the auth layer on loopback (health, plus a `Whoami` service
//! that answers with the principal its handler sees), real clients, tokens, certificates
//! and a captured log.
#![allow(dead_code)] // each test module uses its own part of the harness

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use pasarela_auth::{AuthLayer, Config, Principal, TlsSettings, Untenanted};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use pasarela_test_support::captured_logs;
pub use pasarela_test_support::captured_logs::logs;
pub use pasarela_test_support::redis_server::TestRedis;
pub use pasarela_test_support::tools;

pub const SECRET: &str = "integration-test-secret-of-at-least-32-bytes";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "pasarela-test";

pub const WHOAMI: &str = "/pasarela.test.v1.Whoami/Get";
pub const CHECK: &str = "/grpc.health.v1.Health/Check";
pub const BUREAU: &str = "/pasarela.bureau.v1.BureauService/GetPasswordExpiration";
pub const SECURITY: &str = "/pasarela.security.v1.SecurityService/GetPasswordStatus";

/// HS256 with the test secret; `Whoami` needs `whoami`, bureau needs `bureau.read`,
/// security is not configured (default deny), health is exempt. Principals in no tenant
/// are served: tenancy has tests of its own.
pub fn config() -> Config {
    Config {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        hs256_secret: Some(SECRET.into()),
        allow_hs256: true,
        leeway: Duration::from_secs(5),
        methods: BTreeMap::from([
            ("pasarela.test.v1.Whoami".into(), vec!["whoami".into()]),
            (
                "pasarela.bureau.v1.BureauService".into(),
                vec!["bureau.read".into()],
            ),
        ]),
        untenanted: Untenanted::Allow,
        ..Config::default()
    }
}

pub fn token(config: &Config, subject: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    pasarela_auth::mint_dev_token(config, subject, &scopes, Duration::from_secs(300))
        .expect("token")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A token with the given claims, signed HS256 with `secret`.
pub fn sign_hs256(secret: &str, claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("signs")
}

/// Standard valid claims for `subject`, to be altered by a test.
pub fn claims(subject: &str, scope: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "scope": scope,
        "iat": now(), "exp": now() + 300,
    })
}

/// The protected target that reports what its handler sees: the principal in request
/// extensions and whether the credential reached it.
#[derive(Clone)]
struct Whoami;

impl tonic::server::NamedService for Whoami {
    const NAME: &'static str = "pasarela.test.v1.Whoami";
}

struct Get;

impl tonic::server::UnaryService<()> for Get {
    type Response = String;
    type Future = Ready<Result<Response<String>, Status>>;

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let seen = match request.extensions().get::<Principal>() {
            Some(p) => format!(
                "{} {} [{}] client={} authorization={}{}",
                p.subject,
                p.source,
                p.scopes.join(","),
                p.client_id.as_deref().unwrap_or("-"),
                request.metadata().contains_key("authorization"),
                p.tenant
                    .as_ref()
                    .map(|tenant| format!(" tenant={tenant} key={}", p.key()))
                    .unwrap_or_default(),
            ),
            None => "anonymous".to_owned(),
        };
        ready(Ok(Response::new(seen)))
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Whoami {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<String, ()>::default());
            Ok(grpc.unary(Get, request).await)
        })
    }
}

/// Serves health and `Whoami` behind the auth layer built from `config`.
pub async fn serve(config: &Config, tls: Option<&TlsSettings>) -> SocketAddr {
    capture_logs();
    let auth = AuthLayer::new(config).await.expect("auth layer");
    let (_, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(pasarela_auth::server_tls_config(tls).expect("tls settings"))
            .expect("tls");
    }
    let router = server.layer(auth).add_service(health).add_service(Whoami);
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

/// Like [`serve`] with TLS, through [`pasarela_auth::tls_acceptor`] (certificate files
/// re-read when they change) instead of tonic's own TLS.
pub async fn serve_reloading(config: &Config, tls: &TlsSettings) -> SocketAddr {
    capture_logs();
    let auth = AuthLayer::new(config).await.expect("auth layer");
    let (_, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = pasarela_auth::tls_acceptor(tls).expect("tls acceptor");
    let incoming = futures::StreamExt::then(TcpListenerStream::new(listener), move |tcp| {
        let acceptor = acceptor.clone();
        async move { acceptor.accept(tcp?).await }
    });
    let router = tonic::transport::Server::builder()
        .layer(auth)
        .add_service(health)
        .add_service(Whoami);
    tokio::spawn(router.serve_with_incoming(incoming));
    addr
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connects")
}

fn request(token: Option<&str>, request_id: Option<&str>) -> Request<()> {
    let mut request = Request::new(());
    if let Some(id) = request_id {
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("ascii id"));
    }
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A unary call to any method path with an empty message, the answer ignored.
pub async fn call(
    channel: &Channel,
    path: &'static str,
    token: Option<&str>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let codec = ProstCodec::<(), ()>::default();
    grpc.unary(
        request(token, None),
        http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(|_| ())
}

/// What the `Whoami` handler saw.
pub async fn whoami(channel: &Channel, token: Option<&str>) -> Result<String, Status> {
    whoami_as(channel, token, None).await
}

/// [`whoami`] with an `x-request-id`.
pub async fn whoami_as(
    channel: &Channel,
    token: Option<&str>,
    request_id: Option<&str>,
) -> Result<String, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let codec = ProstCodec::<(), String>::default();
    grpc.unary(
        request(token, request_id),
        http::uri::PathAndQuery::from_static(WHOAMI),
        codec,
    )
    .await
    .map(Response::into_inner)
}

/// `ErrorInfo.reason` of a refusal.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt as _;
    let info = status.get_details_error_info().expect("ErrorInfo details");
    assert_eq!(info.domain, pasarela_auth::DOMAIN);
    info.reason
}

/// A private CA that signs server and client certificates.
pub struct Pki {
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
    pub cert_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert_pem = params.self_signed(&key).expect("CA cert").pem();
        Self {
            key,
            params,
            cert_pem,
        }
    }

    /// A certificate for `dns_names` (server) or with `uri`/`cn` identities (client), as
    /// (certificate PEM, key PEM).
    pub fn issue(&self, dns_names: &[&str], uri: Option<&str>, cn: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = dns_names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI(uri.try_into().expect("ia5 uri")));
        }
        let issuer = rcgen::Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

pub fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// Every log line of this test process, auth at TRACE.
fn capture_logs() {
    captured_logs::capture("info,audit=trace,pasarela_auth=trace");
}

/// The audit lines (as JSON) of calls with `request_id`.
pub fn audit_lines(request_id: &str) -> Vec<serde_json::Value> {
    logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "audit" && line["fields"]["request_id"] == request_id)
        .collect()
}
