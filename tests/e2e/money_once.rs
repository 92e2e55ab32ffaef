//! Money moves once without trusting a provider to deduplicate: a lost withdrawal is asked
//! about (S18 `Action: R`), never re-created blindly; a lost Daviplata call is held until an
//! operator settles it (or re-sent, when configured, to a Daviplata that deduplicates);
//! answers without a success status are never successes; TxIds belong to pasarela; the
//! operators' reconciliation API; a replica killed mid-charge and a ledger outage. Each test
//! runs against the sandbox in both readings of what the specs leave open.

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

use crate::recurring_payments::{
    self as rp, WALLET, activation, cancellation, charge, request_otp, subscribe,
};
use crate::security::{self as sec, assert_error, bad_fields, withdrawal, withdrawal_otp};
use crate::support::replica::{Replica, replica_bearer, replica_bearer_for};
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

// ---- S18: a lost withdrawal is asked about ------------------------------------------------

/// Sets how the Banco Caja Social emulator reads what S18 leaves open.
async fn bank_reads(app: &TestApp, dedup_tx_ids: bool, consulta_not_found: &str) {
    let readings = json!({
        "dedup_tx_ids": dedup_tx_ids,
        "consulta_not_found": consulta_not_found,
    });
    app.admin_send(reqwest::Method::PUT, "/bcs/readings", readings)
        .await;
}

/// S18 creates, consultas and withdrawals actually executed by the emulator.
async fn withdrawals(app: &TestApp) -> (u64, u64, u64) {
    let counts = app.admin_get("/bcs/withdrawals").await;
    let count = |name: &str| counts[name].as_u64().expect("a count");
    (count("creates"), count("queries"), count("executed"))
}

async fn lost_withdrawal(app: &TestApp, key: &str, after_handler: bool) -> WithdrawWithOtpRequest {
    let mut client = sec::client(app);
    let otp = withdrawal_otp(&mut client).await;
    app.inject_once(
        "bcs",
        S18_PATH,
        json!({ "type": "drop", "after_handler": after_handler }),
    )
    .await;
    let request = withdrawal(&otp, key);
    let lost = client.withdraw_with_otp(request.clone()).await.unwrap_err();
    assert_error(&lost, Code::Unavailable, "PROVIDER_OUTCOME_UNKNOWN");
    request
}

/// A gateway that drops `X-Invoker-Action: R` makes a consulta a create. By default the
/// consulta carries no customer code: the bank refuses it as incomplete, nothing is paid,
/// the key stays held and the code reached the bank once. Set to carry the create's body,
/// the same consulta pays a withdrawal: the danger that setting takes on.
#[tokio::test]
async fn a_consulta_the_bank_takes_for_a_create_pays_nothing_unless_it_carries_the_code() {
    use pasarela_security::config::ConsultaBody;
    for body in [ConsultaBody::Identifying, ConsultaBody::Create] {
        let app = spawn_app_with(|config| {
            let security = config.security.as_mut().expect("security");
            security.access_token = Some(sec::TOKEN.to_owned().into());
            security.withdrawal_reconciliation.consulta_body = body;
        })
        .await;
        let readings = json!({
            "dedup_tx_ids": true,
            "consulta_not_found": "no_found",
            "consulta_ignores_action": true,
        });
        app.admin_send(reqwest::Method::PUT, "/bcs/readings", readings)
            .await;
        // Lost before the bank read it: nothing was paid.
        let request = lost_withdrawal(&app, "gateway-drops-r", false).await;
        assert_eq!(withdrawals(&app).await.2, 0, "nothing paid yet");
        app.clear_journal().await;

        let retried = sec::client(&app).withdraw_with_otp(request).await;
        let consulta = app.last_call("bcs", "POST", S18_PATH).await;
        let carried_code = body_of(&consulta)["trn"]["otp"].get("otpValue").is_some();
        let executed = withdrawals(&app).await.2;
        match body {
            ConsultaBody::Identifying => {
                let held = retried.expect_err("held");
                assert_eq!(reason(&held), "PROVIDER_OUTCOME_UNKNOWN", "{held:?}");
                assert!(!carried_code, "the consulta carried no code: {consulta}");
                assert_eq!(executed, 0, "the consulta paid nothing");
                assert_eq!(unknown(&app, "pasarela.security.v1").await.len(), 1);
            }
            ConsultaBody::Create => {
                retried.expect("the consulta was executed as a create");
                assert!(carried_code);
                assert_eq!(executed, 1, "a consulta paid");
            }
        }
    }
}

