//! Prometheus families of outbound calls (per provider operation), shared by every client
//! and registered once by the server.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub provider: &'static str,
    pub operation: &'static str,
    /// An [`Outcome`]'s label.
    pub outcome: &'static str,
    /// The HTTP status, empty when none was received.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub provider: &'static str,
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: &'static str,
}

pub struct ProviderMetrics {
    pub calls: Family<CallLabels, Counter>,
    pub latency: Family<OperationLabels, Histogram>,
    pub retries: Family<OperationLabels, Counter>,
    pub breaker_state: Family<ProviderLabels, Gauge>,
    /// Access tokens fetched from a provider (Daviplata's OAuth2 token).
    pub token_refreshes: Family<ProviderLabels, Counter>,
    /// Success answers that did not belong to the request sent (another transaction id):
    /// held as unknown outcomes.
    pub answer_mismatches: Family<OperationLabels, Counter>,
}

static METRICS: LazyLock<ProviderMetrics> = LazyLock::new(|| ProviderMetrics {
    calls: Family::default(),
    latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
    retries: Family::default(),
    breaker_state: Family::default(),
    token_refreshes: Family::default(),
    answer_mismatches: Family::default(),
});

/// Latency buckets, in seconds, of every pasarela histogram: from half a millisecond (a
/// refused call) to ten seconds (the default provider ceiling).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub fn global() -> &'static ProviderMetrics {
    &METRICS
}

/// Adds the outbound families to the server's registry.
pub fn register(registry: &mut Registry) {
    let m = global();
    registry.register(
        "pasarela_provider_calls",
        "Provider HTTP calls by operation, outcome and HTTP status",
        m.calls.clone(),
    );
    registry.register(
        "pasarela_provider_call_duration_seconds",
        "Latency of provider HTTP calls, retries included",
        m.latency.clone(),
    );
    registry.register(
        "pasarela_provider_retries",
        "Provider calls retried after a failure",
        m.retries.clone(),
    );
    registry.register(
        "pasarela_provider_circuit_state",
        "Circuit breaker state per provider: 0 closed, 1 open, 2 half-open",
        m.breaker_state.clone(),
    );
    registry.register(
        "pasarela_provider_token_refreshes",
        "Access tokens requested from a provider",
        m.token_refreshes.clone(),
    );
    registry.register(
        "pasarela_provider_answer_mismatches",
        "Success answers of a provider that did not belong to the request sent",
        m.answer_mismatches.clone(),
    );
}

/// How one provider call ended, the `outcome` label of its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Ok,
    /// Any other HTTP answer.
    HttpError,
    Timeout,
    /// No answer: the connection failed or broke.
    Unavailable,
    /// Not sent: the provider's circuit is open.
    CircuitOpen,
    /// Not sent: the caller's deadline left too little time.
    NotSent,
}

impl Outcome {
    /// The outcomes that come with no HTTP answer, so no `status`: their series can exist
    /// before any call.
    pub const UNANSWERED: [Outcome; 4] = [
        Outcome::Timeout,
        Outcome::Unavailable,
        Outcome::CircuitOpen,
        Outcome::NotSent,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::Unavailable => "unavailable",
            Outcome::CircuitOpen => "circuit_open",
            Outcome::NotSent => "not_sent",
        }
    }
}

/// Every series of `provider`'s `operations` that needs no answer to be named exists at
/// zero from start-up: an alert's `rate()` must tell "none" from "never".
pub fn born_at_zero(provider: &'static str, operations: &[&'static str]) {
    let m = global();
    for &operation in operations {
        let labels = OperationLabels {
            provider,
            operation,
        };
        drop(m.latency.get_or_create(&labels));
        drop(m.retries.get_or_create(&labels));
        drop(m.answer_mismatches.get_or_create(&labels));
        for outcome in Outcome::UNANSWERED {
            drop(m.calls.get_or_create(&CallLabels {
                provider,
                operation,
                outcome: outcome.label(),
                status: String::new(),
            }));
        }
    }
}

/// Counts a success answer of `provider` to `operation` that belonged to another request.
pub fn answer_mismatch(provider: &'static str, operation: &'static str) {
    global()
        .answer_mismatches
        .get_or_create(&OperationLabels {
            provider,
            operation,
        })
        .inc();
}
