//! `pasarela probe` for Banco Caja Social: asks the bank, with pasarela's own client and
//! credentials, the harmless reads that tell which reading of its spec it plays.

use std::sync::Arc;

use pasarela::common::v1::{DocumentType, Identification};
use pasarela::security::v1 as pb;
use pasarela_auth::CallContext;
use pasarela_idempotency::MemoryStore;
use pasarela_provider::probe::{self, Finding, Taken, finding};
use pasarela_provider::{Violations, reasons};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bcs::client::{Bcs, Op};
use crate::bcs::errors::{DOMAIN, reason};
use crate::bcs::wire::{self, Outgoing};
use crate::config::{Config, CredentialFamily, HoldsQuery, RecordBase};

/// A document number no customer has: a read of it changes nothing at the bank.
const NOBODY: &str = "9999999999";

/// S1's path as the spec prints it (line 44, `/api/security-management/v1/…`), under a
/// base URL that ends in `/api`, in the family of the other operations' paths.
const PRINTED_PASSWORD_STATUS: &str = "/security-management/v1/user/password/status";

/// The refusals of a request the bank could not read: pasarela's, or its path's.
const UNREAD: &[&str] = &[
    reason::PROVIDER_REQUEST_MALFORMED,
    reason::PROVIDER_PATH_NOT_FOUND,
];

/// Every check of this provider.
pub async fn probe(config: &Config) -> anyhow::Result<Vec<Finding>> {
    // Former `security.paths` keys read once here, not again (with their warning) by each
    // client a check builds.
    let paths = config.paths.resolved(pasarela::methods::SECURITY_SERVICE)?;
    let config = &Config {
        paths,
        ..config.clone()
    };
    Ok(vec![
        password_status_path(config).await?,
        holds_query(config).await?,
        holds_record_base(config).await?,
        authentication_level_credentials(config).await?,
        camel_case_host(config).await?,
    ])
}

