//! What pasarela keeps in its shared PostgreSQL ledger: records sealed to their keys are
//! never replayed once forged, altered or moved (written here with `psql`, as an intruder
//! with the database's password would); a TxId counter set back stops withdrawals (in the
//! process that notices, and in the database itself after a restart) instead of repeating
//! a TxId; reads need no ledger; only the configured CA's server and the right password are
//! accepted; and a record outlives the SIGKILL of the primary, its promoted standby
//! replaying every outcome answered before.

use pasarela::security::v1::get_password_status_request::Subject;
use pasarela::security::v1::{CustomerType, GetPasswordStatusRequest};
use tonic::Code;

use crate::support::security::{assert_error, client, shares_ledger, withdrawal, withdrawal_otp};
use crate::support::tools;
use crate::support::{TestApp, TestPostgres, cc, reason, spawn_app_with};

const S18_ROUTE: (&str, &str) = ("bcs", "POST /security-management/v3/withdrawal/otp");

/// Where the security service keeps its records and its TxId counter.
const RECORDS: &str = "security.records";
const COUNTERS: &str = "security.counters";

async fn app_on(db: &TestPostgres) -> TestApp {
    spawn_app_with(|config| shares_ledger(config, db)).await
}

/// The keys of the records in the ledger now, in the order they were written.
fn record_keys(db: &TestPostgres) -> Vec<String> {
    db.sql(&format!("SELECT key FROM {RECORDS} ORDER BY ctid"))
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn withdrawals_sent(app: &TestApp) -> u64 {
    app.route_calls(S18_ROUTE.0, S18_ROUTE.1).await
}

#[tokio::test]
async fn a_forged_altered_or_moved_record_is_never_replayed() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let db = TestPostgres::start().await;
    let app = app_on(&db).await;
    let mut client = client(&app);
    let first_otp = withdrawal_otp(&mut client).await;
    client
        .withdraw_with_otp(withdrawal(&first_otp, "till-7/first"))
        .await
        .expect("paid");
    let [first] = record_keys(&db).try_into().expect("one record");
    let second_otp = withdrawal_otp(&mut client).await;
    client
        .withdraw_with_otp(withdrawal(&second_otp, "till-7/second"))
        .await
        .expect("paid");
    let second = record_keys(&db)
        .into_iter()
        .find(|key| *key != first)
        .expect("a second record");
    let sealed = db.sql(&format!(
        "SELECT value FROM {RECORDS} WHERE key = '{first}'"
    ));
    let (_, json) = sealed
        .strip_prefix("v1.")
        .and_then(|rest| rest.split_once('.'))
        .expect("a sealed record");
    let sent = withdrawals_sent(&app).await;

    let forgeries = [
        ("unsealed", first.clone(), json.to_owned()),
        (
            "altered",
            first.clone(),
            sealed.replace("\"kind\":\"response\"", "\"kind\":\"response\" "),
        ),
        ("moved", second.clone(), sealed.clone()),
    ];
    for (what, key, value) in forgeries {
        let value = value.replace('\'', "''");
        db.sql(&format!(
            "UPDATE {RECORDS} SET value = '{value}' WHERE key = '{key}'"
        ));
        let (otp, idempotency_key) = if key == first {
            (&first_otp, "till-7/first")
        } else {
            (&second_otp, "till-7/second")
        };
        let refused = client
            .withdraw_with_otp(withdrawal(otp, idempotency_key))
            .await
            .expect_err(what);
        assert_error(&refused, Code::Internal, "IDEMPOTENCY_RECORD_TAMPERED");
    }
    assert_eq!(
        withdrawals_sent(&app).await,
        sent,
        "nothing was sent for a record that failed its seal"
    );
    assert!(app.logs().contains("failed its integrity check"));
    drop(client);
    app.stop().await;
}

