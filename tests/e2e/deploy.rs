//! The deploy artefacts, checked offline: each kustomize overlay renders and passes strict
//! schema validation, every service keeps its production basics in the rendered YAML, the
//! configuration a pod receives parses as pasarela's own, and a real process drains on
//! SIGTERM the way the manifests' timings assume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use figment::providers::Serialized;
use figment::value::{Dict, Value as Setting};
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::bureau::v1::{GetPasswordExpirationRequest, GetPasswordExpirationResponse};
use pasarela::common::v1::{DocumentType, Identification};
use pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient;
use pasarela::recurring_payments::v1::{Commerce, RequestSubscriptionRequest, Wallet};
use pasarela_server::Config;
use pasarela_server::config::ServiceName;
use serde::Deserialize as _;
use serde_json::{Map, Value, json};
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::foundation::{DevProcess, mint_with_cli};
use crate::support::{bearer_with, tool};

const OVERLAYS: [&str; 2] = ["dev", "prod"];
/// The oldest Kubernetes the manifests promise to fit (gRPC probes GA, `preStop.sleep`).
const KUBERNETES_VERSION: &str = "1.32";
const INSTALLER: &str = "scripts/install-test-tools.sh";

fn overlay_dir(overlay: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/k8s/overlays")
        .join(overlay)
}

/// `kubectl kustomize` of one overlay, as the platform team would apply it.
fn render(overlay: &str) -> String {
    let output = Command::new(tool("kubectl", INSTALLER))
        .arg("kustomize")
        .arg(overlay_dir(overlay))
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "overlay {overlay} does not render: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 YAML")
}

/// Every object an overlay renders.
struct Manifests {
    overlay: &'static str,
    objects: Vec<Value>,
}

impl Manifests {
    fn of(overlay: &'static str) -> Manifests {
        let yaml = render(overlay);
        let objects = serde_yaml_ng::Deserializer::from_str(&yaml)
            .map(|document| Value::deserialize(document).expect("a YAML object"))
            .collect();
        Manifests { overlay, objects }
    }

    fn all(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind).find(|o| o["metadata"]["name"] == name)
    }

    /// The one object of `kind` that belongs to `service`.
    fn of_service(&self, kind: &str, service: ServiceName) -> &Value {
        let component = component(service);
        let found: Vec<_> = self
            .all(kind)
            .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/component"] == component)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: one {kind} for {component}",
            self.overlay
        );
        found[0]
    }

    /// The data of the ConfigMap `name`.
    fn config_map(&self, name: &str) -> &Map<String, Value> {
        self.named("ConfigMap", name)
            .and_then(|map| map["data"].as_object())
            .unwrap_or_else(|| panic!("{}: no ConfigMap {name}", self.overlay))
    }
}

/// The service's label value: its configuration name (`recurring-payments`).
fn component(service: ServiceName) -> String {
    serde_json::to_value(service)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a service name")
}

fn pasarela_container(deployment: &Value) -> &Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == "pasarela"))
        .expect("a pasarela container")
}

fn int(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// Whether every `matchLabels` pair is among `labels`.
fn selects(match_labels: &Value, labels: &Value) -> bool {
    let wanted = match_labels.as_object().expect("matchLabels");
    !wanted.is_empty() && wanted.iter().all(|(k, v)| &labels[k] == v)
}

/// What the pasarela container of `deployment` is configured with: its mounted TOML file,
/// with the `PASARELA_*` variables the pod sets, loaded by pasarela's own configuration.
/// Secret values are not in the manifests; a stand-in takes their place.
fn pod_config(manifests: &Manifests, deployment: &Value) -> Config {
    let container = pasarela_container(deployment);
    let file = config_file(manifests, deployment);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pasarela.toml");
    std::fs::write(&path, file).expect("config file written");
    let variables = pod_variables(manifests, container);
    Config::load_over(Serialized::defaults(nest(&variables)), Some(&path))
        .unwrap_or_else(|e| panic!("{}: {e:#}", manifests.overlay))
}

/// The TOML file `PASARELA_CONFIG` points at, found through the container's mounts.
fn config_file<'m>(manifests: &'m Manifests, deployment: &Value) -> &'m str {
    let container = pasarela_container(deployment);
    let config_path = env_value(container, "PASARELA_CONFIG").expect("PASARELA_CONFIG is set");
    let (dir, file) = config_path.rsplit_once('/').expect("an absolute path");
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|mounts| mounts.iter().find(|m| m["mountPath"] == dir))
        .unwrap_or_else(|| panic!("nothing is mounted at {dir}"));
    assert_eq!(
        mount["readOnly"], true,
        "the configuration is mounted read-only"
    );
    let volume = volume(deployment, mount["name"].as_str().expect("mount name"));
    let map = volume["configMap"]["name"]
        .as_str()
        .expect("a ConfigMap volume");
    manifests.config_map(map)[file]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {map} has no {file}"))
}

