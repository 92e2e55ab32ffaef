//! The foundation: every contract is discoverable through reflection (v1 and v1alpha),
//! health answers per service without a token, and a real `pasarela dev` process answers
//! a real `grpcurl`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use prost::Message as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::process::{DevProcess, mint_with_cli};
use crate::support::tools;
use crate::support::{pasarela_bin, spawn_app, tool};

/// The provider operations each service must expose (specs README: 19 + 1 + 4).
pub const SERVICES: [(&str, usize); 3] = [
    ("pasarela.security.v1.SecurityService", 19),
    ("pasarela.bureau.v1.BureauService", 1),
    ("pasarela.recurring_payments.v1.RecurringPaymentsService", 4),
];

async fn reflect(channel: tonic::transport::Channel, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(channel);
    let outbound = tokio_stream::once(ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    });
    let mut answers = client
        .server_reflection_info(outbound)
        .await
        .expect("reflection answers without a token")
        .into_inner();
    answers
        .message()
        .await
        .expect("reflection stream")
        .and_then(|answer| answer.message_response)
        .expect("one reflection answer")
}

#[tokio::test]
async fn reflection_lists_every_service() {
    let app = spawn_app().await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(app.channel(), MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in SERVICES.iter().map(|(name, _)| *name).chain([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ]) {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn reflection_describes_every_provider_operation() {
    let app = spawn_app().await;
    for (service, operations) in SERVICES {
        let MessageResponse::FileDescriptorResponse(files) = reflect(
            app.channel(),
            MessageRequest::FileContainingSymbol(service.to_owned()),
        )
        .await
        else {
            panic!("no descriptor for {service}");
        };
        let methods: usize = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service
                    .into_iter()
                    .filter(move |s| format!("{package}.{}", s.name()) == service)
            })
            .map(|s| s.method.len())
            .sum();
        assert_eq!(methods, operations, "{service}");
    }
}

#[tokio::test]
async fn health_answers_per_service_without_a_token() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel());
    for service in SERVICES.iter().map(|(name, _)| *name).chain([""]) {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "pasarela.nothing.v1.Nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[test]
fn grpcurl_lists_and_describes_everything() {
    if tools::lacking(&["grpcurl"]) {
        return;
    }
    let dev = DevProcess::start();
    let addr = dev.addr.to_string();
    let list = dev.grpcurl(&[&addr, "list"]);
    for expected in SERVICES.iter().map(|(name, _)| *name).chain([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]) {
        assert!(
            list.lines().any(|l| l == expected),
            "{expected} not in:\n{list}"
        );
    }
    for (service, operations) in SERVICES {
        let described = dev.grpcurl(&[&addr, "describe", service]);
        let rpcs = described
            .lines()
            .filter(|l| l.trim_start().starts_with("rpc "))
            .count();
        assert_eq!(rpcs, operations, "{service}:\n{described}");
    }
    let health = dev.grpcurl(&[&addr, "grpc.health.v1.Health/Check"]);
    assert!(health.contains("SERVING"), "{health}");
}

#[test]
fn grpcurl_calls_need_the_minted_token() {
    if tools::lacking(&["grpcurl"]) {
        return;
    }
    let dev = DevProcess::start();
    let addr = dev.addr.to_string();
    let method = "pasarela.bureau.v1.BureauService/GetPasswordExpiration";
    let output = Command::new(tool("grpcurl"))
        .args(["-plaintext", "-d", "{}", &addr, method])
        .output()
        .expect("grpcurl runs");
    let refused = String::from_utf8_lossy(&output.stderr);
    assert!(refused.contains("Unauthenticated"), "{refused}");

    let header = format!("authorization: Bearer {}", mint_with_cli("*"));
    let output = Command::new(tool("grpcurl"))
        .args(["-plaintext", "-H", &header, "-d", "{}", &addr, method])
        .output()
        .expect("grpcurl runs");
    let answer = String::from_utf8_lossy(&output.stderr);
    // An empty request passes auth and is refused by validation, before any provider call.
    assert!(answer.contains("InvalidArgument"), "{answer}");
}

#[test]
fn buf_lint_is_clean() {
    if tools::lacking(&["buf"]) {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(tool("buf"))
        .arg("lint")
        .current_dir(root)
        .output()
        .expect("buf runs");
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "buf lint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `pasarela sandbox` alone: it prints one `name=value` line per URL and certificate, then
/// serves them until stopped.
#[tokio::test]
async fn the_sandbox_runs_standalone_and_prints_its_urls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(pasarela_bin())
        .arg("sandbox")
        .args(["--admin-port", "0", "--bcs-port", "0", "--kiban-port", "0"])
        .args(["--daviplata-port", "0"])
        .arg("--pki-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("pasarela sandbox starts");
    let stdout = child.stdout.take().expect("stdout");
    let printed: BTreeMap<String, String> = BufReader::new(stdout)
        .lines()
        .map(|line| line.expect("a line"))
        .take(7)
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    for name in ["admin_url", "bcs_url", "kiban_url", "daviplata_url"] {
        assert!(
            printed.contains_key(name),
            "{name} not printed: {printed:?}"
        );
    }
    for name in [
        "daviplata_ca_cert",
        "daviplata_client_cert",
        "daviplata_client_key",
    ] {
        let path = std::path::Path::new(&printed[name]);
        assert!(
            path.starts_with(dir.path()) && path.is_file(),
            "{name}: {path:?}"
        );
    }
    let health = reqwest::get(format!("{}/health", printed["admin_url"]))
        .await
        .expect("admin answers");
    assert!(health.status().is_success());
    let no_key = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/password-expiry-date-bc-pm",
            printed["kiban_url"]
        ))
        .json(&serde_json::json!({"clave": "PM00000001", "contrasena": "Abc12345"}))
        .send()
        .await
        .expect("kiban answers");
    assert_eq!(no_key.status(), reqwest::StatusCode::UNAUTHORIZED);
    let _ = child.kill();
    let _ = child.wait();
}
