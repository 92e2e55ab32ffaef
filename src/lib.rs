//! pasarela's gRPC contracts: the types and services generated from `proto/`, and the
//! encoded descriptor set that server reflection serves.
#![forbid(unsafe_code)]

/// Every file of `proto/`, encoded as a `FileDescriptorSet`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pasarela_descriptor.bin"));

/// `google.type` messages the contracts use (`Date`).
pub mod google {
    pub mod r#type {
        tonic::include_proto!("google.r#type");
    }
}

/// `pasarela.common.v1`: identification, pagination, money and the invoker context.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("pasarela.common.v1");
    }
}

/// `pasarela.recurring_payments.v1`: Daviplata subscriptions (request, activate, cancel, charge).
pub mod recurring_payments {
    pub mod v1 {
        tonic::include_proto!("pasarela.recurring_payments.v1");
    }
}

/// `pasarela.bureau.v1`: Kiban's Buró de Crédito (password expiration).
pub mod bureau {
    pub mod v1 {
        tonic::include_proto!("pasarela.bureau.v1");
    }
}
