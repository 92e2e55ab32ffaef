//! The outbound kit every provider client shares: pooled rustls HTTP clients, deadlines,
//! retries for safe operations, a circuit breaker per provider, one gRPC error model,
//! whether a provider may have acted on a call (`Delivery`), and credentials that rotate
//! without a restart.
#![forbid(unsafe_code)]

pub mod base_url;
pub mod breaker;
pub mod credential;
pub mod deadline;
pub mod delivery;
pub mod environment;
pub mod errors;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod outbound;
pub mod probe;
pub mod retry;
pub mod token;
pub mod validate;

pub use base_url::BaseUrl;
pub use credential::{Credential, Keyring};
pub use delivery::{Delivery, Fate};
pub use environment::Environment;
pub use errors::{Answered, ProviderError, reasons};
pub use outbound::{Operation, Outbound, RawResponse};
pub use validate::Violations;
