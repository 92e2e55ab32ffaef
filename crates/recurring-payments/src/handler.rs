//! The gRPC handlers of `RecurringPaymentsService`.

use pasarela::recurring_payments::v1::recurring_payments_service_server::RecurringPaymentsService;
use pasarela::recurring_payments::v1::*;
use tonic::{Request, Response, Status};

use crate::Config;

pub struct RecurringPayments {
    _config: Config,
}

impl RecurringPayments {
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        Ok(Self { _config: config })
    }
}

#[tonic::async_trait]
impl RecurringPaymentsService for RecurringPayments {
    async fn request_subscription(
        &self,
        _request: Request<RequestSubscriptionRequest>,
    ) -> Result<Response<RequestSubscriptionResponse>, Status> {
        Err(Status::unimplemented("request_subscription"))
    }

    async fn activate_subscription(
        &self,
        _request: Request<ActivateSubscriptionRequest>,
    ) -> Result<Response<ActivateSubscriptionResponse>, Status> {
        Err(Status::unimplemented("activate_subscription"))
    }

    async fn cancel_subscription(
        &self,
        _request: Request<CancelSubscriptionRequest>,
    ) -> Result<Response<CancelSubscriptionResponse>, Status> {
        Err(Status::unimplemented("cancel_subscription"))
    }

    async fn charge_subscription(
        &self,
        _request: Request<ChargeSubscriptionRequest>,
    ) -> Result<Response<ChargeSubscriptionResponse>, Status> {
        Err(Status::unimplemented("charge_subscription"))
    }
}
