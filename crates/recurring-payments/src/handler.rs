//! The gRPC handlers of `RecurringPaymentsService`: each RPC runs its request as a
//! `Call` (`daviplata::operation`): parsed, admitted by its tenant, claimed once per
//! idempotency key when it changes state, sent to Daviplata and read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use pasarela::recurring_payments::v1 as pb;
use pasarela::recurring_payments::v1::recurring_payments_service_server::RecurringPaymentsService;
use pasarela_auth::{CallContext, Principal};
use pasarela_idempotency::{
    self as idempotency, Approval, Claim, Idempotency, IdempotencyMetrics, Ledger, OnUnknown,
    Outcome, Proposed, Scope, SettleError, detached,
};
use pasarela_provider::{ProviderError, deadline};
use tonic::{Request, Response, Status};

use crate::Config;
use crate::daviplata::errors::DOMAIN;
use crate::daviplata::operation::{Call, Operation, Readings};
use crate::daviplata::wire::{self, Defaults, Reference};
use crate::daviplata::{Daviplata, client};
use crate::tenancy::{Act, Refusal, Subject, Tenants};

/// Idempotency records of activate, cancel and charge. Whether Daviplata may have acted is
/// the `Delivery` each failure carries, set where the answer was read (`daviplata::errors`,
/// `daviplata::client`).
const IDEMPOTENCY: Scope = Scope {
    keys: "pasarela:recurring-payments:idempotency",
    domain: "pasarela.recurring_payments",
    provider: DOMAIN,
    provider_name: "Daviplata",
};

/// The service; cheap to clone (everything shared sits behind one `Arc`).
#[derive(Clone)]
pub struct RecurringPayments {
    core: Arc<Core>,
}

struct Core {
    daviplata: Daviplata,
    /// Clients of the tenants that hold their own Daviplata contract, by tenant.
    contracts: BTreeMap<String, Daviplata>,
    idempotency: Idempotency,
    tenants: Tenants,
    defaults: Defaults,
    readings: Readings,
}

impl RecurringPayments {
    /// Builds the Daviplata client (reads the mTLS identity now) and connects the store.
    pub async fn new(config: Config, metrics: IdempotencyMetrics) -> anyhow::Result<Self> {
        let daviplata = Daviplata::new(&config)?;
        let contracts = contracts_of(&config)?;
        let store = idempotency::open_store(&config.idempotency).await?;
        let tenants = Tenants::new(
            &config.tenants,
            config.unbound_subscriptions,
            Arc::clone(&store),
        );
        // A claim outlives its call (token wait plus the provider call) before a repeat
        // may take it over.
        let lease = config.idempotency.lease_or(daviplata.ceiling())?;
        let on_unknown = if config.resend_unknown_outcomes {
            OnUnknown::Retry
        } else {
            OnUnknown::Hold
        };
        let idempotency = Idempotency::new(
            store,
            config.idempotency.seal()?,
            IDEMPOTENCY,
            config.idempotency.ttl,
            lease,
            on_unknown,
            metrics,
        )
        .with_max_open_per_caller(config.idempotency.max_open_per_caller);
        Ok(Self {
            core: Arc::new(Core {
                idempotency,
                daviplata,
                contracts,
                tenants,
                defaults: Defaults::of(&config),
                readings: Readings {
                    pass_otp: config.lab_otp_passthrough,
                },
            }),
        })
    }

    /// The service's idempotency records, for the operators' reconciliation API.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(
            SERVICE,
            &Operation::CHANGING_STATE,
            self.core.idempotency.clone(),
            settled,
        )
    }
}

/// A Daviplata client for each tenant that holds its own contract.
fn contracts_of(config: &Config) -> anyhow::Result<BTreeMap<String, Daviplata>> {
    config
        .tenants
        .iter()
        .filter_map(|(name, tenant)| Some((name, tenant.contract.as_ref()?)))
        .map(|(name, contract)| Ok((name.clone(), Daviplata::new(&contract.over(config, name)?)?)))
        .collect()
}

/// The package operators name when they settle this service's keys.
const SERVICE: &str = "pasarela.recurring_payments.v1";

/// The response an operator's settlement replays, for the operation they name.
fn settled(
    operation: &str,
    transaction_id: &str,
    approval: &Approval,
) -> Result<Outcome, SettleError> {
    Operation::named(operation)
        .ok_or_else(|| SettleError::NotFound(operation.to_owned()))?
        .settled(transaction_id, approval)
}

/// When the provider call must be over: the caller's `grpc-timeout` or the ceiling.
fn deadline_of<T>(core: &Core, request: &Request<T>) -> Instant {
    let remaining = CallContext::of(request).remaining();
    let now = Instant::now();
    // A budget past any clock leaves none: the call is refused as too short, not sent.
    now.checked_add(deadline::budget(remaining, core.daviplata.ceiling()))
        .unwrap_or(now)
}

impl Core {
    /// The client whose contract a caller's calls go under: its tenant's own, else the
    /// deployment's.
    fn daviplata_for(&self, principal: Option<&Principal>) -> &Daviplata {
        principal
            .and_then(|p| p.tenant.as_deref())
            .and_then(|tenant| self.contracts.get(tenant))
            .unwrap_or(&self.daviplata)
    }

