//! The monitoring an SRE gets (`deploy/monitoring/`): the alert rules checked and unit-tested
//! by promtool, the PrometheusRule saying the same as the plain rules file, a runbook
//! section for every alert, and every metric the rules and the dashboard read exposed by a
//! running pasarela once calls have exercised it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;

use crate::support::recurring_payments::{self as rp, WALLET, charge, subscribe};
use crate::support::tools;
use crate::support::{spawn_app_with, tool};

/// Series `pasarela probe --every` exposes, not the services.
pub(crate) const PROBE_SERIES: [&str; 2] =
    ["pasarela_provider_reading", "pasarela_probe_rounds_total"];

fn monitoring() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(monitoring().join(name)).expect("monitoring file")
}

fn promtool(args: &[&str]) {
    let output = Command::new(tool("promtool"))
        .args(args)
        .current_dir(monitoring())
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The alert rules of the plain rules file.
fn alerts() -> Vec<Yaml> {
    let rules: Yaml = serde_yaml_ng::from_str(&read("pasarela.rules.yml")).expect("rules YAML");
    rules["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_sequence().expect("rules").clone())
        .collect()
}

#[test]
fn promtool_checks_the_rules_and_fires_every_alert_in_its_tests() {
    if tools::lacking(&["promtool"]) {
        return;
    }
    promtool(&["check", "rules", "pasarela.rules.yml"]);
    promtool(&["test", "rules", "pasarela.rules.test.yml"]);
    let tests = read("pasarela.rules.test.yml");
    for alert in alerts() {
        let name = alert["alert"].as_str().expect("alert name");
        assert!(
            tests.contains(&format!(
                "alertname: {name}\n        exp_alerts:\n          - "
            )),
            "{name} has no promtool test that fires it"
        );
    }
}

#[test]
fn the_prometheus_rule_says_what_the_rules_file_says() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let plain: Yaml = serde_yaml_ng::from_str(&read("pasarela.rules.yml")).expect("rules YAML");
    let crd: Yaml = serde_yaml_ng::from_str(&read("prometheusrule.yaml")).expect("CRD YAML");
    assert_eq!(crd["kind"], Yaml::from("PrometheusRule"));
    assert_eq!(crd["spec"]["groups"], plain["groups"]);
    let rendered = Command::new(tool("kubectl"))
        .args(["kustomize"])
        .arg(monitoring())
        .output()
        .expect("kubectl runs");
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.contains("kind: PrometheusRule") && rendered.contains("grafana_dashboard"));
}

#[test]
fn every_alert_says_what_it_means_and_has_a_runbook() {
    let runbook = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
    )
    .expect("docs/operations.md");
    for alert in alerts() {
        let name = alert["alert"].as_str().expect("alert name");
        let annotations = &alert["annotations"];
        for key in ["summary", "description"] {
            assert!(
                annotations[key]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{name}: no {key}"
            );
        }
        assert_eq!(
            annotations["runbook_url"].as_str(),
            Some(format!("docs/operations.md#{}", name.to_lowercase()).as_str()),
            "{name}: runbook_url"
        );
        assert!(
            runbook.contains(&format!("\n### {name}\n")),
            "docs/operations.md has no section for {name}"
        );
        assert!(
            alert["labels"]["severity"].as_str().is_some(),
            "{name}: no severity"
        );
    }
}

/// Metric names (`pasarela_…`) in a PromQL expression.
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let mut rest = expr;
    while let Some(at) = rest.find("pasarela_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        into.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
}

