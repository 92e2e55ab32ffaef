//! What pasarela keeps in a shared Redis is tamper-evident: records sealed to their keys
//! are never replayed once forged, altered or moved (written here with `redis-cli`, as an
//! intruder would), and a TxId counter moved backwards stops withdrawals instead of
//! repeating a TxId.

use pasarela::security::v1::get_password_status_request::Subject;
use pasarela::security::v1::{CustomerType, GetPasswordStatusRequest};
use tonic::Code;

use crate::security::{assert_error, client, shares_redis, withdrawal, withdrawal_otp};
use crate::support::{TestApp, TestRedis, cc, spawn_app_with};

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
    client
        .get_password_status(password_status())
        .await
        .expect("the first call reserves a block of TxIds");
    let reserved: u64 = redis
        .cli(&["GET", TX_ID_SEQUENCE])
        .parse()
        .expect("a counter");
    redis.cli(&["SET", TX_ID_SEQUENCE, "5"]);
    // The process uses up its block, then asks Redis for the next one.
    let mut answered = 1;
    let refused = loop {
        match client.get_password_status(password_status()).await {
            Ok(_) => answered += 1,
            Err(status) => break status,
        }
        assert!(answered <= 200, "the rewound counter was never noticed");
    };
    assert_error(&refused, Code::Internal, "TX_ID_SEQUENCE_REWOUND");
    assert!(reserved > 5 && answered <= 100, "{answered} answered");
    assert!(app.logs().contains("TxId sequence moved backwards"));
    drop(client);
    app.stop().await;
}
