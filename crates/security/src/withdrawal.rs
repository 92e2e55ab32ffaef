//! S18, the one call that moves money: the create and its consulta built as two values,
//! claimed once per idempotency key, asked about after an unknown outcome before anything
//! is sent again, and the ledger in which operators and the reconciler settle what stayed
//! unknown.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use pasarela::security::v1::{WithdrawWithOtpRequest, WithdrawWithOtpResponse};
use pasarela_auth::{CallContext, Document, Principal, check_end_user};
use pasarela_idempotency::{
    self as idempotency, Approval, Attempt, Claim, Idempotency, IdempotencyMetrics, Ledger,
    OnUnknown, Outcome, Proposed, Scope, SettleError, Store, Witness,
};
use pasarela_provider::ProviderError;
use tonic::Status;

use crate::bcs::client::{Bcs, Prepared, sequence_unavailable};
use crate::bcs::errors::{DOMAIN, SERVICE_DOMAIN, not_found_yet, still_unknown};
use crate::bcs::invoker::{ACTION_CREATE, ACTION_READ, bank_now};
use crate::bcs::wire;
use crate::config::{ConsultaBody, ProviderCode, Reconciliation, ReconciliationMode};
use crate::reconciler::{self, Reconciler};

/// Idempotency records of withdrawals. Whether the bank may have paid is the `Delivery`
/// each failure carries, set where the answer was read (`bcs::errors`).
const IDEMPOTENCY: Scope = Scope {
    keys: "pasarela:security:idempotency",
    domain: SERVICE_DOMAIN,
    provider: DOMAIN,
    provider_name: "Banco Caja Social",
};

/// The package operators name when they settle this service's keys.
const SERVICE: &str = "pasarela.security.v1";

/// Withdrawals at most once per key, with what they need while the service lives.
pub(crate) struct Withdrawals {
    bcs: Arc<Bcs>,
    idempotency: Idempotency,
    reconciliation: Reconciliation,
    /// How long after an attempt a consulta's "not found" is believed.
    quiet_period: Duration,
    /// Asks the bank about unknown withdrawals while the service lives, and before an
    /// operator's settlement of one is accepted.
    reconciler: Option<Arc<Reconciler>>,
}

/// One withdrawal as the bank is sent it: the create, and the consulta that asks what
/// became of it (its own body: [`wire::withdrawal_query`]).
struct Withdrawal {
    create: Prepared<wire::WithdrawalRequest>,
    consulta: Prepared<wire::WithdrawalRequest>,
}

impl Withdrawal {
    /// Both requests checked and built at once, before anything is claimed or sent: one
    /// moment of the bank's clock, the create with its key checked, the consulta with the
    /// body the settings give it.
    fn prepare(
        bcs: &Bcs,
        request: &WithdrawWithOtpRequest,
        call: &CallContext,
        consulta_body: ConsultaBody,
    ) -> Result<Self, Status> {
        let now = bank_now();
        let invoker = request.invoker.as_ref();
        let create = bcs.prepare(&wire::WITHDRAW_WITH_OTP, call, invoker, |_, v| {
            idempotency::check_key(v, &request.idempotency_key);
            wire::withdraw_with_otp(request, now, v)
        })?;
        let consulta = bcs.prepare(&wire::WITHDRAWAL_QUERY, call, invoker, |_, v| {
            wire::withdrawal_query(request, now, consulta_body, v)
        })?;
        Ok(Self { create, consulta })
    }
}

