//! pasarela's gRPC contracts: the types and services generated from `proto/`, and the
//! encoded descriptor set that server reflection serves.
#![forbid(unsafe_code)]

mod documents;
mod redacted;

/// Every file of `proto/`, encoded as a `FileDescriptorSet`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pasarela_descriptor.bin"));

/// Each service's methods by name, snake case, as the contracts declare them: what a
/// service's metrics, settings and operation tables are checked against.
pub mod methods {
    include!(concat!(env!("OUT_DIR"), "/methods.rs"));
}

/// The generated modules, nested as their proto packages so that the relative paths prost
/// writes between packages (`super::super::...::google::r#type`) resolve.
mod generated {
    pub mod google {
        pub mod r#type {
            tonic::include_proto!("google.r#type");
        }
    }

    pub mod pasarela {
        pub mod common {
            pub mod v1 {
                tonic::include_proto!("pasarela.common.v1");
            }
        }
        pub mod security {
            pub mod v1 {
                tonic::include_proto!("pasarela.security.v1");
            }
        }
        pub mod bureau {
            pub mod v1 {
                tonic::include_proto!("pasarela.bureau.v1");
            }
        }
        pub mod recurring_payments {
            pub mod v1 {
                tonic::include_proto!("pasarela.recurring_payments.v1");
            }
        }
        pub mod operations {
            pub mod v1 {
                tonic::include_proto!("pasarela.operations.v1");
            }
        }
    }
}

/// `google.type` messages the contracts use (`Date`).
pub use generated::google;
/// `pasarela.common.v1`: identification, pagination, money and the invoker context.
/// `pasarela.security.v1`: Banco Caja Social one-time codes, users and passwords,
/// enrollment, channel holds, challenges and OTP withdrawals.
/// `pasarela.bureau.v1`: Kiban's Buró de Crédito (password expiration).
/// `pasarela.recurring_payments.v1`: Daviplata subscriptions (request, activate, cancel,
/// charge).
/// `pasarela.operations.v1`: the operators' reconciliation of unknown outcomes.
pub use generated::pasarela::{bureau, common, operations, recurring_payments, security};