/// Whether the security service lists no unknown outcome within `seconds`.
async fn no_unknown_within(app: &TestApp, seconds: u64) -> bool {
    for _ in 0..seconds * 10 {
        if unknown(app, "pasarela.security.v1").await.is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A withdrawal whose answer was lost is asked about by the reconciler without waiting for
/// its caller: the bank's approval settles the key, the caller's retry is answered from the
/// ledger, and the consulta carried no customer code.
#[tokio::test]
async fn the_reconciler_settles_a_lost_withdrawal_before_its_caller_retries() {
    let app = spawn_app_with(|config| {
        let security = config.security.as_mut().expect("security");
        security.access_token = Some(sec::TOKEN.to_owned().into());
        security.withdrawal_reconciliation.every = Duration::from_millis(300);
    })
    .await;
    let request = lost_withdrawal(&app, "reconciled", true).await;
    assert_eq!(withdrawals(&app).await, (1, 0, 1), "the bank paid once");
    assert!(
        no_unknown_within(&app, 10).await,
        "the reconciler settled the key"
    );
    assert_eq!(
        withdrawals(&app).await,
        (1, 1, 1),
        "one consulta, nothing created"
    );
    let consulta = app.last_call("bcs", "POST", S18_PATH).await;
    assert!(
        body_of(&consulta)["trn"]["otp"].get("otpValue").is_none(),
        "no code in the reconciler's consulta: {consulta}"
    );
    let answered = sec::client(&app)
        .withdraw_with_otp(request)
        .await
        .expect("the retry is answered from the ledger")
        .into_inner();
    assert!(!answered.approval_id.is_empty());
    assert_eq!(withdrawals(&app).await, (1, 1, 1), "the retry sent nothing");
    assert!(
        app.logs()
            .contains("unknown outcome settled by the provider's answer")
    );
}

/// Two replicas sharing a ledger, each with its reconciler: the lease lets one ask at a
/// time, so the bank is asked once about the lost withdrawal.
#[tokio::test]
async fn replicas_sharing_a_ledger_ask_the_bank_once_about_a_lost_withdrawal() {
    let db = TestPostgres::start().await;
    let often = |config: &mut pasarela_server::Config| {
        sec::shares_ledger(config, &db);
        let security = config.security.as_mut().expect("security");
        security.withdrawal_reconciliation.every = Duration::from_millis(200);
    };
    let app = spawn_app_with(often).await;
    let mut config = pasarela_server::dev::config_for(&app.sandbox, None).expect("dev config");
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = None;
    often(&mut config);
    let replica = pasarela_server::app::start(config)
        .await
        .expect("second replica starts");
    lost_withdrawal(&app, "reconciled-once", true).await;
    assert!(
        no_unknown_within(&app, 10).await,
        "a reconciler settled the key"
    );
    // Rounds of both replicas go by: none asks again.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(withdrawals(&app).await, (1, 1, 1), "one consulta in all");
    replica.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_lost_withdrawal_is_learnt_by_a_consulta_whether_or_not_the_bank_deduplicates() {
    for dedup in [true, false] {
        let app = sec::app().await;
        bank_reads(&app, dedup, "no_found").await;
        let request = lost_withdrawal(&app, "lost-paid", true).await;
        assert_eq!(withdrawals(&app).await, (1, 0, 1), "the bank paid once");

        let mut client = sec::client(&app);
        let learnt = client
            .withdraw_with_otp(request.clone())
            .await
            .expect("the consulta finds the withdrawal")
            .into_inner();
        assert!(!learnt.approval_id.is_empty());
        assert_eq!(learnt.account_id, "26500084997");
        assert_eq!(
            withdrawals(&app).await,
            (1, 1, 1),
            "one consulta, no second create (dedup {dedup})"
        );
        let replayed = client
            .withdraw_with_otp(request)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(replayed, learnt);
        assert_eq!(withdrawals(&app).await, (1, 1, 1));
        assert!(unknown(&app, "pasarela.security.v1").await.is_empty());
    }
}

#[tokio::test]
async fn a_withdrawal_the_bank_never_saw_is_sent_once_a_quiet_not_found_says_so() {
    for dedup in [true, false] {
        let app = reconciling_app(json!({
            "not_found": [{ "http": 404, "code": "NO FOUND", "type": "BDA" }],
            "quiet_period": QUIET,
        }))
        .await;
        bank_reads(&app, dedup, "no_found").await;
        let request = lost_withdrawal(&app, "lost-unseen", false).await;
        assert_eq!(
            withdrawals(&app).await,
            (0, 0, 0),
            "dropped before the bank"
        );
        // At once, "not found" may only mean the bank is still executing it.
        let early = sec::client(&app)
            .withdraw_with_otp(request.clone())
            .await
            .unwrap_err();
        assert_error(&early, Code::Unavailable, "PROVIDER_OUTCOME_UNKNOWN");
        let details = early.get_error_details();
        assert_eq!(
            details.error_info().unwrap().metadata["consulta_reason"],
            "NOT_FOUND_TOO_SOON"
        );
        assert!(details.retry_info().is_some());
        assert_eq!(withdrawals(&app).await, (0, 1, 0), "nothing created");
        tokio::time::sleep(QUIET_PASSED).await;
        let paid = sec::client(&app)
            .withdraw_with_otp(request)
            .await
            .expect("sent once the bank says it has none, quietly")
            .into_inner();
        assert!(!paid.approval_id.is_empty());
        assert_eq!(withdrawals(&app).await, (1, 2, 1), "dedup {dedup}");
    }
}

/// The quiet period of the tests that let a "not found" through, and a wait past it.
const QUIET: &str = "300ms";
const QUIET_PASSED: Duration = Duration::from_millis(400);

#[tokio::test]
async fn by_default_a_consulta_that_finds_nothing_creates_nothing() {
    let app = sec::app().await;
    let request = lost_withdrawal(&app, "lost-default", false).await;
    tokio::time::sleep(QUIET_PASSED).await;
    let held = sec::client(&app)
        .withdraw_with_otp(request)
        .await
        .unwrap_err();
    assert_error(&held, Code::Unavailable, "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(
        withdrawals(&app).await,
        (0, 1, 0),
        "no create without a configured not-found"
    );
    assert_eq!(unknown(&app, "pasarela.security.v1").await.len(), 1);
}

/// The security service against the sandbox with `reconciliation` as its
/// `withdrawal_reconciliation` section.
async fn reconciling_app(reconciliation: Value) -> TestApp {
    spawn_app_with(|config| {
        let security = config.security.as_mut().expect("security");
        security.access_token = Some(sec::TOKEN.to_owned().into());
        security.withdrawal_reconciliation =
            serde_json::from_value(reconciliation).expect("reconciliation section");
    })
    .await
}

#[tokio::test]
async fn a_consulta_answered_in_another_reading_leaves_the_key_for_an_operator() {
    // The bank refuses the consulta with a code pasarela is not configured to read as
    // "no such withdrawal": nothing is re-created, the key waits.
    let app = sec::app().await;
    bank_reads(&app, false, "rgn").await;
    let request = lost_withdrawal(&app, "lost-other-reading", false).await;
    let mut client = sec::client(&app);
    for _ in 0..2 {
        let still = client.withdraw_with_otp(request.clone()).await.unwrap_err();
        assert_error(&still, Code::Unavailable, "PROVIDER_OUTCOME_UNKNOWN");
        let details = still.get_error_details();
        assert_eq!(
            details.error_info().unwrap().metadata["consulta_reason"],
            "NOT_FOUND"
        );
    }
    assert_eq!(withdrawals(&app).await, (0, 2, 0), "consultas only");

    let listed = unknown(&app, "pasarela.security.v1").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let entry = &listed[0];
    assert_eq!(entry.operation, "withdraw_with_otp");
    assert_eq!(entry.caller, "jwt:e2e");
    assert!(entry.provider_transaction_id.starts_with("APIF"));
    assert!(entry.first_attempt_time.is_some());
    settle(&app, entry, Settlement::NotDone(NotDone {}))
        .await
        .expect("settled as not done");
    let paid = client
        .withdraw_with_otp(request)
        .await
        .expect("a settled key runs afresh")
        .into_inner();
    assert_ne!(paid.tx_id, entry.provider_transaction_id, "a new TxId");
    // The settlement asked the bank once more before it was accepted.
    assert_eq!(withdrawals(&app).await, (1, 3, 1));
    assert!(app.logs().contains("unknown outcome settled"));
}

/// Before an operator's settlement of a withdrawal is accepted, the bank is asked: one its
/// answer contradicts is refused, unless the operator overrides it, which the audit line
/// says.
#[tokio::test]
async fn a_settlement_the_bank_contradicts_is_refused_unless_overridden() {
    let app = spawn_app_with(|config| {
        let security = config.security.as_mut().expect("security");
        security.access_token = Some(sec::TOKEN.to_owned().into());
        // No rounds: the operator's settlement is what asks the bank here.
        security.withdrawal_reconciliation.every = Duration::ZERO;
    })
    .await;
    lost_withdrawal(&app, "paid-then-lost", true).await;
    assert_eq!(withdrawals(&app).await, (1, 0, 1), "the bank paid");
    let entry = unknown(&app, "pasarela.security.v1").await.remove(0);
    for settlement in [Settlement::NotDone(NotDone {}), succeeded("1", "")] {
        let refused = settle(&app, &entry, settlement).await.unwrap_err();
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::FailedPrecondition, "PROVIDER_CONTRADICTS_SETTLEMENT"),
            "{refused:?}"
        );
    }
    operator(&app)
        .settle_unknown_outcome(SettleUnknownOutcomeRequest {
            service: entry.service.clone(),
            operation: entry.operation.clone(),
            key_hash: entry.key_hash.clone(),
            settlement: Some(Settlement::NotDone(NotDone {})),
            note: "INC-9: the bank's back office reversed it".into(),
            override_provider: true,
        })
        .await
        .expect("an override is accepted");
    let audited = app.logs().lines().any(|line| {
        line.contains("unknown outcome settled") && line.contains("contradicted, overridden")
    });
    assert!(audited, "the audit line names the override");
}

#[tokio::test]
async fn the_not_found_answer_of_a_consulta_is_a_setting() {
    let app = reconciling_app(json!({
        "not_found": [{ "http": 404, "code": "05626", "type": "RGN" }],
        "quiet_period": QUIET,
    }))
    .await;
    bank_reads(&app, false, "rgn").await;
    let request = lost_withdrawal(&app, "lost-rgn", false).await;
    tokio::time::sleep(QUIET_PASSED).await;
    let paid = sec::client(&app)
        .withdraw_with_otp(request)
        .await
        .expect("configured to read the bank's not-found")
        .into_inner();
    assert!(!paid.approval_id.is_empty());
    assert_eq!(withdrawals(&app).await, (1, 1, 1));
}

#[tokio::test]
async fn a_held_withdrawal_is_settled_as_succeeded_by_an_operator() {
    let app = reconciling_app(json!({ "mode": "hold" })).await;
    let request = lost_withdrawal(&app, "lost-held", true).await;
    let mut client = sec::client(&app);
    assert_held(&client.withdraw_with_otp(request.clone()).await.unwrap_err());
    assert_eq!(withdrawals(&app).await, (1, 0, 1), "nobody was asked");

    let entry = unknown(&app, "").await.remove(0);
    let missing = settle(&app, &entry, succeeded("", "")).await.unwrap_err();
    assert_eq!(bad_fields(&missing), ["succeeded.approval_number"]);
    settle(&app, &entry, succeeded("224671", ""))
        .await
        .expect("settled");
    let replayed = client
        .withdraw_with_otp(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.approval_id, "224671");
    assert_eq!(replayed.tx_id, entry.provider_transaction_id);
    let again = settle(&app, &entry, Settlement::NotDone(NotDone {}))
        .await
        .unwrap_err();
    assert_error(&again, Code::FailedPrecondition, "OUTCOME_NOT_UNKNOWN");
}

#[tokio::test]
async fn an_s18_success_without_its_ok_marker_is_an_unknown_outcome() {
    let app = sec::app().await;
    let mut client = sec::client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let body = json!({ "trn": { "approvalId": "224671", "depAcctId": { "acctId": "1" } } });
    app.inject_once(
        "bcs",
        S18_PATH,
        json!({ "type": "status", "status": 200, "body": body }),
    )
    .await;
    let status = client
        .withdraw_with_otp(withdrawal(&otp, "no-marker"))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unavailable, "PROVIDER_OUTCOME_UNKNOWN");
}