fn password_status() -> GetPasswordStatusRequest {
    GetPasswordStatusRequest {
        transaction_id: "4835799410".into(),
        customer_type: CustomerType::Natural.into(),
        subject: Some(Subject::Customer(cc("1007641").expect("an id"))),
        ..Default::default()
    }
}

/// The TxId counter's last reserved number.
fn tx_id_counter(db: &TestPostgres) -> u64 {
    db.sql(&format!("SELECT last FROM {COUNTERS}"))
        .parse()
        .expect("one counter")
}

/// Moves the TxId counter back to `last`, as someone with the schema owner's rights
/// could: the database refuses it until its guard is disabled.
fn set_back(db: &TestPostgres, last: u64) {
    let set = format!("UPDATE {COUNTERS} SET last = {last}");
    let refused = db
        .try_sql(&set)
        .expect_err("a counter going back is refused");
    assert!(refused.contains("may not go back"), "{refused}");
    db.sql(&format!(
        "ALTER TABLE {COUNTERS} DISABLE TRIGGER counters_only_forward"
    ));
    db.sql(&set);
}

#[tokio::test]
async fn a_tx_id_counter_moved_backwards_stops_calls_instead_of_repeating_a_tx_id() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let db = TestPostgres::start().await;
    let app = app_on(&db).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    client
        .withdraw_with_otp(withdrawal(&otp, "rewind-0"))
        .await
        .expect("the first withdrawal reserves a block of TxIds");
    let reserved = tx_id_counter(&db);
    set_back(&db, 5);
    // The process uses up its block, then asks the ledger for the next one. Each
    // withdrawal after the first is refused by the bank (the OTP was cashed), but took its
    // TxId.
    let mut answered = 1;
    let refused = loop {
        match client
            .withdraw_with_otp(withdrawal(&otp, &format!("rewind-{answered}")))
            .await
        {
            Err(status) if reason(&status) == "TX_ID_SEQUENCE_REWOUND" => break status,
            _ => answered += 1,
        }
        assert!(answered <= 200, "the rewound counter was never noticed");
    };
    assert_error(&refused, Code::Internal, "TX_ID_SEQUENCE_REWOUND");
    assert!(reserved > 5 && answered <= 100, "{answered} answered");
    assert!(app.logs().contains("TxId sequence moved backwards"));
    drop(client);
    app.stop().await;
}

/// A restarted process cannot tell that the counter went back: the database refuses the
/// repeated TxId, and nothing is sent under it.
#[tokio::test]
async fn a_tx_id_counter_set_back_across_a_restart_is_refused_by_the_database() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let db = TestPostgres::start().await;
    let app = app_on(&db).await;
    let mut first = client(&app);
    let otp = withdrawal_otp(&mut first).await;
    let paid = first
        .withdraw_with_otp(withdrawal(&otp, "restart-0"))
        .await
        .expect("paid")
        .into_inner();
    drop(first);
    app.stop().await;
    // The block this withdrawal came from is handed out again.
    let block_start = tx_id_counter(&db) - 100;
    set_back(&db, block_start);

    let app = app_on(&db).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let refused = client
        .withdraw_with_otp(withdrawal(&otp, "restart-1"))
        .await
        .expect_err("a repeated TxId");
    assert_error(&refused, Code::Internal, "TRANSACTION_ID_REUSED");
    assert_eq!(withdrawals_sent(&app).await, 0, "nothing was sent");
    let logs = app.logs();
    assert!(
        logs.contains("a transaction id was proposed twice") && logs.contains(&paid.tx_id),
        "the log names the repeated TxId"
    );
    drop(client);
    app.stop().await;
}

