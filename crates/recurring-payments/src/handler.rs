//! The gRPC handlers of `RecurringPaymentsService`: validate, hold the idempotency key,
//! build the wire request, call Daviplata, answer.

use std::collections::BTreeMap;
use std::future::Future;
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
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::Config;
use crate::daviplata::errors::DOMAIN;
use crate::daviplata::wire::{self, Defaults, Reference};
use crate::daviplata::{Daviplata, client};
use crate::tenancy::{Act, Refusal, Subject, Tenants};
use crate::validate;

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
    lab_otp_passthrough: bool,
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
                lab_otp_passthrough: config.lab_otp_passthrough,
            }),
        })
    }

    /// The service's idempotency records, for the operators' reconciliation API.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(
            SERVICE,
            &[ACTIVATE.operation, CANCEL.operation, CHARGE.operation],
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

/// The response an operator's settlement replays: what Daviplata would have answered,
/// with the approval or subscription the operator read in Daviplata's records.
fn settled(
    operation: &str,
    transaction_id: &str,
    approval: &Approval,
) -> Result<Outcome, SettleError> {
    let result = Some(pb::ResultStatus {
        status: 0,
        message: "reconciled by an operator".into(),
        transaction_id: transaction_id.to_owned(),
        transaction_time: None,
    });
    match operation {
        "activate" => Ok(Outcome::of(&Ok(pb::ActivateSubscriptionResponse {
            result,
            subscription: Some(pb::Subscription {
                subscription_id: approval.subscription(operation)?,
                ..pb::Subscription::default()
            }),
        }))),
        "cancel" => Ok(Outcome::of(&Ok(pb::CancelSubscriptionResponse { result }))),
        "charge" => Ok(Outcome::of(&Ok(pb::ChargeSubscriptionResponse {
            result,
            approval_number: approval.number(operation)?,
            subscription: None,
        }))),
        other => Err(SettleError::NotFound(other.to_owned())),
    }
}