/// Sets one field of a request's invoker context.
type SetInvoker = fn(&mut pasarela::common::v1::InvokerContext);

#[tokio::test]
async fn withdrawal_tx_ids_and_fixed_values_belong_to_pasarela() {
    let app = sec::app().await;
    let mut client = sec::client(&app);
    let cases: [(&str, SetInvoker); 5] = [
        ("invoker.tx_id", |i| i.tx_id = "APIF4087320000000001".into()),
        ("invoker.process_id", |i| {
            i.process_id = "020000000001".into()
        }),
        ("invoker.channel", |i| i.channel = "13".into()),
        ("invoker.user", |i| i.user = "OTRO".into()),
        ("invoker.action", |i| i.action = "R".into()),
    ];
    for (field, set) in cases {
        let mut request = withdrawal("otp-value", "owned-fields");
        set(request.invoker.as_mut().expect("teller context"));
        let refused = client.withdraw_with_otp(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{field}");
        assert_eq!(reason(&refused), "BANK_IDENTITY_NOT_CALLERS", "{field}");
        assert_eq!(error_metadata(&refused, "fields"), field);
    }
    assert_eq!(
        withdrawals(&app).await,
        (0, 0, 0),
        "nothing reached the bank"
    );
}

// ---- Daviplata: a lost call is held, or re-sent when configured ------------------------------

/// Sets whether the Daviplata emulator deduplicates by `transactionId`.
async fn daviplata_dedups(app: &TestApp, dedup: bool) {
    let readings = json!({ "dedup_transaction_ids": dedup });
    crate::support::admin(
        &app.sandbox,
        reqwest::Method::PUT,
        "/daviplata/readings",
        Some(readings),
    )
    .await;
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

#[tokio::test]
async fn a_lost_charge_is_held_until_an_operator_settles_it_whatever_daviplata_does() {
    for dedup in [true, false] {
        let app = rp::app().await;
        daviplata_dedups(&app, dedup).await;
        lost_charge(&app, "held-order").await;
        let mut client = rp::client(&app);
        for _ in 0..3 {
            let held = client
                .charge_subscription(charge("held-order", WALLET, 25_000))
                .await
                .unwrap_err();
            assert_held(&held);
        }
        assert_eq!(app.daviplata_counter("payments_made").await, 1);
        let calls = app.admin_get("/calls").await;
        assert_eq!(
            calls["daviplata"][format!("POST {PAYMENT_PATH}")],
            1,
            "nothing re-sent (dedup {dedup})"
        );

        let listed = unknown(&app, "pasarela.recurring_payments.v1").await;
        assert_eq!(listed.len(), 1);
        let entry = &listed[0];
        assert_eq!(entry.operation, "charge");
        assert!(uuid::Uuid::try_parse(&entry.provider_transaction_id).is_ok());
        assert!(entry.unknown_since.is_some());
        settle(&app, entry, succeeded("0000000000000001", ""))
            .await
            .expect("settled");
        let replayed = client
            .charge_subscription(charge("held-order", WALLET, 25_000))
            .await
            .expect("the settlement is replayed")
            .into_inner();
        assert_eq!(replayed.approval_number, "0000000000000001");
        assert_eq!(
            replayed.result.unwrap().transaction_id,
            entry.provider_transaction_id
        );
        assert_eq!(app.daviplata_counter("payments_made").await, 1);
    }
}

#[tokio::test]
async fn resending_unknown_outcomes_is_safe_only_where_daviplata_deduplicates() {
    for (dedup, payments) in [(true, 1), (false, 2)] {
        let app = spawn_app_with(rp::resending).await;
        daviplata_dedups(&app, dedup).await;
        lost_charge(&app, "resent-order").await;
        rp::client(&app)
            .charge_subscription(charge("resent-order", WALLET, 25_000))
            .await
            .expect("re-sent");
        assert_eq!(
            app.daviplata_counter("payments_made").await,
            payments,
            "dedup {dedup}: why resend_unknown_outcomes is off by default"
        );
    }
}

#[tokio::test]
async fn held_activations_and_cancellations_are_settled_with_what_they_need() {
    let app = rp::app().await;
    let mut client = rp::client(&app);
    let activate = rp::lost_activation(&app, &mut client, "held-activation").await;
    assert_held(
        &client
            .activate_subscription(activate.clone())
            .await
            .unwrap_err(),
    );

    let entry = unknown(&app, "pasarela.recurring_payments.v1")
        .await
        .remove(0);
    assert_eq!(entry.operation, "activate");
    let refused = settle(&app, &entry, succeeded("123", ""))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&refused), ["succeeded.subscription_id"]);
    settle(&app, &entry, succeeded("", "sub-1"))
        .await
        .expect("settled");
    let settled = client.activate_subscription(activate).await.unwrap();
    let subscription = settled.into_inner().subscription.expect("a subscription");
    assert_eq!(subscription.subscription_id, "sub-1");

    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/cancel",
        json!({ "type": "drop", "after_handler": true }),
    )
    .await;
    let cancel = cancellation("held-cancel", WALLET);
    client
        .cancel_subscription(cancel.clone())
        .await
        .unwrap_err();
    let entry = unknown(&app, "").await.remove(0);
    assert_eq!(entry.operation, "cancel");
    settle(&app, &entry, succeeded("", ""))
        .await
        .expect("a cancellation needs no approval");
    let cancelled = client.cancel_subscription(cancel).await.unwrap();
    assert_eq!(cancelled.into_inner().result.unwrap().status, 0);
    assert_eq!(app.daviplata_counter("subscriptions_cancelled").await, 1);
}

