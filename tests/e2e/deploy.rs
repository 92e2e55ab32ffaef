//! The deploy artefacts, checked offline: each kustomize overlay renders and passes strict
//! schema validation, every service keeps its production basics in the rendered YAML, the
//! configuration a pod receives parses as pasarela's own, and a real process drains on
//! SIGTERM the way the manifests' timings assume.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use figment::providers::{Format as _, Serialized, Toml};
use figment::value::{Dict, Value as Setting};
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::bureau::v1::{GetPasswordExpirationRequest, GetPasswordExpirationResponse};
use pasarela::common::v1::{DocumentType, Identification};
use pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient;
use pasarela::recurring_payments::v1::{Commerce, RequestSubscriptionRequest, Wallet};
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela::security::v1::{
    CustomerType, GetPasswordStatusRequest, PasswordStatus, get_password_status_request,
};
use pasarela_recurring_payments::{IdempotencyConfig, StoreKind};
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

/// The objects of one overlay's render.
fn objects(overlay: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&render(overlay))
        .map(|document| Value::deserialize(document).expect("a YAML object"))
        .collect()
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
    /// The data of the Secrets the pods mount, by name: the overlay's own, or, where the
    /// platform team creates them (prod), dev's fake ones of the same names.
    secrets: BTreeMap<String, Map<String, Value>>,
}

/// The overlay that renders its Secrets (from obviously fake values).
const SECRETS_OVERLAY: &str = "dev";

/// A Secret only prod names, stood in for by one of dev's.
struct StandIn {
    secret: &'static str,
    from: &'static str,
    /// Each key with its key in `from`.
    keys: [(&'static str, &'static str); 3],
}

/// prod's gRPC certificate comes from dev's throwaway PKI.
const PROD_ONLY_SECRETS: [StandIn; 1] = [StandIn {
    secret: "pasarela-grpc-tls",
    from: "pasarela-sandbox-pki",
    keys: [
        ("tls.crt", "server.pem"),
        ("tls.key", "server-key.pem"),
        ("ca.crt", "ca.pem"),
    ],
}];

/// A generated Secret's name without the content hash kustomize appends to it.
fn unhashed(name: &str) -> &str {
    name.rsplit_once('-')
        .filter(|(_, hash)| hash.len() == 10)
        .map_or(name, |(base, _)| base)
}

/// The data of every Secret among `objects`, by name.
fn secret_data(objects: &[Value]) -> BTreeMap<String, Map<String, Value>> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .filter_map(|o| {
            let name = o["metadata"]["name"].as_str()?.to_owned();
            Some((name, o["data"].as_object()?.clone()))
        })
        .collect()
}

