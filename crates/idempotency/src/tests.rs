//! The coordinator's rules on the memory store, and the contract every store must keep.

use std::time::SystemTime;

use prost_types::Timestamp;
use tonic_types::StatusExt as _;

use super::*;
use pasarela_provider::reasons;

pub(super) const SCOPE: Scope = Scope {
    keys: "pasarela:test:idempotency",
    domain: "pasarela.test",
    provider: "provider.test",
    provider_name: "the provider",
};

fn idempotency() -> Idempotency {
    with_policy(OnUnknown::Retry)
}

fn with_policy(on_unknown: OnUnknown) -> Idempotency {
    with_lease(Duration::from_secs(30), on_unknown)
}

/// Claims trusted for `lease` (zero: every claim already dead).
fn with_lease(lease: Duration, on_unknown: OnUnknown) -> Idempotency {
    Idempotency::new(
        Arc::new(MemoryStore::default()),
        Seal::random().unwrap(),
        SCOPE,
        Duration::from_secs(60),
        lease,
        on_unknown,
        IdempotencyMetrics::default(),
    )
}

fn claim<'a>(caller: &'a str, fingerprint: &str, txid: &str) -> Claim<'a> {
    Claim {
        operation: "charge",
        caller,
        key: "key-1",
        fingerprint: fingerprint.to_owned().into(),
        transaction_id: Proposed::Ready(txid.to_owned()),
        deadline: Instant::now() + Duration::from_millis(200),
        context: None,
        former_caller: None,
    }
}

async fn run(idem: &Idempotency, fingerprint: &str, txid: &str) -> Result<Begin, Status> {
    idem.begin(claim("caller", fingerprint, txid)).await
}

#[tokio::test]
async fn the_first_outcome_is_replayed_errors_included() {
    let idem = idempotency();
    let Begin::Run(ticket) = run(&idem, "f", "t1").await.unwrap() else {
        panic!("first call runs");
    };
    let failed: Result<Timestamp, Status> =
        Err(ProviderError::new(Code::FailedPrecondition, "OTP_INVALID", "provider.test").into());
    idem.finish(ticket, Ending::of(&failed, Some(Delivery::Refused)))
        .await;
    let Begin::Replay(outcome) = run(&idem, "f", "t2").await.unwrap() else {
        panic!("repeat replays");
    };
    let replayed = outcome.replay::<Timestamp>().unwrap_err();
    assert_eq!(replayed.code(), Code::FailedPrecondition);
    assert_eq!(
        replayed.get_error_details().error_info().unwrap().reason,
        "OTP_INVALID"
    );
}

#[tokio::test]
async fn once_runs_the_call_once_and_replays_its_answer() {
    let idem = idempotency();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    for _ in 0..3 {
        let answer = idem
            .once(claim("caller", "f", "t1"), |attempt| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    Ok::<_, ProviderError>(Timestamp {
                        seconds: attempt.transaction_id.len() as i64,
                        nanos: 0,
                    })
                }
            })
            .await
            .unwrap();
        assert_eq!(answer.seconds, 2);
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_different_request_under_the_key_is_refused() {
    let idem = idempotency();
    let Begin::Run(_ticket) = run(&idem, "f", "t1").await.unwrap() else {
        panic!("first call runs");
    };
    let refused = run(&idem, "other", "t2").await.err().unwrap();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.get_error_details().error_info().unwrap().domain,
        "pasarela.test"
    );
}

#[tokio::test]
async fn a_duplicate_in_flight_waits_then_aborts() {
    let idem = idempotency();
    let Begin::Run(_ticket) = run(&idem, "f", "t1").await.unwrap() else {
        panic!("first call runs");
    };
    let aborted = run(&idem, "f", "t1").await.err().unwrap();
    assert_eq!(aborted.code(), Code::Aborted);
}

#[tokio::test]
async fn an_unknown_outcome_is_retried_with_the_same_transaction_id() {
    let idem = idempotency();
    let Begin::Run(ticket) = run(&idem, "f", "first-id").await.unwrap() else {
        panic!("first call runs");
    };
    idem.finish(ticket, Ending::Unknown).await;
    let Begin::Run(retry) = run(&idem, "f", "second-id").await.unwrap() else {
        panic!("an unknown outcome runs again");
    };
    assert_eq!(retry.transaction_id(), "first-id");
    assert!(retry.after_unknown());
}

/// A call under `key-1` that ends with an unknown outcome, after sending something that may
/// have acted or not (`not_resent`: only a consulta); answers when the attempt it ran
/// thought the outcome unknown since.
async fn unknown_attempt(idem: &Idempotency, not_resent: bool) -> Option<SystemTime> {
    let seen = std::sync::Mutex::new(None);
    let _ = idem
        .once::<Timestamp, _, _>(claim("caller", "f", "t1"), |attempt| {
            *seen.lock().unwrap() = attempt.unknown_since;
            async move {
                let error =
                    ProviderError::new(Code::Unavailable, reasons::PROVIDER_OUTCOME_UNKNOWN, "p");
                Err(if not_resent {
                    error.delivery(Delivery::NotSent)
                } else {
                    error
                })
            }
        })
        .await;
    seen.into_inner().unwrap()
}