impl Withdrawals {
    /// Opens the withdrawals' records in `store` and starts their reconciler where the
    /// settings ask the bank on a schedule.
    pub(crate) fn open(
        settings: &idempotency::IdempotencyConfig,
        reconciliation: Reconciliation,
        store: Arc<dyn Store>,
        bcs: Arc<Bcs>,
        metrics: IdempotencyMetrics,
    ) -> anyhow::Result<Self> {
        let on_unknown = match reconciliation.mode {
            ReconciliationMode::Query => OnUnknown::Retry,
            ReconciliationMode::Hold => OnUnknown::Hold,
        };
        // A claim outlives its call before a repeat may take it over.
        let lease = settings.lease_or(bcs.ceiling())?;
        let quiet_period = reconciliation
            .quiet_period
            .unwrap_or(bcs.ceiling().saturating_mul(3));
        let idempotency = Idempotency::new(
            store,
            settings.seal()?,
            IDEMPOTENCY,
            settings.ttl,
            lease,
            on_unknown,
            metrics,
        )
        .with_max_open_per_caller(settings.max_open_per_caller);
        let reconciler = reconciler_of(&reconciliation, &idempotency, &bcs);
        if let Some(reconciler) = reconciler.as_ref().filter(|r| !r.every.is_zero()) {
            reconciler::spawn(Arc::downgrade(reconciler), reconciler.every);
        }
        Ok(Self {
            bcs,
            idempotency,
            reconciliation,
            quiet_period,
            reconciler,
        })
    }

    /// The withdrawals' records, for the operators' reconciliation API: where the bank can
    /// be asked, it is asked before a settlement is accepted.
    pub(crate) fn ledger(&self) -> Ledger {
        let ledger = ledger_of(&self.idempotency);
        match &self.reconciler {
            Some(reconciler) => ledger.with_witness(Arc::clone(reconciler) as Arc<dyn Witness>),
            None => ledger,
        }
    }

    /// S18 at most once per idempotency key: validated first, then claimed (a new key
    /// reserves its TxId from the shared sequence then, and only then), then sent with the
    /// key's TxId.
    pub(crate) async fn withdraw(
        &self,
        request: WithdrawWithOtpRequest,
        call: CallContext,
        caller: String,
    ) -> Result<WithdrawWithOtpResponse, Status> {
        let op = &wire::WITHDRAW_WITH_OTP;
        // S18 names its customer by number only.
        let document = Document {
            kind: None,
            number: &request.customer_document_number,
        };
        check_end_user(call.principal.as_ref(), document)?;
        let deadline = self.bcs.deadline(&call);
        let withdrawal = Withdrawal::prepare(
            &self.bcs,
            &request,
            &call,
            self.reconciliation.consulta_body,
        )?;
        let unkeyed = WithdrawWithOtpRequest {
            idempotency_key: String::new(),
            ..request.clone()
        };
        let reserve = || -> BoxFuture<'_, Result<String, Status>> {
            Box::pin(async {
                self.bcs
                    .reserve_withdrawal_tx_id()
                    .await
                    .map_err(|error| sequence_unavailable(error, self.idempotency.metrics()))
            })
        };
        let former = call.principal.as_ref().map(Principal::person);
        let claim = Claim {
            operation: op.name,
            caller: &caller,
            key: &request.idempotency_key,
            fingerprint: self.idempotency.fingerprint(op.name, &unkeyed),
            transaction_id: Proposed::Reserve(&reserve),
            deadline,
            context: Some(consulta_context(&request)),
            former_caller: former.as_deref(),
        };
        self.idempotency
            .once(claim, |attempt| {
                self.withdraw_once(withdrawal, attempt, deadline)
            })
            .await
    }

    /// One attempt of S18 under its key's TxId. After an unknown outcome the bank is asked
    /// first (`Action: R`): only a documented "no such withdrawal" lets the create go.
    async fn withdraw_once(
        &self,
        withdrawal: Withdrawal,
        attempt: Attempt,
        deadline: Instant,
    ) -> Result<WithdrawWithOtpResponse, ProviderError> {
        let op = &wire::WITHDRAW_WITH_OTP;
        let tx_id = attempt.transaction_id;
        let mut sent = withdrawal.create.with_tx_id(tx_id.clone());
        sent.set_action(ACTION_CREATE);
        if attempt.after_unknown {
            let mut consulta = withdrawal.consulta.with_tx_id(tx_id.clone());
            consulta.set_action(ACTION_READ);
            let consulted = self
                .bcs
                .send(&wire::WITHDRAWAL_QUERY, &consulta, deadline)
                .await;
            match consulted {
                Ok(answer) => return self.read_withdrawal(answer, tx_id),
                Err(error) if !bank_has_none(&self.reconciliation.not_found, &error) => {
                    return Err(still_unknown(error));
                }
                Err(_) => {
                    if let Some(wait) = self.still_quiet(attempt.unknown_since) {
                        return Err(not_found_yet(wait));
                    }
                    tracing::info!(
                        tx_id = %tx_id,
                        "the bank has no withdrawal under the TxId of an unknown outcome: sending it"
                    );
                }
            }
        }
        let answer = self.bcs.send(op, &sent, deadline).await?;
        self.read_withdrawal(answer, tx_id)
    }

    fn read_withdrawal(
        &self,
        answer: wire::WithdrawalAnswer,
        tx_id: String,
    ) -> Result<WithdrawWithOtpResponse, ProviderError> {
        crate::bcs::client::readable(&wire::WITHDRAW_WITH_OTP, answer.into_response(tx_id))
    }

    /// How much of the quiet period after `since` is left: a bank may still be executing
    /// the attempt pasarela gave up on, and would then pay twice.
    fn still_quiet(&self, since: Option<SystemTime>) -> Option<Duration> {
        let elapsed = since?.elapsed().unwrap_or_default();
        let left = self.quiet_period.saturating_sub(elapsed);
        (!left.is_zero()).then_some(left)
    }
}