    /// The tenant's checks of a valid request ([`Tenants::admit`]), before its key is
    /// claimed and anything is sent.
    async fn admit(
        &self,
        principal: Option<&Principal>,
        subject: Subject<'_>,
        act: Act,
    ) -> Result<(), Status> {
        match self.tenants.admit(principal, &subject, act).await {
            Ok(()) => Ok(()),
            Err(Refusal::Denied(status)) => Err(status),
            Err(Refusal::Store(error)) => Err(self.idempotency.store_down(error)),
        }
    }

    /// Runs one request: parsed (every field checked, nothing sent otherwise), admitted by
    /// the caller's tenant, then sent; a state change at most once per idempotency key,
    /// under the record's transaction id.
    async fn run<Q: Call>(
        &self,
        request: Q,
        principal: Option<Principal>,
        deadline: Instant,
    ) -> Result<Q::Response, Status> {
        let valid = request.parse()?;
        let parties = Q::parties(&valid);
        let subject = Subject::of(Some(parties.commerce), Some(parties.wallet));
        self.admit(principal.as_ref(), subject, Q::ACT).await?;
        let daviplata = self.daviplata_for(principal.as_ref());
        let Some(key) = request.key() else {
            let reference = reference(parties.transaction, None);
            return self
                .send(daviplata, &request, &valid, reference, deadline)
                .await
                .map_err(Status::from);
        };
        // A repeat replays the first outcome; a lost outcome is held for an operator, or
        // re-sent under the same id when `resend_unknown_outcomes` is on.
        let caller = Principal::key_or_anonymous(principal.as_ref());
        let former = principal.as_ref().map(Principal::person);
        let operation = Q::OPERATION.name();
        let claim = Claim {
            operation,
            caller: &caller,
            key,
            fingerprint: self
                .idempotency
                .fingerprint(operation, &request.without_key()),
            transaction_id: Proposed::Ready(uuid::Uuid::new_v4().to_string()),
            deadline,
            // Daviplata has no status query: nothing to ask with later.
            context: None,
            former_caller: former.as_deref(),
        };
        self.idempotency
            .once(claim, |attempt| {
                let reference = reference(parties.transaction, Some(attempt.transaction_id));
                self.send(daviplata, &request, &valid, reference, deadline)
            })
            .await
    }

    /// The request's body under `reference`, sent to Daviplata and read.
    async fn send<Q: Call>(
        &self,
        daviplata: &Daviplata,
        request: &Q,
        valid: &Q::Valid<'_>,
        reference: Reference,
        deadline: Instant,
    ) -> Result<Q::Response, ProviderError> {
        let body = Q::body(valid, &self.defaults, &reference);
        let secrets = request.secrets();
        let sending = client::Sending {
            op: Q::OPERATION,
            transaction_id: Some(&reference.transaction_id),
            wallet: Some(&Q::parties(valid).wallet.product_number),
            secrets: &secrets,
        };
        let readings = self.readings;
        daviplata
            .call(sending, &body, deadline, |answer| Q::read(answer, readings))
            .await
    }
}

/// The `TransactionHeader` reference: the idempotency record's id on keyed calls, else
/// the caller's, else a new UUID; the caller's time or now.
fn reference(transaction: Option<&pb::ProviderTransaction>, fixed_id: Option<String>) -> Reference {
    let transaction_id = fixed_id
        .or_else(|| {
            transaction
                .map(|t| t.transaction_id.clone())
                .filter(|id| !id.is_empty())
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    Reference {
        transaction_id,
        transaction_date: wire::transaction_date(
            transaction.and_then(|t| t.transaction_time.as_ref()),
        ),
    }
}

impl RecurringPayments {
    /// Runs `request`; a state change on its own task, as a caller hanging up must not
    /// abandon it between Daviplata's answer and its idempotency record. A request (D1)
    /// runs in the call, and a caller hanging up stops it.
    async fn serve<Q: Call>(&self, request: Request<Q>) -> Result<Response<Q::Response>, Status> {
        let deadline = deadline_of(&self.core, &request);
        let principal = Principal::of(&request).cloned();
        let core = Arc::clone(&self.core);
        let request = request.into_inner();
        let run = async move { core.run(request, principal, deadline).await };
        let answered = if Q::OPERATION.changes_state() {
            detached(run).await
        } else {
            run.await
        };
        answered.map(Response::new)
    }
}

/// `RecurringPaymentsService`: each RPC is its request run as a [`Call`] (the impls sit
/// beside their wire sections, `daviplata::wire`).
#[tonic::async_trait]
impl RecurringPaymentsService for RecurringPayments {
    async fn request_subscription(
        &self,
        request: Request<pb::RequestSubscriptionRequest>,
    ) -> Result<Response<pb::RequestSubscriptionResponse>, Status> {
        self.serve(request).await
    }

    async fn activate_subscription(
        &self,
        request: Request<pb::ActivateSubscriptionRequest>,
    ) -> Result<Response<pb::ActivateSubscriptionResponse>, Status> {
        self.serve(request).await
    }

    async fn cancel_subscription(
        &self,
        request: Request<pb::CancelSubscriptionRequest>,
    ) -> Result<Response<pb::CancelSubscriptionResponse>, Status> {
        self.serve(request).await
    }

    async fn charge_subscription(
        &self,
        request: Request<pb::ChargeSubscriptionRequest>,
    ) -> Result<Response<pb::ChargeSubscriptionResponse>, Status> {
        self.serve(request).await
    }
}
