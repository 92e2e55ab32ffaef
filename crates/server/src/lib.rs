//! The `pasarela` process: configuration, the command line, and serving one service,
//! several or all of them (with the embedded sandbox in `dev`).
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
mod connections;
pub mod dev;
mod drift;
mod message_clock;
pub mod operations;
pub mod probe;
pub mod rpc_layer;
pub mod telemetry;

pub use config::Config;
