//! Banco Caja Social "security-management" behind `pasarela.security.v1`: the bank's
//! client (headers, credentials, wire formats, error table) and the `SecurityService`
//! handlers for its 19 operations.
#![forbid(unsafe_code)]

pub mod bcs;
pub mod config;
mod handler;
pub mod probe;
mod reconciler;

pub use config::{AuthStyle, Config, InvokerFields, Paths, TenantSettings, TokenSettings};
pub use handler::Security;
