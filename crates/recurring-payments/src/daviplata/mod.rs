//! Daviplata "Pago Recurrente": the HTTP client, its token, its wire format and its errors.

pub mod client;
pub mod errors;
pub mod operation;
pub mod wire;

pub use client::Daviplata;
