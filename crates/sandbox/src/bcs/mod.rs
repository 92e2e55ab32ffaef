//! Banco Caja Social emulator: the 19 security-management operations (S1-S19 of
//! `specs/README.md`) over a stateful in-memory bank seeded from fixtures, plus admin
//! helpers for tests (the SMS outbox, resets).

mod admin;
mod challenges;
mod codes;
mod enrollment;
mod envelope;
mod fixtures;
mod guard;
mod holds;
mod input;
mod otc;
mod passwords;
mod policy;
mod reto;
mod state;
mod tokens;
mod wire;
mod withdrawal;

use axum::Router;
use axum::routing::{get, post, put};

pub use fixtures::Fixtures;
use state::PasswordStatusPath;
pub use state::State;

/// The 19 operations at the paths of `specs/README.md`, relative to the sandbox's BCS URL
/// (S1 at the spec's path too, unless a reading picks one).
pub fn router(state: State) -> Router {
    Router::new()
        .route(tokens::TOKEN_PATH, post(tokens::token))
        .route(PasswordStatusPath::README, get(passwords::status))
        .route(PasswordStatusPath::SPEC, get(passwords::status))
        .route("/securityManagement/V1/generateOTC", post(otc::generate_v1))
        .route("/securityManagement/V3/generateOTC", post(otc::generate_v3))
        .route("/securityManagement/V1/validateOTC", post(otc::validate))
        .route("/retoManagement/v1/Customer", post(challenges::create_v1))
        .route(
            "/userManagement/v1/Customer",
            post(enrollment::enroll).get(enrollment::check),
        )
        .route("/user-management/v1/customer", put(passwords::change))
        .route(
            "/security-management/v1/customer",
            post(passwords::create_or_recover),
        )
        .route(
            "/security-management/v1/customer/{ident_serial_num}/validate",
            get(enrollment::validate_enrollment),
        )
        .route(
            "/security-management/v1/customer/{ident_serial_num}/password",
            get(enrollment::validate_recovery),
        )
        .route(
            "/security-management/v1/withdrawal/otp",
            post(withdrawal::request_otp),
        )
        .route(
            "/security-management/v1/customer/password/status",
            post(passwords::set_status),
        )
        .route(
            "/security-management/v1/channelholds/{ident_serial_num}",
            get(holds::list),
        )
        .route("/security-management/v1/channelholds", post(holds::set))
        .route(
            "/reto-management/v1/authentication-level",
            post(challenges::authentication_level),
        )
        .route(
            "/reto-management/v1/authentication-channel",
            post(challenges::authentication_channel),
        )
        .route(
            "/security-management/v3/withdrawal/otp",
            post(withdrawal::withdraw),
        )
        .route("/reto-management/v2/customer", post(challenges::create_v2))
        .fallback(envelope::not_found)
        .with_state(state)
}

/// Test helpers, mounted by the sandbox under its admin URL + `/bcs`.
pub fn admin_router(state: State) -> Router {
    admin::router(state)
}
