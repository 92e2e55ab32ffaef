//! The PostgreSQL ledger against real servers: the store contract, races between pools,
//! the database's own refusal of a repeated transaction id, migrations in place, rotated
//! credentials, failing closed, and a record that outlives the SIGKILL of its primary.

use std::collections::HashSet;
use std::sync::Arc;

use pasarela_test_support::postgres_server::{CERTIFICATE_ROLE, TestPostgres};
use pasarela_test_support::tools;

use super::*;
use crate::tests::new_key;
use crate::{Keep, Migrated, latest_schema, migrate};

fn config(servers: &[&TestPostgres]) -> PostgresConfig {
    PostgresConfig {
        url: Some(TestPostgres::url(servers).into()),
        password_file: Some(servers[0].password_file()),
        ca_file: Some(servers[0].ca_file()),
        migrate_at_start: true,
        ..PostgresConfig::default()
    }
}

async fn store(server: &TestPostgres) -> PostgresStore {
    PostgresStore::connect(&config(&[server])).await.unwrap()
}

/// Two pools of the same ledger, as two replicas have.
async fn two_stores(server: &TestPostgres) -> [Arc<PostgresStore>; 2] {
    [Arc::new(store(server).await), Arc::new(store(server).await)]
}

const MINUTE: Keep = Keep::For(Duration::from_secs(60));

#[tokio::test]
async fn claims_compare_and_swap_in_postgres() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let store = store(&server).await;
    crate::tests::claims_compare_and_swap(&store).await;
    let short = Keep::For(Duration::from_millis(1));
    let claimed = store.insert_new("short", "v", short, new_key("t-short"));
    assert_eq!(claimed.await.unwrap(), Inserted::Claimed);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.get("short").await.unwrap(), None, "expired");
    let again = store.insert_new("short", "w", MINUTE, new_key("t-again"));
    assert_eq!(
        again.await.unwrap(),
        Inserted::Claimed,
        "an expired key is claimed afresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_many_claims_from_two_pools_wins() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let stores = two_stores(&server).await;
    let claims: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            tokio::spawn(async move {
                let value = format!("claim-{i}");
                let tx = format!("tx-{i}");
                store
                    .insert_new("race", &value, MINUTE, new_key(&tx))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for claim in claims {
        winners += usize::from(claim.await.unwrap() == Inserted::Claimed);
    }
    assert_eq!(winners, 1);
    let issued = server.sql("SELECT count(*) FROM pasarela.transaction_ids");
    assert_eq!(issued, "1", "the losers' transaction ids were not taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_never_reserve_the_same_number() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let stores = two_stores(&server).await;
    let reservations: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            tokio::spawn(async move { store.reserve("seq", 5, 1_000).await.unwrap() })
        })
        .collect();
    let mut numbers = HashSet::new();
    for reservation in reservations {
        let first = reservation.await.unwrap();
        assert!(first > 1_000, "the seed starts the counter");
        for n in first..first + 5 {
            assert!(numbers.insert(n), "{n} reserved twice");
        }
    }
    assert_eq!(numbers.len(), 200);
}

#[tokio::test]
async fn a_counter_set_back_cannot_hand_out_a_transaction_id_again() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let store = store(&server).await;
    let first = store.reserve("seq", 1, 0).await.unwrap();
    let tx = format!("TX{first}");
    let claimed = store.insert_new("a", "v", MINUTE, new_key(&tx));
    assert_eq!(claimed.await.unwrap(), Inserted::Claimed);
    let refused = server.try_sql("UPDATE pasarela.counters SET last = 0");
    assert!(
        refused.is_err_and(|error| error.contains("may not go back")),
        "the database keeps its counters going forward"
    );
    let forgotten = server.try_sql("DELETE FROM pasarela.transaction_ids");
    assert!(forgotten.is_err_and(|error| error.contains("transaction ids are kept")));
    // Someone with the owner's rights moves the counter back anyway, and the record goes.
    server.sql("ALTER TABLE pasarela.counters DISABLE TRIGGER counters_only_forward");
    server.sql("UPDATE pasarela.counters SET last = 0");
    server.sql("DELETE FROM pasarela.records");
    let again = store.reserve("seq", 1, 0).await.unwrap();
    assert_eq!(again, first, "the counter did go back");
    let tx = format!("TX{again}");
    let repeated = store.insert_new("b", "v", MINUTE, new_key(&tx));
    assert_eq!(
        repeated.await.unwrap(),
        Inserted::TransactionIdTaken,
        "the database refuses the repeated transaction id"
    );
    assert_eq!(store.get("b").await.unwrap(), None, "nothing was claimed");
    let open = store.members("open").await.unwrap();
    assert!(!open.contains(&"b".to_owned()), "{open:?}");
}