/// Whether a consulta's refusal is one of `not_found`, the answers the configuration says
/// mean "no withdrawal".
pub(crate) fn bank_has_none(not_found: &[ProviderCode], error: &ProviderError) -> bool {
    let Some(answered) = &error.details.answered else {
        return false;
    };
    not_found.iter().any(|row| {
        answered.http == row.http && answered.code == row.code && answered.kind == row.kind
    })
}

fn ledger_of(idempotency: &Idempotency) -> Ledger {
    Ledger::new(
        SERVICE,
        &[wire::WITHDRAW_WITH_OTP.name],
        idempotency.clone(),
        settled,
    )
}

/// The reconciler the settings ask for: one that asks the bank (`mode = "query"`) with
/// consultas that need no customer code (the code is never kept, so `consulta_body =
/// "create"` leaves keys to their callers' retries and operators); it runs on a schedule
/// when `every` is above zero, and is asked before operators' settlements either way.
fn reconciler_of(
    settings: &Reconciliation,
    idempotency: &Idempotency,
    bcs: &Arc<Bcs>,
) -> Option<Arc<Reconciler>> {
    let asks = settings.mode == ReconciliationMode::Query
        && settings.consulta_body == ConsultaBody::Identifying;
    asks.then(|| {
        Arc::new(Reconciler {
            ledger: ledger_of(idempotency),
            bcs: Arc::clone(bcs),
            every: settings.every,
            holder: uuid::Uuid::new_v4().to_string(),
            not_found: settings.not_found.clone(),
        })
    })
}

/// What a consulta of this withdrawal needs later, kept in its sealed record: the request
/// without its key and without the customer's code.
fn consulta_context(request: &WithdrawWithOtpRequest) -> String {
    let identifying = WithdrawWithOtpRequest {
        idempotency_key: String::new(),
        otp: String::new(),
        ..request.clone()
    };
    hex::encode(prost::Message::encode_to_vec(&identifying))
}

/// The answer an operator's settlement replays: the approval they read in the bank's
/// records, under the key's TxId (the account is not known to pasarela then).
fn settled(
    operation: &str,
    transaction_id: &str,
    approval: &Approval,
) -> Result<Outcome, SettleError> {
    if operation != wire::WITHDRAW_WITH_OTP.name {
        return Err(SettleError::NotFound(operation.to_owned()));
    }
    Ok(Outcome::of(&Ok(WithdrawWithOtpResponse {
        approval_id: approval.number("withdrawal")?,
        tx_id: transaction_id.to_owned(),
        ..WithdrawWithOtpResponse::default()
    })))
}