// ---- No success without a success status ----------------------------------------------------

#[tokio::test]
async fn daviplata_answers_without_a_success_status_are_never_ok() {
    let app = rp::app().await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    let statuses = [
        json!({ "resultStatus": { "status": "ER" } }),
        json!({ "resultStatus": {} }),
        json!({ "resultStatus": { "status": "ER", "approvalNumber": "0000000000009999" } }),
        json!({ "otherObject": { "status": 0 } }),
    ];
    for (i, body) in statuses.into_iter().enumerate() {
        for path in [PAYMENT_PATH, "/v1/payments/subscriptions/cancel"] {
            app.inject_once(
                "daviplata",
                path,
                json!({ "type": "status", "status": 200, "body": body }),
            )
            .await;
        }
        let charged = client
            .charge_subscription(charge(&format!("no-status-{i}"), WALLET, 1_000))
            .await
            .unwrap_err();
        assert_eq!(reason(&charged), "PROVIDER_OUTCOME_UNKNOWN", "{body}");
        let cancelled = client
            .cancel_subscription(cancellation(&format!("no-status-{i}"), WALLET))
            .await
            .unwrap_err();
        assert_eq!(reason(&cancelled), "PROVIDER_OUTCOME_UNKNOWN", "{body}");
    }
    let (session, otp) = request_otp(&mut client, rp::OTHER_WALLET).await;
    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/activate",
        json!({ "type": "status", "status": 200, "body": { "ResultStatus": { "status": 0 } } }),
    )
    .await;
    let activated = client
        .activate_subscription(activation(
            "no-subscription",
            rp::OTHER_WALLET,
            &session,
            &otp,
            5,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&activated),
        "PROVIDER_OUTCOME_UNKNOWN",
        "an activation without its Subscription is not OK"
    );
}

