//! What the workspace's test targets share, as a crate of their own (no more `#[path]`
//! includes): a `redis-server` and a PostgreSQL of a test's own, an in-memory capture of
//! every log line, the made-up answers and outcome checks of the provider parser fuzzers,
//! and the switch that skips a test whose tools this machine lacks. Only ever a
//! dev-dependency.
#![forbid(unsafe_code)]

pub mod answer_fuzz;
pub mod captured_logs;
pub mod postgres_server;
pub mod redis_server;
pub mod tools;