fn dashboard_exprs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => into.push(expr.clone()),
                    _ => dashboard_exprs(value, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| dashboard_exprs(item, into)),
        _ => {}
    }
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_read_is_exposed() {
    let mut names = BTreeSet::new();
    for alert in alerts() {
        metric_names(alert["expr"].as_str().expect("expr"), &mut names);
    }
    let dashboard: Value =
        serde_json::from_str(&read("grafana-dashboard.json")).expect("dashboard JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard["panels"], &mut exprs);
    assert!(exprs.len() > 15, "the dashboard has its panels");
    exprs.iter().for_each(|expr| metric_names(expr, &mut names));
    assert!(names.len() >= 10, "{names:?}");

    let app = spawn_app_with(rp::lab_setup).await;
    // One retried Kiban read, a subscription (the Daviplata token), a charge and its replay.
    app.inject(
        "kiban",
        None,
        json!({ "type": "status", "status": 503 }),
        Some(1),
    )
    .await;
    BureauServiceClient::with_interceptor(app.channel(), app.bearer())
        .get_password_expiration(GetPasswordExpirationRequest {
            member_code: "PM00000001".into(),
            password: "Abc12345".into(),
            test_case_id: "663567bb713cf2110a110679".into(),
        })
        .await
        .expect("the retried read answers");
    let mut payments = rp::client(&app);
    subscribe(&mut payments, WALLET, 1_000_000).await;
    for _ in 0..2 {
        payments
            .charge_subscription(charge("metrics-order", WALLET, 1_000))
            .await
            .expect("charged");
    }
    let exposed = app.metrics().await;
    // The probe's own series are exposed by `pasarela probe --every`
    // (`tests/e2e/drift.rs`), not by the services.
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !PROBE_SERIES.contains(&name.as_str()))
        .filter(|name| {
            !exposed.lines().any(|line| {
                line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
            })
        })
        .collect();
    assert!(missing.is_empty(), "not exposed: {missing:?}\n{exposed}");
}

/// Before any call, the series alerts read exist at zero: each method's calls by every code,
/// each provider's circuit and operations, each money-moving operation's unknown outcomes. A `rate()` or a
/// `max()` must tell "none" from "never".
#[tokio::test]
async fn the_series_alerts_read_exist_at_zero_from_start_up() {
    let app = spawn_app_with(rp::lab_setup).await;
    let exposed = app.metrics().await;
    let has = |prefix: &str| exposed.lines().any(|line| line.starts_with(prefix));
    for code in ["OK", "RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE"] {
        let series = format!(
            "pasarela_rpc_calls_total{{method=\"/pasarela.recurring_payments.v1.RecurringPaymentsService/ChargeSubscription\",code=\"{code}\"}}"
        );
        assert!(has(&series), "{series}");
    }
    for provider in ["daviplata.com", "bancocajasocial.com"] {
        let series = format!("pasarela_provider_circuit_state{{provider=\"{provider}\"}}");
        assert!(has(&series), "{series}");
    }
    // Every provider operation: its latency, and each outcome that needs no answer (the
    // provider families are global to this test process: others' calls may count them).
    let operations = [
        ("kiban.com", "password_expiry_date"),
        ("daviplata.com", "charge"),
        ("daviplata.com", "token"),
        ("bancocajasocial.com", "withdraw_with_otp"),
        ("bancocajasocial.com", "withdrawal_query"),
        ("bancocajasocial.com", "create_question_challenge"),
    ];
    for (provider, operation) in operations {
        let labels = format!("provider=\"{provider}\",operation=\"{operation}\"");
        for outcome in ["timeout", "unavailable", "circuit_open", "not_sent"] {
            let series = format!(
                "pasarela_provider_calls_total{{{labels},outcome=\"{outcome}\",status=\"\"}} "
            );
            assert!(has(&series), "{series}");
        }
        let latency = format!("pasarela_provider_call_duration_seconds_count{{{labels}}} ");
        assert!(has(&latency), "{latency}");
    }
    for operation in ["charge", "withdraw_with_otp"] {
        let series = exposed
            .lines()
            .find(|line| {
                line.starts_with("pasarela_idempotency_unknown_outcomes{")
                    && line.contains(&format!("operation=\"{operation}\""))
            })
            .unwrap_or_else(|| panic!("no unknown-outcome series of {operation}"));
        assert!(series.ends_with(" 0"), "{series}");
    }
}