#[tokio::test]
async fn an_older_schema_is_upgraded_in_place_and_refused_until_it_is() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let older = PostgresConfig {
        migrate_at_start: false,
        ..config(&[&server])
    };
    let first = migrate(&older, Some(1)).await.unwrap();
    assert_eq!(first, Migrated { from: 0, to: 1 });
    server.sql(
        "INSERT INTO pasarela.records (key, value, expires_at) \
         VALUES ('kept', 'v', now() + interval '1 hour')",
    );
    let refused = PostgresStore::connect(&older).await.err().expect("refused");
    let refused = format!("{refused:#}");
    assert!(refused.contains("run `pasarela migrate`"), "{refused}");
    let upgraded = migrate(&older, None).await.unwrap();
    let latest = latest_schema();
    assert_eq!(
        upgraded,
        Migrated {
            from: 1,
            to: latest
        }
    );
    let again = migrate(&older, None).await.unwrap();
    assert_eq!(
        again,
        Migrated {
            from: latest,
            to: latest
        },
        "nothing runs twice"
    );
    let store = PostgresStore::connect(&older).await.unwrap();
    assert_eq!(store.get("kept").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn a_rotated_password_is_read_for_each_new_connection() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let settings = PostgresConfig {
        pool_size: 1,
        ..config(&[&server])
    };
    let store = PostgresStore::connect(&settings).await.unwrap();
    server.sql("ALTER ROLE pasarela PASSWORD 'rotated-password'");
    std::fs::write(server.password_file(), "rotated-password\n").unwrap();
    // The pooled connection is cut: the next one must log in with the new password.
    server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pasarela'");
    let mut answered = false;
    for _ in 0..20 {
        if store.get("any").await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answered,
        "a new connection logged in with the rotated password"
    );
    let logins = server.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'pasarela'");
    assert_eq!(logins, "1");
}

#[tokio::test]
async fn only_the_configured_ca_s_server_is_trusted() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let stranger = TestPostgres::start().await;
    let wrong_ca = PostgresConfig {
        ca_file: Some(stranger.ca_file()),
        ..config(&[&server])
    };
    assert!(
        PostgresStore::connect(&wrong_ca).await.is_err(),
        "another CA's server"
    );
    let no_ca = PostgresConfig {
        ca_file: None,
        ..config(&[&server])
    };
    let error = PostgresStore::connect(&no_ca).await.err().unwrap();
    assert!(format!("{error:#}").contains("TLS only"), "{error:#}");
}

#[tokio::test]
async fn a_dead_database_fails_each_operation_closed() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let mut server = TestPostgres::start().await;
    let store = store(&server).await;
    server.kill();
    let refused = store.insert_new("k", "v", MINUTE, new_key("t"));
    assert!(refused.await.is_err(), "fails closed");
    assert!(store.get("k").await.is_err());
    assert!(store.reserve("seq", 1, 0).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_claims_survive_the_sigkill_of_the_primary_and_a_promotion() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let (mut primary, standby) = TestPostgres::start_with_standby().await;
    let settings = PostgresConfig {
        statement_timeout: Duration::from_millis(1_500),
        ..config(&[&primary, &standby])
    };
    let store = Arc::new(PostgresStore::connect(&settings).await.unwrap());
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut refused = 0;
                for i in 0..300 {
                    let key = format!("w{writer}-{i}");
                    let tx = format!("tx-{key}");
                    let claimed = store.insert_new(&key, "claimed", MINUTE, new_key(&tx));
                    match claimed.await {
                        Ok(Inserted::Claimed) => acknowledged.push(key),
                        Ok(other) => panic!("{key}: {other:?}"),
                        Err(_) => refused += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (acknowledged, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    primary.kill();
    standby.promote().await;
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for writer in writers {
        let (keys, failed) = writer.await.unwrap();
        acknowledged.extend(keys);
        refused += failed;
    }
    assert!(refused > 0, "claims were refused while no primary answered");
    assert!(
        acknowledged.len() > 100,
        "writes went on after the promotion"
    );
    let on_standby: HashSet<String> = standby
        .sql("SELECT key FROM pasarela.records")
        .lines()
        .map(str::to_owned)
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|key| !on_standby.contains(*key))
        .collect();
    assert!(lost.is_empty(), "acknowledged claims lost: {lost:?}");
}

#[tokio::test]
async fn an_open_record_never_expires_and_the_sweep_spares_it() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let store = store(&server).await;
    let open = store.insert_new("open", "v", Keep::UntilSettled, new_key("t-open"));
    assert_eq!(open.await.unwrap(), Inserted::Claimed);
    let short = Keep::For(Duration::from_millis(1));
    let done = store.insert_new("done", "v", short, new_key("t-done"));
    assert_eq!(done.await.unwrap(), Inserted::Claimed);
    tokio::time::sleep(Duration::from_millis(20)).await;
    server.sql(&store.sql.sweep.replace("$1::bigint", "10"));
    let kept = server.sql("SELECT key, expires_at FROM pasarela.records");
    assert_eq!(kept, "open|infinity", "the expired final record was swept");
}

/// Even where the role's own default acknowledges a commit before the standby has it.
#[tokio::test]
async fn a_claim_is_not_acknowledged_before_the_synchronous_standby_holds_it() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let (primary, mut standby) = TestPostgres::start_with_standby().await;
    primary.sql("ALTER ROLE pasarela SET synchronous_commit = local");
    let settings = PostgresConfig {
        statement_timeout: Duration::from_secs(3),
        ..config(&[&primary])
    };
    let store = PostgresStore::connect(&settings).await.unwrap();
    let claimed = store.insert_new("before", "v", MINUTE, new_key("t-before"));
    assert_eq!(claimed.await.unwrap(), Inserted::Claimed);
    standby.kill();
    let waiting = store.insert_new("after", "v", MINUTE, new_key("t-after"));
    assert!(
        waiting.await.is_err(),
        "no standby holds the claim: it is not acknowledged"
    );
}

