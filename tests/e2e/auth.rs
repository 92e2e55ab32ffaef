//! Auth end to end: pasarela as `pasarela dev` runs it, called by real gRPC clients with
//! and without tokens; refusals carry their code and reason, each scope reaches exactly its
//! RPCs, limits trip and recover, and every call leaves an audit line with no token in it.

use std::time::Duration;

use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::support::{logs, reason, spawn_app, spawn_app_with};

const BUREAU: &str = "/pasarela.bureau.v1.BureauService/GetPasswordExpiration";
const CANCEL: &str = "/pasarela.recurring_payments.v1.RecurringPaymentsService/CancelSubscription";
const HEALTH: &str = "/grpc.health.v1.Health/Check";

/// A unary call with an empty message to `path`: what auth lets through reaches the
/// handler, whose validation refuses the empty request before any provider call.
async fn call(
    channel: Channel,
    path: &'static str,
    token: Option<&str>,
    request_id: &str,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("x-request-id", request_id.parse().expect("ascii id"));
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii token");
        request.metadata_mut().insert("authorization", value);
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(
        request,
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(|_| ())
}

fn request_id(label: &str) -> String {
    format!("e2e-auth-{label}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn refusals_carry_their_code_and_reason() {
    let app = spawn_app().await;
    let forged = pasarela_auth::mint_dev_token(
        &pasarela_auth::Config {
            hs256_secret: Some("a-secret-pasarela-dev-does-not-know-at-all".into()),
            ..pasarela_auth::Config::dev()
        },
        "eve",
        &["*".to_owned()],
        Duration::from_secs(60),
    )
    .expect("token");
    let elsewhere = pasarela_auth::mint_dev_token(
        &pasarela_auth::Config {
            audience: Some("another-service".into()),
            ..pasarela_auth::Config::dev()
        },
        "eve",
        &["*".to_owned()],
        Duration::from_secs(60),
    )
    .expect("token");
    let cases = [
        (None, Code::Unauthenticated, "TOKEN_MISSING"),
        (Some("garbage"), Code::Unauthenticated, "TOKEN_MALFORMED"),
        (
            Some(forged.as_str()),
            Code::Unauthenticated,
            "TOKEN_INVALID_SIGNATURE",
        ),
        (
            Some(elsewhere.as_str()),
            Code::Unauthenticated,
            "TOKEN_WRONG_AUDIENCE",
        ),
    ];
    for (token, code, expected) in cases {
        let status = call(app.channel(), BUREAU, token, &request_id("refusal"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{expected}: {status:?}");
        assert_eq!(reason(&status), expected);
    }
    app.stop().await;
}

#[tokio::test]
async fn each_scope_reaches_exactly_its_rpcs() {
    let app = spawn_app().await;
    let bureau = app.token(&["pasarela.bureau.v1.BureauService/GetPasswordExpiration"]);
    let everything = app.token(&["*"]);

    let reached = call(app.channel(), BUREAU, Some(&bureau), &request_id("scope"))
        .await
        .unwrap_err();
    assert_eq!(reached.code(), Code::InvalidArgument, "{reached:?}");
    let denied = call(app.channel(), CANCEL, Some(&bureau), &request_id("scope"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason(&denied), "SCOPE_MISSING");
    let reached = call(
        app.channel(),
        CANCEL,
        Some(&everything),
        &request_id("scope"),
    )
    .await
    .unwrap_err();
    assert_eq!(reached.code(), Code::InvalidArgument, "{reached:?}");
    app.stop().await;
}

#[tokio::test]
async fn health_needs_no_token() {
    let app = spawn_app().await;
    call(app.channel(), HEALTH, None, &request_id("health"))
        .await
        .expect("health answers without credentials");
    app.stop().await;
}

#[tokio::test]
async fn rate_limit_trips_and_recovers() {
    let app = spawn_app_with(|config| {
        config.auth.rate_limits = vec![pasarela_auth::RateLimit {
            name: "bureau".into(),
            methods: vec!["pasarela.bureau.v1.BureauService".into()],
            per_second: 5.0,
            burst: 2,
        }];
    })
    .await;
    let token = app.token(&["*"]);
    for _ in 0..2 {
        let passed = call(app.channel(), BUREAU, Some(&token), &request_id("limit")).await;
        assert_eq!(passed.unwrap_err().code(), Code::InvalidArgument);
    }
    let limited = call(app.channel(), BUREAU, Some(&token), &request_id("limit"))
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited), "RATE_LIMITED");
    let delay = limited
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo");
    tokio::time::sleep(delay).await;
    let recovered = call(app.channel(), BUREAU, Some(&token), &request_id("limit")).await;
    assert_eq!(recovered.unwrap_err().code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn every_call_leaves_an_audit_line_without_the_token() {
    let app = spawn_app().await;
    let token = app.token(&["*"]);
    let allowed = request_id("audit-allowed");
    let refused = request_id("audit-refused");
    let _ = call(app.channel(), BUREAU, Some(&token), &allowed).await;
    let _ = call(app.channel(), BUREAU, None, &refused).await;

    let logs = logs();
    let audit = |id: &str| -> Vec<serde_json::Value> {
        logs.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| line["target"] == "audit" && line["fields"]["request_id"] == id)
            .collect()
    };
    let lines = audit(&allowed);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["fields"]["principal"], "e2e");
    assert_eq!(lines[0]["fields"]["method"], BUREAU);
    assert_eq!(lines[0]["fields"]["code"], "INVALID_ARGUMENT");
    let lines = audit(&refused);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["fields"]["code"], "UNAUTHENTICATED");
    assert_eq!(lines[0]["fields"]["reason"], "TOKEN_MISSING");
    let signature = token.rsplit('.').next().expect("signature");
    assert!(!logs.contains(signature), "a token reached the log");
    app.stop().await;
}

/// A TLS channel to `addr` trusting `ca`, presenting `identity` (certificate, key files).
async fn mtls_channel(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    identity: (&std::path::Path, &std::path::Path),
) -> Result<Channel, tonic::transport::Error> {
    let read = |path: &std::path::Path| std::fs::read(path).expect("PEM file");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(ca)))
        .identity(tonic::transport::Identity::from_pem(
            read(identity.0),
            read(identity.1),
        ))
        .domain_name("localhost");
    tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect()
        .await
}