impl Manifests {
    fn of(overlay: &'static str) -> Manifests {
        let objects = objects(overlay);
        let secrets = if overlay == SECRETS_OVERLAY {
            secret_data(&objects)
        } else {
            let mut secrets: BTreeMap<_, _> = secret_data(&self::objects(SECRETS_OVERLAY))
                .into_iter()
                .map(|(name, data)| (unhashed(&name).to_owned(), data))
                .collect();
            let stand_ins = PROD_ONLY_SECRETS.map(|stand_in| {
                let source = &secrets[stand_in.from];
                let data = stand_in
                    .keys
                    .map(|(key, from)| (key.to_owned(), source[from].clone()));
                (stand_in.secret.to_owned(), data.into_iter().collect())
            });
            secrets.extend(stand_ins);
            secrets
        };
        Manifests {
            overlay,
            objects,
            secrets,
        }
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
/// the `PASARELA_*` variables the pod sets, and the values its `*_FROM_FILE` variables
/// name, read from its Secret volumes written out as the kubelet would (prod's Secrets
/// stood in for by dev's), all loaded by pasarela's own configuration loader.
fn pod_config(manifests: &Manifests, deployment: &Value) -> Config {
    let container = pasarela_container(deployment);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pasarela.toml");
    std::fs::write(&path, config_file(manifests, deployment)).expect("config file written");
    let mounts = mount_secrets(manifests, deployment, container, dir.path());
    let (from_files, plain): (BTreeMap<_, _>, BTreeMap<_, _>) = pod_variables(manifests, container)
        .into_iter()
        .partition(|(name, _)| name.ends_with(FROM_FILE));
    let mut settings = nest(&plain);
    for (name, pod_path) in from_files {
        let key = name.strip_suffix(FROM_FILE).expect("a _FROM_FILE variable");
        let file = mounts.local(&pod_path).unwrap_or_else(|| {
            panic!(
                "{}: {name}={pod_path} is in no Secret volume",
                manifests.overlay
            )
        });
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {name}={pod_path}: {e}", manifests.overlay));
        insert(
            &mut settings,
            &key_path(key),
            Setting::from(file_value(&text).to_owned()),
        );
    }
    Config::load_over(Serialized::defaults(settings), Some(&path))
        .unwrap_or_else(|e| panic!("{}: {e:#}", manifests.overlay))
}

/// Suffix of a variable naming the file that holds a key's value.
const FROM_FILE: &str = "_FROM_FILE";

/// A file's content as a key's value: one trailing newline is not part of it.
fn file_value(text: &str) -> &str {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text)
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

/// The container's `PASARELA_*` configuration variables, from `env` (literal values only:
/// nothing is taken from a Secret into the environment) and `envFrom` ConfigMaps.
fn pod_variables(manifests: &Manifests, container: &Value) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let map = source["configMapRef"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: envFrom a ConfigMap only: {source}", manifests.overlay));
        for (key, value) in manifests.config_map(map) {
            variables.insert(key.clone(), value.as_str().expect("text").to_owned());
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().expect("env name").to_owned();
        let value = variable["value"].as_str().unwrap_or_else(|| {
            panic!(
                "{}: {name} is not a literal value: {variable}",
                manifests.overlay
            )
        });
        variables.insert(name, value.to_owned());
    }
    variables.remove("PASARELA_CONFIG");
    variables
}

/// `A__B` as the key path `[a, b]`.
fn key_path(name: &str) -> Vec<String> {
    name.strip_prefix("PASARELA_")
        .unwrap_or_else(|| panic!("{name}"))
        .split("__")
        .map(str::to_lowercase)
        .collect()
}

/// `PASARELA_A__B=v` as `{a: {b: v}}`, each value parsed as pasarela's loader parses
/// environment variables (`true` a boolean, `[a]` a list).
fn nest(variables: &BTreeMap<String, String>) -> Dict {
    let mut root = Dict::new();
    for (name, raw) in variables {
        let value: Setting = raw.parse().unwrap_or_else(|never| match never {});
        insert(&mut root, &key_path(name), value);
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

/// The service's provider base URL, by its configuration.
fn provider_base_url(config: &Config, service: ServiceName) -> String {
    let base_url = match service {
        ServiceName::Security => config.security.as_ref().map(|s| &s.base_url),
        ServiceName::Bureau => config.bureau.as_ref().map(|s| &s.base_url),
        ServiceName::RecurringPayments => config.recurring_payments.as_ref().map(|s| &s.base_url),
    };
    base_url
        .unwrap_or_else(|| panic!("{service:?} has its section"))
        .clone()
}

/// Where the service's provider is, by its configuration.
fn provider_url(config: &Config, service: ServiceName) -> reqwest::Url {
    let base_url = provider_base_url(config, service);
    reqwest::Url::parse(&base_url).unwrap_or_else(|e| panic!("{base_url}: {e}"))
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

/// The services whose idempotency records (and, for security, the TxId sequence) must be
/// shared by every replica, with their store's settings.
fn idempotency(config: &Config, service: ServiceName) -> Option<&IdempotencyConfig> {
    match service {
        ServiceName::Security => config.security.as_ref().map(|s| &s.idempotency),
        ServiceName::RecurringPayments => {
            config.recurring_payments.as_ref().map(|s| &s.idempotency)
        }
        ServiceName::Bureau => None,
    }
}

fn reaches_redis(policy: &Value) -> bool {
    egress_ports(policy).contains(&6379)
}

#[test]
fn idempotent_services_share_their_records_in_redis_when_they_can_scale_out() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let config = pod_config(&manifests, deployment);
            let policy = manifests.of_service("NetworkPolicy", service);
            let context = format!("{overlay} {service:?}");
            let Some(store) = idempotency(&config, service) else {
                assert!(
                    !reaches_redis(policy),
                    "{context}: no Redis egress it does not need"
                );
                continue;
            };
            let max = int(
                &manifests.of_service("HorizontalPodAutoscaler", service)["spec"]["maxReplicas"],
            );
            if max > 1 {
                assert_eq!(store.store, StoreKind::Redis, "{context}");
                assert!(store.url.is_some(), "{context}: a Redis URL");
            }
            if store.store == StoreKind::Redis {
                assert!(reaches_redis(policy), "{context}: egress to Redis");
                if let Some(redis) = manifests.named("NetworkPolicy", "redis") {
                    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
                    assert!(
                        admits(redis, labels),
                        "{context}: the in-cluster Redis admits it"
                    );
                }
            }
        }
    }
}

/// Whether an ingress rule of `policy` lets pods labelled `labels` in.
fn admits(policy: &Value, labels: &Value) -> bool {
    policy["spec"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["from"].as_array().into_iter().flatten())
        .any(|peer| peer_selects(&peer["podSelector"], labels))
}

/// A pod selector's `matchLabels` and `In` expressions against `labels`.
fn peer_selects(selector: &Value, labels: &Value) -> bool {
    let by_labels = selector["matchLabels"]
        .as_object()
        .is_none_or(|wanted| wanted.iter().all(|(k, v)| &labels[k] == v));
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            e["operator"] == "In"
                && e["values"].as_array().is_some_and(|values| {
                    values.contains(&labels[e["key"].as_str().unwrap_or_default()])
                })
        });
    by_labels && by_expressions
}

