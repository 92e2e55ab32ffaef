//! `pasarela probe --every`: the probe as a long-lived checker of the providers. Each round
//! asks them the same harmless questions again and exports, per check, the reading the
//! provider played and whether the configuration matches it
//! (`pasarela_provider_reading{provider,check,key,reading,matches}`), so that an alert
//! fires when a provider changes its reading or stops matching (docs/operations.md,
//! "PasarelaProviderReadingMismatch", "PasarelaProviderReadingChanged").

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use pasarela_provider::probe::Finding;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::probe;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadingLabels {
    /// The provider's configuration section (`security`, `recurring_payments`).
    provider: String,
    check: String,
    /// The setting the check is about.
    key: String,
    /// The settings that work with the provider, `|`-joined; `unknown` when it could not
    /// tell.
    reading: String,
    /// `yes`, `no` or `unknown`: whether the configured setting is among them.
    matches: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoundLabels {
    outcome: &'static str,
}

/// The probe's series: the latest round's readings, and its rounds by outcome.
#[derive(Default)]
struct Readings {
    readings: Family<ReadingLabels, Gauge>,
    rounds: Family<RoundLabels, Counter>,
}

impl Readings {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "pasarela_provider_reading",
            "The reading a provider played in the probe's latest round (1), per check",
            self.readings.clone(),
        );
        registry.register(
            "pasarela_probe_rounds",
            "Rounds of the provider probe, by outcome (ok, failed)",
            self.rounds.clone(),
        );
        for outcome in ["ok", "failed"] {
            drop(self.rounds.get_or_create(&RoundLabels { outcome }));
        }
    }

    /// The latest round's findings replace the previous round's.
    fn record(&self, findings: &[Finding]) {
        self.readings.clear();
        for finding in findings {
            let reading = if finding.matching.is_empty() {
                "unknown".to_owned()
            } else {
                finding.matching.join("|")
            };
            let matches = match finding.matches() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            };
            let labels = ReadingLabels {
                provider: finding.key.split('.').next().unwrap_or_default().to_owned(),
                check: finding.check.to_owned(),
                key: finding.key.to_owned(),
                reading,
                matches,
            };
            self.readings.get_or_create(&labels).set(1);
        }
    }
}

/// Probes every `every` until `stop` resolves, serving the series at `listen`'s `/metrics`.
pub async fn watch(
    config: Config,
    every: Duration,
    listen: SocketAddr,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(!every.is_zero(), "--every must be longer than 0s");
    let readings = Arc::new(Readings::default());
    let mut registry = Registry::default();
    readings.register(&mut registry);
    let registry = Arc::new(registry);
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, every = ?every, "probing the providers");
    let metrics = get(move || {
        let registry = Arc::clone(&registry);
        async move { crate::app::render_metrics(&registry) }
    });
    let server = axum::serve(listener, axum::Router::new().route("/metrics", metrics));
    let rounds = async {
        let mut tick = tokio::time::interval(pasarela_provider::deadline::period(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round(&config, &readings).await;
        }
    };
    tokio::select! {
        served = server => served.map_err(anyhow::Error::from),
        () = rounds => Ok(()),
        () = stop => Ok(()),
    }
}

/// One round: every harmless check, its readings exported, its mismatches logged.
async fn round(config: &Config, readings: &Readings) {
    match probe::findings(config, None).await {
        Ok(findings) => {
            readings.record(&findings);
            readings
                .rounds
                .get_or_create(&RoundLabels { outcome: "ok" })
                .inc();
            for finding in findings.iter().filter(|f| f.matches() == Some(false)) {
                tracing::warn!(
                    check = finding.check,
                    key = finding.key,
                    configured = %finding.configured,
                    works = %finding.matching.join(" or "),
                    "the configuration does not match the provider"
                );
            }
        }
        Err(error) => {
            readings
                .rounds
                .get_or_create(&RoundLabels { outcome: "failed" })
                .inc();
            tracing::warn!(error = %error, "a probe round failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use pasarela_provider::probe::{Taken, finding};

    use super::*;

    /// The series after a round in which the bank took the table's names and the camel
    /// ones as `taken`.
    fn after_round(readings: &Readings, registry: &Registry, taken: [Taken; 2]) -> String {
        let outcomes = [("table", taken[0]), ("camel", taken[1])];
        let names = "S14 query names";
        readings.record(&[finding(
            names,
            "security.holds_query",
            "table".into(),
            &outcomes,
        )]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn a_round_replaces_the_last_readings() {
        let readings = Readings::default();
        let mut registry = Registry::default();
        readings.register(&mut registry);
        let text = after_round(&readings, &registry, [Taken::Refused, Taken::Read]);
        assert!(
            text.contains(r#"reading="camel",matches="no"} 1"#),
            "{text}"
        );
        let text = after_round(&readings, &registry, [Taken::Read, Taken::Refused]);
        assert!(
            text.contains(r#"reading="table",matches="yes"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"reading="camel""#),
            "the old reading is gone: {text}"
        );
    }
}
