//! Banco Caja Social "security-management" behind `pasarela.security.v1`: the bank's
//! client (headers, credentials, wire formats, error table) and the `SecurityService`
//! handlers for its 19 operations.
#![forbid(unsafe_code)]

pub mod bcs;
pub mod config;
mod handler;
pub mod probe;

pub use config::{Config, InvokerFields, Paths};
pub use handler::Security;

use pasarela::security::v1::security_service_server::SecurityServiceServer;

/// Builds the service once at start: one pooled HTTP client for the bank and the
/// idempotency store of withdrawals; `attempts` counts the checks of customers' secrets.
pub async fn service(
    config: Config,
    attempts: pasarela_auth::SecretAttempts,
    metrics: pasarela_idempotency::IdempotencyMetrics,
) -> anyhow::Result<SecurityServiceServer<Security>> {
    Ok(SecurityServiceServer::new(
        Security::new(config, attempts, metrics).await?,
    ))
}