/// Reads take no TxId from the shared sequence: with the ledger down they are answered,
/// while a withdrawal fails closed before anything is sent.
#[tokio::test]
async fn reads_need_no_ledger_and_withdrawals_fail_closed_without_it() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let mut db = TestPostgres::start().await;
    let app = app_on(&db).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    db.kill();
    for _ in 0..3 {
        client
            .get_password_status(password_status())
            .await
            .expect("a read answers without the ledger");
    }
    let refused = client
        .withdraw_with_otp(withdrawal(&otp, "store-down"))
        .await
        .unwrap_err();
    assert_error(&refused, Code::Unavailable, "IDEMPOTENCY_STORE_UNAVAILABLE");
    assert_eq!(withdrawals_sent(&app).await, 0, "nothing was sent");
    drop(client);
    app.stop().await;
}

/// pasarela started (or refused) with `configure`, in front of its own sandbox.
async fn start_error(configure: impl FnOnce(&mut pasarela_server::Config)) -> String {
    let (sandbox, _pki) = crate::support::sandbox().await;
    let mut config = pasarela_server::dev::config_for(&sandbox, None).expect("dev config");
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = None;
    configure(&mut config);
    match pasarela_server::app::start(config).await {
        Ok(running) => {
            running.shutdown().await.expect("stops");
            String::new()
        }
        Err(error) => format!("{error:#}"),
    }
}

#[tokio::test]
async fn only_the_configured_ca_s_ledger_and_the_right_password_start_the_service() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let db = TestPostgres::start().await;
    let stranger = TestPostgres::start().await;
    let foreign_ca = stranger.ca_file();
    let error = start_error(|config| {
        shares_ledger(config, &db);
        let security = config.security.as_mut().expect("security");
        security.idempotency.postgres.ca_file = Some(foreign_ca);
    })
    .await;
    assert!(
        error.contains("the idempotency database cannot be reached"),
        "a CA that signs nothing here: {error}"
    );
    let wrong = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(wrong.path(), "not-the-password").expect("password file");
    let error = start_error(|config| {
        shares_ledger(config, &db);
        let security = config.security.as_mut().expect("security");
        security.idempotency.postgres.password_file = Some(wrong.path().to_owned());
    })
    .await;
    assert!(
        error.contains("the idempotency database cannot be reached"),
        "a wrong password: {error}"
    );
    assert!(
        !error.contains("not-the-password"),
        "the password is never shown: {error}"
    );
    let error = start_error(|config| shares_ledger(config, &db)).await;
    assert_eq!(error, "", "the right settings start");
}

#[tokio::test]
async fn a_retry_after_the_ledger_is_sigkilled_and_restarted_replays_the_outcome() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let mut db = TestPostgres::start().await;
    let app = app_on(&db).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let paid = client
        .withdraw_with_otp(withdrawal(&otp, "restart/1"))
        .await
        .expect("paid")
        .into_inner();
    db.kill();
    db.resume().await;
    let replayed = loop {
        match client
            .withdraw_with_otp(withdrawal(&otp, "restart/1"))
            .await
        {
            Ok(replayed) => break replayed.into_inner(),
            // The pool reconnects within moments of the restart.
            Err(status) if status.code() == Code::Unavailable => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    };
    assert_eq!(paid, replayed, "the first outcome, from the ledger's WAL");
    assert_eq!(withdrawals_sent(&app).await, 1, "paid once");
    drop(client);
    app.stop().await;
}

