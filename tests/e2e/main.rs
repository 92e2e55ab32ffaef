//! pasarela's end-to-end suite: real gRPC clients -> pasarela -> real HTTP -> sandbox, over
//! loopback. One binary, one module per capability.

mod support;

mod auth;
mod bank;
mod bureau;
mod clients;
mod conformance;
mod credentials;
mod delivery;
mod deploy;
mod docs;
mod drift;
mod edge;
mod foundation;
mod guessing;
mod money_once;
mod monitoring;
mod observability;
mod readings;
mod recurring_payments;
mod reliability;
mod resource_bounds;
mod rotation;
mod security;
mod shared_state;
mod tenancy;
