//! Kiban's Buró de Crédito behind `pasarela.bureau.v1`: when a bureau member's password
//! expires, with the member's credentials validated before the call and Kiban's echo of
//! them dropped from its answer.
#![forbid(unsafe_code)]

pub mod config;
mod handler;
mod kiban;
mod request;

pub use config::{Config, Environment};
pub use handler::Bureau;

use pasarela::bureau::v1::bureau_service_server::BureauServiceServer;

/// Builds the service once at start, with its one pooled Kiban client; `attempts` counts
/// the checks of members' passwords.
pub async fn service(
    config: Config,
    attempts: pasarela_auth::SecretAttempts,
) -> anyhow::Result<BureauServiceServer<Bureau>> {
    Ok(BureauServiceServer::new(Bureau::new(&config, attempts)?))
}
