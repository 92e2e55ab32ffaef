//! S12, S18 end to end: withdrawal OTPs, withdrawals once per key (one process and two
//! replicas sharing a ledger), and what never reaches the bank.

use super::*;

// ---- S12, S18: withdrawals -------------------------------------------------------------------------

/// The sandbox's route of S18, as `GET /calls` names it.
const S18_ROUTE: &str = "POST /security-management/v3/withdrawal/otp";

/// How many S18 calls reached the sandbox.
async fn withdrawals_sent(app: &TestApp) -> u64 {
    app.admin_get("/calls").await["bcs"][S18_ROUTE]
        .as_u64()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_withdrawal_otp_is_cashed_once_at_a_correspondent() {
    let app = app().await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;

    let paid = client
        .withdraw_with_otp(withdrawal(&otp, "cash-1"))
        .await
        .expect("cashed")
        .into_inner();
    assert!(!paid.approval_id.is_empty());
    assert_eq!(paid.account_id, "26500084997");
    assert!(paid.tx_id.starts_with("APIF"), "{}", paid.tx_id);
    assert_eq!(paid.tx_id.len(), 20);

    let again = client
        .withdraw_with_otp(withdrawal(&otp, "cash-2"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(localized(&again).contains("UTILIZADA"), "{again:?}");
    app.assert_not_logged(&[&otp]);
}

#[tokio::test]
async fn one_key_withdraws_once_however_often_it_is_sent() {
    let app = app().await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let request = withdrawal(&otp, "withdrawal-42");

    let concurrent = (0..20).map(|_| {
        let mut client = client.clone();
        let request = request.clone();
        async move { client.withdraw_with_otp(request).await }
    });
    let mut answers: Vec<_> = futures::future::join_all(concurrent)
        .await
        .into_iter()
        .map(|answer| answer.expect("every duplicate is answered").into_inner())
        .collect();
    for _ in 0..20 {
        let answer = client.withdraw_with_otp(request.clone()).await;
        answers.push(answer.expect("a repeat replays").into_inner());
    }
    let first = &answers[0];
    assert!(!first.approval_id.is_empty());
    assert!(
        answers.iter().all(|answer| answer == first),
        "different answers under one key"
    );
    assert_eq!(
        withdrawals_sent(&app).await,
        1,
        "one withdrawal reached the bank"
    );

    let mut changed = request.clone();
    changed.audit_number = "017270".into();
    let refused = client.withdraw_with_otp(changed).await.unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(withdrawals_sent(&app).await, 1);
}

/// pasarela again, against `app`'s sandbox, its withdrawals recorded in the ledger `db`;
/// the caller shuts it down.
async fn second_replica(app: &TestApp, db: &TestPostgres) -> pasarela_server::app::Running {
    let mut config = pasarela_server::dev::config_for(&app.sandbox, None).expect("dev config");
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = None;
    shares_ledger(&mut config, db);
    pasarela_server::app::start(config)
        .await
        .expect("second replica starts")
}

#[tokio::test]
async fn two_replicas_sharing_a_ledger_withdraw_once_with_distinct_tx_ids() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let db = TestPostgres::start().await;
    let app = spawn_app_with(|config| shares_ledger(config, &db)).await;
    let replica = second_replica(&app, &db).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", replica.grpc_addr))
        .expect("endpoint")
        .connect_lazy();
    let mut first = client_on(&app, app.channel());
    let second = client_on(&app, channel);

    let otp = withdrawal_otp(&mut first).await;
    let request = withdrawal(&otp, "shared-withdrawal");
    let sends = (0..20).map(|i| {
        let request = request.clone();
        let (mut first, mut second) = (first.clone(), second.clone());
        async move {
            match i % 2 {
                0 => first.withdraw_with_otp(request).await,
                _ => second.withdraw_with_otp(request).await,
            }
        }
    });
    let answers: Vec<_> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|answer| answer.expect("every duplicate is answered").into_inner())
        .collect();
    assert!(answers.iter().all(|answer| answer == &answers[0]));
    assert_eq!(
        withdrawals_sent(&app).await,
        1,
        "one withdrawal for two replicas"
    );

    // Each replica makes its own TxId for a new withdrawal: never the same one.
    let mut tx_ids = vec![answers[0].tx_id.clone()];
    for (i, mut client) in [first.clone(), second.clone()].into_iter().enumerate() {
        let otp = withdrawal_otp(&mut first).await;
        let paid = client
            .withdraw_with_otp(withdrawal(&otp, &format!("replica-{i}")))
            .await
            .expect("cashed")
            .into_inner();
        tx_ids.push(paid.tx_id);
    }
    let distinct: std::collections::HashSet<_> = tx_ids.iter().collect();
    assert_eq!(distinct.len(), tx_ids.len(), "{tx_ids:?}");
    replica.shutdown().await.expect("second replica stops");
}

#[tokio::test]
async fn a_withdrawal_without_an_idempotency_key_never_reaches_the_bank() {
    let app = app().await;
    let mut client = client(&app);
    for key in ["", "with space"] {
        let refused = client
            .withdraw_with_otp(withdrawal("otp-value", key))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            bad_fields(&refused).contains(&"idempotency_key".to_owned()),
            "{refused:?}"
        );
    }
    assert_eq!(withdrawals_sent(&app).await, 0);
}

#[tokio::test]
async fn a_withdrawal_otp_needs_the_source_and_login_headers() {
    let app = app().await;
    let mut client = client(&app);
    let refused = client
        .request_withdrawal_otp(RequestWithdrawalOtpRequest {
            customer: cc("1028780657"),
            account_id: "26500084997".into(),
            amount: pesos(20_000),
            otc_id: "001".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = bad_fields(&refused);
    assert!(fields.contains(&"invoker.source".to_owned()), "{fields:?}");
    assert!(
        fields.contains(&"invoker.cust_login_id".to_owned()),
        "{fields:?}"
    );
}
