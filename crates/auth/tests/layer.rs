//! The auth layer in front of a real tonic server on loopback, called by real gRPC clients:
//! every refusal with its code and reason, scopes, principals for handlers, rate limits,
//! audit lines, JWKS rotation and mTLS identities.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use pasarela_auth::{
    Config, JwksSettings, PrincipalSource, RateLimit, ReflectionAccess, TenantPrincipal,
    TenantSettings, TlsSettings, Untenanted,
};
use support::*;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_types::StatusExt as _;

#[tokio::test]
async fn health_needs_no_token() {
    let addr = serve(&config(), None).await;
    call(&channel(addr).await, CHECK, None)
        .await
        .expect("health answers without credentials");
}

#[tokio::test]
async fn every_bad_token_is_unauthenticated_with_its_reason() {
    let addr = serve(&config(), None).await;
    let channel = channel(addr).await;
    let altered = |key: &str, value: serde_json::Value| {
        let mut claims = claims("alice", "whoami");
        claims[key] = value;
        sign_hs256(SECRET, claims)
    };
    let mut no_subject = claims("alice", "whoami");
    no_subject.as_object_mut().expect("object").remove("sub");
    let cases = [
        (None, "TOKEN_MISSING"),
        (Some("not-a-jwt".to_owned()), "TOKEN_MALFORMED"),
        (Some(altered("exp", (now() - 3600).into())), "TOKEN_EXPIRED"),
        (
            Some(altered("nbf", (now() + 3600).into())),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            Some(sign_hs256(
                "another-secret-of-at-least-32-bytes!",
                claims("alice", "whoami"),
            )),
            "TOKEN_INVALID_SIGNATURE",
        ),
        (
            Some(altered("aud", "someone-else".into())),
            "TOKEN_WRONG_AUDIENCE",
        ),
        (
            Some(altered("iss", "https://evil.test".into())),
            "TOKEN_WRONG_ISSUER",
        ),
        (Some(sign_hs256(SECRET, no_subject)), "TOKEN_CLAIMS_INVALID"),
    ];
    for (token, expected) in cases {
        let status = whoami(&channel, token.as_deref()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{expected}: {status:?}"
        );
        assert_eq!(reason(&status), expected);
    }
}

#[tokio::test]
async fn each_scope_reaches_exactly_its_methods() {
    let config = config();
    let addr = serve(&config, None).await;
    let channel = channel(addr).await;
    let whoami_token = token(&config, "alice", &["whoami"]);
    let bureau_token = token(&config, "bob", &["bureau.read"]);

    assert!(whoami(&channel, Some(&whoami_token)).await.is_ok());
    let denied = call(&channel, BUREAU, Some(&whoami_token))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason(&denied), "SCOPE_MISSING");
    let info = denied.get_details_error_info().expect("error info");
    assert_eq!(info.metadata["required_scopes"], "bureau.read");

    // Past auth, the router answers: the bureau service is not mounted here.
    let reached = call(&channel, BUREAU, Some(&bureau_token))
        .await
        .unwrap_err();
    assert_eq!(reached.code(), Code::Unimplemented);
    let denied = whoami(&channel, Some(&bureau_token)).await.unwrap_err();
    assert_eq!(reason(&denied), "SCOPE_MISSING");

    for token in [&whoami_token, &bureau_token] {
        let unconfigured = call(&channel, SECURITY, Some(token)).await.unwrap_err();
        assert_eq!(unconfigured.code(), Code::PermissionDenied);
        assert_eq!(reason(&unconfigured), "METHOD_NOT_CONFIGURED");
    }
}

#[tokio::test]
async fn handlers_see_the_principal_but_not_the_token() {
    let addr = serve(&config(), None).await;
    let mut claims = claims("alice", "whoami extra");
    claims["client_id"] = "billing-app".into();
    let seen = whoami(&channel(addr).await, Some(&sign_hs256(SECRET, claims)))
        .await
        .expect("allowed");
    assert_eq!(
        seen,
        "alice jwt [whoami,extra] client=billing-app authorization=false"
    );
}

