//! The bank, after Jepsen's bank workload: three `pasarela serve` replicas on one PostgreSQL
//! ledger (a primary and its synchronous standby) in front of the sandbox, callers charging
//! and withdrawing under fresh keys and retrying each key on other replicas, while a nemesis
//! kills replicas (SIGKILL) and restarts them, SIGKILLs the ledger's primary and promotes
//! its standby (the dead host rejoining as the new standby), and has the providers act and
//! lose the answer,
//! act and answer 2xx with an error envelope, fail with a 5xx, or act and hang. After a
//! quiet phase the history is checked against the providers' own ledgers: no key executed
//! twice, every OK one execution with its approval, every execution told to its caller or
//! listed as unknown, no refused key executed. `scripts/chaos` runs it longer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use pasarela::operations::v1::ListUnknownOutcomesRequest;
use pasarela::operations::v1::operations_service_client::OperationsServiceClient;
use pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient;
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

use crate::support::bank::{
    Answer, Execution, History, KeyHistory, MoneyOp, Violation, check, figures,
};
use crate::support::recurring_payments::{WALLET, charge, subscribe};
use crate::support::replica::{Replica, replica_bearer};
use crate::support::security::{withdrawal, withdrawal_otp};
use crate::support::tools;
use crate::support::{Bearer, TestPostgres, admin, reason};

const S18_PATH: &str = "/security-management/v3/withdrawal/otp";
const PAYMENT_PATH: &str = "/v1/payments/subscriptions/payment";
const REPLICAS: usize = 3;
const CALLERS: u64 = 4;
/// Attempts of one key before its caller gives up on it.
const ATTEMPTS: usize = 6;

/// Seeds and how long each runs: `PASARELA_BANK_SEEDS` (comma-separated) and
/// `PASARELA_BANK_SECONDS`, else two fixed seeds of 10 s each.
fn runs() -> (Vec<u64>, Duration) {
    let seeds = std::env::var("PASARELA_BANK_SEEDS")
        .ok()
        .map(|seeds| {
            seeds
                .split(',')
                .map(|seed| seed.trim().parse().expect("a numeric seed"))
                .collect()
        })
        .unwrap_or_else(|| vec![7, 1_000_003]);
    let seconds = std::env::var("PASARELA_BANK_SECONDS")
        .ok()
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(10);
    (seeds, Duration::from_secs(seconds))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn money_moves_once_through_killed_replicas_a_failed_over_ledger_and_lying_providers() {
    if tools::lacking(&[tools::POSTGRES]) {
        return;
    }
    let (seeds, chaos) = runs();
    for seed in seeds {
        let (history, events) = run(seed, chaos).await;
        let violations = check(&history);
        println!("bank seed {seed}, {} s of chaos:", chaos.as_secs());
        for ((op, what), count) in figures(&history) {
            println!("  {op:?} {what}: {count}");
        }
        println!("  listed unknown: {}", history.listed_unknown.len());
        for (event, count) in &events {
            println!("  nemesis {event}: {count}");
        }
        println!("  violations: {}", violations.len());
        assert!(
            violations.is_empty(),
            "seed {seed}: {}",
            violations
                .iter()
                .map(Violation::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(history.keys.len() > 20, "seed {seed}: the workload ran");
        assert!(
            events.values().sum::<usize>() >= MIN_EVENTS,
            "seed {seed}: the nemesis acted"
        );
        assert!(
            events.contains_key("fail the ledger over"),
            "seed {seed}: the ledger failed over"
        );
    }
}

/// One seeded run: the history and the nemesis' events by kind.
async fn run(seed: u64, chaos: Duration) -> (History, BTreeMap<&'static str, usize>) {
    let ledger = TestPostgres::start_with_standby().await;
    let (sandbox, _pki) = crate::support::sandbox().await;
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(Replica::start(&sandbox, &[&ledger.0, &ledger.1]).await);
    }
    let channels: Vec<Channel> = replicas.iter().map(Replica::channel).collect();
    let bearer = replica_bearer();
    let mut payments =
        RecurringPaymentsServiceClient::with_interceptor(channels[0].clone(), bearer.clone());
    subscribe(&mut payments, WALLET, 1_000_000).await;

    let until = Instant::now() + chaos;
    let callers = futures::future::join_all(
        (0..CALLERS).map(|id| caller(seed, id, until, &channels, &bearer)),
    );
    let nemesis = nemesis(seed, until, replicas, ledger, &sandbox);
    let (keys, (replicas, _ledger, events)) = futures::join!(callers, nemesis);
    let mut keys: Vec<Key> = keys.into_iter().flatten().collect();

    // Quiet: no faults, every replica up, past the lease and the consulta's quiet period;
    // each unsettled key is asked once more.
    admin(&sandbox, reqwest::Method::DELETE, "/faults", None).await;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    for (n, key) in keys.iter_mut().enumerate() {
        let settled = key
            .history
            .answers
            .iter()
            .any(|a| !matches!(a, Answer::Unsettled { .. }));
        if !settled && let Some(again) = key.retry.take() {
            key.history
                .answers
                .push(again(&channels[n % REPLICAS], &bearer).await);
        }
    }
    let history = History {
        executions: executions(&sandbox).await,
        listed_unknown: listed_unknown(&channels[0], &bearer).await,
        keys: keys.into_iter().map(|key| key.history).collect(),
    };
    drop(replicas);
    (history, events)
}

/// A key's history and how to ask once more.
struct Key {
    history: KeyHistory,
    retry: Option<Retry>,
}

/// The key's request, sent once more to a replica.
type Retry =
    Box<dyn FnOnce(&Channel, &Bearer) -> futures::future::BoxFuture<'static, Answer> + Send>;

/// One caller: fresh keys until `until`, each tried on replica after replica until it is
/// answered for good or `ATTEMPTS` run out.
async fn caller(
    seed: u64,
    id: u64,
    until: Instant,
    channels: &[Channel],
    bearer: &Bearer,
) -> Vec<Key> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000).wrapping_add(id));
    let mut keys = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let first = rng.random_range(0..REPLICAS);
        let key = if rng.random_bool(0.5) {
            charge_key(seed, id, n, first, channels, bearer).await
        } else {
            match withdrawal_key(seed, id, n, first, channels, bearer).await {
                Some(key) => key,
                None => continue,
            }
        };
        keys.push(key);
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..50))).await;
    }
    keys
}