/// Keys whose values are credentials, or may carry one (a Redis URL with its password).
const CREDENTIALS: [&str; 9] = [
    "security.client_id",
    "security.client_secret",
    "security.access_token",
    "security.idempotency.url",
    "bureau.api_key",
    "recurring_payments.client_id",
    "recurring_payments.client_secret",
    "recurring_payments.idempotency.url",
    "auth.hs256_secret",
];

/// `security.client_secret` as `PASARELA_SECURITY__CLIENT_SECRET`.
fn variable_of(key: &str) -> String {
    format!("PASARELA_{}", key.to_uppercase().replace('.', "__"))
}

#[test]
fn credentials_come_only_from_secret_volumes_that_prod_leaves_to_the_platform_team() {
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        // The pods' Secret values: dev's own, which stand in for prod's too.
        let secret_values: Vec<String> = manifests
            .secrets
            .values()
            .flatten()
            .filter_map(|(_, encoded)| String::from_utf8(secret_bytes(encoded.as_str()?)).ok())
            .collect();
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let container = pasarela_container(deployment);
            let context = format!("{overlay} {service:?}");
            for secret in referenced_secrets(deployment) {
                let present = manifests.named("Secret", &secret).is_some();
                // dev generates obviously fake values; prod names Secrets created out of band.
                assert_eq!(present, overlay == "dev", "{context}: Secret {secret}");
            }

            // pod_variables refuses any variable whose value is not written out (secretKeyRef).
            let variables = pod_variables(&manifests, container);
            let file = config_file(&manifests, deployment);
            let texts = variables.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            for (name, value) in texts.chain([("the config file", file)]) {
                for secret in &secret_values {
                    assert!(
                        !value.contains(secret.as_str()),
                        "{context}: a Secret's value is in {name}"
                    );
                }
            }
            let toml = figment::Figment::from(Toml::string(file));
            let section = component(service).replace('-', "_");
            for key in CREDENTIALS {
                let variable = variable_of(key);
                assert!(
                    !variables.contains_key(&variable),
                    "{context}: {variable} in the environment"
                );
                assert!(
                    toml.find_value(key).is_err(),
                    "{context}: {key} in the config file"
                );
                let own = key.starts_with(&format!("{section}."));
                let from_file = variables.contains_key(&format!("{variable}{FROM_FILE}"));
                assert!(!own || from_file, "{context}: {key} is read from a file");
            }

            let root = tempfile::tempdir().expect("temp dir");
            let mounts = mount_secrets(&manifests, deployment, container, root.path());
            for (name, path) in variables.iter().filter(|(n, _)| n.ends_with(FROM_FILE)) {
                let mount = container["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| {
                        m["mountPath"]
                            .as_str()
                            .is_some_and(|dir| path.starts_with(&format!("{dir}/")))
                    })
                    .unwrap_or_else(|| panic!("{context}: {name}={path} is in no mount"));
                assert_eq!(
                    mount["readOnly"], true,
                    "{context}: {path} is mounted read-only"
                );
                let volume = volume(deployment, mount["name"].as_str().expect("mount name"));
                assert!(
                    volume["secret"]["secretName"].is_string(),
                    "{context}: {path} is a Secret's"
                );
                let local = mounts.local(path).expect("a Secret mount");
                assert!(
                    local.is_file(),
                    "{context}: the Secret has the key of {path}"
                );
            }
        }
    }
}

