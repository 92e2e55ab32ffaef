//! `pasarela probe` for Banco Caja Social: asks the bank, with pasarela's own client and
//! credentials, the harmless reads that tell which reading of its spec it plays.

use std::sync::Arc;

use pasarela::common::v1::{DocumentType, Identification};
use pasarela::security::v1 as pb;
use pasarela_auth::CallContext;
use pasarela_provider::idempotency::MemoryStore;
use pasarela_provider::probe::{Finding, Taken, finding};
use tonic_types::StatusExt as _;

use crate::bcs::client::{self, Bcs};
use crate::bcs::errors::reason;
use crate::bcs::wire;
use crate::config::{Config, HoldsQuery};

/// A document number no customer has: a read of it changes nothing at the bank.
const NOBODY: &str = "9999999999";

/// Every check of this provider.
pub async fn probe(config: &Config) -> anyhow::Result<Vec<Finding>> {
    Ok(vec![holds_query(config).await?])
}

/// S14 sent once per spelling of its query names: a bank that reads only one refuses the
/// other as unreadable.
async fn holds_query(config: &Config) -> anyhow::Result<Finding> {
    let mut outcomes = Vec::new();
    for (name, casing) in [("table", HoldsQuery::Table), ("camel", HoldsQuery::Camel)] {
        let bcs = Bcs::new(
            Config {
                holds_query: casing,
                ..config.clone()
            },
            Arc::new(MemoryStore::default()),
        )?;
        outcomes.push((name, list_nobodys_holds(&bcs, casing).await));
    }
    let configured = match config.holds_query {
        HoldsQuery::Table => "table",
        HoldsQuery::Camel => "camel",
    };
    Ok(finding(
        "S14 query names",
        "security.holds_query",
        configured.to_owned(),
        &outcomes,
    ))
}

async fn list_nobodys_holds(bcs: &Bcs, casing: HoldsQuery) -> Taken {
    let request = pb::ListChannelHoldsRequest {
        customer: Some(Identification {
            r#type: DocumentType::Cc.into(),
            number: NOBODY.to_owned(),
        }),
        filter: pb::HoldFilter::All.into(),
        ..Default::default()
    };
    let build = |_: &_, v: &mut _| wire::list_channel_holds(&request, casing, v).0;
    let outcome = bcs
        .run(
            &client::LIST_CHANNEL_HOLDS,
            &CallContext::default(),
            None,
            build,
            |_| Ok(()),
        )
        .await;
    match outcome {
        Ok(()) => Taken::Read,
        Err(status) => {
            let why = status
                .get_error_details()
                .error_info()
                .map(|info| info.reason.clone());
            match (status.code(), why.as_deref()) {
                (_, Some(reason::PROVIDER_REQUEST_MALFORMED)) => Taken::Refused,
                (tonic::Code::Unavailable | tonic::Code::DeadlineExceeded, _) => Taken::Unknown,
                // Credentials refused: the reading cannot be told.
                (_, Some(pasarela_provider::reasons::PROVIDER_AUTH_FAILED)) => Taken::Unknown,
                _ => Taken::Read,
            }
        }
    }
}