/// S7, the read of the camelCase family (S2-S7), asked for nobody at each host the
/// configuration names: where the family does not live the gateway has no such resource.
/// The spec's CloudHub hosts are never asked unless configured: pasarela's credentials go
/// to every host asked.
async fn camel_case_host(config: &Config) -> anyhow::Result<Finding> {
    let operation = wire::VALIDATE_DIGITAL_ENROLLMENT.name;
    let mut hosts = vec![config.base_url.clone()];
    for host in config.base_urls.values() {
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    let request = pb::ValidateDigitalEnrollmentRequest {
        customer: Some(nobody()),
        ..Default::default()
    };
    let mut outcomes = Vec::new();
    for host in &hosts {
        let mut asked = config.clone();
        asked.base_urls.insert(operation.to_owned(), host.clone());
        let bcs = Bcs::new(asked, Arc::new(MemoryStore::default()))?;
        let taken = ask(&bcs, &wire::VALIDATE_DIGITAL_ENROLLMENT, |v| {
            wire::validate_digital_enrollment(&request, v)
        })
        .await;
        outcomes.push((host.as_str(), taken));
    }
    let configured = config
        .base_urls
        .get(operation)
        .unwrap_or(&config.base_url)
        .clone();
    Ok(finding(
        "S2-S7 host (S7 asked)",
        "security.base_urls.validate_digital_enrollment",
        configured,
        &outcomes,
    ))
}

/// S1 asked for nobody at each path it may live at (pasarela's default, the spec's, and
/// the configured one): where it does not live the gateway answers that no such resource
/// exists; where it does, the bank says the user does not exist.
async fn password_status_path(config: &Config) -> anyhow::Result<Finding> {
    let operation = wire::PASSWORD_STATUS.path.setting;
    let configured = config
        .paths
        .get(operation)
        .unwrap_or(wire::PASSWORD_STATUS.path.spec)
        .to_owned();
    let mut candidates = vec![
        wire::PASSWORD_STATUS.path.spec.to_owned(),
        PRINTED_PASSWORD_STATUS.into(),
    ];
    if !candidates.contains(&configured) {
        candidates.push(configured.clone());
    }
    let mut outcomes = Vec::new();
    for path in &candidates {
        let mut paths = config.paths.clone();
        paths.set(operation, path.clone());
        let bcs = Bcs::new(
            Config {
                paths,
                ..config.clone()
            },
            Arc::new(MemoryStore::default()),
        )?;
        outcomes.push((path.as_str(), ask_nobodys_password_status(&bcs).await));
    }
    Ok(finding(
        "S1 path",
        "security.paths.get_password_status",
        configured,
        &outcomes,
    ))
}

async fn ask_nobodys_password_status(bcs: &Bcs) -> Taken {
    let request = pb::GetPasswordStatusRequest {
        transaction_id: "PROBE1".to_owned(),
        customer_type: pb::CustomerType::Natural.into(),
        subject: Some(pb::get_password_status_request::Subject::Customer(nobody())),
        ..Default::default()
    };
    ask(bcs, &wire::PASSWORD_STATUS, |v| {
        wire::get_password_status(&request, v)
    })
    .await
}

/// `op` sent once as `build` makes it, with the configured invoker defaults; the answer
/// only counts for how it was taken.
async fn ask<B: Serialize, W: DeserializeOwned>(
    bcs: &Bcs,
    op: &Op<W>,
    build: impl FnOnce(&mut Violations) -> Outgoing<B>,
) -> Taken {
    let call = CallContext::default();
    let outcome = bcs.run(op, &call, None, |_, v| build(v), |_| Ok(())).await;
    taken(outcome)
}

fn nobody() -> Identification {
    Identification {
        r#type: DocumentType::Cc.into(),
        number: NOBODY.to_owned(),
    }
}

/// S14 sent once per spelling of its query names: a bank that reads only one refuses the
/// other as unreadable.
async fn holds_query(config: &Config) -> anyhow::Result<Finding> {
    // The casing is the wire's, not the client's: one client asks both ways.
    let bcs = Bcs::new(config.clone(), Arc::new(MemoryStore::default()))?;
    let mut outcomes = Vec::new();
    for (name, casing) in [("table", HoldsQuery::Table), ("camel", HoldsQuery::Camel)] {
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
    list_nobodys_holds_from(bcs, (casing, RecordBase::One)).await
}

async fn list_nobodys_holds_from(bcs: &Bcs, query: (HoldsQuery, RecordBase)) -> Taken {
    let request = pb::ListChannelHoldsRequest {
        customer: Some(nobody()),
        filter: pb::HoldFilter::All.into(),
        ..Default::default()
    };
    ask(bcs, &wire::LIST_CHANNEL_HOLDS, |v| {
        wire::list_channel_holds(&request, query, v).0
    })
    .await
}

/// S14 asked from record 0: a bank that counts strictly from one refuses it as unreadable,
/// and then only `one` works. A bank that reads it counts from zero, or takes 0 for its
/// first record: which, no question about nobody can tell (`zero`, the default, hides no
/// record with either).
async fn holds_record_base(config: &Config) -> anyhow::Result<Finding> {
    let bcs = Bcs::new(config.clone(), Arc::new(MemoryStore::default()))?;
    let from_zero = list_nobodys_holds_from(&bcs, (config.holds_query, RecordBase::Zero)).await;
    let from_one = list_nobodys_holds_from(&bcs, (config.holds_query, RecordBase::One)).await;
    // Record 1 refused too: the query itself is unreadable (its names), not its record.
    let (observed, matching) = match (from_zero, from_one) {
        (Taken::Refused, Taken::Read) => {
            ("record 0: refused; record 1: read", vec!["one".to_owned()])
        }
        (Taken::Read, _) => (
            "record 0: read (zero, or one taking 0 as its first)",
            Vec::new(),
        ),
        (Taken::Refused, _) => (
            "records 0 and 1: refused (the query unreadable)",
            Vec::new(),
        ),
        (Taken::Unknown, _) => ("record 0: no answer", Vec::new()),
    };
    let configured = match config.holds_record_base {
        RecordBase::Zero => "zero",
        RecordBase::One => "one",
    };
    Ok(Finding {
        check: "S14 first record",
        key: "security.holds_record_base",
        observed: observed.to_owned(),
        matching,
        configured: configured.to_owned(),
    })
}

/// S16 asked for nobody with each credential header family (its spec prints none): the
/// family the bank does not read is refused as pasarela's credentials (401). S8 and S9,
/// which print none either, change a customer's password or user: they are never asked.
async fn authentication_level_credentials(config: &Config) -> anyhow::Result<Finding> {
    const OPERATION: &str = "get_authentication_level";
    let families = [
        ("mule", CredentialFamily::Mule),
        ("mule_bearer", CredentialFamily::MuleBearer),
        ("gateway", CredentialFamily::Gateway),
    ];
    let request = pb::GetAuthenticationLevelRequest {
        customer: Some(nobody()),
        request_number: "PROBE1".to_owned(),
        transaction_request_id: "PROBE1".to_owned(),
        auth_system: "PASARELA".to_owned(),
        ..Default::default()
    };
    let mut outcomes = Vec::new();
    for (name, family) in families {
        let mut asked = config.clone();
        asked
            .credential_headers
            .insert(OPERATION.to_owned(), family);
        let bcs = Bcs::new(asked, Arc::new(MemoryStore::default()))?;
        let call = CallContext::default();
        let build = |_: &_, v: &mut Violations| {
            wire::get_authentication_level(&request, crate::bcs::invoker::bank_now(), v)
        };
        let outcome = bcs
            .run(&wire::AUTHENTICATION_LEVEL, &call, None, build, |_| Ok(()))
            .await;
        let refused_credentials = [UNREAD, &[reasons::PROVIDER_AUTH_FAILED]].concat();
        let taken = match outcome {
            Ok(()) => Taken::Read,
            Err(status) => probe::taken(&status, DOMAIN, &refused_credentials),
        };
        outcomes.push((name, taken));
    }
    let configured = families
        .iter()
        .find(|(_, family)| {
            config
                .credential_headers
                .get(OPERATION)
                .map_or(*family == wire::AUTHENTICATION_LEVEL.credentials(), |set| {
                    set == family
                })
        })
        .map_or("", |(name, _)| name);
    Ok(finding(
        "S16 credential headers",
        "security.credential_headers.get_authentication_level",
        configured.to_owned(),
        &outcomes,
    ))
}

/// How the bank took one way of asking: an answer is a read.
fn taken(outcome: Result<(), tonic::Status>) -> Taken {
    match outcome {
        Ok(()) => Taken::Read,
        Err(status) => probe::taken(&status, DOMAIN, UNREAD),
    }
}