/// One row of the Secret table in `docs/deploy.md` whose file a `*_FROM_FILE` variable
/// names.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DocumentedFile {
    secret: String,
    key: String,
    path: String,
    variable: String,
}

fn documented_files() -> BTreeSet<DocumentedFile> {
    // The first code literal of a cell: `pasarela-dev-auth` (dev).
    let first = |cell: &str| cell.split('`').nth(1).map(str::to_owned);
    deploy_doc()
        .lines()
        .filter(|line| line.starts_with("| `pasarela-"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let variable = literal(cells.get(4)?)?;
            variable.ends_with(FROM_FILE).then(|| DocumentedFile {
                secret: first(cells[1]).expect("a Secret"),
                key: literal(cells[2]).expect("a key"),
                path: literal(cells[3]).expect("a path"),
                variable,
            })
        })
        .collect()
}

/// What the `*_FROM_FILE` variables of every pasarela pod of every overlay read, as the
/// Secret table of the docs spells it.
fn files_the_pods_read() -> BTreeSet<DocumentedFile> {
    let mut files = BTreeSet::new();
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let container = pasarela_container(deployment);
            let variables = pod_variables(&manifests, container);
            for (variable, path) in variables
                .into_iter()
                .filter(|(n, _)| n.ends_with(FROM_FILE))
            {
                let (dir, key) = path.rsplit_once('/').expect("a file path");
                let mount = container["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["mountPath"] == dir)
                    .unwrap_or_else(|| panic!("{overlay}: {variable}={path} is in no mount"));
                let volume = volume(deployment, mount["name"].as_str().expect("mount name"));
                let secret = volume["secret"]["secretName"].as_str().expect("a Secret");
                files.insert(DocumentedFile {
                    secret: unhashed(secret).to_owned(),
                    key: key.to_owned(),
                    path: path.clone(),
                    variable,
                });
            }
        }
    }
    files
}

#[test]
fn the_secret_table_is_what_the_pods_read_and_covers_every_secret_key() {
    let documented = documented_files();
    assert_eq!(
        documented,
        files_the_pods_read(),
        "docs/deploy.md's Secret table against the rendered pods"
    );
    for key in CREDENTIALS {
        let variable = format!("{}{FROM_FILE}", variable_of(key));
        assert!(
            documented.iter().any(|row| row.variable == variable),
            "{key} has its Secret file documented"
        );
    }
}

/// The Secrets the pod mounts.
fn referenced_secrets(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .map(str::to_owned)
        .collect()
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

fn deploy_doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md"))
        .expect("docs/deploy.md")
}

/// A table cell that is one code literal (`5m`), without its backticks.
fn literal(cell: &str) -> Option<String> {
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.contains('`')).then(|| inner.to_owned())
}

/// The key table rows (`*_FROM_FILE` rows belong to the Secret table).
fn documented_keys() -> Vec<DocumentedKey> {
    deploy_doc()
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let variable = literal(cells.get(2)?)?;
            let key = variable.starts_with("PASARELA_") && !variable.ends_with(FROM_FILE);
            key.then(|| DocumentedKey {
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

/// A container's Secret volumes written out under a temp folder, the way the kubelet mounts
/// them: each mount path with the folder standing for it.
struct SecretMounts(Vec<(String, PathBuf)>);

impl SecretMounts {
    /// Where the pod's file `path` is here; `None` outside every Secret mount.
    fn local(&self, path: &str) -> Option<PathBuf> {
        self.0.iter().find_map(|(mount, dir)| {
            let rest = path.strip_prefix(mount.as_str())?.strip_prefix('/')?;
            Some(dir.join(rest))
        })
    }

    /// `text` with every mount path replaced by the folder standing for it.
    fn localize(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |text, (mount, dir)| {
            text.replace(mount.as_str(), &dir.display().to_string())
        })
    }

    fn folders(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(_, dir)| dir.as_path())
    }
}

/// The files `container` of `deployment` finds under its Secret volume mounts, decoded
/// from the Secrets of `manifests` and written under `root`. A Secret `manifests` has no
/// data for (prod's gRPC certificate) is an empty folder.
fn mount_secrets(
    manifests: &Manifests,
    deployment: &Value,
    container: &Value,
    root: &Path,
) -> SecretMounts {
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"].as_str().expect("mount name");
        let Some(secret) = volume(deployment, name)["secret"]["secretName"].as_str() else {
            continue;
        };
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mount folder");
        for (file, encoded) in manifests.secrets.get(secret).into_iter().flatten() {
            let bytes = secret_bytes(encoded.as_str().expect("base64 text"));
            std::fs::write(dir.join(file), bytes).expect("secret file written");
        }
        let path = mount["mountPath"].as_str().expect("mount path").to_owned();
        mounts.push((path, dir));
    }
    SecretMounts(mounts)
}