#[tokio::test]
async fn tenants_are_resolved_by_subject_and_application_and_strangers_refused() {
    let listed = |subject: &str, client: Option<&str>| TenantPrincipal {
        source: PrincipalSource::Jwt,
        subject: subject.into(),
        client_id: client.map(str::to_owned),
    };
    let config = Config {
        untenanted: Untenanted::Refuse,
        tenants: BTreeMap::from([
            (
                "acme".to_owned(),
                TenantSettings {
                    principals: vec![listed("svc", Some("acme-app"))],
                    end_user_claim: None,
                },
            ),
            (
                "globex".to_owned(),
                TenantSettings {
                    principals: vec![listed("svc", Some("globex-app"))],
                    end_user_claim: None,
                },
            ),
        ]),
        ..config()
    };
    let channel = channel(serve(&config, None).await).await;
    let as_app = |client: &str| {
        let mut claims = claims("svc", "whoami");
        claims["azp"] = client.into();
        sign_hs256(SECRET, claims)
    };
    let acme = whoami(&channel, Some(&as_app("acme-app")))
        .await
        .expect("acme");
    assert!(
        acme.ends_with("tenant=acme key=acme/jwt:svc@acme-app"),
        "{acme}"
    );
    let globex = whoami(&channel, Some(&as_app("globex-app")))
        .await
        .expect("globex");
    assert!(
        globex.ends_with("tenant=globex key=globex/jwt:svc@globex-app"),
        "{globex}"
    );
    let stranger = whoami(&channel, Some(&as_app("other-app")))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    assert_eq!(reason(&stranger), "PRINCIPAL_IN_NO_TENANT");
}

#[tokio::test]
async fn dev_policy_wants_each_methods_scope_and_star_grants_all() {
    let dev = Config::dev();
    let addr = serve(&dev, None).await;
    let channel = channel(addr).await;
    let own = token(&dev, "dev", &["pasarela.test.v1.Whoami/Get"]);
    let other = token(
        &dev,
        "dev",
        &["pasarela.bureau.v1.BureauService/GetPasswordExpiration"],
    );
    let star = token(&dev, "dev", &["*"]);
    assert!(whoami(&channel, Some(&own)).await.is_ok());
    assert!(whoami(&channel, Some(&star)).await.is_ok());
    let denied = whoami(&channel, Some(&other)).await.unwrap_err();
    assert_eq!(reason(&denied), "SCOPE_MISSING");
    assert!(call(&channel, CHECK, None).await.is_ok());
}

#[tokio::test]
async fn closed_reflection_is_refused_to_everybody() {
    let config = Config {
        reflection: ReflectionAccess::Closed,
        superuser_scope: Some("*".into()),
        insecure_dev_credentials: true,
        ..config()
    };
    let addr = serve(&config, None).await;
    let star = token(&config, "root", &["*"]);
    let refused = call(
        &channel(addr).await,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Some(&star),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "REFLECTION_CLOSED");
}

#[tokio::test]
async fn rate_limit_holds_across_connections_trips_and_recovers() {
    let config = Config {
        rate_limits: vec![RateLimit {
            name: "whoami".into(),
            methods: vec!["pasarela.test.v1.Whoami".into()],
            per_second: 10.0,
            burst: 2,
        }],
        ..config()
    };
    let addr = serve(&config, None).await;
    let (first, second) = (channel(addr).await, channel(addr).await);
    let alice = token(&config, "alice", &["whoami"]);
    assert!(whoami(&first, Some(&alice)).await.is_ok());
    assert!(whoami(&second, Some(&alice)).await.is_ok());
    let limited = whoami(&first, Some(&alice)).await.unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited), "RATE_LIMITED");
    let delay = limited
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay");

    let bob = token(&config, "bob", &["whoami"]);
    assert!(
        whoami(&second, Some(&bob)).await.is_ok(),
        "another principal has its own bucket"
    );
    tokio::time::sleep(delay).await;
    assert!(
        whoami(&second, Some(&alice)).await.is_ok(),
        "recovers after RetryInfo's delay"
    );
}

