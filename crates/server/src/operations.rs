//! `pasarela.operations.v1.OperationsService`: operators list the idempotency keys whose
//! provider outcome is unknown and settle them, over the ledgers of the services this
//! process serves; and a task keeps the gauge of outstanding unknown outcomes current.

use std::time::{Duration, SystemTime};

use pasarela::operations::v1 as pb;
use pasarela::operations::v1::operations_service_server::{
    OperationsService, OperationsServiceServer,
};
use pasarela::operations::v1::settle_unknown_outcome_request::Settlement as PbSettlement;
use pasarela_auth::Principal;
use pasarela_idempotency::{
    Approval, Ledger, Outstanding, SettleError, Settlement, StoreUnavailable, reason,
};
use pasarela_provider::ProviderError;
use tonic::{Code, Request, Response, Status};

/// `ErrorInfo.domain` of this service's errors.
const DOMAIN: &str = "pasarela.operations";

/// `ErrorInfo.reason`s of a settlement that cannot be made.
pub mod reasons {
    pub const OUTCOME_NOT_FOUND: &str = "OUTCOME_NOT_FOUND";
    pub const OUTCOME_NOT_UNKNOWN: &str = "OUTCOME_NOT_UNKNOWN";
}

/// Longest note kept in an audit line.
const NOTE_MAX: usize = 200;

/// How often the gauge of unknown outcomes is recounted from the shared store.
pub const COUNT_EVERY: Duration = Duration::from_secs(15);

/// The service over the served services' ledgers.
#[derive(Clone)]
pub struct Operations {
    ledgers: Vec<Ledger>,
}

impl Operations {
    pub fn new(ledgers: Vec<Ledger>) -> Self {
        Self { ledgers }
    }

    pub fn into_server(self) -> OperationsServiceServer<Self> {
        OperationsServiceServer::new(self)
    }

    /// Recounts every ledger's unknown outcomes now and then, for as long as the process
    /// runs; the gauge is the same on every replica of a shared store.
    pub fn spawn_counter(&self) -> tokio::task::JoinHandle<()> {
        let ledgers = self.ledgers.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(COUNT_EVERY);
            loop {
                every.tick().await;
                for ledger in &ledgers {
                    ledger.count().await;
                }
            }
        })
    }

    fn ledgers_of(&self, service: &str) -> Result<Vec<&Ledger>, Status> {
        let chosen: Vec<&Ledger> = self
            .ledgers
            .iter()
            .filter(|ledger| service.is_empty() || ledger.service == service)
            .collect();
        if chosen.is_empty() {
            return Err(bad_field("service", &self.served()));
        }
        Ok(chosen)
    }

    fn served(&self) -> String {
        let names: Vec<&str> = self.ledgers.iter().map(|ledger| ledger.service).collect();
        format!("must be one of the served services with idempotency keys: {names:?}")
    }
}

#[tonic::async_trait]
impl OperationsService for Operations {
    async fn list_unknown_outcomes(
        &self,
        request: Request<pb::ListUnknownOutcomesRequest>,
    ) -> Result<Response<pb::ListUnknownOutcomesResponse>, Status> {
        let service = request.into_inner().service;
        let mut outcomes = Vec::new();
        for ledger in self.ledgers_of(&service)? {
            let outstanding = ledger.outstanding().await.map_err(store_down)?;
            ledger.publish(&outstanding);
            outcomes.extend(
                outstanding
                    .into_iter()
                    .map(|entry| to_proto(ledger.service, entry)),
            );
        }
        Ok(Response::new(pb::ListUnknownOutcomesResponse { outcomes }))
    }

    async fn settle_unknown_outcome(
        &self,
        request: Request<pb::SettleUnknownOutcomeRequest>,
    ) -> Result<Response<pb::SettleUnknownOutcomeResponse>, Status> {
        let operator = request
            .extensions()
            .get::<Principal>()
            .map_or_else(|| "anonymous".to_owned(), Principal::key);
        let request = request.into_inner();
        let settlement = checked(&request)?;
        let [ledger] = self.ledgers_of(&request.service)?[..] else {
            return Err(bad_field("service", &self.served()));
        };
        let settled = ledger
            .settle(
                &request.operation,
                &request.key_hash,
                &settlement,
                &operator,
                &request.note,
            )
            .await
            .map_err(settle_error)?;
        Ok(Response::new(pb::SettleUnknownOutcomeResponse {
            settled: Some(to_proto(ledger.service, settled)),
        }))
    }
}

/// The request's fields checked before the store is read.
fn checked(request: &pb::SettleUnknownOutcomeRequest) -> Result<Settlement, Status> {
    let mut violations = pasarela_provider::Violations::new();
    violations.required("service", &request.service);
    if violations.required("operation", &request.operation)
        && !request
            .operation
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        violations.add("operation", "is an operation name as listed");
    }
    let hex = request.key_hash.len() == 64
        && request
            .key_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        violations.add("key_hash", "is the 64 hex digits listed");
    }
    violations.length("note", &request.note, 0, NOTE_MAX);
    let settlement = match &request.settlement {
        Some(PbSettlement::Succeeded(succeeded)) => Some(Settlement::Succeeded(Approval {
            approval_number: succeeded.approval_number.trim().to_owned(),
            subscription_id: succeeded.subscription_id.trim().to_owned(),
        })),
        Some(PbSettlement::NotDone(_)) => Some(Settlement::NotDone),
        None => {
            violations.add("settlement", "is required: succeeded or not_done");
            None
        }
    };
    violations.finish()?;
    Ok(settlement.expect("a settlement without violations is set"))
}

fn to_proto(service: &str, entry: Outstanding) -> pb::UnknownOutcome {
    pb::UnknownOutcome {
        service: service.to_owned(),
        operation: entry.operation,
        caller: entry.caller,
        key_hash: entry.key_hash,
        provider_transaction_id: entry.transaction_id,
        first_attempt_time: Some(timestamp(entry.first_attempt)),
        unknown_since: entry.unknown_since.map(timestamp),
    }
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

fn bad_field(field: &str, why: &str) -> Status {
    pasarela_provider::errors::bad_request(vec![(field.to_owned(), why.to_owned())])
}

fn settle_error(error: SettleError) -> Status {
    match error {
        SettleError::NotFound(_) => {
            ProviderError::new(Code::NotFound, reasons::OUTCOME_NOT_FOUND, DOMAIN)
                .message(error.to_string())
                .into()
        }
        SettleError::NotUnknown => ProviderError::new(
            Code::FailedPrecondition,
            reasons::OUTCOME_NOT_UNKNOWN,
            DOMAIN,
        )
        .message(error.to_string())
        .into(),
        SettleError::Invalid { field, description } => {
            bad_field(&format!("succeeded.{field}"), &description)
        }
        SettleError::Store(error) => store_down(error),
    }
}

fn store_down(error: StoreUnavailable) -> Status {
    tracing::error!(error = %error, "idempotency store unavailable to an operator");
    ProviderError::new(
        Code::Unavailable,
        reason::IDEMPOTENCY_STORE_UNAVAILABLE,
        DOMAIN,
    )
    .message("the idempotency store is unavailable")
    .retry_after(Duration::from_secs(1))
    .into()
}