/// A Secret's `data` value (base64, which kubectl may wrap over several lines).
fn secret_bytes(encoded: &str) -> Vec<u8> {
    use base64::Engine as _;
    let joined: String = encoded.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .expect("base64")
}

/// `pasarela serve` started the way an overlay starts one pod: exactly its configuration
/// file, its variables and its Secret files, with free loopback ports and the addresses
/// outside this machine (the cluster's, the providers', the issuer's) swapped for loopback
/// ones.
struct Pod {
    child: std::process::Child,
    grpc: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    _root: tempfile::TempDir,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pod {
    /// `loopback` pairs an address the manifests name with the local one standing for it,
    /// swapped wherever it appears: variables, the TOML file, Secret files.
    fn start(manifests: &Manifests, service: ServiceName, loopback: &[(String, String)]) -> Pod {
        let deployment = manifests.of_service("Deployment", service);
        let container = pasarela_container(deployment);
        let root = tempfile::tempdir().expect("temp dir");
        let mounts = mount_secrets(manifests, deployment, container, root.path());
        for folder in mounts.folders() {
            swap_in_files(folder, loopback);
        }
        let config = root.path().join("pasarela.toml");
        let file = mounts.localize(config_file(manifests, deployment));
        std::fs::write(&config, swap(&file, loopback)).expect("config written");

        let grpc: std::net::SocketAddr = ([127, 0, 0, 1], crate::foundation::free_port()).into();
        let admin: std::net::SocketAddr = ([127, 0, 0, 1], crate::foundation::free_port()).into();
        let mut environment: BTreeMap<String, String> = pod_variables(manifests, container)
            .into_iter()
            .map(|(name, value)| (name, swap(&mounts.localize(&value), loopback)))
            .collect();
        environment.insert("PASARELA_LISTEN".into(), grpc.to_string());
        environment.insert("PASARELA_ADMIN_LISTEN".into(), admin.to_string());
        let child = Command::new(crate::support::pasarela_bin())
            .arg("serve")
            .env_clear()
            .envs(&environment)
            .env("PASARELA_CONFIG", &config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pasarela serve starts");
        Pod {
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

fn swap(text: &str, loopback: &[(String, String)]) -> String {
    loopback
        .iter()
        .fold(text.to_owned(), |text, (remote, local)| {
            text.replace(remote, local)
        })
}

fn swap_in_files(folder: &Path, loopback: &[(String, String)]) {
    for entry in std::fs::read_dir(folder).expect("mount folder") {
        let path = entry.expect("mount entry").path();
        let text = std::fs::read_to_string(&path).expect("a text Secret");
        std::fs::write(&path, swap(&text, loopback)).expect("secret file written");
    }
}

/// Each service's provider URL, as the overlay configures it, with the sandbox's emulator
/// of that provider; and the Redis URL of the rendered Secret with `redis`'s.
fn loopback_addresses(
    manifests: &Manifests,
    sandbox: &pasarela_sandbox::Sandbox,
    redis: &crate::support::TestRedis,
) -> Vec<(String, String)> {
    let emulators = [
        (ServiceName::Security, &sandbox.bcs_url),
        (ServiceName::Bureau, &sandbox.kiban_url),
        (ServiceName::RecurringPayments, &sandbox.daviplata_url),
    ];
    let mut pairs: Vec<(String, String)> = emulators
        .into_iter()
        .map(|(service, emulator)| {
            let config = pod_config(manifests, manifests.of_service("Deployment", service));
            (provider_base_url(&config, service), emulator.clone())
        })
        .collect();
    let redis_url = manifests
        .secrets
        .iter()
        .find(|(name, _)| unhashed(name) == "pasarela-redis")
        .and_then(|(_, data)| data["url"].as_str())
        .map(secret_bytes)
        .map(|bytes| String::from_utf8(bytes).expect("a URL"))
        .expect("the Redis URL");
    pairs.push((redis_url, redis.url.clone()));
    pairs
}

/// The sandbox on the dev overlay's throwaway PKI, as the sandbox pod mounts it; the folder
/// holding the PKI lives as long as the returned guard.
async fn sandbox_on_the_overlay_pki(
    manifests: &Manifests,
) -> (pasarela_sandbox::Sandbox, tempfile::TempDir) {
    let sandbox_pod = manifests
        .named("Deployment", "pasarela-sandbox")
        .expect("the sandbox Deployment");
    let root = tempfile::tempdir().expect("temp dir");
    let container = &sandbox_pod["spec"]["template"]["spec"]["containers"][0];
    let pki = mount_secrets(manifests, sandbox_pod, container, root.path())
        .0
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
    (sandbox, root)
}

/// The dev overlay's pods, configured exactly as rendered, serve real calls against the
/// sandbox with the overlay's own Secrets read from files: the dev token issuer, the fake
/// credentials, Redis' URL, and the throwaway PKI over Daviplata's mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_overlay_pods_serve_against_the_sandbox_with_their_secret_files() {
    let manifests = Manifests::of("dev");
    let (sandbox, _pki) = sandbox_on_the_overlay_pki(&manifests).await;
    let redis = crate::support::TestRedis::start().await;
    let loopback = loopback_addresses(&manifests, &sandbox, &redis);

    let token = bearer_with(&mint_with_cli("*"));
    let pods: Vec<_> = ServiceName::ALL
        .into_iter()
        .map(|service| (service, Pod::start(&manifests, service, &loopback)))
        .collect();
    for (service, pod) in &pods {
        pod.serving(*service).await;
    }

    let security = &pods[0].1;
    let mut client =
        SecurityServiceClient::with_interceptor(security.channel().await, token.clone());
    let answer = client
        .get_password_status(password_status_request())
        .await
        .expect("security answers with the client credentials and token from files");
    assert_eq!(answer.into_inner().status(), PasswordStatus::Active);

    let bureau = &pods[1].1;
    let mut client = BureauServiceClient::with_interceptor(bureau.channel().await, token.clone());
    let answer = client
        .get_password_expiration(kiban_success())
        .await
        .expect("bureau answers with the API key from its file");
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

/// The prod overlay's pods start and turn ready with exactly their rendered configuration:
/// its Secrets (created by the platform team there, dev's fake ones here) mounted as
/// files, the gRPC port's TLS, Redis and Daviplata's mutual TLS, so every `*_FROM_FILE`
/// variable and file path they name is accepted by the real loader and used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_overlay_pods_start_from_their_secret_files() {
    let manifests = Manifests::of("prod");
    let (sandbox, _pki) = sandbox_on_the_overlay_pki(&Manifests::of(SECRETS_OVERLAY)).await;
    let redis = crate::support::TestRedis::start().await;
    let issuer = Issuer::start().await;
    let mut loopback = loopback_addresses(&manifests, &sandbox, &redis);
    let config = pod_config(
        &manifests,
        manifests.of_service("Deployment", ServiceName::Bureau),
    );
    let jwks_url = config
        .auth
        .jwks
        .and_then(|jwks| jwks.url)
        .expect("prod names its issuer's JWKS URL");
    loopback.push((jwks_url, issuer.jwks_url.clone()));

    for service in ServiceName::ALL {
        Pod::start(&manifests, service, &loopback)
            .serving(service)
            .await;
    }
}

/// An identity provider on loopback publishing one public signing key (the P-256 key of
/// RFC 7515, appendix A.3), so that prod's pods can read their issuer's key set.
struct Issuer {
    jwks_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port");
        let jwks_url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("address")
        );
        let body = json!({ "keys": [{
            "kty": "EC", "kid": "prod-test", "crv": "P-256", "alg": "ES256", "use": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }]})
        .to_string();
        let task = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                tokio::spawn(answer_jwks(connection, body.clone()));
            }
        });
        Issuer { jwks_url, task }
    }
}

/// Answers one HTTP/1.1 request, whatever it asks, with the key set.
async fn answer_jwks(mut connection: tokio::net::TcpStream, body: String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match connection.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = connection.write_all(answer.as_bytes()).await;
}

fn password_status_request() -> GetPasswordStatusRequest {
    GetPasswordStatusRequest {
        transaction_id: "4835799410".into(),
        customer_type: CustomerType::Natural.into(),
        subject: Some(get_password_status_request::Subject::Customer(
            Identification {
                r#type: DocumentType::Cc.into(),
                number: "1007641".into(),
            },
        )),
        ..Default::default()
    }
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