/// Sends `call` to replica after replica, from `first`, until an answer is final.
async fn attempts<F>(first: usize, channels: &[Channel], bearer: &Bearer, call: F) -> Vec<Answer>
where
    F: Fn(Channel, Bearer) -> futures::future::BoxFuture<'static, Answer>,
{
    let mut answers = Vec::new();
    for attempt in 0..ATTEMPTS {
        let channel = channels[(first + attempt) % channels.len()].clone();
        let answer = call(channel, bearer.clone()).await;
        let done = !matches!(answer, Answer::Unsettled { .. });
        answers.push(answer);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    answers
}

/// A call's deadline: long enough for a provider that hangs (1 s ceiling) and a lease.
fn timed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(3));
    request
}

/// What a caller makes of a failure: final only when the provider refused.
fn failure(status: &tonic::Status) -> Answer {
    let reason = reason(status);
    let refusal = matches!(
        status.code(),
        Code::FailedPrecondition | Code::InvalidArgument | Code::AlreadyExists | Code::NotFound
    ) && !reason.starts_with("IDEMPOTENCY_");
    match refusal {
        true => Answer::Refused { reason },
        false => Answer::Unsettled {
            reason: format!("{:?} {reason}", status.code()),
        },
    }
}

async fn charge_key(
    seed: u64,
    id: u64,
    n: u64,
    first: usize,
    channels: &[Channel],
    bearer: &Bearer,
) -> Key {
    let reference = format!("b{seed}c{id}n{n}");
    let mut request = charge(&format!("bank-{seed}-{id}-{n}"), WALLET, 1_000);
    request.invoice_id = reference.chars().take(20).collect();
    let reference = request.invoice_id.clone();
    let call = move |channel: Channel, bearer: Bearer| {
        let request = request.clone();
        let call: futures::future::BoxFuture<'static, Answer> = Box::pin(async move {
            let mut client = RecurringPaymentsServiceClient::with_interceptor(channel, bearer);
            match client.charge_subscription(timed(request)).await {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    Answer::Ok {
                        approval: answer.approval_number,
                        transaction: answer.result.map(|r| r.transaction_id).unwrap_or_default(),
                    }
                }
                Err(status) => failure(&status),
            }
        });
        call
    };
    let answers = attempts(first, channels, bearer, call.clone()).await;
    Key {
        history: KeyHistory {
            op: MoneyOp::Charge,
            reference,
            answers,
        },
        retry: Some(Box::new(move |channel: &Channel, bearer: &Bearer| {
            call(channel.clone(), bearer.clone())
        })),
    }
}

