//! Banco Caja Social: the client, its wire formats and its error table.

pub mod client;
mod envelope;
mod error_table;
pub mod errors;
pub(crate) mod fields;
pub mod identity;
pub mod invoker;
pub mod operation;
mod routing;
pub mod token;
pub mod wire;

pub use error_table::{ERROR_TABLE, ErrorRow, Source};