/// An idempotency key within its caller's key space.
#[derive(Clone, Copy)]
struct KeyOf<'a> {
    caller: &'a str,
    key: &'a str,
    /// The caller's key space before tenants and applications were part of it.
    former: Option<&'a str>,
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
    /// Runs `call` at most once per idempotency key and request under pasarela's own
    /// transaction id: a repeat replays the first outcome; a lost outcome is held for an
    /// operator, or re-sent with the same id when `resend_unknown_outcomes` is on.
    async fn idempotent<R, F, Fut>(
        &self,
        operation: &'static str,
        key: KeyOf<'_>,
        request_without_key: &impl prost::Message,
        deadline: Instant,
        call: F,
    ) -> Result<R, Status>
    where
        R: prost::Message + Default,
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<R, ProviderError>>,
    {
        let claim = Claim {
            operation,
            caller: key.caller,
            key: key.key,
            fingerprint: self.idempotency.fingerprint(operation, request_without_key),
            transaction_id: Proposed::Ready(uuid::Uuid::new_v4().to_string()),
            deadline,
            // Daviplata has no status query: nothing to ask with later.
            context: None,
            former_caller: key.former,
        };
        self.idempotency
            .once(claim, |attempt| call(attempt.transaction_id))
            .await
    }

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

    async fn request(
        &self,
        request: pb::RequestSubscriptionRequest,
        principal: Option<&Principal>,
        deadline: Instant,
    ) -> Result<pb::RequestSubscriptionResponse, Status> {
        validate::request(&request)?;
        let subject = Subject {
            commerce: request.commerce.as_ref(),
            wallet: request.wallet.as_ref(),
        };
        self.admit(principal, subject, Act::Ask).await?;
        let reference = reference(request.transaction.as_ref(), None);
        let body = wire::wallet_body(
            &self.defaults,
            &reference,
            request.commerce.as_ref(),
            request.wallet.as_ref(),
        );
        let pass_otp = self.lab_otp_passthrough;
        let call = client::Call {
            op: client::REQUEST,
            transaction_id: Some(&reference.transaction_id),
            wallet: None,
            secrets: &[],
        };
        self.daviplata_for(principal)
            .call(call, &body, deadline, |answer| {
                answer.into_request_response(pass_otp)
            })
            .await
            .map_err(Status::from)
    }

    /// Activate, cancel and charge: the key is held, then the request goes to Daviplata
    /// under the record's transaction id.
    async fn keyed<Q: Keyed, D: Serialize, R: prost::Message + Default>(
        &self,
        how: KeyedOp<Q, D, R>,
        request: &Q,
        principal: Option<&Principal>,
        deadline: Instant,
        secrets: &[&str],
    ) -> Result<R, Status> {
        let caller = Principal::key_or_anonymous(principal);
        let former = principal.map(Principal::person);
        let key = KeyOf {
            caller: &caller,
            key: request.key(),
            former: former.as_deref(),
        };
        let daviplata = self.daviplata_for(principal);
        let unkeyed = request.without_key();
        self.idempotent(how.operation, key, &unkeyed, deadline, |id| async move {
            let reference = reference(request.transaction(), Some(id));
            let body = (how.body)(&self.defaults, &reference, request);
            let call = client::Call {
                op: how.op,
                transaction_id: Some(&reference.transaction_id),
                wallet: request
                    .wallet()
                    .map(|wallet| wallet.product_number.as_str()),
                secrets,
            };
            daviplata.call(call, &body, deadline, how.read).await
        })
        .await
    }

    async fn activate(
        &self,
        request: pb::ActivateSubscriptionRequest,
        principal: Option<Principal>,
        deadline: Instant,
    ) -> Result<pb::ActivateSubscriptionResponse, Status> {
        validate::activate(&request)?;
        let subject = Subject {
            commerce: request.commerce.as_ref(),
            wallet: request.wallet.as_ref(),
        };
        self.admit(principal.as_ref(), subject, Act::Activate)
            .await?;
        let secrets: &[&str] = &[&request.otp_value];
        self.keyed(ACTIVATE, &request, principal.as_ref(), deadline, secrets)
            .await
    }

    async fn cancel(
        &self,
        request: pb::CancelSubscriptionRequest,
        principal: Option<Principal>,
        deadline: Instant,
    ) -> Result<pb::CancelSubscriptionResponse, Status> {
        validate::cancel(&request)?;
        let subject = Subject {
            commerce: request.commerce.as_ref(),
            wallet: request.wallet.as_ref(),
        };
        self.admit(principal.as_ref(), subject, Act::Use).await?;
        self.keyed(CANCEL, &request, principal.as_ref(), deadline, &[])
            .await
    }

    async fn charge(
        &self,
        request: pb::ChargeSubscriptionRequest,
        principal: Option<Principal>,
        deadline: Instant,
    ) -> Result<pb::ChargeSubscriptionResponse, Status> {
        validate::charge(&request)?;
        let subject = Subject {
            commerce: request.commerce.as_ref(),
            wallet: request.wallet.as_ref(),
        };
        self.admit(principal.as_ref(), subject, Act::Use).await?;
        self.keyed(CHARGE, &request, principal.as_ref(), deadline, &[])
            .await
    }
}

/// A request that carries an idempotency key and may name its provider transaction.
trait Keyed: prost::Message + Clone {
    fn key(&self) -> &str;
    fn transaction(&self) -> Option<&pb::ProviderTransaction>;
    /// The wallet the call is about.
    fn wallet(&self) -> Option<&pb::Wallet>;
    /// The request as its fingerprint sees it: a repeat under another key is the same call.
    fn without_key(&self) -> Self;
}

