//! The gRPC handlers of `SecurityService`: each RPC runs its request as an `Operation`
//! (`bcs::operation`), checked, counted where it checks a secret, sent and read the same
//! way; withdrawals run once per idempotency key (`withdrawal`).

use std::sync::Arc;

use pasarela::common::v1::Identification;
use pasarela::security::v1::security_service_server::SecurityService;
use pasarela::security::v1::*;
use pasarela_auth::{CallContext, Document, Principal, SecretAttempts, Trespass, check_end_user};
use pasarela_idempotency::{self as idempotency, IdempotencyMetrics, Ledger, detached};
use pasarela_provider::Violations;
use tonic::{Request, Response, Status};

use crate::Config;
use crate::bcs::client::Bcs;
use crate::bcs::fields;
use crate::bcs::operation::{Operation, Readings};
use crate::config::{InvokerFields, OtcShape};
use crate::withdrawal::Withdrawals;

/// `SecurityService` in front of Banco Caja Social; cheap to clone.
#[derive(Clone)]
pub struct Security {
    core: Arc<Core>,
}

struct Core {
    bcs: Arc<Bcs>,
    /// Budgets of the customers whose secrets the bank checks, across every caller.
    attempts: SecretAttempts,
    /// How the bank reads what its spec leaves open.
    readings: Readings,
    withdrawals: Withdrawals,
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

impl Security {
    /// Builds the bank's client and opens the idempotency store (connects the ledger now);
    /// `attempts` counts the checks of each customer's secrets.
    pub async fn new(
        config: Config,
        attempts: SecretAttempts,
        metrics: IdempotencyMetrics,
    ) -> anyhow::Result<Self> {
        let store = idempotency::open_store(&config.idempotency).await?;
        let settings = config.idempotency.clone();
        let reconciliation = config.withdrawal_reconciliation.clone();
        let readings = Readings {
            otc_shape: OtcShape {
                contact_info: config.otc_contact_info,
                code_field: config.otc_code_field,
            },
            password_status_values: config.password_status_values,
            holds_query: (config.holds_query, config.holds_record_base),
        };
        let bcs = Arc::new(Bcs::new(config, Arc::clone(&store))?);
        let withdrawals =
            Withdrawals::open(&settings, reconciliation, store, Arc::clone(&bcs), metrics)?;
        Ok(Self {
            core: Arc::new(Core {
                bcs,
                attempts,
                readings,
                withdrawals,
            }),
        })
    }

    /// The service's idempotency records, for the operators' reconciliation API.
    pub fn ledger(&self) -> Ledger {
        self.core.withdrawals.ledger()
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
            .identity_of(&crate::bcs::wire::SET_CHANNEL_HOLD, call.principal.as_ref());
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
        detached(async move { core.withdrawals.withdraw(request, call, caller).await })
            .await
            .map(Response::new)
    }
}
