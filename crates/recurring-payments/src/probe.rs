//! `pasarela probe` for Daviplata: asks the gateway, with pasarela's own client and
//! credentials, the harmless calls that tell which reading of its spec it plays.

use std::time::Instant;

use pasarela_provider::probe::{Finding, Taken, finding};
use pasarela_provider::reasons;

use crate::config::Config;
use crate::daviplata::client::{self, Daviplata};

/// The two spellings of the client id header the spec and IBM API Connect use.
const CLIENT_ID_HEADERS: [&str; 2] = ["client_id", "x-ibm-client-id"];

/// Every check of this provider.
pub async fn probe(config: &Config) -> anyhow::Result<Vec<Finding>> {
    Ok(vec![client_id_header(config).await?])
}

/// D1 sent once per header with an empty body: the gateway checks the client id before
/// the backend reads anything, so a wrong header is an unknown client (401) and a right
/// one reaches the backend, which refuses the empty request; no OTP is sent to anybody.
async fn client_id_header(config: &Config) -> anyhow::Result<Finding> {
    let mut outcomes = Vec::new();
    for header in CLIENT_ID_HEADERS {
        let daviplata = Daviplata::new(&Config {
            client_id_header: header.to_owned(),
            ..config.clone()
        })?;
        let deadline = Instant::now() + daviplata.ceiling();
        let outcome = daviplata
            .call(
                client::REQUEST,
                &serde_json::json!({}),
                deadline,
                &[],
                |_| Ok(()),
            )
            .await;
        let taken = match outcome {
            Ok(()) => Taken::Read,
            Err(error) if error.reason == reasons::PROVIDER_AUTH_FAILED => Taken::Refused,
            Err(error) if error.code == tonic::Code::Unavailable => Taken::Unknown,
            Err(_) => Taken::Read,
        };
        outcomes.push((header, taken));
    }
    Ok(finding(
        "Daviplata client id header",
        "recurring_payments.client_id_header",
        config.client_id_header.clone(),
        &outcomes,
    ))
}