#[tokio::test]
async fn a_peer_whose_unidentified_calls_keep_failing_is_told_to_wait_but_a_good_token_passes() {
    let config = Config {
        unauthenticated_per_peer: pasarela_auth::Budget {
            per_second: 0.5,
            burst: 3,
        },
        ..config()
    };
    let addr = serve(&config, None).await;
    let channel = channel(addr).await;
    for _ in 0..3 {
        let refused = whoami(&channel, Some("not-a-jwt")).await.unwrap_err();
        assert_eq!(reason(&refused), "TOKEN_MALFORMED");
    }
    let limited = whoami(&channel, Some("not-a-jwt")).await.unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited), "RATE_LIMITED");
    let details = limited.get_error_details();
    assert_eq!(
        details.error_info().unwrap().metadata["group"],
        "unauthenticated-per-peer"
    );
    assert!(details.retry_info().is_some());
    assert!(
        call(&channel, CHECK, None).await.is_ok(),
        "exempt methods are never counted or refused"
    );
    let good = token(&config, "alice", &["whoami"]);
    assert!(
        whoami(&channel, Some(&good)).await.is_ok(),
        "a token that authenticates is never refused for its address"
    );
}

#[tokio::test]
async fn rate_limit_in_redis_holds_across_replicas_and_outlives_an_outage() {
    if tools::lacking(&["redis-server"]) {
        return;
    }
    let redis = TestRedis::start().await;
    let config = Config {
        rate_limits: vec![RateLimit {
            name: "whoami".into(),
            methods: vec!["pasarela.test.v1.Whoami".into()],
            per_second: 1.0,
            burst: 2,
        }],
        rate_limit_redis_url: Some(redis.url.clone().into()),
        holder_key: Some("both replicas name holders with this key".into()),
        ..config()
    };
    let (first, second) = (serve(&config, None).await, serve(&config, None).await);
    let (first, second) = (channel(first).await, channel(second).await);
    let alice = token(&config, "alice", &["whoami"]);

    assert!(whoami(&first, Some(&alice)).await.is_ok());
    assert!(whoami(&second, Some(&alice)).await.is_ok());
    let limited = whoami(&first, Some(&alice)).await.unwrap_err();
    assert_eq!(
        reason(&limited),
        "RATE_LIMITED",
        "the replicas share one bucket"
    );
    let delay = limited
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay");
    tokio::time::sleep(delay).await;
    assert!(
        whoami(&second, Some(&alice)).await.is_ok(),
        "recovers after RetryInfo's delay"
    );

    drop(redis);
    assert!(
        whoami(&first, Some(&alice)).await.is_ok(),
        "calls go on without redis"
    );
    assert!(whoami(&first, Some(&alice)).await.is_ok());
    let limited = whoami(&first, Some(&alice)).await.unwrap_err();
    assert_eq!(
        reason(&limited),
        "RATE_LIMITED",
        "counted in the replica meanwhile"
    );
}

#[tokio::test]
async fn every_call_leaves_one_audit_line_without_the_token() {
    let config = config();
    let addr = serve(&config, None).await;
    let channel = channel(addr).await;
    let alice = token(&config, "alice", &["whoami"]);
    let expired = {
        let mut claims = claims("mallory", "whoami");
        claims["exp"] = (now() - 3600).into();
        sign_hs256(SECRET, claims)
    };
    whoami_as(&channel, Some(&alice), Some("audit-ok"))
        .await
        .expect("allowed");
    whoami_as(&channel, Some(&expired), Some("audit-expired"))
        .await
        .unwrap_err();
    let bureau = token(&config, "alice", &["whoami"]);
    whoami_as(&channel, Some(&bureau), Some("audit-again"))
        .await
        .expect("allowed");

    let ok = audit_lines("audit-ok");
    assert_eq!(ok.len(), 1, "{ok:?}");
    let fields = &ok[0]["fields"];
    assert_eq!(fields["principal"], "alice");
    assert_eq!(fields["source"], "jwt");
    assert_eq!(fields["method"], WHOAMI);
    assert_eq!(fields["code"], "OK");
    assert!(fields["latency_ms"].as_f64().is_some());

    let refused = audit_lines("audit-expired");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["fields"]["code"], "UNAUTHENTICATED");
    assert_eq!(refused[0]["fields"]["reason"], "TOKEN_EXPIRED");

    let logs = logs();
    for token in [&alice, &expired, &bureau] {
        assert!(!logs.contains(token.as_str()), "a token reached the log");
        let signature = token.rsplit('.').next().expect("signature");
        assert!(
            !logs.contains(signature),
            "a token signature reached the log"
        );
    }
    assert!(!logs.contains(SECRET));
}

