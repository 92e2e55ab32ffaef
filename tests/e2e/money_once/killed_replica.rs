//! A replica killed mid-call: its key stays held, never sent again by another.

use super::*;

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
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
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
