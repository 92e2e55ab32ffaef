//! The sandbox over real HTTP: each emulator and the fault injection exercised with a
//! plain HTTP client (and real mutual TLS for Daviplata) against a running sandbox.

mod bcs;
mod daviplata;
mod faults;
mod kiban;
mod lifecycle;
mod support;
