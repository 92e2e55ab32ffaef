//! The gRPC handlers of `SecurityService`: each names its operation, lets the wire module
//! translate and check the request, and turns the bank's answer into the proto response;
//! withdrawals run once per idempotency key.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pasarela::common::v1::InvokerContext;
use pasarela::security::v1::security_service_server::SecurityService;
use pasarela::security::v1::*;
use pasarela_auth::Principal;
use pasarela_provider::idempotency::{
    self, Approval, Attempt, Claim, Idempotency, Ledger, OnUnknown, Outcome, Scope, SettleError,
    detached, fingerprint,
};
use pasarela_provider::{ProviderError, Violations, reasons};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::Config;
use crate::bcs::client::{self, Bcs, Op, Prepared};
use crate::bcs::errors::{
    DOMAIN, SERVICE_DOMAIN, not_found_yet, still_unknown, unknown_if_ambiguous,
};
use crate::bcs::invoker::{ACTION_CREATE, ACTION_READ, bank_now};
use crate::bcs::wire::{self, Outgoing, Unreadable};
use crate::config::{InvokerFields, ProviderCode, Reconciliation, ReconciliationMode};

/// Idempotency records of withdrawals. Every answer after which the bank may have paid is
/// `PROVIDER_OUTCOME_UNKNOWN` (see [`unknown_if_ambiguous`]), so the `not_sent` reasons
/// only arise when the request never reached the bank or the gateway refused it unread.
const IDEMPOTENCY: Scope = Scope {
    keys: "pasarela:security:idempotency",
    domain: SERVICE_DOMAIN,
    provider: DOMAIN,
    provider_name: "Banco Caja Social",
    not_sent: &[
        reasons::CIRCUIT_OPEN,
        reasons::PROVIDER_UNAVAILABLE,
        reasons::PROVIDER_AUTH_FAILED,
        "PROVIDER_FORBIDDEN",
        "PROVIDER_RATE_LIMITED",
    ],
};

/// `SecurityService` in front of Banco Caja Social; cheap to clone.
#[derive(Clone)]
pub struct Security {
    core: Arc<Core>,
}

struct Core {
    bcs: Bcs,
    idempotency: Idempotency,
    reconciliation: Reconciliation,
    /// How long after an attempt a consulta's "not found" is believed.
    quiet_period: Duration,
}

/// The package operators name when they settle this service's keys.
const SERVICE: &str = "pasarela.security.v1";

impl Security {
    /// Builds the bank's client and opens the idempotency store (connects Redis now).
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let store = idempotency::open_store(&config.idempotency).await?;
        let ttl = config.idempotency.ttl;
        let reconciliation = config.withdrawal_reconciliation.clone();
        let on_unknown = match reconciliation.mode {
            ReconciliationMode::Query => OnUnknown::Retry,
            ReconciliationMode::Hold => OnUnknown::Hold,
        };
        let idempotency_config = config.idempotency.clone();
        let bcs = Bcs::new(config, Arc::clone(&store))?;
        // A claim outlives its call before a repeat may take it over.
        let lease = idempotency_config.lease_or(bcs.ceiling())?;
        let quiet_period = reconciliation.quiet_period.unwrap_or(bcs.ceiling() * 3);
        Ok(Self {
            core: Arc::new(Core {
                idempotency: Idempotency::new(store, IDEMPOTENCY, ttl, lease, on_unknown),
                bcs,
                reconciliation,
                quiet_period,
            }),
        })
    }

    /// The service's idempotency records, for the operators' reconciliation API.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(
            SERVICE,
            &[client::WITHDRAW_WITH_OTP.name],
            self.core.idempotency.clone(),
            settled,
        )
    }

    /// Runs `op` and converts its answer `W` into the proto response `P`.
    async fn call<B, W, P>(
        &self,
        op: &Op,
        metadata: &MetadataMap,
        invoker: Option<&InvokerContext>,
        build: impl FnOnce(&InvokerFields, &mut Violations) -> Outgoing<B>,
    ) -> Result<Response<P>, Status>
    where
        B: Serialize,
        W: DeserializeOwned,
        P: TryFrom<W, Error = Unreadable>,
    {
        let answer = self
            .core
            .bcs
            .run::<B, W>(op, metadata, invoker, build)
            .await?;
        Ok(Response::new(client::readable(op, P::try_from(answer))?))
    }
}

/// Whose key space a withdrawal uses: the principal the auth layer put in the request, or
/// one shared space when the service runs without the layer.
fn caller_of<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "anonymous".to_owned(), Principal::key)
}

