//! The idempotency subsystem's metrics: one handle built at start-up, handed to every
//! coordinator and registered once, so that two servers in one process (the tests) each
//! count their own.

use pasarela_provider::metrics::{OperationLabels, ProviderLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters and gauges of replays, unknown outcomes and store failures; cheap to clone
/// (every clone counts into the same series).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyMetrics {
    /// Outcomes replayed from the idempotency store instead of calling the provider.
    pub replays: Family<OperationLabels, Counter>,
    /// Idempotency keys whose outcome is unknown and not yet settled (a claim whose owner
    /// died counts too), as last counted in the shared store.
    pub unknown: Family<OperationLabels, Gauge>,
    /// Calls failed closed because the idempotency store could not be read or written.
    pub store_errors: Family<ProviderLabels, Counter>,
    /// Calls refused, nothing sent, because their caller held its maximum of open keys.
    pub quota_refusals: Family<ProviderLabels, Counter>,
    /// The most unknown outcomes one caller holds, as last counted.
    pub caller_unknown_max: Family<ProviderLabels, Gauge>,
    /// The most open keys one caller may hold (`idempotency.max_open_per_caller`).
    pub caller_open_limit: Family<ProviderLabels, Gauge>,
}

impl IdempotencyMetrics {
    /// Adds the families to a server's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "pasarela_idempotency_replays",
            "Answers replayed from the idempotency store",
            self.replays.clone(),
        );
        registry.register(
            "pasarela_idempotency_unknown_outcomes",
            "Idempotency keys whose provider outcome is unknown and awaits reconciliation",
            self.unknown.clone(),
        );
        registry.register(
            "pasarela_idempotency_store_errors",
            "Money-moving calls failed closed because the idempotency store was unavailable",
            self.store_errors.clone(),
        );
        registry.register(
            "pasarela_idempotency_quota_refusals",
            "Money-moving calls refused, nothing sent, because their caller held its maximum of open keys",
            self.quota_refusals.clone(),
        );
        registry.register(
            "pasarela_idempotency_caller_unknown_outcomes_max",
            "The most unknown outcomes one caller holds, as last counted",
            self.caller_unknown_max.clone(),
        );
        registry.register(
            "pasarela_idempotency_caller_open_keys_limit",
            "The most open keys (running or unknown) one caller may hold",
            self.caller_open_limit.clone(),
        );
    }

    /// Counts a call refused for its caller's open keys.
    pub fn count_refused_for_quota(&self, provider: &'static str) {
        self.quota_refusals
            .get_or_create(&ProviderLabels { provider })
            .inc();
    }

    /// Counts a call failed closed by the idempotency store of `provider`.
    pub fn store_error(&self, provider: &'static str) {
        self.store_errors
            .get_or_create(&ProviderLabels { provider })
            .inc();
    }
}
