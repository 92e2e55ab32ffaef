//! The security (Banco Caja Social) verbs of the end-to-end suite: an app with the
//! sandbox's token, its client, the error assertions, and the requests most themes send
//! (password status, a withdrawal and its OTP).

use pasarela::common::v1::InvokerContext;
use pasarela::security::v1::get_password_status_request::Subject;
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela::security::v1::*;
use tonic::Code;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::support::{TestApp, TestPostgres, cc, ledger, pesos, reason, spawn_app_with};

/// The sandbox accepts any non-empty token; the spec has no operation that issues one.
pub(crate) const TOKEN: &str = "e2e-bcs-token";

pub(crate) async fn app() -> TestApp {
    spawn_app_with(|config| {
        let security = config.security.as_mut().expect("dev config has security");
        security.access_token = Some(TOKEN.to_owned().into());
    })
    .await
}

pub(crate) fn client(
    app: &TestApp,
) -> SecurityServiceClient<InterceptedService<Channel, impl Interceptor + Clone>> {
    client_on(app, app.channel())
}

/// A client of `app`'s caller over `channel` (another replica).
pub(crate) fn client_on(
    app: &TestApp,
    channel: Channel,
) -> SecurityServiceClient<InterceptedService<Channel, impl Interceptor + Clone>> {
    SecurityServiceClient::with_interceptor(channel, app.bearer())
}

pub(crate) fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
pub(crate) fn assert_error(status: &tonic::Status, code: Code, expected_reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), expected_reason, "{status:?}");
}

/// A natural person's password status, asked under `transaction_id`.
pub(crate) fn status_request(transaction_id: &str, subject: Subject) -> GetPasswordStatusRequest {
    GetPasswordStatusRequest {
        transaction_id: transaction_id.into(),
        customer_type: CustomerType::Natural.into(),
        subject: Some(subject),
        ..Default::default()
    }
}

/// The holder of the CC `number`, as a password status subject.
pub(crate) fn customer(number: &str) -> Subject {
    Subject::Customer(cc(number).expect("an identification"))
}

fn teller() -> Option<InvokerContext> {
    Some(InvokerContext {
        terminal_id: "PDS0059".into(),
        ..Default::default()
    })
}

pub(crate) fn withdrawal(otp: &str, key: &str) -> WithdrawWithOtpRequest {
    WithdrawWithOtpRequest {
        idempotency_key: key.into(),
        invoker: teller(),
        audit_number: "017269".into(),
        service_point_code: "0000000059".into(),
        service_point_name: "MI OFICINA BETTY".into(),
        city_code: "25386".into(),
        city_name: "LA MESA".into(),
        department_code: "25".into(),
        correspondent_account: "83000109863".into(),
        r#type: WithdrawalType::Normal.into(),
        amount: pesos(20_000),
        otp: otp.into(),
        customer_document_number: "1028780657".into(),
    }
}

/// Asks the bank for a withdrawal OTP of 20,000 pesos for the withdrawals customer.
pub(crate) async fn withdrawal_otp<I: Interceptor>(
    client: &mut SecurityServiceClient<InterceptedService<Channel, I>>,
) -> String {
    let issued = client
        .request_withdrawal_otp(RequestWithdrawalOtpRequest {
            invoker: Some(InvokerContext {
                source: "18".into(),
                cust_login_id: "CC1028780657".into(),
                ..Default::default()
            }),
            customer: cc("1028780657"),
            account_id: "26500084997".into(),
            amount: pesos(20_000),
            otc_id: "001".into(),
        })
        .await
        .expect("OTP issued")
        .into_inner();
    assert!(!issued.otp.is_empty());
    issued.otp
}

/// The security section with the sandbox's token and its idempotency in the ledger `db`.
pub(crate) fn shares_ledger(config: &mut pasarela_server::config::Config, db: &TestPostgres) {
    let security = config.security.as_mut().expect("dev config has security");
    security.access_token = Some(TOKEN.to_owned().into());
    security.idempotency =
        serde_json::from_value(ledger(&[db], "security")).expect("idempotency section");
}
