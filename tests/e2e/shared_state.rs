//! What pasarela keeps in a shared Redis is tamper-evident: records sealed to their keys
//! are never replayed once forged, altered or moved (written here with `redis-cli`, as an
//! intruder would), and a TxId counter moved backwards stops withdrawals instead of
//! repeating a TxId.

use pasarela::security::v1::get_password_status_request::Subject;
use pasarela::security::v1::{CustomerType, GetPasswordStatusRequest};
use tonic::Code;

use crate::security::{assert_error, client, shares_redis, withdrawal, withdrawal_otp};
use crate::support::{TestApp, TestRedis, cc, reason, spawn_app_with};
use pasarela_test_support::redis_server::TestSentinel;

const S18_ROUTE: (&str, &str) = ("bcs", "POST /security-management/v3/withdrawal/otp");

/// Where the security service keeps its records, and its TxId counter.
const RECORDS: &str = "pasarela:security:idempotency:";
const TX_ID_SEQUENCE: &str = "pasarela:security:tx-id-sequence";

async fn app_on(redis: &TestRedis) -> TestApp {
    let url = redis.url.clone();
    spawn_app_with(|config| shares_redis(config, &url)).await
}

/// The record keys in Redis now (not the set of open keys).
fn record_keys(redis: &TestRedis) -> Vec<String> {
    let mut keys: Vec<String> = redis
        .cli(&["--scan", "--pattern", &format!("{RECORDS}*")])
        .lines()
        .filter(|key| !key.ends_with(":open"))
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_forged_altered_or_moved_record_is_never_replayed() {
    let redis = TestRedis::start().await;
    let app = app_on(&redis).await;
    let mut client = client(&app);
    let first_otp = withdrawal_otp(&mut client).await;
    client
        .withdraw_with_otp(withdrawal(&first_otp, "till-7/first"))
        .await
        .expect("paid");
    let [first] = record_keys(&redis).try_into().expect("one record");
    let second_otp = withdrawal_otp(&mut client).await;
    client
        .withdraw_with_otp(withdrawal(&second_otp, "till-7/second"))
        .await
        .expect("paid");
    let second = record_keys(&redis)
        .into_iter()
        .find(|key| *key != first)
        .expect("a second record");
    let sealed = redis.cli(&["GET", &first]);
    let (_, json) = sealed
        .strip_prefix("v1.")
        .and_then(|rest| rest.split_once('.'))
        .expect("a sealed record");
    let sent = app.route_calls(S18_ROUTE.0, S18_ROUTE.1).await;

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
        redis.cli(&["SET", &key, &value]);
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
        app.route_calls(S18_ROUTE.0, S18_ROUTE.1).await,
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

#[tokio::test]
async fn a_tx_id_counter_moved_backwards_stops_calls_instead_of_repeating_a_tx_id() {
    let redis = TestRedis::start().await;
    let app = app_on(&redis).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    client
        .withdraw_with_otp(withdrawal(&otp, "rewind-0"))
        .await
        .expect("the first withdrawal reserves a block of TxIds");
    let reserved: u64 = redis
        .cli(&["GET", TX_ID_SEQUENCE])
        .parse()
        .expect("a counter");
    redis.cli(&["SET", TX_ID_SEQUENCE, "5"]);
    // The process uses up its block, then asks Redis for the next one. Each withdrawal
    // after the first is refused by the bank (the OTP was cashed), but took its TxId.
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

/// Reads take no TxId from the shared sequence: with the idempotency Redis down they are
/// answered, while a withdrawal fails closed before anything is sent.
#[tokio::test]
async fn reads_need_no_idempotency_store_and_withdrawals_fail_closed_without_it() {
    let mut redis = TestRedis::start().await;
    let app = app_on(&redis).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    redis.kill();
    for _ in 0..3 {
        client
            .get_password_status(password_status())
            .await
            .expect("a read answers without the store");
    }
    let refused = client
        .withdraw_with_otp(withdrawal(&otp, "store-down"))
        .await
        .unwrap_err();
    assert_error(&refused, Code::Unavailable, "IDEMPOTENCY_STORE_UNAVAILABLE");
    let sent = app
        .route_calls("bcs", "POST /security-management/v3/withdrawal/otp")
        .await;
    assert_eq!(sent, 0, "nothing was sent");
    drop(client);
    app.stop().await;
}

/// The deploy's Redis users (`user` lines of the dev overlay's redis.conf: the default
/// user off, pasarela's limited to its keys and the commands it sends, scripts' included)
/// as `redis-server` arguments, and pasarela's password.
fn deploy_acl() -> (Vec<String>, String) {
    let conf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/k8s/overlays/dev/secrets/redis.conf"),
    )
    .expect("the dev overlay's redis.conf");
    let mut args = Vec::new();
    let mut password = None;
    for rule in conf.lines().filter_map(|line| line.strip_prefix("user ")) {
        args.push("--user".to_owned());
        for token in rule.split_whitespace() {
            password = password.or(token.strip_prefix('>').map(str::to_owned));
            args.push(token.to_owned());
        }
    }
    (args, password.expect("pasarela's user has a password"))
}

/// Security's records in the TLS Redis at `port`, as the ACL user with `password`,
/// trusting `ca`.
fn tls_store(
    config: &mut pasarela_server::Config,
    port: u16,
    password: &str,
    ca: &std::path::Path,
) {
    shares_redis(
        config,
        &format!("rediss://pasarela:{password}@localhost:{port}/0"),
    );
    let idempotency = &mut config.security.as_mut().expect("security").idempotency;
    idempotency.tls = Some(pasarela_redis::RedisTls {
        ca_file: Some(ca.to_owned()),
        ..Default::default()
    });
}

/// pasarela started (or refused) with `configure`, in front of its own sandbox.
async fn start_error(configure: impl FnOnce(&mut pasarela_server::Config)) -> String {
    let pki = tempfile::tempdir().expect("temp dir");
    let sandbox =
        pasarela_sandbox::Sandbox::start(pasarela_server::dev::sandbox_options(pki.path()))
            .await
            .expect("sandbox");
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
async fn redis_over_tls_as_an_acl_user_keeps_the_records_and_wrong_settings_stop_the_start() {
    let certificates = tempfile::tempdir().expect("temp dir");
    let pki = pasarela_sandbox::DevPki::load_or_create(certificates.path()).expect("pki");
    let stranger = tempfile::tempdir().expect("temp dir");
    let other_ca = pasarela_sandbox::DevPki::load_or_create(stranger.path()).expect("pki");
    let files = pasarela_test_support::redis_server::TlsFiles {
        cert: &pki.server_cert,
        key: &pki.server_key,
        ca: &pki.ca_cert,
    };
    let (users, password) = deploy_acl();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let redis = TestRedis::start_tls(&files, &users).await;
    let port = redis.port();

    let ca = pki.ca_cert.clone();
    let app = spawn_app_with(|config| tls_store(config, port, &password, &ca)).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let paid = client
        .withdraw_with_otp(withdrawal(&otp, "tls/1"))
        .await
        .expect("paid over TLS")
        .into_inner();
    let replayed = client
        .withdraw_with_otp(withdrawal(&otp, "tls/1"))
        .await
        .expect("replayed from the TLS Redis")
        .into_inner();
    assert_eq!(paid, replayed);
    assert_eq!(app.route_calls(S18_ROUTE.0, S18_ROUTE.1).await, 1);
    drop(client);
    app.stop().await;

    let foreign_ca = other_ca.ca_cert.clone();
    let error = start_error(|config| tls_store(config, port, &password, &foreign_ca)).await;
    assert!(
        error.contains("idempotency redis") && error.contains("invalid peer certificate"),
        "a CA that signs nothing here: {error}"
    );
    let error = start_error(|config| tls_store(config, port, "not-the-password", &ca)).await;
    assert!(
        error.contains("idempotency redis") && error.contains("authentication failed"),
        "a wrong password: {error}"
    );
    assert!(
        !error.contains("not-the-password"),
        "the password is never shown: {error}"
    );
    let error = start_error(|config| {
        shares_redis(config, &format!("redis://127.0.0.1:{port}/0"));
    })
    .await;
    assert!(
        !error.is_empty(),
        "plain text to a TLS-only Redis is refused"
    );
}

#[tokio::test]
async fn a_redis_that_may_evict_records_is_refused_unless_allowed() {
    let redis = TestRedis::start_with(&["--maxmemory-policy", "allkeys-lru"]).await;
    let url = redis.url.clone();
    let error = start_error(|config| shares_redis(config, &url)).await;
    assert!(
        error.contains("maxmemory-policy allkeys-lru") && error.contains("allow_eviction"),
        "{error}"
    );
    let error = start_error(|config| {
        shares_redis(config, &url);
        let idempotency = &mut config.security.as_mut().expect("security").idempotency;
        idempotency.allow_eviction = true;
    })
    .await;
    assert_eq!(error, "", "accepted when allowed");
}

#[tokio::test]
async fn a_retry_after_redis_restarts_from_its_append_only_file_replays_the_outcome() {
    let mut redis = TestRedis::start_durable().await;
    let app = app_on(&redis).await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let paid = client
        .withdraw_with_otp(withdrawal(&otp, "aof/1"))
        .await
        .expect("paid")
        .into_inner();
    redis.kill();
    redis.resume().await;
    let replayed = loop {
        match client.withdraw_with_otp(withdrawal(&otp, "aof/1")).await {
            Ok(replayed) => break replayed.into_inner(),
            // The connection comes back within moments of the restart.
            Err(status) if status.code() == Code::Unavailable => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    };
    assert_eq!(
        paid, replayed,
        "the first outcome, from the append-only file"
    );
    assert_eq!(
        app.route_calls(S18_ROUTE.0, S18_ROUTE.1).await,
        1,
        "paid once"
    );
    drop(client);
    app.stop().await;
}

/// Until `ready` holds, within `seconds`.
async fn eventually(seconds: u64, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {seconds} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The emulator's S18 tallies: withdrawals actually executed.
async fn executed(app: &TestApp) -> u64 {
    app.admin_get("/bcs/withdrawals").await["executed"]
        .as_u64()
        .expect("executed")
}

#[tokio::test]
async fn sentinel_promotes_a_replica_mid_load_and_no_outcome_is_lost() {
    // Replicas sync at once rather than after Redis's default 5 s wait for more of them.
    let quick_sync = ["--repl-diskless-sync-delay", "0"];
    let primary = TestRedis::start_with(&quick_sync).await;
    let replicas = [
        TestRedis::start_replica(&primary, &quick_sync).await,
        TestRedis::start_replica(&primary, &quick_sync).await,
    ];
    eventually(20, "both replicas in sync", || {
        primary
            .cli(&["INFO", "replication"])
            .matches("state=online")
            .count()
            == 2
    })
    .await;
    let mut sentinels = Vec::new();
    for _ in 0..3 {
        sentinels.push(TestSentinel::start("pasarela", &primary, 2).await);
    }
    let replica_ports: Vec<String> = replicas.iter().map(|r| r.port().to_string()).collect();
    eventually(
        20,
        "the sentinels know both replicas and each other",
        || {
            sentinels.iter().all(|sentinel| {
                let known = sentinel.cli(&["SENTINEL", "replicas", "pasarela"]);
                let peers = sentinel.cli(&["SENTINEL", "sentinels", "pasarela"]);
                replica_ports
                    .iter()
                    .all(|port| known.contains(port.as_str()))
                    && peers.matches("127.0.0.1").count() >= 2
            })
        },
    )
    .await;
    let hosts: Vec<String> = sentinels
        .iter()
        .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
        .collect();
    let url = format!("redis+sentinel://{}/pasarela", hosts.join(","));
    let app = spawn_app_with(|config| {
        shares_redis(config, &url);
        // Every claim and outcome is on a replica before it counts.
        config
            .security
            .as_mut()
            .expect("security")
            .idempotency
            .replicas = 1;
    })
    .await;
    let mut client = client(&app);

    let mut paid = Vec::new();
    let mut refused = 0;
    let mut primary = Some(primary);
    let mut paid_after_failover = 0;
    for call in 0..400 {
        if call == 3 {
            // Mid-load: the next withdrawals meet a dead primary.
            let mut dead = primary.take().expect("the primary");
            dead.kill();
            client
                .get_password_status(password_status())
                .await
                .expect("the rest of the service keeps answering");
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
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        if paid_after_failover >= 3 {
            break;
        }
    }
    assert!(
        refused > 0,
        "calls failed closed while no primary was reachable"
    );
    assert!(
        paid_after_failover >= 3,
        "pasarela followed the new primary"
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
    assert!(app.logs().contains("the redis primary moved"));
    drop(client);
    app.stop().await;
}