async fn withdrawal_key(
    seed: u64,
    id: u64,
    n: u64,
    first: usize,
    channels: &[Channel],
    bearer: &Bearer,
) -> Option<Key> {
    let mut otp = None;
    for attempt in 0..ATTEMPTS {
        let channel = channels[(first + attempt) % channels.len()].clone();
        let bearer = bearer.clone();
        // On its own task: the helper panics when a replica or the bank is down.
        let issued = tokio::spawn(async move {
            let mut bank = SecurityServiceClient::with_interceptor(channel, bearer);
            tokio::time::timeout(Duration::from_secs(3), withdrawal_otp(&mut bank)).await
        });
        if let Ok(Ok(code)) = issued.await {
            otp = Some(code);
            break;
        }
    }
    let otp = otp?;
    let reference = format!("{seed:04}{id:02}{n:08}");
    let mut request = withdrawal(&otp, &format!("bank-{seed}-{id}-{n}"));
    request.audit_number = reference.clone();
    let call = move |channel: Channel, bearer: Bearer| {
        let request = request.clone();
        let call: futures::future::BoxFuture<'static, Answer> = Box::pin(async move {
            let mut client = SecurityServiceClient::with_interceptor(channel, bearer);
            match client.withdraw_with_otp(timed(request)).await {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    Answer::Ok {
                        approval: answer.approval_id,
                        transaction: answer.tx_id,
                    }
                }
                Err(status) => failure(&status),
            }
        });
        call
    };
    let answers = attempts(first, channels, bearer, call.clone()).await;
    Some(Key {
        history: KeyHistory {
            op: MoneyOp::Withdrawal,
            reference,
            answers,
        },
        retry: Some(Box::new(move |channel: &Channel, bearer: &Bearer| {
            call(channel.clone(), bearer.clone())
        })),
    })
}

/// The nemesis' kinds of event.
const EVENTS: [&str; 6] = [
    "kill a replica",
    "fail the ledger over",
    "act, lose the answer",
    "act, answer 2xx with an error envelope",
    "answer 500 without acting",
    "act, then hang",
];

/// The fewest events a run's nemesis makes.
const MIN_EVENTS: usize = 4;

/// Until `until`, and at least [`MIN_EVENTS`] times however slow the machine (a failover
/// under load can take seconds), one event every 0.3 to 0.9 s; answers what it was handed
/// back, with its events by kind.
async fn nemesis(
    seed: u64,
    until: Instant,
    mut replicas: Vec<Replica>,
    ledger: (TestPostgres, TestPostgres),
    sandbox: &pasarela_sandbox::Sandbox,
) -> (
    Vec<Replica>,
    (TestPostgres, TestPostgres),
    BTreeMap<&'static str, usize>,
) {
    let (mut primary, mut standby) = ledger;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x006e_656d_6573_6973);
    let mut events = BTreeMap::new();
    while Instant::now() < until || events.values().sum::<usize>() < MIN_EVENTS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
        // Every run fails the ledger over at least once: first.
        let event = match events.is_empty() {
            true => "fail the ledger over",
            false => EVENTS[rng.random_range(0..EVENTS.len())],
        };
        let bank = rng.random_bool(0.5);
        match event {
            "kill a replica" => {
                let replica = &mut replicas[rng.random_range(0..REPLICAS)];
                replica.kill();
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..600))).await;
                replica.restart().await;
            }
            "fail the ledger over" => {
                // The primary dies mid-load; its synchronous standby is promoted, and the
                // dead host comes back as the new primary's standby.
                primary.kill();
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
                standby.promote().await;
                std::mem::swap(&mut primary, &mut standby);
                standby.rejoin_as_standby_of(&primary).await;
            }
            lie => fault(sandbox, bank, lie).await,
        }
        *events.entry(event).or_default() += 1;
    }
    (replicas, (primary, standby), events)
}

/// The next call of S18 (`bank`) or of D4 meets the fault `lie` names.
async fn fault(sandbox: &pasarela_sandbox::Sandbox, bank: bool, lie: &str) {
    let (provider, path) = match bank {
        true => ("bcs", S18_PATH),
        false => ("daviplata", PAYMENT_PATH),
    };
    let error_envelope = match bank {
        true => json!({ "responseType": { "value": "ER500" }, "responseDetail": {} }),
        false => json!({ "resultStatus": { "status": 77, "message": "Transacción en proceso" } }),
    };
    let fault = match lie {
        "act, lose the answer" => json!({ "type": "drop", "after_handler": true }),
        "act, answer 2xx with an error envelope" => {
            json!({ "type": "status", "status": 200, "after_handler": true, "body": error_envelope })
        }
        "answer 500 without acting" => json!({ "type": "status", "status": 500, "body": "" }),
        _ => json!({ "type": "hang", "after_handler": true }),
    };
    let rule = json!({ "provider": provider, "path": path, "times": 1, "fault": fault });
    admin(sandbox, reqwest::Method::POST, "/faults", Some(rule)).await;
}

