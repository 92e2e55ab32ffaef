//! The gRPC handlers of `SecurityService`: each RPC runs its request as an `Operation`
//! (`bcs::operation`), checked, counted where it checks a secret, sent and read the same
//! way; withdrawals, written out, run once per idempotency key.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use pasarela::common::v1::Identification;
use pasarela::security::v1::security_service_server::SecurityService;
use pasarela::security::v1::*;
use pasarela_auth::{CallContext, Document, Principal, SecretAttempts, Trespass, check_end_user};
use pasarela_idempotency::{
    self as idempotency, Approval, Attempt, Claim, Idempotency, IdempotencyMetrics, Ledger,
    OnUnknown, Outcome, Proposed, Scope, SettleError, Witness, detached,
};
use pasarela_provider::{ProviderError, Violations};
use tonic::{Request, Response, Status};

use crate::Config;
use crate::bcs::client::{self, Bcs, Prepared, sequence_unavailable};
use crate::bcs::errors::{DOMAIN, SERVICE_DOMAIN, not_found_yet, still_unknown};
use crate::bcs::fields;
use crate::bcs::invoker::{ACTION_CREATE, ACTION_READ, bank_now};
use crate::bcs::operation::{Operation, Readings};
use crate::bcs::wire;
use crate::config::{
    ConsultaBody, InvokerFields, OtcShape, ProviderCode, Reconciliation, ReconciliationMode,
};
use crate::reconciler::{self, Reconciler};

/// Idempotency records of withdrawals. Whether the bank may have paid is the `Delivery`
/// each failure carries, set where the answer was read (`bcs::errors`).
const IDEMPOTENCY: Scope = Scope {
    keys: "pasarela:security:idempotency",
    domain: SERVICE_DOMAIN,
    provider: DOMAIN,
    provider_name: "Banco Caja Social",
};

/// `SecurityService` in front of Banco Caja Social; cheap to clone.
#[derive(Clone)]
pub struct Security {
    core: Arc<Core>,
}

struct Core {
    bcs: Arc<Bcs>,
    /// Budgets of the customers whose secrets the bank checks, across every caller.
    attempts: SecretAttempts,
    idempotency: Idempotency,
    reconciliation: Reconciliation,
    /// How long after an attempt a consulta's "not found" is believed.
    quiet_period: Duration,
    /// How the bank reads what its spec leaves open.
    readings: Readings,
    /// Asks the bank about unknown withdrawals while the service lives, and before an
    /// operator's settlement of one is accepted.
    reconciler: Option<Arc<Reconciler>>,
}

/// A request's customer as the end-user binding reads it; none is no one's.
fn document_of(customer: Option<&Identification>) -> Document<'_> {
    Document {
        kind: customer.map(Identification::kind),
        number: customer.map_or("", |customer| customer.number.as_str()),
    }
}

/// Whose secrets these are: the bank's customers, in the holders' budgets.
const HOLDERS: &str = "bcs-customer";

/// The package operators name when they settle this service's keys.
const SERVICE: &str = "pasarela.security.v1";

impl Security {
    /// Builds the bank's client and opens the idempotency store (connects the ledger now);
    /// `attempts` counts the checks of each customer's secrets.
    pub async fn new(
        config: Config,
        attempts: SecretAttempts,
        metrics: IdempotencyMetrics,
    ) -> anyhow::Result<Self> {
        let store = idempotency::open_store(&config.idempotency).await?;
        let seal = config.idempotency.seal()?;
        let ttl = config.idempotency.ttl;
        let max_open_per_caller = config.idempotency.max_open_per_caller;
        let reconciliation = config.withdrawal_reconciliation.clone();
        let on_unknown = match reconciliation.mode {
            ReconciliationMode::Query => OnUnknown::Retry,
            ReconciliationMode::Hold => OnUnknown::Hold,
        };
        let idempotency_config = config.idempotency.clone();
        let readings = Readings {
            otc_shape: OtcShape {
                contact_info: config.otc_contact_info,
                code_field: config.otc_code_field,
            },
            password_status_values: config.password_status_values,
            holds_query: (config.holds_query, config.holds_record_base),
        };
        let bcs = Arc::new(Bcs::new(config, Arc::clone(&store))?);
        // A claim outlives its call before a repeat may take it over.
        let lease = idempotency_config.lease_or(bcs.ceiling())?;
        let quiet_period = reconciliation.quiet_period.unwrap_or(bcs.ceiling() * 3);
        let idempotency =
            Idempotency::new(store, seal, IDEMPOTENCY, ttl, lease, on_unknown, metrics)
                .with_max_open_per_caller(max_open_per_caller);
        let reconciler = reconciler_of(&reconciliation, &idempotency, &bcs);
        if let Some(reconciler) = reconciler.as_ref().filter(|r| !r.every.is_zero()) {
            reconciler::spawn(Arc::downgrade(reconciler), reconciler.every);
        }
        Ok(Self {
            core: Arc::new(Core {
                idempotency,
                bcs,
                attempts,
                reconciliation,
                quiet_period,
                readings,
                reconciler,
            }),
        })
    }