/// An ES256 key with its public JWK, generated for the test.
struct SigningKey {
    encoding: jsonwebtoken::EncodingKey,
    jwk: serde_json::Value,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256");
        let point = pair.public_key_raw();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self {
            encoding: jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
                .expect("EC key"),
            jwk: serde_json::json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            }),
        }
    }

    fn sign(&self, kid: &str, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signs")
    }
}

/// Serves whatever `keys` holds as a JWK set, over loopback HTTP.
async fn serve_jwks(keys: Arc<RwLock<Vec<serde_json::Value>>>) -> String {
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = keys.read().expect("keys").clone();
            async move { axum::Json(serde_json::json!({ "keys": keys })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks.json")
}

fn jwks_config(url: String) -> Config {
    Config {
        hs256_secret: None,
        allow_hs256: false,
        jwks: Some(JwksSettings {
            url: Some(url),
            file: None,
            refresh: Duration::from_secs(3600),
            unknown_kid_cooldown: Duration::from_secs(3600),
            max_stale: Duration::from_secs(7200),
        }),
        ..config()
    }
}

/// Verification against the single `jwk`, read from a JWKS file written in `dir`.
fn jwks_file_config(dir: &std::path::Path, jwk: &serde_json::Value) -> Config {
    let file = write(
        dir,
        "jwks.json",
        &serde_json::json!({ "keys": [jwk] }).to_string(),
    );
    let mut config = jwks_config(String::new());
    config.jwks = Some(JwksSettings {
        url: None,
        file: Some(file),
        refresh: Duration::from_secs(3600),
        unknown_kid_cooldown: Duration::from_secs(1),
        max_stale: Duration::from_secs(7200),
    });
    config
}

#[tokio::test]
async fn jwks_rotation_is_accepted_without_restart() {
    let first = SigningKey::generate("first");
    let second = SigningKey::generate("second");
    let published = Arc::new(RwLock::new(vec![first.jwk.clone()]));
    let config = jwks_config(serve_jwks(published.clone()).await);
    let addr = serve(&config, None).await;
    let channel = channel(addr).await;
    let claims = claims("svc", "whoami");

    let seen = whoami(&channel, Some(&first.sign("first", &claims))).await;
    assert!(seen.expect("first key").starts_with("svc jwt"));

    published.write().expect("keys").push(second.jwk.clone());
    assert!(
        whoami(&channel, Some(&second.sign("second", &claims)))
            .await
            .is_ok()
    );

    let forged = whoami(&channel, Some(&first.sign("second", &claims)))
        .await
        .unwrap_err();
    assert_eq!(reason(&forged), "TOKEN_INVALID_SIGNATURE");
    let unknown = whoami(&channel, Some(&first.sign("third", &claims)))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(reason(&unknown), "TOKEN_UNKNOWN_KEY");
    let symmetric = whoami(&channel, Some(&sign_hs256(SECRET, claims.clone())))
        .await
        .unwrap_err();
    assert_eq!(reason(&symmetric), "TOKEN_ALGORITHM_NOT_ALLOWED");
}

#[tokio::test]
async fn jwks_is_reread_on_schedule_and_unknown_kids_cannot_force_rereads() {
    let early = SigningKey::generate("early");
    let late = SigningKey::generate("late");
    let published = Arc::new(RwLock::new(vec![early.jwk.clone()]));
    let mut config = jwks_config(serve_jwks(published.clone()).await);
    let refresh = Duration::from_millis(200);
    if let Some(jwks) = config.jwks.as_mut() {
        jwks.refresh = refresh;
    }
    let addr = serve(&config, None).await;
    let channel = channel(addr).await;
    let token = late.sign("late", &claims("svc", "whoami"));

    let unknown = whoami(&channel, Some(&token)).await.unwrap_err();
    assert_eq!(reason(&unknown), "TOKEN_UNKNOWN_KEY");
    published.write().expect("keys").push(late.jwk.clone());
    let cooled = whoami(&channel, Some(&token)).await.unwrap_err();
    assert_eq!(
        reason(&cooled),
        "TOKEN_UNKNOWN_KEY",
        "no second re-read within the cooldown"
    );

    let mut accepted = false;
    for _ in 0..50 {
        tokio::time::sleep(refresh).await;
        if whoami(&channel, Some(&token)).await.is_ok() {
            accepted = true;
            break;
        }
    }
    assert!(
        accepted,
        "the scheduled re-read never picked up the new key"
    );
}

#[tokio::test]
async fn jwks_from_a_file_and_a_wrong_source_fails_start_up() {
    let key = SigningKey::generate("file-key");
    let dir = tempfile::tempdir().expect("dir");
    let mut config = jwks_file_config(dir.path(), &key.jwk);
    let addr = serve(&config, None).await;
    let token = key.sign("file-key", &claims("svc", "whoami"));
    assert!(whoami(&channel(addr).await, Some(&token)).await.is_ok());

    let broken = jwks_config("http://127.0.0.1:9/nothing-here".into());
    assert!(pasarela_auth::AuthLayer::new(&broken).await.is_err());
    let empty = write(dir.path(), "empty.json", r#"{ "keys": [] }"#);
    if let Some(jwks) = config.jwks.as_mut() {
        jwks.file = Some(empty);
    }
    assert!(pasarela_auth::AuthLayer::new(&config).await.is_err());
}

#[tokio::test]
async fn rs256_tokens_verify_against_the_jwks() {
    let jwk: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/rs256-test-only.jwk.json")).expect("jwk");
    let dir = tempfile::tempdir().expect("dir");
    let config = jwks_file_config(dir.path(), &jwk);
    let addr = serve(&config, None).await;
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("fixtures/rs256-test-only.key.pem"))
            .expect("RSA key");
    let sign = |alg| {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some("rsa-test".into());
        jsonwebtoken::encode(&header, &claims("svc", "whoami"), &key).expect("signs")
    };
    let channel = channel(addr).await;
    assert!(
        whoami(&channel, Some(&sign(jsonwebtoken::Algorithm::RS256)))
            .await
            .is_ok()
    );
    // The JWK pins RS256: the same key under another algorithm is refused.
    let other = whoami(&channel, Some(&sign(jsonwebtoken::Algorithm::PS256)))
        .await
        .unwrap_err();
    assert_eq!(reason(&other), "TOKEN_ALGORITHM_NOT_ALLOWED");
}

const SPIFFE_ID: &str = "spiffe://pasarela.test/ns/payments/sa/billing";

fn tls_client(pki: &Pki, identity: Option<(String, String)>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.cert_pem))
        .domain_name("localhost");
    match identity {
        Some((cert, key)) => tls.identity(Identity::from_pem(cert, key)),
        None => tls,
    }
}

