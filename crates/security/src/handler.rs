//! The gRPC handlers of `SecurityService`: each names its operation, lets the wire module
//! translate and check the request, and turns the bank's answer into the proto response.

use pasarela::common::v1::InvokerContext;
use pasarela::security::v1::security_service_server::SecurityService;
use pasarela::security::v1::*;
use pasarela_provider::Violations;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::Config;
use crate::bcs::client::{self, Bcs, Op};
use crate::bcs::invoker::bank_now;
use crate::bcs::wire::{self, Outgoing, Unreadable};
use crate::config::InvokerFields;

/// `SecurityService` in front of Banco Caja Social.
#[derive(Debug)]
pub struct Security {
    bcs: Bcs,
}

impl Security {
    pub fn new(config: Config) -> anyhow::Result<Self> {
        Ok(Self {
            bcs: Bcs::new(config)?,
        })
    }

    /// Runs `op` and converts its answer into the proto response `P`.
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
        let (answer, _) = self.bcs.run::<B, W>(op, metadata, invoker, build).await?;
        client::readable(op, P::try_from(answer)).map(Response::new)
    }

    /// Runs `op`, whose answer carries nothing but its envelope.
    async fn acknowledge<B: Serialize, P: Default>(
        &self,
        op: &Op,
        metadata: &MetadataMap,
        invoker: Option<&InvokerContext>,
        build: impl FnOnce(&InvokerFields, &mut Violations) -> Outgoing<B>,
    ) -> Result<Response<P>, Status> {
        self.bcs
            .run::<B, wire::Empty>(op, metadata, invoker, build)
            .await?;
        Ok(Response::new(P::default()))
    }
}