#[tokio::test]
async fn client_certificate_stands_as_principal_and_a_foreign_one_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let sandbox = pasarela_sandbox::Sandbox::start(pasarela_server::dev::sandbox_options(
        &dir.path().join("ours"),
    ))
    .await
    .expect("sandbox");
    let pki = sandbox.pki.clone();
    let identity = pasarela_auth::certificate_file_identity(&pki.client_cert).expect("identity");
    let tls = pasarela_auth::TlsSettings {
        cert_file: pki.server_cert.clone(),
        key_file: pki.server_key.clone(),
        client_ca_file: Some(pki.ca_cert.clone()),
        client_auth_required: false,
        reload_every: Duration::from_secs(10),
    };
    let granted = identity.clone();
    let app = crate::support::spawn_app_on(sandbox, move |config| {
        config.tls = Some(tls);
        config.auth.mtls.principals.insert(
            granted,
            vec!["pasarela.bureau.v1.BureauService/GetPasswordExpiration".into()],
        );
    })
    .await;

    let channel = mtls_channel(app.addr, &pki.ca_cert, (&pki.client_cert, &pki.client_key))
        .await
        .expect("our client certificate connects");
    let reached = call(channel.clone(), BUREAU, None, &request_id("mtls"))
        .await
        .unwrap_err();
    assert_eq!(reached.code(), Code::InvalidArgument, "{reached:?}");
    let denied = call(channel, CANCEL, None, &request_id("mtls"))
        .await
        .unwrap_err();
    assert_eq!(reason(&denied), "SCOPE_MISSING");

    let other = pasarela_sandbox::Sandbox::start(pasarela_server::dev::sandbox_options(
        &dir.path().join("theirs"),
    ))
    .await
    .expect("another sandbox, another CA");
    let foreign = match mtls_channel(
        app.addr,
        &pki.ca_cert,
        (&other.pki.client_cert, &other.pki.client_key),
    )
    .await
    {
        Ok(channel) => call(channel, BUREAU, None, &request_id("foreign")).await,
        Err(error) => Err(tonic::Status::unavailable(error.to_string())),
    };
    let refused = foreign.expect_err("a certificate from another CA never reaches a handler");
    assert!(
        reason(&refused).is_empty(),
        "refused by the handshake: {refused:?}"
    );
    app.stop().await;
}