#[tokio::test]
async fn a_caller_cannot_choose_the_transaction_id_of_an_idempotent_call() {
    let app = rp::app().await;
    let mut request = charge("chosen-id", WALLET, 1_000);
    request.transaction = Some(pasarela::recurring_payments::v1::ProviderTransaction {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        transaction_time: None,
    });
    let refused = rp::client(&app)
        .charge_subscription(request)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&refused), ["transaction.transaction_id"]);
}

// ---- The operators' API ---------------------------------------------------------------------

#[tokio::test]
async fn the_reconciliation_api_has_its_own_scopes_and_a_gauge() {
    let app = rp::app().await;
    lost_charge(&app, "gauge-order").await;

    let charger =
        app.token(&["pasarela.recurring_payments.v1.RecurringPaymentsService/ChargeSubscription"]);
    let mut stranger =
        OperationsServiceClient::with_interceptor(app.channel(), bearer_with(&charger));
    let denied = stranger
        .list_unknown_outcomes(ListUnknownOutcomesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let reader = app.token(&["pasarela.operations.v1.OperationsService/ListUnknownOutcomes"]);
    let mut reader = OperationsServiceClient::with_interceptor(app.channel(), bearer_with(&reader));
    let listed = reader
        .list_unknown_outcomes(ListUnknownOutcomesRequest::default())
        .await
        .expect("a reader lists")
        .into_inner()
        .outcomes;
    assert_eq!(listed.len(), 1);
    let settle_denied = reader
        .settle_unknown_outcome(SettleUnknownOutcomeRequest {
            service: listed[0].service.clone(),
            operation: listed[0].operation.clone(),
            key_hash: listed[0].key_hash.clone(),
            settlement: Some(Settlement::NotDone(NotDone {})),
            note: String::new(),
            override_provider: false,
        })
        .await
        .unwrap_err();
    assert_eq!(settle_denied.code(), Code::PermissionDenied);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            "pasarela_idempotency_unknown_outcomes{provider=\"daviplata.com\",operation=\"charge\"} 1"
        ),
        "{metrics}"
    );
    let unknown_service = operator(&app)
        .list_unknown_outcomes(ListUnknownOutcomesRequest {
            service: "pasarela.bureau.v1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&unknown_service), ["service"]);
}

/// Where settlements take two operators: one alone is refused, a proposal settles nothing,
/// its proposer cannot approve it, another operator's approval makes it the outcome every
/// retry replays, and the audit line names both.
#[tokio::test]
async fn a_settlement_takes_a_second_operators_approval() {
    let app = spawn_app_with(|config| {
        rp::lab_setup(config);
        config.operations.approvals = 2;
    })
    .await;
    lost_charge(&app, "four-eyes-order").await;
    let entry = unknown(&app, "pasarela.recurring_payments.v1").await[0].clone();
    let operator_named = |name: &str| {
        let token = app.token_for(name, &["*"]);
        OperationsServiceClient::with_interceptor(app.channel(), bearer_with(&token))
    };
    let (mut alice, mut bob) = (operator_named("alice"), operator_named("bob"));
    let request = SettleUnknownOutcomeRequest {
        service: entry.service.clone(),
        operation: entry.operation.clone(),
        key_hash: entry.key_hash.clone(),
        settlement: Some(succeeded("0000000000004242", "")),
        note: "INC-77: in Daviplata's report".into(),
        override_provider: false,
    };
    let alone = alice
        .settle_unknown_outcome(request.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (alone.code(), reason(&alone).as_str()),
        (Code::FailedPrecondition, "SECOND_APPROVER_REQUIRED")
    );
    // An approval number is the provider's: a note in its place is refused.
    let typo = alice
        .propose_settlement(proposal_of(SettleUnknownOutcomeRequest {
            settlement: Some(succeeded("see INC-77", "")),
            ..request.clone()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&typo), ["succeeded.approval_number"]);
    let proposed = alice
        .propose_settlement(proposal_of(request))
        .await
        .expect("proposed")
        .into_inner()
        .outcome
        .expect("the key");
    let proposal = proposed.proposal.expect("a pending proposal");
    assert_eq!(proposal.proposer, "jwt:alice");
    let listed = unknown(&app, "pasarela.recurring_payments.v1").await;
    assert_eq!(listed.len(), 1, "a proposal settles nothing");
    assert_eq!(
        listed[0].proposal.as_ref().map(|p| &p.proposal_id),
        Some(&proposal.proposal_id)
    );
    let held = rp::client(&app)
        .charge_subscription(charge("four-eyes-order", WALLET, 25_000))
        .await
        .unwrap_err();
    assert_eq!(reason(&held), "PROVIDER_OUTCOME_UNKNOWN", "still held");

    let approval = |proposal_id: &str| ApproveSettlementRequest {
        service: entry.service.clone(),
        operation: entry.operation.clone(),
        key_hash: entry.key_hash.clone(),
        proposal_id: proposal_id.to_owned(),
        note: "checked the report".into(),
    };
    let own = alice
        .approve_settlement(approval(&proposal.proposal_id))
        .await
        .unwrap_err();
    assert_eq!(
        (own.code(), reason(&own).as_str()),
        (Code::PermissionDenied, "SECOND_APPROVER_REQUIRED")
    );
    // Nor through another application of hers: one person is one pair of eyes.
    let elsewhere = token_with_claims("alice", &[("azp", "ops-web")]);
    let own_elsewhere =
        OperationsServiceClient::with_interceptor(app.channel(), bearer_with(&elsewhere))
            .approve_settlement(approval(&proposal.proposal_id))
            .await
            .unwrap_err();
    assert_eq!(reason(&own_elsewhere), "SECOND_APPROVER_REQUIRED");
    let unknown_id = bob
        .approve_settlement(approval(&"0".repeat(32)))
        .await
        .unwrap_err();
    assert_eq!(reason(&unknown_id), "PROPOSAL_NOT_FOUND");
    bob.approve_settlement(approval(&proposal.proposal_id))
        .await
        .expect("a second operator approves");
    let replayed = rp::client(&app)
        .charge_subscription(charge("four-eyes-order", WALLET, 25_000))
        .await
        .expect("the approved settlement is replayed")
        .into_inner();
    assert_eq!(replayed.approval_number, "0000000000004242");
    let audited = app.logs().lines().any(|line| {
        line.contains("unknown outcome settled")
            && line.contains("jwt:alice")
            && line.contains("jwt:bob")
            && line.contains(&proposal.proposal_id)
    });
    assert!(audited, "the audit line names both operators");
}

/// A caller holding its maximum of open keys (two unknown outcomes here) is refused a new
/// key before anything is sent, while another caller charges; once an operator settles one
/// of its keys, it charges again.
#[tokio::test]
async fn a_caller_holding_its_maximum_of_open_keys_is_refused_while_others_go_on() {
    let app = spawn_app_with(|config| {
        rp::lab_setup(config);
        let section = config
            .recurring_payments
            .as_mut()
            .expect("recurring payments");
        section.idempotency.max_open_per_caller = 2;
    })
    .await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    for i in 0..2 {
        lose_charge(&app, &mut client, &format!("quota-order-{i}")).await;
    }
    let paid = app.daviplata_counter("payments_made").await;
    let refused = client
        .charge_subscription(charge("quota-order-2", WALLET, 25_000))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::ResourceExhausted, "OPEN_KEYS_EXHAUSTED")
    );
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        paid,
        "nothing sent"
    );

    let token = app.token_for("another-caller", &["*"]);
    let mut other = pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient::with_interceptor(
        app.channel(),
        bearer_with(&token),
    );
    other
        .charge_subscription(charge("another-callers-order", WALLET, 25_000))
        .await
        .expect("another caller charges");

    let held = unknown(&app, "pasarela.recurring_payments.v1").await;
    let metrics = app.metrics().await;
    for (series, value) in [
        (
            "pasarela_idempotency_quota_refusals_total{provider=\"daviplata.com\"}",
            1.0,
        ),
        (
            "pasarela_idempotency_caller_unknown_outcomes_max{provider=\"daviplata.com\"}",
            2.0,
        ),
        (
            "pasarela_idempotency_caller_open_keys_limit{provider=\"daviplata.com\"}",
            2.0,
        ),
    ] {
        assert_eq!(
            crate::support::metric(&metrics, series),
            Some(value),
            "{series}"
        );
    }
    settle(&app, &held[0], Settlement::NotDone(NotDone {}))
        .await
        .expect("settled");
    client
        .charge_subscription(charge("quota-order-3", WALLET, 25_000))
        .await
        .expect("a settled key made room");
}