macro_rules! keyed {
    ($($request:ty),+) => {$(
        impl Keyed for $request {
            fn key(&self) -> &str {
                &self.idempotency_key
            }
            fn transaction(&self) -> Option<&pb::ProviderTransaction> {
                self.transaction.as_ref()
            }
            fn wallet(&self) -> Option<&pb::Wallet> {
                self.wallet.as_ref()
            }
            fn without_key(&self) -> Self {
                Self {
                    idempotency_key: String::new(),
                    ..self.clone()
                }
            }
        }
    )+};
}

keyed!(
    pb::ActivateSubscriptionRequest,
    pb::CancelSubscriptionRequest,
    pb::ChargeSubscriptionRequest
);

/// How one keyed operation is recorded, sent and read.
struct KeyedOp<Q, D, R> {
    /// The idempotency record's operation name (part of its fingerprint).
    operation: &'static str,
    op: client::BusinessOp,
    body: fn(&Defaults, &Reference, &Q) -> wire::Envelope<D>,
    read: fn(wire::Answer) -> Result<R, wire::Unreadable>,
}

const ACTIVATE: KeyedOp<
    pb::ActivateSubscriptionRequest,
    wire::ActivateDetail,
    pb::ActivateSubscriptionResponse,
> = KeyedOp {
    operation: "activate",
    op: client::ACTIVATE,
    body: wire::activate_body,
    read: wire::Answer::into_activate_response,
};

const CANCEL: KeyedOp<
    pb::CancelSubscriptionRequest,
    wire::WalletDetail,
    pb::CancelSubscriptionResponse,
> = KeyedOp {
    operation: "cancel",
    op: client::CANCEL,
    body: |defaults, reference, request| {
        wire::wallet_body(
            defaults,
            reference,
            request.commerce.as_ref(),
            request.wallet.as_ref(),
        )
    },
    read: wire::Answer::into_cancel_response,
};

const CHARGE: KeyedOp<
    pb::ChargeSubscriptionRequest,
    wire::PaymentDetail,
    pb::ChargeSubscriptionResponse,
> = KeyedOp {
    operation: "charge",
    op: client::PAYMENT,
    body: wire::payment_body,
    read: wire::Answer::into_charge_response,
};

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

#[tonic::async_trait]
impl RecurringPaymentsService for RecurringPayments {
    async fn request_subscription(
        &self,
        request: Request<pb::RequestSubscriptionRequest>,
    ) -> Result<Response<pb::RequestSubscriptionResponse>, Status> {
        let deadline = deadline_of(&self.core, &request);
        let principal = Principal::of(&request).cloned();
        self.core
            .request(request.into_inner(), principal.as_ref(), deadline)
            .await
            .map(Response::new)
    }

    async fn activate_subscription(
        &self,
        request: Request<pb::ActivateSubscriptionRequest>,
    ) -> Result<Response<pb::ActivateSubscriptionResponse>, Status> {
        let deadline = deadline_of(&self.core, &request);
        let core = Arc::clone(&self.core);
        let principal = Principal::of(&request).cloned();
        detached(async move {
            core.activate(request.into_inner(), principal, deadline)
                .await
        })
        .await
        .map(Response::new)
    }

    async fn cancel_subscription(
        &self,
        request: Request<pb::CancelSubscriptionRequest>,
    ) -> Result<Response<pb::CancelSubscriptionResponse>, Status> {
        let deadline = deadline_of(&self.core, &request);
        let core = Arc::clone(&self.core);
        let principal = Principal::of(&request).cloned();
        detached(async move { core.cancel(request.into_inner(), principal, deadline).await })
            .await
            .map(Response::new)
    }

    async fn charge_subscription(
        &self,
        request: Request<pb::ChargeSubscriptionRequest>,
    ) -> Result<Response<pb::ChargeSubscriptionResponse>, Status> {
        let deadline = deadline_of(&self.core, &request);
        let core = Arc::clone(&self.core);
        let principal = Principal::of(&request).cloned();
        detached(async move { core.charge(request.into_inner(), principal, deadline).await })
            .await
            .map(Response::new)
    }
}