#[tokio::test]
async fn the_outcome_is_unknown_since_the_last_attempt_that_sent_something() {
    let idem = idempotency();
    assert_eq!(unknown_attempt(&idem, false).await, None, "a first attempt");
    let first = unknown_attempt(&idem, true).await.expect("a retry");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let after_consulta = unknown_attempt(&idem, false).await.expect("a retry");
    assert_eq!(after_consulta, first, "a consulta that failed sent nothing");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let after_resend = unknown_attempt(&idem, false).await.expect("a retry");
    assert!(
        after_resend >= first + Duration::from_millis(25),
        "a re-sent attempt restarts the clock"
    );
}

#[tokio::test]
async fn a_held_unknown_outcome_is_never_sent_again() {
    let idem = with_policy(OnUnknown::Hold);
    let Begin::Run(ticket) = run(&idem, "f", "first-id").await.unwrap() else {
        panic!("first call runs");
    };
    idem.finish(ticket, Ending::Unknown).await;
    for _ in 0..3 {
        let held = run(&idem, "f", "second-id").await.err().unwrap();
        assert_eq!(held.code(), Code::Unavailable);
        let details = held.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, reasons::PROVIDER_OUTCOME_UNKNOWN);
        assert_eq!(info.metadata["state"], AWAITING_RECONCILIATION);
        assert_eq!(info.metadata["transaction_id"], "first-id");
    }
}

#[tokio::test]
async fn a_retry_after_an_unknown_outcome_that_never_left_stays_unknown() {
    let idem = idempotency();
    let Begin::Run(ticket) = run(&idem, "f", "first-id").await.unwrap() else {
        panic!("first call runs");
    };
    idem.finish(ticket, Ending::Unknown).await;
    let Begin::Run(retry) = run(&idem, "f", "second-id").await.unwrap() else {
        panic!("retried");
    };
    idem.finish(retry, Ending::NotSent).await;
    let Begin::Run(again) = run(&idem, "f", "third-id").await.unwrap() else {
        panic!("retried again");
    };
    assert!(again.after_unknown(), "the first attempt is still unknown");
    assert_eq!(again.transaction_id(), "first-id");
}

#[tokio::test]
async fn a_dead_claim_under_hold_becomes_an_unknown_outcome() {
    let idem = with_lease(Duration::ZERO, OnUnknown::Hold);
    let Begin::Run(_abandoned) = run(&idem, "f", "first-id").await.unwrap() else {
        panic!("first call runs");
    };
    let held = run(&idem, "f", "second-id").await.err().unwrap();
    assert_eq!(
        held.get_error_details().error_info().unwrap().metadata["state"],
        AWAITING_RECONCILIATION
    );
}

#[tokio::test]
async fn a_call_that_never_left_frees_the_key() {
    let idem = idempotency();
    let Begin::Run(ticket) = run(&idem, "f", "first-id").await.unwrap() else {
        panic!("first call runs");
    };
    let refused: Result<Timestamp, Status> =
        Err(ProviderError::new(Code::Unavailable, reasons::CIRCUIT_OPEN, "p").into());
    let ending = Ending::of(&refused, Some(Delivery::NotSent));
    assert!(matches!(ending, Ending::NotSent));
    idem.finish(ticket, ending).await;
    let Begin::Run(retry) = run(&idem, "f", "second-id").await.unwrap() else {
        panic!("the key is free again");
    };
    assert_eq!(retry.transaction_id(), "second-id");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let idem = with_lease(Duration::ZERO, OnUnknown::Retry);
    let Begin::Run(_abandoned) = run(&idem, "f", "first-id").await.unwrap() else {
        panic!("first call runs");
    };
    let Begin::Run(retry) = run(&idem, "f", "second-id").await.unwrap() else {
        panic!("an abandoned claim is taken over");
    };
    assert_eq!(retry.transaction_id(), "first-id");
}

#[tokio::test]
async fn callers_have_their_own_key_spaces() {
    let idem = idempotency();
    let Begin::Run(_first) = run(&idem, "f", "t1").await.unwrap() else {
        panic!("first call runs");
    };
    let other = idem
        .begin(claim("another caller", "f", "t2"))
        .await
        .unwrap();
    assert!(
        matches!(other, Begin::Run(_)),
        "another caller's key-1 is its own"
    );
}