async fn tls_whoami(
    addr: std::net::SocketAddr,
    tls: ClientTlsConfig,
    token: Option<&str>,
) -> Result<String, tonic::Status> {
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("client tls");
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    whoami(&channel, token).await
}

/// Server TLS from files in `dir`: a localhost certificate issued by `server`, client
/// certificates checked against `clients`.
fn server_tls(
    dir: &std::path::Path,
    server: &Pki,
    clients: &Pki,
    client_auth_required: bool,
    reload_every: Duration,
) -> TlsSettings {
    let (cert, key) = server.issue(&["localhost"], None, "pasarela");
    TlsSettings {
        cert_file: write(dir, "server.pem", &cert),
        key_file: write(dir, "server.key", &key),
        client_ca_file: Some(write(dir, "clients.pem", &clients.cert_pem)),
        client_auth_required,
        reload_every,
    }
}

#[tokio::test]
async fn mtls_identity_stands_as_principal_and_foreign_certificates_are_refused() {
    let pki = Pki::new("pasarela test CA");
    let foreign = Pki::new("someone else's CA");
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_tls(dir.path(), &pki, &pki, false, Duration::from_secs(10));
    let mut config = config();
    config
        .mtls
        .principals
        .insert(SPIFFE_ID.into(), vec!["whoami".into()]);
    let addr = serve(&config, Some(&tls)).await;

    let listed = pki.issue(&[], Some(SPIFFE_ID), "billing");
    let seen = tls_whoami(addr, tls_client(&pki, Some(listed)), None).await;
    assert_eq!(
        seen.expect("listed certificate is a principal"),
        format!("{SPIFFE_ID} mtls [whoami] client=- authorization=false")
    );

    let unlisted = pki.issue(
        &[],
        Some("spiffe://pasarela.test/ns/x/sa/intruder"),
        "intruder",
    );
    let refused = tls_whoami(addr, tls_client(&pki, Some(unlisted.clone())), None)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_MISSING");
    let bearer = token(&config, "alice", &["whoami"]);
    let seen = tls_whoami(addr, tls_client(&pki, Some(unlisted)), Some(&bearer)).await;
    assert!(seen.expect("token over mTLS").starts_with("alice jwt"));

    let anonymous = tls_whoami(addr, tls_client(&pki, None), None)
        .await
        .unwrap_err();
    assert_eq!(reason(&anonymous), "TOKEN_MISSING");

    let stranger = foreign.issue(&[], Some(SPIFFE_ID), "billing");
    let refused = tls_whoami(addr, tls_client(&pki, Some(stranger)), Some(&bearer)).await;
    let status = refused.expect_err("a certificate from another CA never reaches a handler");
    assert!(
        status.get_details_error_info().is_none(),
        "refused by the TLS handshake, not by a policy: {status:?}"
    );
}