/// A caller follows its own key instead of polling: unknown at once, settled when an
/// operator settles it, and the stream ends; a key it never used is freed at once.
#[tokio::test]
async fn a_caller_watches_its_key_until_it_is_settled() {
    use pasarela::operations::v1::{KeyState, WatchOutcomeRequest};
    let app = rp::app().await;
    lost_charge(&app, "watched-order").await;
    let watch = |key: &str| WatchOutcomeRequest {
        service: "pasarela.recurring_payments.v1".into(),
        operation: "charge".into(),
        idempotency_key: key.into(),
    };
    let mut states = operator(&app)
        .watch_outcome(watch("watched-order"))
        .await
        .expect("watching")
        .into_inner();
    let first = states.message().await.expect("a state").expect("the first");
    assert_eq!(first.state(), KeyState::Unknown);
    let entry = unknown(&app, "pasarela.recurring_payments.v1")
        .await
        .remove(0);
    settle(&app, &entry, succeeded("0000000000000042", ""))
        .await
        .expect("settled");
    let next = states
        .message()
        .await
        .expect("a state")
        .expect("the change");
    assert_eq!(next.state(), KeyState::Settled);
    assert!(
        states.message().await.expect("the end").is_none(),
        "the stream ends"
    );

    let mut never = operator(&app)
        .watch_outcome(watch("never-used"))
        .await
        .expect("watching")
        .into_inner();
    let freed = never.message().await.expect("a state").expect("the first");
    assert_eq!(freed.state(), KeyState::Freed);
    assert!(never.message().await.expect("the end").is_none());
}

