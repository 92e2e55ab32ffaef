//! The deploy artefacts, checked offline: each kustomize overlay renders and passes strict
//! schema validation, every service keeps its production basics in the rendered YAML, the
//! configuration a pod receives parses as pasarela's own, the ledger's roles keep each
//! service in its own schema, each service's pods hold its own Secrets only and its Redis
//! user reaches its own keys only, and a real process drains on SIGTERM the way the
//! manifests' timings assume.

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

use crate::support::process::{DevProcess, mint_with_cli};
use crate::support::{bearer_with, tool, tools};

const OVERLAYS: [&str; 2] = ["dev", "prod"];
/// The oldest Kubernetes the manifests promise to fit (gRPC probes GA, `preStop.sleep`).
const KUBERNETES_VERSION: &str = "1.32";

fn overlay_dir(overlay: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/k8s/overlays")
        .join(overlay)
}

/// The objects of one overlay's render.
fn objects(overlay: &str) -> Vec<Value> {
    parse(&render(overlay))
}

/// The objects of a rendered multi-document YAML.
fn parse(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("a YAML object"))
        .collect()
}

/// `kubectl kustomize` of one overlay, as the platform team would apply it.
fn render(overlay: &str) -> String {
    render_dir(&overlay_dir(overlay))
}

/// `kubectl kustomize` of the kustomization in `dir`.
fn render_dir(dir: &Path) -> String {
    let output = Command::new(tool("kubectl"))
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "{} does not render: {}",
        dir.display(),
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

/// The label that tells a service's serving pods (`server`) from its drift probe (`probe`).
const ROLE: &str = "pasarela/role";

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
        Manifests::rendered(overlay, objects(overlay))
    }

    /// `objects` rendered by `overlay` (an overlay's name, or what a test rendered over
    /// one): its own Secrets for dev, dev's for any other.
    fn rendered(overlay: &'static str, objects: Vec<Value>) -> Manifests {
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

    /// The object of `kind` of `service`'s drift probe (components/drift-probe: its
    /// Deployment, its NetworkPolicy), if it has one.
    fn probe_of(&self, kind: &str, service: ServiceName) -> Option<&Value> {
        let component = component(service);
        self.all(kind).find(|o| {
            let labels = &o["metadata"]["labels"];
            labels["app.kubernetes.io/component"] == component && labels[ROLE] == "probe"
        })
    }

    fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind).find(|o| o["metadata"]["name"] == name)
    }

    /// The one object of `kind` that belongs to `service` and serves it (not its drift
    /// probe: [`Manifests::probe_of`]).
    fn of_service(&self, kind: &str, service: ServiceName) -> &Value {
        let component = component(service);
        let found: Vec<_> = self
            .all(kind)
            .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/component"] == component)
            .filter(|o| o["metadata"]["labels"][ROLE] != "probe")
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

mod drain;
mod image;
mod keys;
mod least_privilege;
mod ledger;
mod manifests;
mod pods;
mod secrets;
mod state;

// Helpers one theme shares with another.
use drain::{eventually, kiban_success};
use keys::{deploy_doc, literal};
use ledger::{ledger_loopback, overlay_ledger};
use manifests::{egress_ports, provider_base_url};
use pods::{PodProcess, mount_secrets, secret_bytes, secret_value};
use state::{CREDENTIALS, admits, idempotency, peer_selects};
