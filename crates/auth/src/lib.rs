//! pasarela's inbound auth: a tower layer that every service sits behind (bearer JWT or
//! mTLS principals, per-method scopes, per-principal rate limits, an audit line per call),
//! the server's TLS set-up, and dev token minting.
#![forbid(unsafe_code)]

mod audit;
mod config;
pub mod context;
mod jwks;
mod jwt;
mod layer;
mod mtls;
mod policy;
mod principal;
mod rate_limit;
mod rejection;
mod secret_attempts;
mod shared_buckets;
mod slots;
mod tenancy;
mod tls;
mod verified;

pub use config::{
    Budget, Config, DEV_AUDIENCE, DEV_ISSUER, JwksSettings, MtlsSettings, RateLimit,
    ReflectionAccess, TlsSettings,
};
pub use context::CallContext;
pub use jwt::{mint_dev_token, mint_dev_token_with};
pub use layer::{AuthLayer, AuthService};
pub use mtls::{certificate_file_identity, certificate_identity};
pub use principal::{Principal, PrincipalSource, tenant_of_key};
pub use rejection::DOMAIN;
pub use secret_attempts::{SECRET_ATTEMPTS, SecretAttempts};
pub use slots::{Slot, Slots, peer_key};
pub use tenancy::{
    Document, EndUser, TenantPrincipal, TenantSettings, Trespass, Untenanted, check_end_user,
};
pub use tls::{server_tls_config, tls_acceptor};