impl Core {
    /// S18 at most once per idempotency key: validated first, then claimed, then sent
    /// with the key's TxId.
    async fn withdraw(
        &self,
        request: WithdrawWithOtpRequest,
        metadata: MetadataMap,
        caller: String,
    ) -> Result<WithdrawWithOtpResponse, Status> {
        let op = &client::WITHDRAW_WITH_OTP;
        let deadline = self.bcs.deadline(&metadata);
        let prepared = self
            .bcs
            .prepare(op, &metadata, request.invoker.as_ref(), |_, v| {
                idempotency::check_key(v, &request.idempotency_key);
                wire::withdraw_with_otp(&request, bank_now(), v)
            })
            .await?;
        let unkeyed = WithdrawWithOtpRequest {
            idempotency_key: String::new(),
            ..request.clone()
        };
        let claim = Claim {
            operation: op.name,
            caller: &caller,
            key: &request.idempotency_key,
            fingerprint: fingerprint(op.name, &unkeyed),
            transaction_id: prepared.tx_id().to_owned(),
            deadline,
        };
        self.idempotency
            .once(claim, |attempt| {
                self.withdraw_once(prepared, attempt, deadline)
            })
            .await
    }

    /// One attempt of S18 under its key's TxId. After an unknown outcome the bank is asked
    /// first (`Action: R`): only a documented "no such withdrawal" lets the create go.
    async fn withdraw_once(
        &self,
        prepared: Prepared<wire::WithdrawalRequest>,
        attempt: Attempt,
        deadline: std::time::Instant,
    ) -> Result<WithdrawWithOtpResponse, ProviderError> {
        let op = &client::WITHDRAW_WITH_OTP;
        let tx_id = attempt.transaction_id;
        let mut sent = prepared.with_tx_id(tx_id.clone());
        if attempt.after_unknown {
            sent.set_action(ACTION_READ);
            let consulted = self
                .bcs
                .send(&client::WITHDRAWAL_QUERY, &sent, deadline)
                .await;
            sent.set_action(ACTION_CREATE);
            match consulted {
                Ok(answer) => return self.read_withdrawal(answer, tx_id),
                Err(error) if !self.bank_has_none(&error) => return Err(still_unknown(error)),
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
        let answer = self
            .bcs
            .send(op, &sent, deadline)
            .await
            .map_err(unknown_if_ambiguous)?;
        self.read_withdrawal(answer, tx_id)
    }

    fn read_withdrawal(
        &self,
        answer: wire::WithdrawalAnswer,
        tx_id: String,
    ) -> Result<WithdrawWithOtpResponse, ProviderError> {
        client::readable(&client::WITHDRAW_WITH_OTP, answer.into_response(tx_id))
            .map_err(unknown_if_ambiguous)
    }

    /// How much of the quiet period after `since` is left: a bank may still be executing
    /// the attempt pasarela gave up on, and would then pay twice.
    fn still_quiet(&self, since: Option<SystemTime>) -> Option<Duration> {
        let elapsed = since?.elapsed().unwrap_or_default();
        let left = self.quiet_period.saturating_sub(elapsed);
        (!left.is_zero()).then_some(left)
    }

    /// Whether a consulta's refusal is one the configuration says means "no withdrawal".
    fn bank_has_none(&self, error: &ProviderError) -> bool {
        let meta = &error.details.metadata;
        let field = |name: &str| meta.get(name).map(String::as_str).unwrap_or_default();
        self.reconciliation
            .not_found
            .iter()
            .any(|row: &ProviderCode| {
                field("http_status") == row.http.to_string()
                    && field("provider_code") == row.code
                    && field("provider_type") == row.kind
            })
    }
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
    if approval.approval_number.is_empty() {
        return Err(SettleError::Invalid {
            field: "approval_number",
            description: "is required to settle a withdrawal as succeeded".into(),
        });
    }
    Ok(Outcome::of(&Ok(WithdrawWithOtpResponse {
        approval_id: approval.approval_number.clone(),
        tx_id: transaction_id.to_owned(),
        ..WithdrawWithOtpResponse::default()
    })))
}

/// Implements the service: the RPCs written out in `rest`, then those that are one
/// operation each (the request built by the wire module, the answer `W` read into the
/// response by `TryFrom<W>`).
macro_rules! security_service {
    (
        rest { $($rest:tt)* }
        $($method:ident($request:ident) -> $response:ident
            = $op:ident as $answer:ty, |$r:ident, $fields:pat_param, $v:ident| $build:expr;)*
    ) => {
        #[tonic::async_trait]
        impl SecurityService for Security {
            $(
                async fn $method(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$response>, Status> {
                    let (metadata, _, $r) = request.into_parts();
                    let invoker = $r.invoker.as_ref();
                    self.call::<_, $answer, _>(&client::$op, &metadata, invoker, |$fields, $v| {
                        $build
                    })
                    .await
                }
            )*
            $($rest)*
        }
    };
}

security_service! {
    rest {
        /// The page asked for shapes the response (its number and size).
        async fn list_channel_holds(
            &self,
            request: Request<ListChannelHoldsRequest>,
        ) -> Result<Response<ListChannelHoldsResponse>, Status> {
            let (metadata, _, request) = request.into_parts();
            let op = &client::LIST_CHANNEL_HOLDS;
            let (number, size) = wire::page(&mut Violations::new(), request.page.as_ref());
            let answer: wire::HoldsAnswer = self
                .core
                .bcs
                .run(op, &metadata, request.invoker.as_ref(), |_, v| {
                    wire::list_channel_holds(&request, v)
                })
                .await?;
            Ok(Response::new(client::readable(
                op,
                answer.into_response(number, size),
            )?))
        }

        /// Runs on its own task: a caller hanging up must not abandon a withdrawal between
        /// the bank's answer and its idempotency record.
        async fn withdraw_with_otp(
            &self,
            request: Request<WithdrawWithOtpRequest>,
        ) -> Result<Response<WithdrawWithOtpResponse>, Status> {
            let caller = caller_of(&request);
            let (metadata, _, request) = request.into_parts();
            let core = Arc::clone(&self.core);
            detached(async move { core.withdraw(request, metadata, caller).await })
                .await
                .map(Response::new)
        }
    }

    get_password_status(GetPasswordStatusRequest) -> GetPasswordStatusResponse
        = PASSWORD_STATUS as wire::PasswordStatusAnswer,
        |r, _, v| wire::get_password_status(&r, v);
    generate_otc(GenerateOtcRequest) -> GenerateOtcResponse
        = GENERATE_OTC as wire::Empty,
        |r, _, v| wire::generate_otc_v1(&r, v);
    generate_otc_v3(GenerateOtcV3Request) -> GenerateOtcV3Response
        = GENERATE_OTC_V3 as wire::Empty,
        |r, _, v| wire::generate_otc_v3(&r, v);
    validate_otc(ValidateOtcRequest) -> ValidateOtcResponse
        = VALIDATE_OTC as wire::Empty,
        |r, _, v| wire::validate_otc(&r, v);
    create_transaction_challenge(CreateTransactionChallengeRequest)
        -> CreateTransactionChallengeResponse
        = TRANSACTION_CHALLENGE as wire::ChallengeAnswer,
        |r, _, v| wire::create_transaction_challenge(&r, v);
    enroll_digital_user(EnrollDigitalUserRequest) -> EnrollDigitalUserResponse
        = ENROLL_DIGITAL_USER as wire::Empty,
        |r, _, v| wire::enroll_digital_user(&r, v);
    validate_digital_enrollment(ValidateDigitalEnrollmentRequest)
        -> ValidateDigitalEnrollmentResponse
        = VALIDATE_DIGITAL_ENROLLMENT as wire::Empty,
        |r, _, v| wire::validate_digital_enrollment(&r, v);
    change_password(ChangePasswordRequest) -> ChangePasswordResponse
        = CHANGE_PASSWORD as wire::Empty,
        |r, _, v| wire::change_password(&r, v);
    create_user(CreateUserRequest) -> CreateUserResponse
        = CREATE_USER as wire::Empty,
        |r, _, v| wire::create_user(&r, v);
    validate_enrollment_card(ValidateEnrollmentCardRequest) -> ValidateEnrollmentCardResponse
        = VALIDATE_ENROLLMENT_CARD as wire::Empty,
        |r, _, v| wire::validate_enrollment_card(&r, v);
    validate_password_recovery(ValidatePasswordRecoveryRequest)
        -> ValidatePasswordRecoveryResponse
        = VALIDATE_PASSWORD_RECOVERY as wire::Empty,
        |r, _, v| wire::validate_password_recovery(&r, v);
    request_withdrawal_otp(RequestWithdrawalOtpRequest) -> RequestWithdrawalOtpResponse
        = REQUEST_WITHDRAWAL_OTP as wire::WithdrawalOtpAnswer,
        |r, _, v| wire::request_withdrawal_otp(&r, v);
    update_password_status(UpdatePasswordStatusRequest) -> UpdatePasswordStatusResponse
        = UPDATE_PASSWORD_STATUS as wire::PasswordStatusChange,
        |r, _, v| wire::update_password_status(&r, v);
    set_channel_hold(SetChannelHoldRequest) -> SetChannelHoldResponse
        = SET_CHANNEL_HOLD as wire::Empty,
        |r, fields, v| wire::set_channel_hold(
            &r,
            wire::Audit { user: &fields.user, branch_id: &fields.branch_id },
            v,
        );
    get_authentication_level(GetAuthenticationLevelRequest) -> GetAuthenticationLevelResponse
        = AUTHENTICATION_LEVEL as wire::AuthLevelAnswer,
        |r, _, v| wire::get_authentication_level(&r, bank_now(), v);
    authenticate_channel(AuthenticateChannelRequest) -> AuthenticateChannelResponse
        = AUTHENTICATE_CHANNEL as wire::AuthChannelAnswer,
        |r, _, v| wire::authenticate_channel(&r, v);
    create_question_challenge(CreateQuestionChallengeRequest)
        -> CreateQuestionChallengeResponse
        = QUESTION_CHALLENGE as wire::ChallengeAnswer,
        |r, _, v| wire::create_question_challenge(&r, v);
}