    /// The service's idempotency records, for the operators' reconciliation API.
    pub fn ledger(&self) -> Ledger {
        let ledger = ledger_of(&self.core.idempotency);
        // Where the bank can be asked, it is asked before a settlement is accepted.
        match &self.core.reconciler {
            Some(reconciler) => ledger.with_witness(Arc::clone(reconciler) as Arc<dyn Witness>),
            None => ledger,
        }
    }

    /// Runs one operation: its customer checked against a tenant's end-user binding, a
    /// request that checks a secret counted against the customer's budget (past it the
    /// bank is not asked), the bank's request built and checked, the answer read.
    async fn run<Q: Operation>(
        &self,
        request: Request<Q>,
    ) -> Result<Response<Q::Response>, Status> {
        let call = CallContext::of(&request);
        self.run_with(&call, request.into_inner()).await
    }

    async fn run_with<Q: Operation>(
        &self,
        call: &CallContext,
        request: Q,
    ) -> Result<Response<Q::Response>, Status> {
        let customer = request.customer();
        check_end_user(call.principal.as_ref(), document_of(customer))?;
        let holder = customer
            .filter(|_| request.checks_secret())
            .map(|customer| fields::holder_key(customer.r#type, &customer.number));
        let admit = async {
            match &holder {
                Some(holder) => self.core.attempts.check(HOLDERS, holder).await,
                None => Ok(()),
            }
        };
        let readings = &self.core.readings;
        let build = |fields: &InvokerFields, v: &mut Violations| request.build(fields, readings, v);
        self.core
            .bcs
            .run_admitted(Q::OP, call, request.invoker(), build, admit, |answer| {
                request.read(answer)
            })
            .await
            .map(Response::new)
    }

    /// S15's auditing user and branch are the caller's identity's: another is refused.
    fn check_own_identity(
        &self,
        call: &CallContext,
        request: &SetChannelHoldRequest,
    ) -> Result<(), Status> {
        let own = self
            .core
            .bcs
            .identity_of(&client::SET_CHANNEL_HOLD, call.principal.as_ref());
        let chosen: Vec<&str> = [
            ("user", &request.user, &own.user),
            ("branch_id", &request.branch_id, &own.branch_id),
        ]
        .into_iter()
        .filter(|(_, asked, own)| !asked.trim().is_empty() && asked.trim() != own.as_str())
        .map(|(field, _, _)| field)
        .collect();
        if chosen.is_empty() {
            return Ok(());
        }
        let fields = chosen.join(",");
        let principal = call.principal.as_ref();
        Err(Trespass::BankIdentity.refuse(principal, &[("fields", &fields)]))
    }
}

impl Core {
    /// S18 at most once per idempotency key: validated first, then claimed (a new key
    /// reserves its TxId from the shared sequence then, and only then), then sent with the
    /// key's TxId.
    async fn withdraw(
        &self,
        request: WithdrawWithOtpRequest,
        call: CallContext,
        caller: String,
    ) -> Result<WithdrawWithOtpResponse, Status> {
        let op = &client::WITHDRAW_WITH_OTP;
        // S18 names its customer by number only.
        let document = Document {
            kind: None,
            number: &request.customer_document_number,
        };
        check_end_user(call.principal.as_ref(), document)?;
        let deadline = self.bcs.deadline(&call);
        let now = bank_now();
        let create = self
            .bcs
            .prepare(op, &call, request.invoker.as_ref(), |_, v| {
                idempotency::check_key(v, &request.idempotency_key);
                wire::withdraw_with_otp(&request, now, v)
            })?;
        let body = self.reconciliation.consulta_body;
        let consulta = self.bcs.prepare(
            &client::WITHDRAWAL_QUERY,
            &call,
            request.invoker.as_ref(),
            |_, v| wire::withdrawal_query(&request, now, body, v),
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
                self.withdraw_once(Withdrawal { create, consulta }, attempt, deadline)
            })
            .await
    }

    /// One attempt of S18 under its key's TxId. After an unknown outcome the bank is asked
    /// first (`Action: R`): only a documented "no such withdrawal" lets the create go.
    async fn withdraw_once(
        &self,
        withdrawal: Withdrawal,
        attempt: Attempt,
        deadline: std::time::Instant,
    ) -> Result<WithdrawWithOtpResponse, ProviderError> {
        let op = &client::WITHDRAW_WITH_OTP;
        let tx_id = attempt.transaction_id;
        let mut sent = withdrawal.create.with_tx_id(tx_id.clone());
        sent.set_action(ACTION_CREATE);
        if attempt.after_unknown {
            let mut consulta = withdrawal.consulta.with_tx_id(tx_id.clone());
            consulta.set_action(ACTION_READ);
            let consulted = self
                .bcs
                .send(&client::WITHDRAWAL_QUERY, &consulta, deadline)
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
        client::readable(&client::WITHDRAW_WITH_OTP, answer.into_response(tx_id))
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
        &[client::WITHDRAW_WITH_OTP.name],
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

/// One withdrawal as the bank is sent it: the create, and the consulta that asks what
/// became of it (its own body: [`wire::withdrawal_query`]).
struct Withdrawal {
    create: Prepared<wire::WithdrawalRequest>,
    consulta: Prepared<wire::WithdrawalRequest>,
}

/// The answer an operator's settlement replays: the approval they read in the bank's
/// records, under the key's TxId (the account is not known to pasarela then).
fn settled(
    operation: &str,
    transaction_id: &str,
    approval: &Approval,
) -> Result<Outcome, SettleError> {
    if operation != client::WITHDRAW_WITH_OTP.name {
        return Err(SettleError::NotFound(operation.to_owned()));
    }
    Ok(Outcome::of(&Ok(WithdrawWithOtpResponse {
        approval_id: approval.number("withdrawal")?,
        tx_id: transaction_id.to_owned(),
        ..WithdrawWithOtpResponse::default()
    })))
}

/// `SecurityService`: each RPC is its request run as an [`Operation`] (the impls sit beside
/// their wire sections, `bcs::wire`); S15 checks the caller's bank identity first, and S18
/// moves money once per key.
#[tonic::async_trait]
impl SecurityService for Security {
    async fn get_password_status(
        &self,
        request: Request<GetPasswordStatusRequest>,
    ) -> Result<Response<GetPasswordStatusResponse>, Status> {
        self.run(request).await
    }

    async fn generate_otc(
        &self,
        request: Request<GenerateOtcRequest>,
    ) -> Result<Response<GenerateOtcResponse>, Status> {
        self.run(request).await
    }

    async fn generate_otc_v3(
        &self,
        request: Request<GenerateOtcV3Request>,
    ) -> Result<Response<GenerateOtcV3Response>, Status> {
        self.run(request).await
    }

    async fn validate_otc(
        &self,
        request: Request<ValidateOtcRequest>,
    ) -> Result<Response<ValidateOtcResponse>, Status> {
        self.run(request).await
    }

    async fn create_transaction_challenge(
        &self,
        request: Request<CreateTransactionChallengeRequest>,
    ) -> Result<Response<CreateTransactionChallengeResponse>, Status> {
        self.run(request).await
    }

    async fn enroll_digital_user(
        &self,
        request: Request<EnrollDigitalUserRequest>,
    ) -> Result<Response<EnrollDigitalUserResponse>, Status> {
        self.run(request).await
    }

    async fn validate_digital_enrollment(
        &self,
        request: Request<ValidateDigitalEnrollmentRequest>,
    ) -> Result<Response<ValidateDigitalEnrollmentResponse>, Status> {
        self.run(request).await
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        self.run(request).await
    }

    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        self.run(request).await
    }

    async fn validate_enrollment_card(
        &self,
        request: Request<ValidateEnrollmentCardRequest>,
    ) -> Result<Response<ValidateEnrollmentCardResponse>, Status> {
        self.run(request).await
    }

    async fn validate_password_recovery(
        &self,
        request: Request<ValidatePasswordRecoveryRequest>,
    ) -> Result<Response<ValidatePasswordRecoveryResponse>, Status> {
        self.run(request).await
    }

    async fn request_withdrawal_otp(
        &self,
        request: Request<RequestWithdrawalOtpRequest>,
    ) -> Result<Response<RequestWithdrawalOtpResponse>, Status> {
        self.run(request).await
    }

    async fn update_password_status(
        &self,
        request: Request<UpdatePasswordStatusRequest>,
    ) -> Result<Response<UpdatePasswordStatusResponse>, Status> {
        self.run(request).await
    }

    async fn get_authentication_level(
        &self,
        request: Request<GetAuthenticationLevelRequest>,
    ) -> Result<Response<GetAuthenticationLevelResponse>, Status> {
        self.run(request).await
    }

    async fn authenticate_channel(
        &self,
        request: Request<AuthenticateChannelRequest>,
    ) -> Result<Response<AuthenticateChannelResponse>, Status> {
        self.run(request).await
    }

    async fn create_question_challenge(
        &self,
        request: Request<CreateQuestionChallengeRequest>,
    ) -> Result<Response<CreateQuestionChallengeResponse>, Status> {
        self.run(request).await
    }

    async fn list_channel_holds(
        &self,
        request: Request<ListChannelHoldsRequest>,
    ) -> Result<Response<ListChannelHoldsResponse>, Status> {
        self.run(request).await
    }

    async fn set_channel_hold(
        &self,
        request: Request<SetChannelHoldRequest>,
    ) -> Result<Response<SetChannelHoldResponse>, Status> {
        let call = CallContext::of(&request);
        let request = request.into_inner();
        self.check_own_identity(&call, &request)?;
        self.run_with(&call, request).await
    }

    /// Runs on its own task: a caller hanging up must not abandon a withdrawal between
    /// the bank's answer and its idempotency record.
    async fn withdraw_with_otp(
        &self,
        request: Request<WithdrawWithOtpRequest>,
    ) -> Result<Response<WithdrawWithOtpResponse>, Status> {
        let caller = Principal::key_of(&request);
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let core = Arc::clone(&self.core);
        detached(async move { core.withdraw(request, call, caller).await })
            .await
            .map(Response::new)
    }
}