#[tokio::test]
async fn required_client_certificates_keep_out_callers_without_one() {
    let pki = Pki::new("pasarela test CA");
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_tls(dir.path(), &pki, &pki, true, Duration::from_secs(10));
    let config = config();
    let addr = serve(&config, Some(&tls)).await;
    let bearer = token(&config, "alice", &["whoami"]);
    let refused = tls_whoami(addr, tls_client(&pki, None), Some(&bearer)).await;
    assert!(refused.is_err());
    let client = pki.issue(&[], None, "some-client");
    assert!(
        tls_whoami(addr, tls_client(&pki, Some(client)), Some(&bearer))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn reloading_tls_keeps_mtls_identities_and_serves_a_renewed_certificate() {
    let first_ca = Pki::new("first server CA");
    let second_ca = Pki::new("second server CA");
    let clients = Pki::new("client CA");
    let dir = tempfile::tempdir().expect("dir");
    let tls = server_tls(
        dir.path(),
        &first_ca,
        &clients,
        true,
        Duration::from_millis(100),
    );
    let mut config = config();
    config
        .mtls
        .principals
        .insert(SPIFFE_ID.into(), vec!["whoami".into()]);
    let addr = serve_reloading(&config, &tls).await;
    let listed = clients.issue(&[], Some(SPIFFE_ID), "billing");
    let trusting = |ca: &Pki| {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca.cert_pem))
            .domain_name("localhost")
            .identity(Identity::from_pem(&listed.0, &listed.1))
    };

    let seen = tls_whoami(addr, trusting(&first_ca), None).await;
    assert!(seen.expect("listed certificate").starts_with(SPIFFE_ID));
    let stranger = second_ca.issue(&[], Some(SPIFFE_ID), "billing");
    let foreign = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&first_ca.cert_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(stranger.0, stranger.1));
    assert!(tls_whoami(addr, foreign, None).await.is_err());
    assert!(tls_whoami(addr, trusting(&second_ca), None).await.is_err());

    // Renewal by another CA, written as a Secret update would be: key, then certificate.
    let (cert, key) = second_ca.issue(&["localhost"], None, "pasarela");
    write(dir.path(), "server.key", &key);
    write(dir.path(), "server.pem", &cert);
    let mut renewed = false;
    for _ in 0..50 {
        tokio::time::sleep(tls.reload_every).await;
        if tls_whoami(addr, trusting(&second_ca), None).await.is_ok() {
            renewed = true;
            break;
        }
    }
    assert!(renewed, "the renewed certificate was never served");
}
