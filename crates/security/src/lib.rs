//! Banco Caja Social "security-management" behind `pasarela.security.v1`: the bank's
//! client (headers, credentials, wire formats, error table) and the `SecurityService`
//! handlers for its 19 operations.
#![forbid(unsafe_code)]

pub mod bcs;
pub mod config;
mod handler;
pub mod probe;
mod reconciler;
mod withdrawal;

pub use config::{AuthStyle, Config, InvokerFields, Paths, TenantSettings, TokenSettings};
pub use handler::Security;

use pasarela::security::v1::security_service_server::SecurityServiceServer;
use pasarela_idempotency::{IdempotencyMetrics, Ledger};

/// Builds the service once at start: the bank's client, the idempotency store (the ledger
/// connected now) and its reconciler; answers its server and the ledger in which operators
/// settle its unknown withdrawals. `attempts` counts the checks of customers' secrets.
pub async fn service(
    config: Config,
    attempts: pasarela_auth::SecretAttempts,
    metrics: IdempotencyMetrics,
) -> anyhow::Result<(SecurityServiceServer<Security>, Ledger)> {
    let security = Security::new(config, attempts, metrics).await?;
    let ledger = security.ledger();
    Ok((SecurityServiceServer::new(security), ledger))
}
