//! Kiban: the HTTP client, its wire format and its errors.

pub mod client;
pub mod errors;
pub mod wire;

pub use client::Kiban;