/// A new key of owner `o` joining the set `open` with the transaction id
/// `transaction_id`, its owner allowed any number of open keys.
pub(super) fn new_key(transaction_id: &str) -> NewKey<'_> {
    NewKey {
        open_set: "open",
        owner: "o",
        max_open: usize::MAX,
        transaction_id,
    }
}

/// What every store must do: claim a free key only, with a transaction id no claim had
/// before, joining the open set in the same step; compare before it swaps or removes.
pub(super) async fn claims_compare_and_swap(store: &dyn Store) {
    let ttl = Keep::For(Duration::from_secs(60));
    assert_eq!(
        store
            .insert_new("k", "a", ttl, new_key("t1"))
            .await
            .unwrap(),
        Inserted::Claimed
    );
    assert_eq!(store.members("open").await.unwrap(), vec!["k".to_owned()]);
    assert_eq!(
        store
            .insert_new("k", "b", ttl, new_key("t2"))
            .await
            .unwrap(),
        Inserted::Held("a".to_owned())
    );
    assert_eq!(
        store
            .insert_new("k9", "b", ttl, new_key("t1"))
            .await
            .unwrap(),
        Inserted::TransactionIdTaken,
        "a transaction id is claimed once"
    );
    assert_eq!(store.get("k9").await.unwrap(), None, "nothing written");
    store.untrack("open", "k").await.unwrap();
    assert!(!store.replace("k", "b", "c", ttl).await.unwrap());
    assert!(store.replace("k", "a", "c", ttl).await.unwrap());
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("c"));
    assert!(!store.remove("k", "a").await.unwrap());
    assert!(store.remove("k", "c").await.unwrap());
    assert_eq!(store.get("k").await.unwrap(), None);

    store.track("open", "k1", "o").await.unwrap();
    store.track("open", "k2", "o").await.unwrap();
    store.track("open", "k1", "o").await.unwrap();
    store.untrack("open", "k2").await.unwrap();
    assert_eq!(store.members("open").await.unwrap(), vec!["k1".to_owned()]);
    assert!(store.members("other").await.unwrap().is_empty());
    assert_eq!(
        store
            .insert_new("k1", "v", ttl, new_key("t3"))
            .await
            .unwrap(),
        Inserted::Claimed
    );
    assert!(!store.untrack_if("open", "k1", "k1", None).await.unwrap());
    assert!(
        !store
            .untrack_if("open", "k1", "k1", Some("w"))
            .await
            .unwrap()
    );
    assert!(
        store
            .untrack_if("open", "k1", "k1", Some("v"))
            .await
            .unwrap()
    );
    store.track("open", "gone", "o").await.unwrap();
    assert!(
        store
            .untrack_if("open", "gone", "gone", None)
            .await
            .unwrap()
    );
    assert!(store.members("open").await.unwrap().is_empty());
    owners_are_bounded(store).await;
    leases_go_to_one_holder(store).await;
    bindings_hold_their_first_value(store).await;
}

/// A binding keeps the value it was first given, whoever binds after; concurrent binders
/// all read the same winner.
async fn bindings_hold_their_first_value(store: &dyn Store) {
    assert_eq!(store.bound("subscription").await.unwrap(), None);
    assert_eq!(store.bind("subscription", "acme").await.unwrap(), "acme");
    assert_eq!(store.bind("subscription", "globex").await.unwrap(), "acme");
    assert_eq!(
        store.bound("subscription").await.unwrap().as_deref(),
        Some("acme")
    );
    let racers = ["a", "b", "c", "d"].map(|tenant| store.bind("raced", tenant));
    let answers = futures::future::join_all(racers).await;
    let first = answers[0].as_ref().unwrap().clone();
    assert!(
        answers
            .iter()
            .all(|answer| answer.as_ref().unwrap() == &first)
    );
}

/// A lease is one holder's until it lapses; its holder renews it.
async fn leases_go_to_one_holder(store: &dyn Store) {
    let minute = Duration::from_secs(60);
    assert!(store.lease("work", "a", minute).await.unwrap());
    assert!(
        !store.lease("work", "b", minute).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.lease("work", "a", minute).await.unwrap(),
        "a renews it"
    );
    assert!(store.lease("other work", "b", minute).await.unwrap());
    assert!(store.lease("brief", "a", Duration::ZERO).await.unwrap());
    assert!(
        store.lease("brief", "b", minute).await.unwrap(),
        "a lapsed lease is taken"
    );
}