/// Five lost charges listed two at a time: every key once, oldest first; filters by
/// operation and age; a token the service did not hand out is refused.
#[tokio::test]
async fn unknown_outcomes_are_listed_a_page_at_a_time_and_filtered() {
    let app = rp::app().await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    for i in 0..5 {
        lose_charge(&app, &mut client, &format!("paged-order-{i}")).await;
    }
    let mut operator = operator(&app);
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let page = operator
            .list_unknown_outcomes(ListUnknownOutcomesRequest {
                page_size: 2,
                page_token: token,
                operation: "charge".into(),
                ..Default::default()
            })
            .await
            .expect("a page")
            .into_inner();
        pages += 1;
        assert!(page.outcomes.len() <= 2);
        seen.extend(page.outcomes);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!((seen.len(), pages), (5, 3));
    let times: Vec<_> = seen
        .iter()
        .map(|o| o.first_attempt_time.expect("a time"))
        .map(|t| (t.seconds, t.nanos))
        .collect();
    assert!(times.is_sorted(), "oldest first: {times:?}");
    let mut hashes: Vec<&str> = seen.iter().map(|o| o.key_hash.as_str()).collect();
    hashes.dedup();
    assert_eq!(hashes.len(), 5, "each key once");

    let none = |request: ListUnknownOutcomesRequest| {
        let mut operator = operator.clone();
        async move {
            operator
                .list_unknown_outcomes(request)
                .await
                .expect("listed")
                .into_inner()
                .outcomes
        }
    };
    let withdrawals = none(ListUnknownOutcomesRequest {
        operation: "withdraw_with_otp".into(),
        ..Default::default()
    });
    assert!(withdrawals.await.is_empty());
    let old = none(ListUnknownOutcomesRequest {
        min_age: Some(prost_types::Duration {
            seconds: 3_600,
            nanos: 0,
        }),
        ..Default::default()
    });
    assert!(old.await.is_empty(), "none is an hour old");
    let forged = operator
        .list_unknown_outcomes(ListUnknownOutcomesRequest {
            page_token: "p1~0~pasarela.recurring_payments.v1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&forged), ["page_token"]);
}

// ---- Shared state: a ledger outage --------------------------------------------------------

/// Recurring payments with `idempotency` as its idempotency section (a 3 s call ceiling),
/// one wallet subscribed.
async fn subscribed_app(idempotency: Value) -> (TestApp, rp::Client) {
    let app = spawn_app_with(move |config| {
        rp::lab_setup(config);
        let section = config
            .recurring_payments
            .as_mut()
            .expect("recurring payments");
        section.idempotency = serde_json::from_value(idempotency).expect("idempotency section");
        section.outbound.http.timeout = Duration::from_secs(3);
    })
    .await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    (app, client)
}

#[tokio::test]
async fn money_moving_calls_fail_closed_while_the_ledger_is_down_and_recover() {
    let mut db = TestPostgres::start().await;
    let (app, mut client) = subscribed_app(rp::ledger_store(&db)).await;
    db.kill();
    let refused = client
        .charge_subscription(charge("outage-order", WALLET, 5_000))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(reason(&refused), "IDEMPOTENCY_STORE_UNAVAILABLE");
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        0,
        "nothing sent"
    );
    let (session, otp) = request_otp(&mut client, rp::OTHER_WALLET).await;
    assert!(
        !session.is_empty() && !otp.is_empty(),
        "the rest still answers"
    );

    db.resume().await;
    let mut charged = None;
    for _ in 0..50 {
        match client
            .charge_subscription(charge("outage-order", WALLET, 5_000))
            .await
        {
            Ok(answer) => {
                charged = Some(answer.into_inner());
                break;
            }
            Err(status) => {
                assert_eq!(reason(&status), "IDEMPOTENCY_STORE_UNAVAILABLE");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(charged.is_some(), "charges resume once the ledger is back");
    assert_eq!(app.daviplata_counter("payments_made").await, 1);
}

#[tokio::test]
async fn a_claim_survives_the_sigkill_of_the_ledger_mid_call_and_is_held() {
    let mut db = TestPostgres::start().await;
    let mut idempotency = rp::ledger_store(&db);
    idempotency["lease"] = json!("4s");
    let (app, mut client) = subscribed_app(idempotency).await;
    app.inject_once(
        "daviplata",
        PAYMENT_PATH,
        json!({ "type": "latency", "ms": 1_500 }),
    )
    .await;
    let mut in_flight = client.clone();
    let call = tokio::spawn(async move {
        in_flight
            .charge_subscription(charge("restart-order", WALLET, 5_000))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.kill();
    let first = call.await.expect("the call ends");
    assert!(first.is_ok(), "Daviplata answered: {first:?}");
    assert_eq!(app.daviplata_counter("payments_made").await, 1);

    db.resume().await;
    tokio::time::sleep(Duration::from_millis(3_700)).await;
    let mut retried = None;
    for _ in 0..50 {
        let status = client
            .charge_subscription(charge("restart-order", WALLET, 5_000))
            .await
            .unwrap_err();
        if reason(&status) != "IDEMPOTENCY_STORE_UNAVAILABLE" {
            retried = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retried = retried.expect("the ledger came back");
    assert_held(&retried);
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        1,
        "the claim kept across the restart stopped a second charge"
    );
}

// ---- A replica killed mid-call ----------------------------------------------------------------

/// Waits until the sandbox shows that a provider acted.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test]
async fn a_replica_killed_mid_call_leaves_money_moved_at_most_once() {
    let db = TestPostgres::start().await;
    let (sandbox, _pki) = crate::support::sandbox().await;
    let mut first = Replica::start(&sandbox, &[&db]).await;
    let second = Replica::start(&sandbox, &[&db]).await;
    let bearer = replica_bearer();
    let mut payments = pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient::with_interceptor(first.channel(), bearer.clone());
    let mut bank =
        pasarela::security::v1::security_service_client::SecurityServiceClient::with_interceptor(
            first.channel(),
            bearer.clone(),
        );
    subscribe(&mut payments, WALLET, 1_000_000).await;
    let otp = withdrawal_otp(&mut bank).await;

    // Both providers act, then never answer: the first replica holds both claims.
    for (provider, path) in [("daviplata", PAYMENT_PATH), ("bcs", S18_PATH)] {
        let rule = json!({
            "provider": provider, "path": path, "times": 1,
            "fault": { "type": "hang", "after_handler": true },
        });
        crate::support::admin(&sandbox, reqwest::Method::POST, "/faults", Some(rule)).await;
    }
    let charge_request = charge("killed-charge", WALLET, 40_000);
    let withdrawal_request = withdrawal(&otp, "killed-withdrawal");
    let in_flight = {
        let (mut payments, mut bank) = (payments.clone(), bank.clone());
        let (charge_request, withdrawal_request) =
            (charge_request.clone(), withdrawal_request.clone());
        tokio::spawn(async move {
            let charged = payments.charge_subscription(charge_request);
            let withdrawn = bank.withdraw_with_otp(withdrawal_request);
            let _ = futures::join!(charged, withdrawn);
        })
    };
    until("Daviplata charged and the bank paid", async || {
        let davi =
            crate::support::admin(&sandbox, reqwest::Method::GET, "/daviplata/counters", None)
                .await;
        let bcs =
            crate::support::admin(&sandbox, reqwest::Method::GET, "/bcs/withdrawals", None).await;
        davi["payments_made"] == 1 && bcs["executed"] == 1
    })
    .await;
    first.kill();
    in_flight.abort();

    // Past the lease, the other replica treats both as unknown outcomes.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut payments = pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient::with_interceptor(second.channel(), bearer.clone());
    let held = payments
        .charge_subscription(charge_request)
        .await
        .unwrap_err();
    assert_held(&held);
    let mut bank =
        pasarela::security::v1::security_service_client::SecurityServiceClient::with_interceptor(
            second.channel(),
            bearer.clone(),
        );
    let learnt = bank
        .withdraw_with_otp(withdrawal_request)
        .await
        .expect("the consulta learns the withdrawal the dead replica made")
        .into_inner();
    assert!(!learnt.approval_id.is_empty());

    let davi =
        crate::support::admin(&sandbox, reqwest::Method::GET, "/daviplata/counters", None).await;
    assert_eq!(davi["payments_made"], 1, "Daviplata charged once");
    let bcs = crate::support::admin(&sandbox, reqwest::Method::GET, "/bcs/withdrawals", None).await;
    assert_eq!(
        (
            bcs["creates"].as_u64(),
            bcs["queries"].as_u64(),
            bcs["executed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "one withdrawal, learnt by one consulta"
    );
    let mut operator = OperationsServiceClient::with_interceptor(second.channel(), bearer);
    let listed = operator
        .list_unknown_outcomes(ListUnknownOutcomesRequest::default())
        .await
        .expect("listed")
        .into_inner()
        .outcomes;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let entry = &listed[0];
    assert_eq!(entry.operation, "charge");

    // Proposed on one replica and approved on another by a second operator: settled in the
    // shared ledger, the approval is what every replica answers from then on.
    let proposal = operator
        .propose_settlement(proposal_of(SettleUnknownOutcomeRequest {
            service: entry.service.clone(),
            operation: entry.operation.clone(),
            key_hash: entry.key_hash.clone(),
            settlement: Some(succeeded("0000000000000001", "")),
            note: "INC-7: approved in Daviplata's report".into(),
            override_provider: false,
        }))
        .await
        .expect("proposed")
        .into_inner()
        .outcome
        .and_then(|outcome| outcome.proposal)
        .expect("a pending proposal");
    first.restart().await;
    let mut approver =
        OperationsServiceClient::with_interceptor(first.channel(), replica_bearer_for("approver"));
    approver
        .approve_settlement(ApproveSettlementRequest {
            service: entry.service.clone(),
            operation: entry.operation.clone(),
            key_hash: entry.key_hash.clone(),
            proposal_id: proposal.proposal_id,
            note: "INC-7: checked".into(),
        })
        .await
        .expect("approved on the other replica");
    let replayed = payments
        .charge_subscription(charge("killed-charge", WALLET, 40_000))
        .await
        .expect("the settlement is replayed")
        .into_inner();
    assert_eq!(replayed.approval_number, "0000000000000001");
    let davi =
        crate::support::admin(&sandbox, reqwest::Method::GET, "/daviplata/counters", None).await;
    assert_eq!(davi["payments_made"], 1);
}

// ---- Deadlines too short to send in -------------------------------------------------------

/// Charges given 1 to 5 ms are refused before anything leaves: nothing reaches Daviplata,
/// nothing is listed as unknown, and each key charges once when retried with time to spare.
#[tokio::test]
async fn a_deadline_too_short_to_send_in_leaves_no_phantom_unknown_outcome() {
    let app = rp::app().await;
    let mut client = rp::client(&app);
    subscribe(&mut client, WALLET, 1_000_000).await;
    let made = app.daviplata_counter("payments_made").await;
    for n in 0..20u64 {
        let mut call = tonic::Request::new(charge(&format!("hurried-{n}"), WALLET, 1_000));
        call.set_timeout(Duration::from_millis(1 + n % 5));
        let refused = client.charge_subscription(call).await.unwrap_err();
        // The client may give up first (CANCELLED); pasarela refuses in any case.
        assert!(
            matches!(refused.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{refused:?}"
        );
    }
    assert_eq!(app.daviplata_counter("payments_made").await, made);
    assert_eq!(
        app.route_calls("daviplata", &format!("POST {PAYMENT_PATH}"))
            .await,
        0,
        "nothing was sent"
    );
    assert!(
        unknown(&app, "pasarela.recurring_payments.v1")
            .await
            .is_empty(),
        "no phantom unknown outcome"
    );
    for n in 0..20u64 {
        client
            .charge_subscription(charge(&format!("hurried-{n}"), WALLET, 1_000))
            .await
            .expect("the retry charges");
    }
    assert_eq!(app.daviplata_counter("payments_made").await, made + 20);
}

// ---- TxIds are reserved once a withdrawal is valid and its key new ---------------------------

/// The TxId's sequence number: its last ten digits.
fn sequence_number(tx_id: &str) -> u64 {
    tx_id[tx_id.len() - 10..].parse().expect("ten digits")
}

/// A refused request, a replay and a duplicate under a held key take no TxId: the next new
/// withdrawal has the number after the last one sent.
#[tokio::test]
async fn only_a_valid_withdrawal_under_a_new_key_takes_a_tx_id() {
    let app = sec::app().await;
    let mut client = sec::client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let first = client
        .withdraw_with_otp(withdrawal(&otp, "seq-1"))
        .await
        .expect("paid")
        .into_inner();
    let mut invalid = withdrawal(&otp, "seq-2");
    invalid.audit_number = "not digits".into();
    let refused = client.withdraw_with_otp(invalid).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let replayed = client
        .withdraw_with_otp(withdrawal(&otp, "seq-1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(replayed, first);
    let otp = withdrawal_otp(&mut client).await;
    let next = client
        .withdraw_with_otp(withdrawal(&otp, "seq-3"))
        .await
        .expect("paid")
        .into_inner();
    assert_eq!(
        sequence_number(&next.tx_id),
        sequence_number(&first.tx_id) + 1,
        "{} then {}",
        first.tx_id,
        next.tx_id
    );
}