fn volume<'d>(deployment: &'d Value, name: &str) -> &'d Value {
    deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .and_then(|volumes| volumes.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("no volume {name}"))
}

fn env_value<'c>(container: &'c Value, name: &str) -> Option<&'c str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// The container's `PASARELA_*` configuration variables, from `env` and `envFrom`.
fn pod_variables(manifests: &Manifests, container: &Value) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let map = source["configMapRef"]["name"]
            .as_str()
            .expect("envFrom a ConfigMap");
        for (key, value) in manifests.config_map(map) {
            variables.insert(key.clone(), value.as_str().expect("text").to_owned());
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().expect("env name").to_owned();
        let value = match variable["value"].as_str() {
            Some(value) => value.to_owned(),
            None => format!(
                "secret-{}",
                variable["valueFrom"]["secretKeyRef"]["key"]
                    .as_str()
                    .expect("a Secret key")
            ),
        };
        variables.insert(name, value);
    }
    variables.remove("PASARELA_CONFIG");
    variables
}

/// `PASARELA_A__B=v` as `{a: {b: v}}`, each value parsed as pasarela's loader parses
/// environment variables (`true` a boolean, `[a]` a list).
fn nest(variables: &BTreeMap<String, String>) -> Dict {
    let mut root = Dict::new();
    for (name, raw) in variables {
        let key = name
            .strip_prefix("PASARELA_")
            .unwrap_or_else(|| panic!("{name}"));
        let path: Vec<String> = key.split("__").map(str::to_lowercase).collect();
        let value: Setting = raw.parse().unwrap_or_else(|never| match never {});
        insert(&mut root, &path, value);
    }
    root
}

fn insert(dict: &mut Dict, path: &[String], value: Setting) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let child = dict
                .entry(first.clone())
                .or_insert_with(|| Setting::from(Dict::new()));
            match child {
                Setting::Dict(_, inner) => insert(inner, rest, value),
                other => panic!("{first} is both a value ({other:?}) and a table"),
            }
        }
    }
}

#[test]
fn every_overlay_renders_and_passes_strict_validation() {
    let validator = tool("kubernetes-validate", INSTALLER);
    for overlay in OVERLAYS {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, render(overlay)).expect("rendered YAML written");
        let output = Command::new(&validator)
            .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
            .arg(&file)
            .output()
            .expect("kubernetes-validate runs");
        assert!(
            output.status.success(),
            "{overlay} fails validation:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn probes_are_native_grpc_on_the_admin_port_with_the_service_name() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let config = pod_config(&manifests, deployment);
            let admin = config.admin_listen.expect("the admin port is on").port();
            let container = pasarela_container(deployment);
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                let grpc = &container[probe]["grpc"];
                assert_eq!(
                    int(&grpc["port"]),
                    u64::from(admin),
                    "{overlay} {service:?} {probe}"
                );
                assert_eq!(
                    grpc["service"],
                    service.grpc_name(),
                    "{overlay} {service:?} {probe}"
                );
            }
            let ports = container["ports"].as_array().expect("container ports");
            for (name, port) in [("grpc", config.listen.port()), ("admin", admin)] {
                assert!(
                    ports
                        .iter()
                        .any(|p| p["name"] == name && int(&p["containerPort"]) == u64::from(port)),
                    "{overlay} {service:?}: port {name} is {port}"
                );
            }
            assert_eq!(
                config.services,
                [service],
                "{overlay}: one service per workload"
            );
            // The kubelet's gRPC probe speaks no TLS: it must never need the gRPC port.
            assert_ne!(config.listen.port(), admin, "{overlay} {service:?}");
            if overlay == "prod" {
                assert!(config.tls.is_some(), "prod serves TLS on the gRPC port");
            }
        }
    }
}

