//! pasarela's end-to-end suite: real gRPC clients -> pasarela -> real HTTP -> sandbox, over
//! loopback. One binary, one module per capability.

mod support;

mod bureau;
mod deploy;
mod auth;
mod foundation;
mod recurring_payments;