#[tonic::async_trait]
impl SecurityService for Security {
    async fn get_password_status(
        &self,
        request: Request<GetPasswordStatusRequest>,
    ) -> Result<Response<GetPasswordStatusResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.call::<_, wire::PasswordStatusAnswer, _>(
            &client::PASSWORD_STATUS,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::get_password_status(&request, v),
        )
        .await
    }

    async fn generate_otc(
        &self,
        request: Request<GenerateOtcRequest>,
    ) -> Result<Response<GenerateOtcResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::GENERATE_OTC,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::generate_otc_v1(&request, v),
        )
        .await
    }

    async fn generate_otc_v3(
        &self,
        request: Request<GenerateOtcV3Request>,
    ) -> Result<Response<GenerateOtcV3Response>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::GENERATE_OTC_V3,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::generate_otc_v3(&request, v),
        )
        .await
    }

    async fn validate_otc(
        &self,
        request: Request<ValidateOtcRequest>,
    ) -> Result<Response<ValidateOtcResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::VALIDATE_OTC,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::validate_otc(&request, v),
        )
        .await
    }

    async fn create_transaction_challenge(
        &self,
        request: Request<CreateTransactionChallengeRequest>,
    ) -> Result<Response<CreateTransactionChallengeResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.call::<_, wire::ChallengeAnswer, _>(
            &client::TRANSACTION_CHALLENGE,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::create_transaction_challenge(&request, v),
        )
        .await
    }

    async fn enroll_digital_user(
        &self,
        request: Request<EnrollDigitalUserRequest>,
    ) -> Result<Response<EnrollDigitalUserResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::ENROLL_DIGITAL_USER,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::enroll_digital_user(&request, v),
        )
        .await
    }

    async fn validate_digital_enrollment(
        &self,
        request: Request<ValidateDigitalEnrollmentRequest>,
    ) -> Result<Response<ValidateDigitalEnrollmentResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::VALIDATE_DIGITAL_ENROLLMENT,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::validate_digital_enrollment(&request, v),
        )
        .await
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::CHANGE_PASSWORD,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::change_password(&request, v),
        )
        .await
    }

    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::CREATE_USER,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::create_user(&request, v),
        )
        .await
    }

    async fn validate_enrollment_card(
        &self,
        request: Request<ValidateEnrollmentCardRequest>,
    ) -> Result<Response<ValidateEnrollmentCardResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::VALIDATE_ENROLLMENT_CARD,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::validate_enrollment_card(&request, v),
        )
        .await
    }

    async fn validate_password_recovery(
        &self,
        request: Request<ValidatePasswordRecoveryRequest>,
    ) -> Result<Response<ValidatePasswordRecoveryResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::VALIDATE_PASSWORD_RECOVERY,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::validate_password_recovery(&request, v),
        )
        .await
    }

    async fn request_withdrawal_otp(
        &self,
        request: Request<RequestWithdrawalOtpRequest>,
    ) -> Result<Response<RequestWithdrawalOtpResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.call::<_, wire::WithdrawalOtpAnswer, _>(
            &client::REQUEST_WITHDRAWAL_OTP,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::request_withdrawal_otp(&request, v),
        )
        .await
    }

    async fn update_password_status(
        &self,
        request: Request<UpdatePasswordStatusRequest>,
    ) -> Result<Response<UpdatePasswordStatusResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.call::<_, wire::PasswordStatusChange, _>(
            &client::UPDATE_PASSWORD_STATUS,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::update_password_status(&request, v),
        )
        .await
    }

    async fn list_channel_holds(
        &self,
        request: Request<ListChannelHoldsRequest>,
    ) -> Result<Response<ListChannelHoldsResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let op = &client::LIST_CHANNEL_HOLDS;
        let (page_number, page_size) = wire::page(&mut Violations::new(), request.page.as_ref());
        let (answer, _) = self
            .bcs
            .run::<_, wire::HoldsAnswer>(op, &metadata, request.invoker.as_ref(), |_, v| {
                wire::list_channel_holds(&request, v)
            })
            .await?;
        client::readable(op, answer.into_response(page_number, page_size)).map(Response::new)
    }

    async fn set_channel_hold(
        &self,
        request: Request<SetChannelHoldRequest>,
    ) -> Result<Response<SetChannelHoldResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.acknowledge(
            &client::SET_CHANNEL_HOLD,
            &metadata,
            request.invoker.as_ref(),
            |fields, v| {
                let audit = wire::Audit {
                    user: &fields.user,
                    branch_id: &fields.branch_id,
                };
                wire::set_channel_hold(&request, audit, v)
            },
        )
        .await
    }

    async fn get_authentication_level(
        &self,
        request: Request<GetAuthenticationLevelRequest>,
    ) -> Result<Response<GetAuthenticationLevelResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.call::<_, wire::AuthLevelAnswer, _>(
            &client::AUTHENTICATION_LEVEL,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::get_authentication_level(&request, bank_now(), v),
        )
        .await
    }

    async fn authenticate_channel(
        &self,
        request: Request<AuthenticateChannelRequest>,
    ) -> Result<Response<AuthenticateChannelResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.call::<_, wire::AuthChannelAnswer, _>(
            &client::AUTHENTICATE_CHANNEL,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::authenticate_channel(&request, v),
        )
        .await
    }

    async fn withdraw_with_otp(
        &self,
        request: Request<WithdrawWithOtpRequest>,
    ) -> Result<Response<WithdrawWithOtpResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let op = &client::WITHDRAW_WITH_OTP;
        let (answer, sent) = self
            .bcs
            .run::<_, wire::WithdrawalAnswer>(op, &metadata, request.invoker.as_ref(), |_, v| {
                wire::withdraw_with_otp(&request, bank_now(), v)
            })
            .await?;
        client::readable(op, answer.into_response(sent.tx_id)).map(Response::new)
    }

    async fn create_question_challenge(
        &self,
        request: Request<CreateQuestionChallengeRequest>,
    ) -> Result<Response<CreateQuestionChallengeResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        self.call::<_, wire::ChallengeAnswer, _>(
            &client::QUESTION_CHALLENGE,
            &metadata,
            request.invoker.as_ref(),
            |_, v| wire::create_question_challenge(&request, v),
        )
        .await
    }
}