#[test]
fn pods_meet_the_restricted_pod_security_standard() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        let namespaces: Vec<_> = manifests.all("Namespace").collect();
        assert!(!namespaces.is_empty(), "{overlay} creates its namespace");
        for namespace in namespaces {
            let labels = &namespace["metadata"]["labels"];
            assert_eq!(
                labels["pod-security.kubernetes.io/enforce"], "restricted",
                "{overlay}"
            );
        }
        for deployment in manifests.all("Deployment") {
            let name = &deployment["metadata"]["name"];
            let pod = &deployment["spec"]["template"]["spec"];
            assert_eq!(
                pod["automountServiceAccountToken"], false,
                "{overlay} {name}"
            );
            assert_eq!(
                pod["securityContext"]["runAsNonRoot"], true,
                "{overlay} {name}"
            );
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{overlay} {name}"
            );
            for container in pod["containers"].as_array().expect("containers") {
                let context = &container["securityContext"];
                assert_eq!(context["readOnlyRootFilesystem"], true, "{overlay} {name}");
                assert_eq!(
                    context["allowPrivilegeEscalation"], false,
                    "{overlay} {name}"
                );
                assert_eq!(
                    context["capabilities"]["drop"],
                    json!(["ALL"]),
                    "{overlay} {name}"
                );
                let resources = &container["resources"];
                for quantity in [
                    &resources["requests"]["cpu"],
                    &resources["requests"]["memory"],
                    &resources["limits"]["memory"],
                ] {
                    assert!(
                        quantity.is_string(),
                        "{overlay} {name}: resources {resources}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_service_has_a_service_disruption_budget_autoscaler_and_network_policy() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let name = deployment["metadata"]["name"].as_str().expect("name");
            let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
            let context = format!("{overlay} {name}");

            let svc = manifests.of_service("Service", service);
            assert!(
                selects(&svc["spec"]["selector"], pod_labels),
                "{context}: Service"
            );
            let grpc_port = svc["spec"]["ports"]
                .as_array()
                .expect("ports")
                .iter()
                .find(|p| p["targetPort"] == "grpc")
                .unwrap_or_else(|| panic!("{context}: Service reaches the gRPC port"));
            let tls = pod_config(&manifests, deployment).tls.is_some();
            assert_eq!(
                grpc_port["appProtocol"] == "kubernetes.io/h2c",
                !tls,
                "{context}: the Service names cleartext HTTP/2 exactly when the port is plaintext"
            );

            let budget = manifests.of_service("PodDisruptionBudget", service);
            assert!(
                selects(&budget["spec"]["selector"]["matchLabels"], pod_labels),
                "{context}: PDB"
            );
            assert!(
                budget["spec"]["maxUnavailable"].is_number()
                    || budget["spec"]["minAvailable"].is_number(),
                "{context}: PDB bound"
            );

            let autoscaler = manifests.of_service("HorizontalPodAutoscaler", service);
            let target = &autoscaler["spec"]["scaleTargetRef"];
            assert_eq!(
                (&target["kind"], &target["name"]),
                (&json!("Deployment"), &json!(name)),
                "{context}"
            );
            let (min, max) = (
                int(&autoscaler["spec"]["minReplicas"]),
                int(&autoscaler["spec"]["maxReplicas"]),
            );
            assert!(1 <= min && min <= max, "{context}: replicas {min}..{max}");
            match overlay {
                "dev" => assert_eq!(min, 1, "{context}: one replica each"),
                _ => assert!(min >= 2, "{context}: production survives losing a pod"),
            }

            let policy = manifests.of_service("NetworkPolicy", service);
            assert_network_policy(policy, pod_labels, &context);
            let provider = provider_url(&pod_config(&manifests, deployment), service);
            assert!(
                egress_ports(policy).contains(&provider.port_or_known_default().expect("a port")),
                "{context}: egress reaches the provider at {provider}"
            );
        }
    }
}

/// Where the service's provider is, by its configuration.
fn provider_url(config: &Config, service: ServiceName) -> reqwest::Url {
    let base_url = match service {
        ServiceName::Security => config.security.as_ref().map(|s| &s.base_url),
        ServiceName::Bureau => config.bureau.as_ref().map(|s| &s.base_url),
        ServiceName::RecurringPayments => config.recurring_payments.as_ref().map(|s| &s.base_url),
    };
    let base_url = base_url.unwrap_or_else(|| panic!("{service:?} has its section"));
    reqwest::Url::parse(base_url).unwrap_or_else(|e| panic!("{base_url}: {e}"))
}