/// `pasarela <args>` with only the configuration `file`: whether it succeeded, and what
/// it printed on both streams.
fn pasarela(args: &[&str], file: &std::path::Path) -> (bool, String) {
    let output = std::process::Command::new(crate::support::pasarela_bin())
        .args(args)
        .env_clear()
        .env("PASARELA_CONFIG", file)
        .output()
        .expect("pasarela runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[tokio::test]
async fn pasarela_migrate_brings_each_ledger_up_to_date_and_serve_refuses_an_older_one() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let db = TestPostgres::start().await;
    let (sandbox, _pki) = crate::support::sandbox().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let grpc = ([127, 0, 0, 1], crate::support::process::free_port()).into();
    let file = crate::support::replica::write_config(dir.path(), &sandbox, &[&db], grpc);
    let text = std::fs::read_to_string(&file).expect("config");
    let text = text.replace("migrate_at_start = true", "migrate_at_start = false");
    std::fs::write(&file, text).expect("config");

    let (served, printed) = pasarela(&["serve"], &file);
    assert!(!served, "an empty database is refused");
    assert!(printed.contains("run `pasarela migrate`"), "{printed}");

    let latest = pasarela_idempotency::latest_schema();
    let (migrated, printed) = pasarela(&["migrate", "--to", "1"], &file);
    assert!(migrated, "{printed}");
    assert!(
        printed.contains("security: schema security at version 1 (was 0)"),
        "{printed}"
    );
    let (migrated, printed) = pasarela(&["migrate"], &file);
    assert!(migrated, "{printed}");
    // Each service's section names a schema of its own, here after the section.
    for schema in ["security", "recurring_payments"] {
        assert!(
            printed.contains(&format!(
                "{schema}: schema {schema} at version {latest} (was 1)"
            )),
            "{printed}"
        );
        let version = db.sql(&format!(
            "SELECT max(version) FROM {schema}.schema_migrations"
        ));
        assert_eq!(version, latest.to_string());
    }
    let (again, printed) = pasarela(&["migrate"], &file);
    assert!(
        again && printed.contains(&format!("(was {latest})")),
        "{printed}"
    );
}

/// The emulator's S18 tallies: withdrawals actually executed.
async fn executed(app: &TestApp) -> u64 {
    app.admin_get("/bcs/withdrawals").await["executed"]
        .as_u64()
        .expect("executed")
}

#[tokio::test]
async fn the_primary_sigkilled_mid_load_and_its_standby_promoted_lose_no_outcome() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let (primary, standby) = TestPostgres::start_with_standby().await;
    let app = spawn_app_with(|config| {
        shares_ledger(config, &primary);
        let security = config.security.as_mut().expect("security");
        security.idempotency.postgres.url = Some(TestPostgres::url(&[&primary, &standby]).into());
    })
    .await;
    let mut client = client(&app);

    let mut paid = Vec::new();
    let mut refused = 0;
    let mut primary = Some(primary);
    let mut paid_after_failover = 0;
    for call in 0..400 {
        if call == 3 {
            // Mid-load: the next withdrawals meet a dead primary until the promotion.
            let mut dead = primary.take().expect("the primary");
            dead.kill();
            client
                .get_password_status(password_status())
                .await
                .expect("the rest of the service keeps answering");
        }
        if call == 6 {
            standby.promote().await;
        }
        let otp = withdrawal_otp(&mut client).await;
        let key = format!("failover/{call}");
        match client.withdraw_with_otp(withdrawal(&otp, &key)).await {
            Ok(response) => {
                paid_after_failover += usize::from(primary.is_none() && refused > 0);
                paid.push((key, otp, response.into_inner()));
            }
            Err(status) => {
                assert_error(&status, Code::Unavailable, "IDEMPOTENCY_STORE_UNAVAILABLE");
                refused += 1;
            }
        }
        if paid_after_failover >= 3 {
            break;
        }
    }
    assert!(refused > 0, "calls failed closed while no primary answered");
    assert!(
        paid_after_failover >= 3,
        "pasarela found the promoted standby"
    );
    assert_eq!(
        executed(&app).await,
        paid.len() as u64,
        "nothing was sent for a refused call"
    );
    for (key, otp, response) in &paid {
        let replayed = client
            .withdraw_with_otp(withdrawal(otp, key))
            .await
            .unwrap_or_else(|status| panic!("{key}: {status:?}"))
            .into_inner();
        assert_eq!(
            &replayed, response,
            "{key} kept its outcome across the failover"
        );
    }
    assert_eq!(executed(&app).await, paid.len() as u64, "and was paid once");
    drop(client);
    app.stop().await;
}
