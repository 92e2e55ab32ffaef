//! `pasarela.security.v1` end to end: a tonic client -> pasarela -> HTTP -> the Banco Caja
//! Social emulator, for each of the 19 RPCs, their business errors, validation without
//! provider calls, the bank's own failures, and no secret in any log.

/// A card check of either kind (enrollment or recovery): both send the same four fields.
macro_rules! card_check {
    ($request:ident: $customer:expr, $card_type:expr, $secret:expr, $last_digits:expr) => {
        $request {
            customer: cc($customer),
            card_type: $card_type.into(),
            card_secret: $secret.into(),
            card_last_digits: $last_digits.into(),
            ..Default::default()
        }
    };
}

mod challenges;
mod channel_holds;
mod enrollment;
mod one_time_codes;
mod passwords;
mod validation;
mod withdrawals;

use pasarela::common::v1::{DocumentType, Identification, InvokerContext, PageRequest};
use pasarela::security::v1::get_password_status_request::Subject;
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela::security::v1::*;
use serde_json::json;
use tonic::Code;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::support::security::*;
use crate::support::tools;
use crate::support::{TestApp, TestPostgres, cc, pesos, spawn_app_with};

/// The `ErrorInfo.reason` of a failed call.
fn localized(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .localized_message()
        .map(|message| message.message.clone())
        .unwrap_or_default()
}

/// The last code the bank "sent by SMS" to a customer.
async fn outbox(app: &TestApp, number: &str) -> String {
    let sent = app.admin_get(&format!("/bcs/otc/CC/{number}")).await;
    sent["otc"].as_str().expect("a code was sent").to_owned()
}

/// Every secret this module sends that is long enough not to turn up by chance inside an
/// id or a timestamp (PINs and CVVs of 3-4 digits would).
const SECRETS: &[&str] = &[
    TOKEN,
    "Sol2024mar",
    "Casa2024ab",
    "Nube2025xy",
    "Wrong2024x",
    "Rosa2025ab",
    "Otra2025cd",
    "Nueva2025ab",
    "not-the-secret",
];

fn holds(
    customer: &str,
    filter: HoldFilter,
    page_number: i32,
    page_size: i32,
) -> ListChannelHoldsRequest {
    ListChannelHoldsRequest {
        customer: cc(customer),
        filter: filter.into(),
        page: Some(PageRequest {
            page_size,
            page_number,
        }),
        ..Default::default()
    }
}
