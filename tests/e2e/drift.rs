//! Providers watched for drift: a real `pasarela probe --every` process against the sandbox
//! exports each check's reading, and when the sandbox changes how it reads a request the
//! exported reading changes and stops matching the configuration (what the drift alerts of
//! `deploy/monitoring/` read).

use std::process::{Command, Stdio};

use serde_json::json;

use crate::monitoring::PROBE_SERIES;
use crate::support::process::{KilledOnDrop, free_port, metrics_once};
use crate::support::{admin, pasarela_bin, sandbox, scrape};

#[tokio::test]
async fn the_probe_exports_each_reading_and_sees_the_provider_change_it() {
    let (sandbox, _pki) = sandbox().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("pasarela.toml");
    let credentials = &sandbox.credentials;
    std::fs::write(
        &config,
        format!(
            r#"services = ["security"]

[security]
base_url = "{bcs}"
client_id = "{id}"
client_secret = "{secret}"
access_token = "e2e-bcs-token"
environment = "sandbox"
holds_query = "table"
"#,
            bcs = sandbox.bcs_url,
            id = credentials.bcs_client_id,
            secret = credentials.bcs_client_secret,
        ),
    )
    .expect("configuration written");
    let port = free_port();
    let _probe = KilledOnDrop(
        Command::new(pasarela_bin())
            .args(["probe", "--every", "300ms", "--metrics-listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("pasarela probe starts"),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let series = |reading: &str, matches: &str| {
        format!(
            r#"pasarela_provider_reading{{provider="security",check="S14 query names",key="security.holds_query",reading="{reading}",matches="{matches}"}} 1"#
        )
    };

    // The sandbox reads either spelling: both work, and the configured one matches.
    let text = metrics_once(&url, &series("table|camel", "yes")).await;
    for name in PROBE_SERIES {
        assert!(text.contains(name), "{name} is exported:\n{text}");
    }
    // The bank changes its reading: the next rounds say so, and that it no longer matches.
    let readings = json!({
        "dedup_tx_ids": true,
        "consulta_not_found": "no_found",
        "holds_query": "camel",
    });
    admin(
        &sandbox,
        reqwest::Method::PUT,
        "/bcs/readings",
        Some(readings),
    )
    .await;
    let text = metrics_once(&url, &series("camel", "no")).await;
    assert!(
        !text.contains(r#"reading="table|camel""#),
        "a round replaces the last one's readings:\n{text}"
    );
    assert!(
        scrape(&url)
            .await
            .contains(r#"pasarela_probe_rounds_total{outcome="ok"}"#)
    );
}
