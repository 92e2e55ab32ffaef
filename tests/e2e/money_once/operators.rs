//! The operators' reconciliation API: unknown outcomes listed, proposed, approved, settled.

use super::*;

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