fn egress_ports(policy: &Value) -> Vec<u16> {
    policy["spec"]["egress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["ports"].as_array().into_iter().flatten())
        .filter_map(|port| port["port"].as_u64())
        .filter_map(|port| u16::try_from(port).ok())
        .collect()
}

/// Isolated both ways; ingress only from selected peers; egress only to listed ports, DNS
/// among them.
fn assert_network_policy(policy: &Value, pod_labels: &Value, context: &str) {
    let spec = &policy["spec"];
    assert!(
        selects(&spec["podSelector"]["matchLabels"], pod_labels),
        "{context}: policy selects the pods"
    );
    assert_eq!(
        spec["policyTypes"],
        json!(["Ingress", "Egress"]),
        "{context}"
    );
    for rule in spec["ingress"].as_array().expect("ingress rules") {
        for peer in rule["from"].as_array().expect("ingress from named peers") {
            assert!(
                peer["podSelector"]["matchExpressions"].is_array()
                    || peer["podSelector"]["matchLabels"].is_object(),
                "{context}: callers are chosen by label, not by address: {peer}"
            );
        }
    }
    let egress = spec["egress"].as_array().expect("egress rules");
    for rule in egress {
        assert!(
            rule["to"].is_array() && rule["ports"].is_array(),
            "{context}: open egress {rule}"
        );
    }
    assert!(egress_ports(policy).contains(&53), "{context}: DNS");
}

#[test]
fn shutdown_timings_nest_pre_stop_then_drain_then_grace_period() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let config = pod_config(&manifests, deployment);
            let pod = &deployment["spec"]["template"]["spec"];
            let container = pasarela_container(deployment);
            let context = format!("{overlay} {service:?}");

            let pre_stop =
                Duration::from_secs(int(&container["lifecycle"]["preStop"]["sleep"]["seconds"]));
            let drain = config.shutdown.drain_delay + config.shutdown.drain_timeout;
            let grace = Duration::from_secs(int(&pod["terminationGracePeriodSeconds"]));
            // The kubelet counts the grace period from the start of preStop, and SIGTERM
            // follows preStop.
            assert!(
                pre_stop < drain,
                "{context}: preStop {pre_stop:?} < drain {drain:?}"
            );
            assert!(
                pre_stop + drain < grace,
                "{context}: preStop + drain {drain:?} < grace {grace:?}"
            );

            let liveness = &container["livenessProbe"];
            let patience = Duration::from_secs(
                int(&liveness["periodSeconds"]) * int(&liveness["failureThreshold"]),
            );
            assert!(
                drain < patience,
                "{context}: a draining pod is not killed by liveness"
            );

            let age = config.max_connection_age.expect("a bounded connection age");
            assert!(
                age <= Duration::from_secs(600),
                "{context}: connections rebalance"
            );
        }
    }
}

#[test]
fn recurring_payments_shares_idempotency_in_redis_when_it_can_scale_out() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        let service = ServiceName::RecurringPayments;
        let deployment = manifests.of_service("Deployment", service);
        let config = pod_config(&manifests, deployment);
        let section = config
            .recurring_payments
            .expect("the recurring_payments section");
        let max =
            int(&manifests.of_service("HorizontalPodAutoscaler", service)["spec"]["maxReplicas"]);
        if max > 1 {
            assert_eq!(
                section.idempotency.store,
                pasarela_recurring_payments::StoreKind::Redis,
                "{overlay}"
            );
            assert!(section.idempotency.url.is_some(), "{overlay}: a Redis URL");
        }
        let policy = manifests.of_service("NetworkPolicy", service);
        let redis = policy["spec"]["egress"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| {
                rule["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["port"] == 6379)
            });
        assert!(redis, "{overlay}: egress to Redis");
    }
}

#[test]
fn credentials_come_from_secrets_that_prod_leaves_to_the_platform_team() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            for secret in referenced_secrets(deployment) {
                let present = manifests.named("Secret", &secret).is_some();
                // dev generates obviously fake values; prod names Secrets created out of band.
                assert_eq!(present, overlay == "dev", "{overlay}: Secret {secret}");
            }
            for (name, value) in pod_variables(&manifests, pasarela_container(deployment)) {
                let secret = ["SECRET", "API_KEY", "PASSWORD", "IDEMPOTENCY__URL"]
                    .iter()
                    .any(|s| name.contains(s));
                assert!(
                    !secret || value.starts_with("secret-"),
                    "{overlay}: {name} must come from a Secret"
                );
            }
        }
    }
}

fn referenced_secrets(deployment: &Value) -> Vec<String> {
    let pod = &deployment["spec"]["template"]["spec"];
    let from_env = pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str());
    let from_volumes = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["secret"]["secretName"].as_str());
    from_env.chain(from_volumes).map(str::to_owned).collect()
}