/// What the providers' ledgers say they executed.
async fn executions(sandbox: &pasarela_sandbox::Sandbox) -> Vec<Execution> {
    let text = |value: &Value, name: &str| value[name].as_str().unwrap_or_default().to_owned();
    let payments = admin(sandbox, reqwest::Method::GET, "/daviplata/ledger", None).await;
    let withdrawals = admin(
        sandbox,
        reqwest::Method::GET,
        "/bcs/withdrawals/ledger",
        None,
    )
    .await;
    let payments = payments.as_array().cloned().unwrap_or_default();
    let withdrawals = withdrawals.as_array().cloned().unwrap_or_default();
    let charges = payments.iter().map(|p| Execution {
        op: MoneyOp::Charge,
        reference: text(p, "invoice_id"),
        transaction: text(p, "transaction_id"),
        approval: text(p, "approval_number"),
    });
    let paid = withdrawals.iter().map(|w| Execution {
        op: MoneyOp::Withdrawal,
        reference: text(w, "audit_number"),
        transaction: text(w, "tx_id"),
        approval: text(w, "approval_id"),
    });
    charges.chain(paid).collect()
}

/// The provider transaction ids pasarela lists as unknown outcomes, every service (asked
/// until the replica's ledger connection is back after the last failover).
async fn listed_unknown(channel: &Channel, bearer: &Bearer) -> BTreeSet<String> {
    let mut operator = OperationsServiceClient::with_interceptor(channel.clone(), bearer.clone());
    for _ in 0..100 {
        match operator
            .list_unknown_outcomes(ListUnknownOutcomesRequest::default())
            .await
        {
            Ok(listed) => {
                return listed
                    .into_inner()
                    .outcomes
                    .into_iter()
                    .map(|outcome| outcome.provider_transaction_id)
                    .collect();
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("no replica lists the unknown outcomes");
}

// ---- The checker's own test ----------------------------------------------------------------

/// A clean history: one charge told OK, one withdrawal listed unknown, one refused.
fn clean() -> History {
    let ok = Answer::Ok {
        approval: "0001".into(),
        transaction: "tx-1".into(),
    };
    History {
        keys: vec![
            KeyHistory {
                op: MoneyOp::Charge,
                reference: "a".into(),
                answers: vec![
                    Answer::Unsettled {
                        reason: "lost".into(),
                    },
                    ok,
                ],
            },
            KeyHistory {
                op: MoneyOp::Withdrawal,
                reference: "b".into(),
                answers: vec![Answer::Unsettled {
                    reason: "held".into(),
                }],
            },
            KeyHistory {
                op: MoneyOp::Withdrawal,
                reference: "c".into(),
                answers: vec![Answer::Refused {
                    reason: "OTP_INVALID".into(),
                }],
            },
        ],
        executions: vec![
            Execution {
                op: MoneyOp::Charge,
                reference: "a".into(),
                transaction: "tx-1".into(),
                approval: "0001".into(),
            },
            Execution {
                op: MoneyOp::Withdrawal,
                reference: "b".into(),
                transaction: "APIF-2".into(),
                approval: "000002".into(),
            },
        ],
        listed_unknown: BTreeSet::from(["APIF-2".to_owned()]),
    }
}

#[test]
fn the_checker_catches_each_doctored_history() {
    assert_eq!(check(&clean()), vec![], "a clean history passes");

    let mut twice = clean();
    let mut again = twice.executions[0].clone();
    again.transaction = "tx-9".into();
    twice.executions.push(again);
    assert!(matches!(
        check(&twice)[..],
        [Violation::ExecutedTwice { .. }, ..]
    ));

    let mut false_ok = clean();
    false_ok.keys[1].answers.push(Answer::Ok {
        approval: "999999".into(),
        transaction: "APIF-2".into(),
    });
    assert!(check(&false_ok).contains(&Violation::FalseOk {
        reference: "b".into(),
        approval: "999999".into(),
    }));

    let mut lost = clean();
    lost.listed_unknown.clear();
    assert_eq!(
        check(&lost),
        vec![Violation::Lost {
            reference: "b".into(),
            transaction: "APIF-2".into(),
        }]
    );

    let mut false_refusal = clean();
    false_refusal.executions.push(Execution {
        op: MoneyOp::Withdrawal,
        reference: "c".into(),
        transaction: "APIF-3".into(),
        approval: "000003".into(),
    });
    false_refusal.listed_unknown.insert("APIF-3".into());
    assert_eq!(
        check(&false_refusal),
        vec![Violation::FalseRefusal {
            reference: "c".into(),
        }]
    );

    let mut stray = clean();
    stray.executions.push(Execution {
        op: MoneyOp::Charge,
        reference: "nobody".into(),
        transaction: "tx-7".into(),
        approval: "0007".into(),
    });
    assert!(check(&stray).contains(&Violation::Stray {
        reference: "nobody".into(),
    }));
}