#[tokio::test]
async fn plaintext_is_never_used_even_where_the_server_and_the_url_allow_it() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    server.allow_plaintext();
    let plain_url = TestPostgres::url(&[&server]).replace(
        "target_session_attrs=read-write",
        "sslmode=disable&target_session_attrs=read-write",
    );
    let settings = PostgresConfig {
        url: Some(plain_url.into()),
        ..config(&[&server])
    };
    let store = PostgresStore::connect(&settings).await.unwrap();
    store.get("any").await.unwrap();
    let encrypted = server.sql(
        "SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE usename = 'pasarela'",
    );
    assert_eq!(encrypted, "t", "every connection of pasarela's is TLS");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let elsewhere = format!(
        "host=wrong-name.invalid hostaddr=127.0.0.1 port={} user=pasarela dbname=pasarela",
        server.port
    );
    let settings = PostgresConfig {
        url: Some(elsewhere.into()),
        ..config(&[&server])
    };
    let refused = PostgresStore::connect(&settings)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{refused:#}").contains("certificate not valid for name"),
        "the name is checked: {refused:#}"
    );
}

/// A primary that stops answering without closing its connections (frozen, or cut off
/// by the network): each call that timed out closes its connection, so that the next one
/// connects afresh and finds the promoted standby. (The standby is listed first: a new
/// connection to a host that accepts but never answers would wait out the call's bound.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_to_a_frozen_primary_are_dropped_and_the_promoted_standby_found() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let (mut primary, standby) = TestPostgres::start_with_standby().await;
    let settings = PostgresConfig {
        statement_timeout: Duration::from_secs(3),
        ..config(&[&standby, &primary])
    };
    let store = PostgresStore::connect(&settings).await.unwrap();
    for i in 0..4 {
        let (key, tx) = (format!("warm-{i}"), format!("t-warm-{i}"));
        let warm = store.insert_new(&key, "v", MINUTE, new_key(&tx));
        assert_eq!(warm.await.unwrap(), Inserted::Claimed);
    }
    primary.freeze();
    standby.promote().await;
    let mut failed = 0;
    let found = loop {
        let tx = format!("t-after-{failed}");
        match store.get("warm-0").await {
            Ok(_) => break store.insert_new(&tx, "v", MINUTE, new_key(&tx)).await,
            Err(error) => {
                failed += 1;
                assert!(
                    failed < 20,
                    "the promoted standby was never found: {error:?}"
                );
            }
        }
    };
    assert_eq!(found.unwrap(), Inserted::Claimed);
    assert!(failed >= 1, "the frozen primary's connection failed first");
}

#[tokio::test]
async fn a_client_certificate_stands_for_a_password() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let server = TestPostgres::start().await;
    let url = format!(
        "postgresql://{CERTIFICATE_ROLE}@localhost:{}/pasarela",
        server.port
    );
    let certified = PostgresConfig {
        url: Some(url.into()),
        password_file: None,
        cert_file: Some(server.client_cert_file()),
        key_file: Some(server.client_key_file()),
        ..config(&[&server])
    };
    let store = PostgresStore::connect(&certified).await.unwrap();
    let claimed = store.insert_new("k", "v", MINUTE, new_key("t"));
    assert_eq!(claimed.await.unwrap(), Inserted::Claimed);
    let without = PostgresConfig {
        cert_file: None,
        key_file: None,
        ..certified
    };
    let refused = PostgresStore::connect(&without)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{refused:#}").contains("cannot be reached"),
        "{refused:#}"
    );
}