/// The Dockerfile cannot be built here (no image can be pulled), so what the manifests rely
/// on is read from it: a release build of the binary, a non-root user matching the pods',
/// the two ports, and a health check that needs no shell.
#[test]
fn the_image_matches_what_the_manifests_expect() {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile"))
            .expect("deploy/Dockerfile");
    let joined = dockerfile.replace("\\\n", " ");
    let instructions: Vec<(&str, &str)> = joined
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(char::is_whitespace))
        .collect();
    let stages = instructions.iter().filter(|(op, _)| *op == "FROM").count();
    assert!(stages >= 2, "a multi-stage build");
    let runtime: Vec<_> = instructions
        .iter()
        .rev()
        .take_while(|(op, _)| *op != "FROM")
        .collect();
    let build = instructions
        .iter()
        .find(|(op, _)| *op == "RUN")
        .expect("a build step")
        .1;
    assert!(
        build.contains("cargo build --release --locked -p pasarela-server"),
        "{build}"
    );

    let manifests = Manifests::of("prod");
    let deployment = manifests.of_service("Deployment", ServiceName::Bureau);
    let config = pod_config(&manifests, deployment);
    let pod_user = int(&deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]);
    let user = runtime
        .iter()
        .find(|(op, _)| *op == "USER")
        .expect("a USER")
        .1;
    assert_eq!(
        user.split(':').next(),
        Some(pod_user.to_string().as_str()),
        "image and pod agree on the user"
    );
    assert_ne!(pod_user, 0, "not root");

    let exposed = runtime
        .iter()
        .find(|(op, _)| *op == "EXPOSE")
        .expect("EXPOSE")
        .1;
    let admin = config.admin_listen.expect("admin port").port();
    for port in [config.listen.port(), admin] {
        assert!(
            exposed.split_whitespace().any(|p| p == port.to_string()),
            "port {port} in {exposed}"
        );
    }
    let health = runtime
        .iter()
        .find(|(op, _)| *op == "HEALTHCHECK")
        .expect("a HEALTHCHECK")
        .1;
    assert!(
        health.contains("\"health\"") && health.contains(&format!(":{admin}\"")),
        "the image's health check asks `pasarela health` on the admin port: {health}"
    );
}

/// A member and test case the Kiban emulator answers with an expiration date.
fn kiban_success() -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: "PM00000001".into(),
        password: "Abc12345".into(),
        test_case_id: "663567bb713cf2110a110679".into(),
    }
}

const KIBAN_ROUTE: &str = "POST /api/v1/password-expiry-date-bc-pm";

/// A running `pasarela dev` and what its banner says about it.
struct Draining {
    dev: DevProcess,
    /// The plaintext admin port (probes).
    admin: String,
    /// The sandbox's admin API (faults, call counts).
    sandbox_admin: String,
    http: reqwest::Client,
}

impl Draining {
    fn start(env: &[(&str, &str)]) -> Draining {
        let dev = DevProcess::start_with_env(env);
        let admin = dev.banner["metrics"]
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .to_owned();
        let sandbox_admin = dev.banner["sandbox"]
            .rsplit_once("admin ")
            .map(|(_, url)| url.trim().to_owned())
            .expect("the sandbox's admin URL in the banner");
        Draining {
            dev,
            admin,
            sandbox_admin,
            http: reqwest::Client::new(),
        }
    }

    /// The next Kiban call meets `fault` (the sandbox's fault-injection rule syntax).
    async fn inject(&self, fault: Value) {
        let rule = json!({
            "provider": "kiban",
            "path": "/api/v1/password-expiry-date-bc-pm",
            "fault": fault,
            "times": 1,
        });
        let answer = self
            .http
            .post(format!("{}/faults", self.sandbox_admin))
            .json(&rule)
            .send()
            .await
            .expect("sandbox admin answers");
        assert_eq!(
            answer.status(),
            reqwest::StatusCode::CREATED,
            "fault rule accepted"
        );
    }

    /// Starts a Kiban-backed call and returns once the sandbox has received it.
    async fn call_in_flight(
        &self,
    ) -> tokio::task::JoinHandle<
        Result<tonic::Response<GetPasswordExpirationResponse>, tonic::Status>,
    > {
        let channel = Endpoint::from_shared(format!("http://{}", self.dev.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("pasarela accepts a connection");
        let mut client =
            BureauServiceClient::with_interceptor(channel, bearer_with(&mint_with_cli("*")));
        let call =
            tokio::spawn(async move { client.get_password_expiration(kiban_success()).await });
        eventually("the call reaches the sandbox", || async {
            self.kiban_calls().await >= 1
        })
        .await;
        call
    }

    async fn kiban_calls(&self) -> u64 {
        let calls: Value = self
            .http
            .get(format!("{}/calls", self.sandbox_admin))
            .send()
            .await
            .expect("sandbox admin answers")
            .json()
            .await
            .expect("call counts");
        calls["kiban"][KIBAN_ROUTE].as_u64().unwrap_or(0)
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.dev.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM sent");
    }

    /// The bureau's health on the admin port, as the kubelet's probe asks it; `None` when
    /// the port does not answer.
    async fn health(&self) -> Option<ServingStatus> {
        let channel = Endpoint::from_shared(format!("http://{}", self.admin))
            .ok()?
            .connect()
            .await
            .ok()?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: ServiceName::Bureau.grpc_name().into(),
            })
            .await
            .ok()?;
        Some(answer.into_inner().status())
    }

