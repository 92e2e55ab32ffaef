//! Daviplata "Pago Recurrente" behind `pasarela.recurring_payments.v1`: the mutual-TLS
//! OAuth2 client, the wire translation, and idempotent activate, charge and cancel.
#![forbid(unsafe_code)]

pub mod config;
mod daviplata;
mod handler;
mod money;
pub mod probe;
mod tenancy;
mod validate;

pub use config::{
    Config, Contract, IdempotencyConfig, Paths, StoreKind, TenantSettings, UnboundSubscriptions,
};
pub use daviplata::errors::{DocumentedAnswer, documented_answers};
pub use handler::RecurringPayments;
pub use tenancy::Tenants;

use pasarela::recurring_payments::v1::recurring_payments_service_server::RecurringPaymentsServiceServer;

/// Builds the service once at start: the Daviplata client (mTLS identity read now) and
/// the idempotency store; answers its server and the ledger in which operators settle its
/// unknown outcomes.
pub async fn service(
    config: Config,
    metrics: pasarela_idempotency::IdempotencyMetrics,
) -> anyhow::Result<(
    RecurringPaymentsServiceServer<RecurringPayments>,
    pasarela_idempotency::Ledger,
)> {
    let payments = RecurringPayments::new(config, metrics).await?;
    let ledger = payments.ledger();
    Ok((RecurringPaymentsServiceServer::new(payments), ledger))
}
