//! Money moves once without trusting a provider to deduplicate: a lost withdrawal is asked
//! about (S18 `Action: R`), never re-created blindly; a lost Daviplata call is held until an
//! operator settles it (or re-sent, when configured, to a Daviplata that deduplicates);
//! answers without a success status are never successes; TxIds belong to pasarela; the
//! operators' reconciliation API; a replica killed mid-charge and a ledger outage. Each test
//! runs against the sandbox in both readings of what the specs leave open.

mod daviplata;
mod deadlines;
mod killed_replica;
mod ledger_outage;
mod operators;
mod success_status;
mod tx_ids;
mod withdrawals;

use std::time::Duration;

use pasarela::operations::v1::operations_service_client::OperationsServiceClient;
use pasarela::operations::v1::settle_unknown_outcome_request::Settlement;
use pasarela::operations::v1::{
    ApproveSettlementRequest, ListUnknownOutcomesRequest, NotDone, ProposeSettlementRequest,
    SettleUnknownOutcomeRequest, Succeeded, UnknownOutcome,
};
use pasarela::security::v1::WithdrawWithOtpRequest;
use serde_json::{Value, json};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::support::recurring_payments::{
    self as rp, WALLET, activation, cancellation, charge, request_otp, subscribe,
};
use crate::support::replica::{Replica, replica_bearer, replica_bearer_for};
use crate::support::security::{self as sec, assert_error, bad_fields, withdrawal, withdrawal_otp};
use crate::support::tools;
use crate::support::{
    Bearer, TestApp, TestPostgres, bearer_with, body_of, error_metadata, reason, spawn_app_with,
    token_with_claims,
};

const S18_PATH: &str = "/security-management/v3/withdrawal/otp";
const PAYMENT_PATH: &str = "/v1/payments/subscriptions/payment";

type Operations = OperationsServiceClient<InterceptedService<Channel, Bearer>>;

/// An operator with every scope.
fn operator(app: &TestApp) -> Operations {
    OperationsServiceClient::with_interceptor(app.channel(), app.bearer())
}

/// Every outstanding unknown outcome of `service`.
async fn unknown(app: &TestApp, service: &str) -> Vec<UnknownOutcome> {
    operator(app)
        .list_unknown_outcomes(ListUnknownOutcomesRequest {
            service: service.into(),
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .outcomes
}

async fn settle(
    app: &TestApp,
    outcome: &UnknownOutcome,
    settlement: Settlement,
) -> Result<UnknownOutcome, tonic::Status> {
    operator(app)
        .settle_unknown_outcome(SettleUnknownOutcomeRequest {
            service: outcome.service.clone(),
            operation: outcome.operation.clone(),
            key_hash: outcome.key_hash.clone(),
            settlement: Some(settlement),
            note: "INC-42".into(),
            override_provider: false,
        })
        .await
        .map(|answer| answer.into_inner().settled.expect("the settled key"))
}

/// The same settlement, proposed.
fn proposal_of(request: SettleUnknownOutcomeRequest) -> ProposeSettlementRequest {
    use pasarela::operations::v1::propose_settlement_request::Settlement as Proposed;
    ProposeSettlementRequest {
        service: request.service,
        operation: request.operation,
        key_hash: request.key_hash,
        settlement: request.settlement.map(|settlement| match settlement {
            Settlement::Succeeded(succeeded) => Proposed::Succeeded(succeeded),
            Settlement::NotDone(not_done) => Proposed::NotDone(not_done),
        }),
        note: request.note,
        override_provider: request.override_provider,
    }
}

fn succeeded(approval_number: &str, subscription_id: &str) -> Settlement {
    Settlement::Succeeded(Succeeded {
        approval_number: approval_number.into(),
        subscription_id: subscription_id.into(),
    })
}

#[track_caller]
fn assert_held(status: &tonic::Status) {
    assert_error(status, Code::Unavailable, "PROVIDER_OUTCOME_UNKNOWN");
    let details = status.get_error_details();
    let info = details.error_info().expect("error info");
    assert_eq!(
        info.metadata["state"], "awaiting_reconciliation",
        "{status:?}"
    );
}

/// A charge under `key` whose answer is lost after Daviplata charged.
async fn lost_charge(app: &TestApp, key: &str) {
    let mut client = rp::client(app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    lose_charge(app, &mut client, key).await;
    assert_eq!(app.daviplata_counter("payments_made").await, 1);
}

/// A charge under `key` that Daviplata makes and whose answer is lost.
async fn lose_charge(app: &TestApp, client: &mut rp::Client, key: &str) {
    app.inject_once(
        "daviplata",
        PAYMENT_PATH,
        json!({ "type": "drop", "after_handler": true }),
    )
    .await;
    let lost = client
        .charge_subscription(charge(key, WALLET, 25_000))
        .await
        .unwrap_err();
    assert_eq!(reason(&lost), "PROVIDER_OUTCOME_UNKNOWN");
}
