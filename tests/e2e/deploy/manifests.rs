//! Each overlay renders and validates strictly, every object against its schema; probes, pod security (the databases' too), disruption budgets, autoscalers and network policies per service.

use super::*;

/// `yaml` validated strictly by kubernetes-validate: whether it passed, and its report.
pub(super) fn validate(name: &str, yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).expect("rendered YAML written");
    let output = Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

#[test]
pub(super) fn every_overlay_renders_and_passes_strict_validation() {
    if tools::lacking(&["kubectl", "kubernetes-validate"]) {
        return;
    }
    for overlay in OVERLAYS {
        let (valid, report) = validate(overlay, &render(overlay));
        assert!(valid, "{overlay} fails validation:\n{report}");
        // kubernetes-validate skips, with a warning only, a kind it has no schema for.
        assert_eq!(
            super::ledger::unvalidated_kinds(&report),
            BTreeSet::new(),
            "{overlay}: every object is validated:\n{report}"
        );
    }
}

#[test]
pub(super) fn probes_are_native_grpc_on_the_admin_port_with_the_service_name() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
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
pub(super) fn pods_meet_the_restricted_pod_security_standard() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
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
        let workloads = manifests
            .all("Deployment")
            .chain(manifests.all("StatefulSet"));
        for deployment in workloads {
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
pub(super) fn every_service_has_a_service_disruption_budget_autoscaler_and_network_policy() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
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
pub(super) fn provider_base_url(config: &Config, service: ServiceName) -> String {
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
pub(super) fn provider_url(config: &Config, service: ServiceName) -> reqwest::Url {
    let base_url = provider_base_url(config, service);
    reqwest::Url::parse(&base_url).unwrap_or_else(|e| panic!("{base_url}: {e}"))
}

pub(super) fn egress_ports(policy: &Value) -> Vec<u16> {
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
pub(super) fn assert_network_policy(policy: &Value, pod_labels: &Value, context: &str) {
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
            // `namespaceSelector: {}` would admit a labelled pod of any namespace.
            assert!(
                peer["namespaceSelector"]["matchExpressions"].is_array()
                    || peer["namespaceSelector"]["matchLabels"].is_object(),
                "{context}: callers' namespaces are opted in by label: {peer}"
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

/// Every address range a policy's egress rules open.
fn egress_ranges(policy: &Value) -> Vec<String> {
    policy["spec"]["egress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["to"].as_array().into_iter().flatten())
        .filter_map(|peer| peer["ipBlock"]["cidr"].as_str())
        .map(str::to_owned)
        .collect()
}

#[test]
pub(super) fn production_egress_is_narrowed_to_named_ranges() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let manifests = Manifests::of("prod");
    for service in ServiceName::ALL {
        let policy = manifests.of_service("NetworkPolicy", service);
        let ranges = egress_ranges(policy);
        assert!(
            !ranges
                .iter()
                .any(|cidr| cidr == "0.0.0.0/0" || cidr == "::/0"),
            "prod {service:?}: no egress to the whole internet: {ranges:?}"
        );
        assert!(
            policy["spec"]["egress"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|rule| rule["to"].as_array().is_some_and(|to| !to.is_empty())),
            "prod {service:?}: every egress rule names its peers"
        );
    }
}