/// The gRPC port's client CA rotated without a restart: a certificate of the new CA is
/// refused at the handshake until the CA file changes, then reaches its handler, and one of
/// the withdrawn CA no longer does.
#[tokio::test]
async fn a_rotated_client_ca_is_trusted_from_the_next_handshake_without_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let options = |name: &str| pasarela_server::dev::sandbox_options(&dir.path().join(name));
    let sandbox = pasarela_sandbox::Sandbox::start(options("ours"))
        .await
        .expect("sandbox");
    let other = pasarela_sandbox::Sandbox::start(options("theirs"))
        .await
        .expect("another sandbox, another CA");
    let pki = sandbox.pki.clone();
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::copy(&pki.ca_cert, &ca_file).expect("the first CA");
    let tls = pasarela_auth::TlsSettings {
        cert_file: pki.server_cert.clone(),
        key_file: pki.server_key.clone(),
        client_ca_file: Some(ca_file.clone()),
        client_auth_required: true,
        reload_every: Duration::from_millis(100),
    };
    let identities = [&pki.client_cert, &other.pki.client_cert]
        .map(|cert| pasarela_auth::certificate_file_identity(cert).expect("identity"));
    let app = crate::support::spawn_app_on(sandbox, move |config| {
        config.tls = Some(tls);
        for identity in identities {
            config
                .auth
                .mtls
                .principals
                .insert(identity, vec![BUREAU.trim_start_matches('/').into()]);
        }
    })
    .await;
    let reaches = |identity: (std::path::PathBuf, std::path::PathBuf)| {
        let (addr, ca) = (app.addr, pki.ca_cert.clone());
        async move {
            match mtls_channel(addr, &ca, (&identity.0, &identity.1)).await {
                Ok(channel) => call(channel, BUREAU, None, &request_id("ca"))
                    .await
                    .err()
                    .is_some_and(|status| status.code() == Code::InvalidArgument),
                Err(_) => false,
            }
        }
    };
    let ours = (pki.client_cert.clone(), pki.client_key.clone());
    let theirs = (other.pki.client_cert.clone(), other.pki.client_key.clone());
    assert!(
        reaches(ours.clone()).await,
        "the first CA's client is served"
    );
    assert!(
        !reaches(theirs.clone()).await,
        "the second CA is not trusted yet"
    );

    let aside = dir.path().join("client-ca.new");
    std::fs::copy(&other.pki.ca_cert, &aside).expect("the second CA");
    std::fs::rename(&aside, &ca_file).expect("CA in place");
    let mut trusted = false;
    for _ in 0..100 {
        if reaches(theirs.clone()).await {
            trusted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(trusted, "the new CA's client is served without a restart");
    assert!(!reaches(ours).await, "the withdrawn CA's client is refused");
    app.stop().await;
}

/// One principal's calls under way are bounded: two hung at Kiban, a third is refused
/// before its handler, while another principal is served; once they end, it is served too.
#[tokio::test]
async fn one_principal_has_a_bounded_number_of_calls_under_way() {
    use pasarela::bureau::v1::GetPasswordExpirationRequest;
    use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
    let app = spawn_app_with(|config| {
        config.auth.max_concurrent_calls_per_principal = 2;
        let bureau = config.bureau.as_mut().expect("bureau");
        bureau.outbound.http.timeout = Duration::from_secs(2);
    })
    .await;
    let kiban = "/api/v1/password-expiry-date-bc-pm";
    app.inject(
        "kiban",
        Some(kiban),
        serde_json::json!({ "type": "hang" }),
        Some(2),
    )
    .await;
    let expiration = || GetPasswordExpirationRequest {
        member_code: "PM00000001".into(),
        password: "Abc12345".into(),
        test_case_id: "663567bb713cf2110a110679".into(),
    };
    let client = |subject: &str| {
        BureauServiceClient::with_interceptor(
            app.channel(),
            crate::support::bearer_with(&crate::support::principal_token(subject)),
        )
    };
    let hung: Vec<_> = (0..2)
        .map(|_| {
            let mut busy = client("busy-caller");
            let request = expiration();
            tokio::spawn(async move { busy.get_password_expiration(request).await })
        })
        .collect();
    for _ in 0..100 {
        if app.route_calls("kiban", &format!("POST {kiban}")).await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = client("busy-caller")
        .get_password_expiration(expiration())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused
            .get_details_error_info()
            .expect("ErrorInfo")
            .metadata["group"],
        "concurrent-calls"
    );
    client("another-caller")
        .get_password_expiration(expiration())
        .await
        .expect("another principal is served");
    for call in hung {
        let _ = call.await;
    }
    client("busy-caller")
        .get_password_expiration(expiration())
        .await
        .expect("served again once its calls ended");
}
