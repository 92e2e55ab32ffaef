//! A lost S18 withdrawal is asked about (`Action: R`, the same TxId), never re-created
//! blindly.

use super::*;

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
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
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
