//! Shutdown timings nest (preStop, drain, grace period); idempotent services share their records in the PostgreSQL ledger, and every service its limits in Redis, when they can scale out.

use super::*;

#[test]
pub(super) fn shutdown_timings_nest_pre_stop_then_drain_then_grace_period() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
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
pub(super) fn idempotency(config: &Config, service: ServiceName) -> Option<&IdempotencyConfig> {
    match service {
        ServiceName::Security => config.security.as_ref().map(|s| &s.idempotency),
        ServiceName::RecurringPayments => {
            config.recurring_payments.as_ref().map(|s| &s.idempotency)
        }
        ServiceName::Bureau => None,
    }
}

pub(super) fn reaches_redis(policy: &Value) -> bool {
    egress_ports(policy).contains(&6379)
}

pub(super) fn reaches_postgres(policy: &Value) -> bool {
    egress_ports(policy).contains(&5432)
}

#[test]
pub(super) fn idempotent_services_keep_their_records_in_postgres_and_limits_in_redis_when_they_can_scale_out()
 {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            let config = pod_config(&manifests, deployment);
            let policy = manifests.of_service("NetworkPolicy", service);
            let context = format!("{overlay} {service:?}");
            let max = int(
                &manifests.of_service("HorizontalPodAutoscaler", service)["spec"]["maxReplicas"],
            );
            if max > 1 {
                // Limits, and the budgets of secrets' holders, hold across replicas.
                assert!(config.auth.rate_limit_redis_url.is_some(), "{context}");
                assert!(config.auth.holder_key.is_some(), "{context}: a holder key");
                assert!(reaches_redis(policy), "{context}: egress to Redis");
            }
            let Some(store) = idempotency(&config, service) else {
                continue;
            };
            if max > 1 {
                assert_eq!(store.store, StoreKind::Postgres, "{context}");
                assert!(store.postgres.url.is_some(), "{context}: a database URL");
                assert!(store.postgres.ca_file.is_some(), "{context}: TLS to it");
                assert!(
                    store.postgres.password_file.is_some() || store.postgres.cert_file.is_some(),
                    "{context}: credentials from a mounted file"
                );
                assert!(store.record_key.is_some(), "{context}: records are sealed");
            }
            if store.store == StoreKind::Postgres {
                assert!(reaches_postgres(policy), "{context}: egress to PostgreSQL");
                if let Some(database) = manifests.named("NetworkPolicy", "postgres") {
                    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
                    assert!(
                        admits(database, labels),
                        "{context}: the in-cluster PostgreSQL admits it"
                    );
                }
            }
        }
    }
}

/// Whether an ingress rule of `policy` lets pods labelled `labels` in.
pub(super) fn admits(policy: &Value, labels: &Value) -> bool {
    policy["spec"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["from"].as_array().into_iter().flatten())
        .any(|peer| peer_selects(&peer["podSelector"], labels))
}

/// A pod selector's `matchLabels` and `In` expressions against `labels`.
pub(super) fn peer_selects(selector: &Value, labels: &Value) -> bool {
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

/// Keys whose values are credentials, or may carry one (a Redis or PostgreSQL URL with its
/// password).
pub(super) const CREDENTIALS: [&str; 13] = [
    "security.client_id",
    "security.client_secret",
    "security.access_token",
    "security.idempotency.postgres.url",
    "security.idempotency.record_key",
    "bureau.api_key",
    "recurring_payments.client_id",
    "recurring_payments.client_secret",
    "recurring_payments.idempotency.postgres.url",
    "recurring_payments.idempotency.record_key",
    "auth.hs256_secret",
    "auth.rate_limit_redis_url",
    "auth.holder_key",
];