/// An owner holding its maximum of open keys is refused a new one (nothing written) while
/// another owner claims; a key leaving the set makes room, and so does one tracked anew
/// under another owner.
async fn owners_are_bounded(store: &dyn Store) {
    let ttl = Keep::For(Duration::from_secs(60));
    let bounded = |key_tx: &'static str, owner: &'static str| NewKey {
        open_set: "bounded",
        owner,
        max_open: 2,
        transaction_id: key_tx,
    };
    for key in ["b1", "b2"] {
        let claimed = store.insert_new(key, "v", ttl, bounded(key, "full")).await;
        assert_eq!(claimed.unwrap(), Inserted::Claimed);
    }
    let refused = store
        .insert_new("b3", "v", ttl, bounded("b3", "full"))
        .await;
    assert_eq!(refused.unwrap(), Inserted::OwnerFull);
    assert_eq!(store.get("b3").await.unwrap(), None, "nothing written");
    let other = store
        .insert_new("b4", "v", ttl, bounded("b4", "other"))
        .await;
    assert_eq!(
        other.unwrap(),
        Inserted::Claimed,
        "another owner has its own"
    );
    let held = store
        .insert_new("b1", "w", ttl, bounded("b5", "full"))
        .await;
    assert_eq!(
        held.unwrap(),
        Inserted::Held("v".to_owned()),
        "a held key is told"
    );
    store.untrack("bounded", "b1").await.unwrap();
    let room = store
        .insert_new("b6", "v", ttl, bounded("b6", "full"))
        .await;
    assert_eq!(room.unwrap(), Inserted::Claimed, "a key left: room for one");
    store.track("bounded", "b2", "other").await.unwrap();
    let moved = store
        .insert_new("b7", "v", ttl, bounded("b7", "full"))
        .await;
    assert_eq!(
        moved.unwrap(),
        Inserted::Claimed,
        "b2 is another owner's now"
    );
}

#[test]
fn fingerprints_ignore_nothing_but_the_key() {
    let idem = idempotency();
    let a = Timestamp::default();
    assert_eq!(
        idem.fingerprint("cancel", &a),
        idem.fingerprint("cancel", &a)
    );
    assert_ne!(
        idem.fingerprint("cancel", &a),
        idem.fingerprint("charge", &a)
    );
}

#[test]
fn keys_are_printable_ascii_up_to_255() {
    for (key, good) in [
        ("order-1", true),
        ("", false),
        ("with space", false),
        (&"k".repeat(256), false),
    ] {
        let mut v = Violations::new();
        check_key(&mut v, key);
        assert_eq!(v.is_empty(), good, "{key:?}");
    }
}

#[tokio::test]
async fn a_refusal_of_a_repeat_after_an_unknown_outcome_leaves_it_unknown() {
    let idem = idempotency();
    let lost = idem
        .once::<Timestamp, _, _>(claim("caller", "f", "t1"), |_| async {
            Err(ProviderError::new(
                Code::Unavailable,
                reasons::PROVIDER_UNAVAILABLE,
                "p",
            ))
        })
        .await
        .unwrap_err();
    assert_eq!(
        lost.get_error_details().error_info().unwrap().reason,
        reasons::PROVIDER_OUTCOME_UNKNOWN
    );
    let refused = idem
        .once::<Timestamp, _, _>(claim("caller", "f", "t2"), |attempt| async move {
            assert!(attempt.after_unknown);
            Err(
                ProviderError::new(Code::FailedPrecondition, "OTP_EXPIRED", "p")
                    .delivery(Delivery::Refused),
            )
        })
        .await
        .unwrap_err();
    let info = refused.get_error_details();
    let info = info.error_info().unwrap();
    assert_eq!(
        info.reason,
        reasons::PROVIDER_OUTCOME_UNKNOWN,
        "never a bare refusal"
    );
    assert_eq!(info.metadata["provider_reason"], "OTP_EXPIRED");
    let Begin::Run(again) = run(&idem, "f", "t3").await.unwrap() else {
        panic!("still unknown: asked again");
    };
    assert!(again.after_unknown());
    assert_eq!(again.transaction_id(), "t1");
}

/// A key a caller held before tenants and applications were part of its key space is the
/// same key after: its retry replays, and nothing runs again.
#[tokio::test]
async fn a_key_held_before_the_upgrade_is_the_same_key_after() {
    let idem = idempotency();
    let Begin::Run(ticket) = idem.begin(claim("jwt:alice", "fp", "tx-1")).await.unwrap() else {
        panic!("a new key runs");
    };
    let paid: Result<Timestamp, Status> = Ok(Timestamp::default());
    idem.finish(ticket, Ending::of(&paid, None)).await;
    let after = Claim {
        former_caller: Some("jwt:alice"),
        ..claim("acme/jwt:alice@billing", "fp", "tx-2")
    };
    assert!(
        matches!(idem.begin(after).await, Ok(Begin::Replay(_))),
        "replayed, not run again"
    );
    let stranger = Claim {
        former_caller: Some("jwt:bob"),
        ..claim("acme/jwt:bob@billing", "fp", "tx-3")
    };
    assert!(
        matches!(idem.begin(stranger).await, Ok(Begin::Run(_))),
        "another caller's key"
    );
}