    /// Waits for the process to end, at most `limit`.
    fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.dev.child.try_wait().expect("process status") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pasarela still runs {limit:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn refuses_connections(&self) -> bool {
        std::net::TcpStream::connect(self.dev.addr).is_err()
    }
}

/// Polls `probe` until it holds (20 s at most: a guard against hanging, not a timing).
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_health_not_serving_finishes_the_call_in_flight_and_exits_cleanly() {
    // drain_delay as in the manifests' order of events, long enough to watch NOT_SERVING.
    let mut process = Draining::start(&[
        ("PASARELA_SHUTDOWN__DRAIN_DELAY", "1s"),
        ("PASARELA_SHUTDOWN__DRAIN_TIMEOUT", "15s"),
    ]);
    assert_eq!(process.health().await, Some(ServingStatus::Serving));
    process
        .inject(json!({ "type": "latency", "ms": 5000 }))
        .await;
    let call = process.call_in_flight().await;

    process.terminate();
    eventually("health turns NOT_SERVING on the admin port", || async {
        process.health().await == Some(ServingStatus::NotServing)
    })
    .await;
    eventually(
        "new connections are refused once the drain starts",
        || async { process.refuses_connections() },
    )
    .await;
    assert!(
        !call.is_finished(),
        "the slow call is still in flight while new ones are refused"
    );

    let answer = call
        .await
        .expect("call task")
        .expect("the call in flight completes OK");
    assert!(
        answer.into_inner().expiration_date.is_some(),
        "a real answer"
    );
    let status = process.exit_status(Duration::from_secs(16 + 10));
    assert!(status.success(), "exit status {status:?}");
    assert!(process.refuses_connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_bounds_the_drain_even_when_a_call_never_ends() {
    // The provider never answers and pasarela would wait for it for two minutes: only the
    // drain bound (0 s + 2 s) can end the process soon after SIGTERM.
    let mut process = Draining::start(&[
        ("PASARELA_SHUTDOWN__DRAIN_DELAY", "0s"),
        ("PASARELA_SHUTDOWN__DRAIN_TIMEOUT", "2s"),
        ("PASARELA_BUREAU__OUTBOUND__HTTP__TIMEOUT", "120s"),
    ]);
    process.inject(json!({ "type": "hang" })).await;
    let call = process.call_in_flight().await;

    process.terminate();
    let status = process.exit_status(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");
    let cut = call.await.expect("call task");
    assert!(cut.is_err(), "the stuck call is cut, not answered: {cut:?}");
}

/// One row of the key table in `docs/deploy.md`.
struct DocumentedKey {
    key: String,
    variable: String,
    /// The default, when the cell is one literal (`5m`, `true`, `["a"]`).
    default: Option<String>,
}

fn documented_keys() -> Vec<DocumentedKey> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md"))
        .expect("docs/deploy.md");
    let literal = |cell: &str| {
        let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
        (!inner.contains('`')).then(|| inner.to_owned())
    };
    doc.lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let variable = literal(cells.get(2)?)?;
            variable.starts_with("PASARELA_").then(|| DocumentedKey {
                key: literal(cells[1]).expect("a key"),
                variable,
                default: literal(cells[3]),
            })
        })
        .collect()
}

/// `<provider>` rows stand for each provider's section.
fn expand(documented: &DocumentedKey) -> Vec<(String, String)> {
    const PROVIDERS: [&str; 3] = ["security", "bureau", "recurring_payments"];
    if documented.key.contains("<provider>") {
        PROVIDERS
            .iter()
            .map(|p| {
                let upper = p.to_uppercase();
                (
                    documented.key.replace("<provider>", p),
                    documented.variable.replace("<PROVIDER>", &upper),
                )
            })
            .collect()
    } else {
        vec![(documented.key.clone(), documented.variable.clone())]
    }
}

/// Sections that exist only with some keys set: `tls` needs its certificate and key.
const SECTION_COMPANIONS: [(&str, [(&str, &str); 2]); 1] = [(
    "tls.",
    [
        ("PASARELA_TLS__CERT_FILE", "tls.crt"),
        ("PASARELA_TLS__KEY_FILE", "tls.key"),
    ],
)];

#[test]
fn every_documented_key_is_accepted_under_its_variable() {
    let documented = documented_keys();
    assert!(
        documented.len() > 60,
        "the key table is found: {} rows",
        documented.len()
    );
    // The least configuration that loads: each service's required keys.
    let required = BTreeMap::from(
        [
            ("PASARELA_SECURITY__BASE_URL", "https://bcs.example"),
            ("PASARELA_SECURITY__CLIENT_ID", "id"),
            ("PASARELA_SECURITY__CLIENT_SECRET", "secret"),
            ("PASARELA_BUREAU__BASE_URL", "https://kiban.example"),
            ("PASARELA_BUREAU__API_KEY", "key"),
            (
                "PASARELA_RECURRING_PAYMENTS__BASE_URL",
                "https://daviplata.example",
            ),
            ("PASARELA_RECURRING_PAYMENTS__CLIENT_ID", "id"),
            ("PASARELA_RECURRING_PAYMENTS__CLIENT_SECRET", "secret"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    Config::load_over(Serialized::defaults(nest(&required)), None)
        .expect("the least configuration");
    for row in &documented {
        for (key, variable) in expand(row) {
            if key.contains('<') {
                continue;
            }
            let spelled = format!("PASARELA_{}", key.to_uppercase().replace('.', "__"));
            assert_eq!(variable, spelled, "the variable of {key}");
            let Some(default) = &row.default else {
                continue;
            };
            let mut variables = required.clone();
            for (prefix, companions) in SECTION_COMPANIONS {
                if key.starts_with(prefix) {
                    variables.extend(companions.map(|(k, v)| (k.to_owned(), v.to_owned())));
                }
            }
            variables.insert(variable.clone(), default.clone());
            if let Err(e) = Config::load_over(Serialized::defaults(nest(&variables)), None) {
                panic!("{variable}={default} (documented default of {key}) is refused: {e:#}");
            }
        }
    }
}

/// The files `container` of `deployment` would find under its Secret volume mounts, decoded from
/// the rendered Secrets and written under `root`: mount path to the folder holding them.
fn mount_secrets(
    manifests: &Manifests,
    deployment: &Value,
    container: &Value,
    root: &Path,
) -> Vec<(String, PathBuf)> {
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let volume = volume(deployment, mount["name"].as_str().expect("mount name"));
        let Some(secret) = volume["secret"]["secretName"].as_str() else {
            continue;
        };
        let data = manifests
            .named("Secret", secret)
            .and_then(|s| s["data"].as_object())
            .unwrap_or_else(|| panic!("dev renders Secret {secret}"));
        let dir = root.join(mount["name"].as_str().expect("mount name"));
        std::fs::create_dir_all(&dir).expect("mount folder");
        for (file, encoded) in data {
            let bytes = secret_bytes(encoded.as_str().expect("base64 text"));
            std::fs::write(dir.join(file), bytes).expect("secret file written");
        }
        let path = mount["mountPath"].as_str().expect("mount path").to_owned();
        mounts.push((path, dir));
    }
    mounts
}

/// A Secret's `data` value (base64, which kubectl may wrap over several lines).
fn secret_bytes(encoded: &str) -> Vec<u8> {
    use base64::Engine as _;
    let joined: String = encoded.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .expect("base64")
}

/// The value of every variable the container sets, Secrets decoded: the pod's environment.
fn pod_environment(manifests: &Manifests, container: &Value) -> BTreeMap<String, String> {
    let mut variables = pod_variables(manifests, container);
    for variable in container["env"].as_array().into_iter().flatten() {
        let reference = &variable["valueFrom"]["secretKeyRef"];
        let (Some(secret), Some(key)) = (reference["name"].as_str(), reference["key"].as_str())
        else {
            continue;
        };
        let name = variable["name"].as_str().expect("env name").to_owned();
        let encoded = manifests
            .named("Secret", secret)
            .and_then(|s| s["data"][key].as_str());
        match encoded {
            Some(encoded) => {
                let bytes = secret_bytes(encoded);
                variables.insert(name, String::from_utf8(bytes).expect("utf-8 secret"));
            }
            None => {
                assert_eq!(
                    reference["optional"], true,
                    "{secret}.{key} is in the render"
                );
                variables.remove(&name);
            }
        }
    }
    variables
}

/// `pasarela serve` started the way the dev overlay starts one pod: its configuration file,
/// its variables and its Secret files, with the cluster's names swapped for loopback ones
/// (the sandbox's URLs, free ports) and Redis for a process-local store.
struct DevPod {
    child: std::process::Child,
    grpc: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    _root: tempfile::TempDir,
}

impl Drop for DevPod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DevPod {
    fn start(
        manifests: &Manifests,
        service: ServiceName,
        sandbox: &pasarela_sandbox::Sandbox,
    ) -> DevPod {
        let deployment = manifests.of_service("Deployment", service);
        let root = tempfile::tempdir().expect("temp dir");
        let mut file = config_file(manifests, deployment).to_owned();
        for (mount_path, dir) in mount_secrets(
            manifests,
            deployment,
            pasarela_container(deployment),
            root.path(),
        ) {
            file = file.replace(&mount_path, &dir.display().to_string());
        }
        let config = root.path().join("pasarela.toml");
        std::fs::write(&config, file).expect("config written");

        let grpc: std::net::SocketAddr = ([127, 0, 0, 1], crate::foundation::free_port()).into();
        let admin: std::net::SocketAddr = ([127, 0, 0, 1], crate::foundation::free_port()).into();
        // The provider's URL, and for recurring-payments a process-local idempotency store
        // in place of the cluster's Redis.
        let service_overrides = match service {
            ServiceName::Security => vec![("PASARELA_SECURITY__BASE_URL", sandbox.bcs_url.clone())],
            ServiceName::Bureau => vec![("PASARELA_BUREAU__BASE_URL", sandbox.kiban_url.clone())],
            ServiceName::RecurringPayments => vec![
                (
                    "PASARELA_RECURRING_PAYMENTS__BASE_URL",
                    sandbox.daviplata_url.clone(),
                ),
                (
                    "PASARELA_RECURRING_PAYMENTS__IDEMPOTENCY__STORE",
                    "memory".into(),
                ),
            ],
        };
        let mut environment = pod_environment(manifests, pasarela_container(deployment));
        let addresses = [
            ("PASARELA_LISTEN", grpc.to_string()),
            ("PASARELA_ADMIN_LISTEN", admin.to_string()),
        ];
        for (name, value) in addresses.into_iter().chain(service_overrides) {
            environment.insert(name.into(), value);
        }
        let child = Command::new(crate::support::pasarela_bin())
            .arg("serve")
            .env_clear()
            .envs(&environment)
            .env("PASARELA_CONFIG", &config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pasarela serve starts");
        DevPod {
            child,
            grpc,
            admin,
            _root: root,
        }
    }

    async fn serving(&self, service: ServiceName) {
        let admin = self.admin;
        eventually("the pod's readiness probe passes", || async move {
            let Ok(endpoint) = Endpoint::from_shared(format!("http://{admin}")) else {
                return false;
            };
            let Ok(channel) = endpoint.connect().await else {
                return false;
            };
            let request = HealthCheckRequest {
                service: service.grpc_name().into(),
            };
            HealthClient::new(channel)
                .check(request)
                .await
                .is_ok_and(|answer| answer.into_inner().status() == ServingStatus::Serving)
        })
        .await;
    }

    async fn channel(&self) -> tonic::transport::Channel {
        Endpoint::from_shared(format!("http://{}", self.grpc))
            .expect("endpoint")
            .connect()
            .await
            .expect("the pod accepts a connection")
    }
}

/// The dev overlay's pods, configured exactly as rendered, serve real calls against the
/// sandbox with the overlay's own Secrets: the dev token issuer, the fake credentials,
/// and the throwaway PKI over Daviplata's mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_overlay_pods_serve_against_the_sandbox_with_their_secrets() {
    let manifests = Manifests::of("dev");
    let sandbox_pod = manifests
        .named("Deployment", "pasarela-sandbox")
        .expect("the sandbox Deployment");
    let root = tempfile::tempdir().expect("temp dir");
    let container = &sandbox_pod["spec"]["template"]["spec"]["containers"][0];
    let pki = mount_secrets(&manifests, sandbox_pod, container, root.path())
        .pop()
        .expect("the sandbox's PKI mount")
        .1;
    let sandbox = pasarela_sandbox::Sandbox::start(pasarela_sandbox::SandboxOptions {
        pki_dir: pki.clone(),
        ..pasarela_sandbox::SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts on the overlay's PKI");
    let mounted = std::fs::read(pki.join("server.pem")).expect("server.pem");
    assert_eq!(
        std::fs::read(&sandbox.pki.server_cert).expect("server cert"),
        mounted,
        "the sandbox serves the overlay's certificate rather than a new one"
    );

    let token = bearer_with(&mint_with_cli("*"));
    let pods: Vec<_> = ServiceName::ALL
        .into_iter()
        .map(|service| (service, DevPod::start(&manifests, service, &sandbox)))
        .collect();
    for (service, pod) in &pods {
        pod.serving(*service).await;
    }

    let bureau = &pods[1].1;
    let mut client = BureauServiceClient::with_interceptor(bureau.channel().await, token.clone());
    let answer = client
        .get_password_expiration(kiban_success())
        .await
        .expect("bureau answers through the dev secrets");
    assert!(answer.into_inner().expiration_date.is_some());

    let payments = &pods[2].1;
    let mut client =
        RecurringPaymentsServiceClient::with_interceptor(payments.channel().await, token);
    let answer = client
        .request_subscription(subscription_request())
        .await
        .expect("recurring-payments reaches Daviplata's emulator over the overlay's mTLS");
    assert!(!answer.into_inner().otp_session_id.is_empty());
}

fn subscription_request() -> RequestSubscriptionRequest {
    let mut holder = Identification {
        number: "1000000001".into(),
        ..Default::default()
    };
    holder.set_type(DocumentType::Cc);
    RequestSubscriptionRequest {
        commerce: Some(Commerce {
            commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
            commerce_name: "Comercializadora La Pradera".into(),
            category: "Vestuario".into(),
        }),
        wallet: Some(Wallet {
            holder: Some(holder),
            product_code: String::new(),
            product_number: "3000000001".into(),
        }),
        transaction: None,
    }
}
