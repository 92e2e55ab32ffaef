//! Idempotency of activate, charge and cancel: the request's fingerprint and outcome kept
//! under the caller's key (24 h by default), the first outcome replayed, a different request
//! under the same key refused, a concurrent duplicate made to wait for the first, and an
//! unknown outcome retried with the same provider transaction id (Daviplata deduplicates
//! by it) instead of blindly.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;
use pasarela_provider::{ProviderError, metrics, reasons};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};

pub use memory::MemoryStore;
pub use redis::RedisStore;

/// `ErrorInfo.domain` of pasarela's own idempotency errors.
const DOMAIN: &str = "pasarela.recurring_payments";

pub mod reason {
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const IDEMPOTENCY_KEY_IN_FLIGHT: &str = "IDEMPOTENCY_KEY_IN_FLIGHT";
    pub const IDEMPOTENCY_STORE_UNAVAILABLE: &str = "IDEMPOTENCY_STORE_UNAVAILABLE";
}

/// Where records live. Every operation is atomic on one key; values are opaque strings
/// compared whole, so a store needs no knowledge of what a record means.
pub trait Store: Send + Sync {
    /// Stores `value` under `key` if the key is free; otherwise returns what is there.
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, anyhow::Result<Option<String>>>;

    /// Replaces `expected` by `value`; false when the key holds something else.
    fn replace<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;

    /// Removes the key if it still holds `expected`.
    fn remove<'a>(&'a self, key: &'a str, expected: &'a str)
    -> BoxFuture<'a, anyhow::Result<bool>>;
}

/// What is known about one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    /// The provider `transactionId` every attempt under this key sends.
    transaction_id: String,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    /// A call is under way; past `lease_until_ms` (its owner died) it counts as unknown.
    InFlight {
        lease_until_ms: u64,
    },
    /// The provider may or may not have acted: the next attempt re-sends the same
    /// transaction id.
    Unknown,
    Done {
        outcome: Outcome,
    },
}

/// A finished call, replayable: the encoded response or the full status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Response {
        message: String,
    },
    Error {
        code: i32,
        message: String,
        details: String,
    },
}

impl Outcome {
    pub fn of<T: prost::Message>(result: &Result<T, Status>) -> Self {
        match result {
            Ok(message) => Outcome::Response {
                message: BASE64.encode(message.encode_to_vec()),
            },
            Err(status) => Outcome::Error {
                code: status.code() as i32,
                message: status.message().to_owned(),
                details: BASE64.encode(status.details()),
            },
        }
    }

    pub fn replay<T: prost::Message + Default>(&self) -> Result<T, Status> {
        match self {
            Outcome::Response { message } => BASE64
                .decode(message)
                .ok()
                .and_then(|bytes| T::decode(bytes.as_slice()).ok())
                .ok_or_else(|| Status::internal("stored idempotent response is unreadable")),
            Outcome::Error {
                code,
                message,
                details,
            } => Err(Status::with_details(
                Code::from_i32(*code),
                message.clone(),
                BASE64.decode(details).unwrap_or_default().into(),
            )),
        }
    }
}

/// How a call under a key must proceed.
pub enum Begin {
    /// Call the provider with this transaction id, then [`Idempotency::finish`].
    Run(Ticket),
    /// The key already has an outcome for this same request.
    Replay(Outcome),
}

/// The claim of one key while its call runs.
pub struct Ticket {
    key: String,
    claimed: String,
    record: Record,
}

impl Ticket {
    pub fn transaction_id(&self) -> &str {
        &self.record.transaction_id
    }
}

/// What became of a call, for the record.
pub enum Ending {
    /// Success or a definite refusal: replayed for every repeat.
    Final(Outcome),
    /// The provider may have acted: the next repeat re-sends the same transaction id.
    Unknown,
    /// The provider certainly did not act (no token, circuit open, connection refused):
    /// the key is freed so that a repeat runs afresh.
    NotSent,
}

impl Ending {
    /// Classifies an error by its reason; every other outcome is final.
    pub fn of<T: prost::Message>(result: &Result<T, Status>, reason: Option<&str>) -> Self {
        // For state changes the client reports every ambiguous failure as
        // PROVIDER_OUTCOME_UNKNOWN, so these reasons only arise before the request left or
        // from a refusal in which Daviplata did not act.
        const NOT_SENT: [&str; 6] = [
            reasons::PROVIDER_AUTH_FAILED,
            reasons::CIRCUIT_OPEN,
            reasons::PROVIDER_UNAVAILABLE,
            reasons::PROVIDER_TIMEOUT,
            reasons::PROVIDER_BAD_RESPONSE,
            crate::daviplata::errors::reason::PROVIDER_RATE_LIMITED,
        ];
        match reason {
            Some(reasons::PROVIDER_OUTCOME_UNKNOWN) => Ending::Unknown,
            Some(r) if NOT_SENT.contains(&r) => Ending::NotSent,
            _ => Ending::Final(Outcome::of(result)),
        }
    }
}

/// The idempotency coordinator over a [`Store`].
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn Store>,
    ttl: Duration,
    /// How long an in-flight claim is trusted before a repeat may take it over.
    lease: Duration,
    /// Pause between two looks at a key another call holds.
    poll: Duration,
}

impl Idempotency {
    pub fn new(store: Arc<dyn Store>, ttl: Duration, lease: Duration) -> Self {
        Self {
            store,
            ttl,
            lease,
            poll: Duration::from_millis(25),
        }
    }

    /// Claims `owner`'s `key` for a request of `fingerprint`, proposing `transaction_id`
    /// for the provider; waits (until `deadline`) while another call holds the key.
    pub async fn begin(
        &self,
        operation: &'static str,
        owner: &str,
        key: &str,
        fingerprint: &str,
        transaction_id: String,
        deadline: Instant,
    ) -> Result<Begin, Status> {
        let key = store_key(operation, owner, key);
        loop {
            let claim = Record {
                fingerprint: fingerprint.to_owned(),
                transaction_id: transaction_id.clone(),
                state: self.in_flight(),
            };
            let claimed = encode(&claim);
            let existing = self
                .store
                .insert_new(&key, &claimed, self.ttl)
                .await
                .map_err(store_down)?;
            let Some(existing) = existing else {
                return Ok(Begin::Run(Ticket {
                    key,
                    claimed,
                    record: claim,
                }));
            };
            let Ok(record) = serde_json::from_str::<Record>(&existing) else {
                return Err(Status::internal("idempotency record unreadable"));
            };
            if record.fingerprint != fingerprint {
                return Err(key_reused());
            }
            match &record.state {
                State::Done { outcome } => {
                    metrics::global()
                        .idempotency_replays
                        .get_or_create(&metrics::OperationLabels {
                            provider: crate::daviplata::errors::DOMAIN,
                            operation,
                        })
                        .inc();
                    return Ok(Begin::Replay(outcome.clone()));
                }
                State::InFlight { lease_until_ms } if *lease_until_ms > now_ms() => {
                    if Instant::now() + self.poll >= deadline {
                        return Err(in_flight());
                    }
                    tokio::time::sleep(self.poll).await;
                }
                State::InFlight { .. } | State::Unknown => {
                    if let Some(ticket) = self.take_over(&key, &existing, record).await? {
                        return Ok(Begin::Run(ticket));
                    }
                }
            }
        }
    }

    /// Re-claims a key whose outcome is unknown, keeping its transaction id.
    async fn take_over(
        &self,
        key: &str,
        existing: &str,
        record: Record,
    ) -> Result<Option<Ticket>, Status> {
        let claim = Record {
            state: self.in_flight(),
            ..record
        };
        let claimed = encode(&claim);
        let won = self
            .store
            .replace(key, existing, &claimed, self.ttl)
            .await
            .map_err(store_down)?;
        tracing::info!(won, "retrying an idempotency key whose outcome was unknown");
        Ok(won.then(|| Ticket {
            key: key.to_owned(),
            claimed,
            record: claim,
        }))
    }

    /// Records what became of the call of `ticket`.
    pub async fn finish(&self, ticket: Ticket, ending: Ending) {
        let stored = match ending {
            Ending::NotSent => self.store.remove(&ticket.key, &ticket.claimed).await,
            Ending::Unknown | Ending::Final(_) => {
                let state = match ending {
                    Ending::Final(outcome) => State::Done { outcome },
                    _ => State::Unknown,
                };
                let record = Record {
                    state,
                    ..ticket.record
                };
                self.store
                    .replace(&ticket.key, &ticket.claimed, &encode(&record), self.ttl)
                    .await
            }
        };
        match stored {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("an idempotency claim was taken over before its call ended")
            }
            Err(error) => tracing::error!(error = %error, "idempotency outcome not stored"),
        }
    }

    fn in_flight(&self) -> State {
        State::InFlight {
            lease_until_ms: now_ms()
                .saturating_add(self.lease.as_millis().try_into().unwrap_or(u64::MAX)),
        }
    }
}

/// A digest of everything that makes two requests "the same": the operation and the
/// encoded request without its idempotency key. Secrets inside (the OTP) leave only
/// through the hash.
pub fn fingerprint(operation: &str, request_without_key: &impl prost::Message) -> String {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(request_without_key.encode_to_vec());
    hex::encode(hasher.finalize())
}

/// Each caller has its own key space (two callers' "order-1" are different keys); keys
/// are hashed, as callers' keys and identities can hold any printable character.
fn store_key(operation: &str, owner: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(owner.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    let digest = hex::encode(hasher.finalize());
    format!("pasarela:recurring-payments:idempotency:{operation}:{digest}")
}

fn encode(record: &Record) -> String {
    serde_json::to_string(record).expect("records are plain data")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

fn key_reused() -> Status {
    ProviderError::new(
        Code::FailedPrecondition,
        reason::IDEMPOTENCY_KEY_REUSED,
        DOMAIN,
    )
    .message("this idempotency key was used for a different request; use a new key")
    .into()
}

fn in_flight() -> Status {
    ProviderError::new(Code::Aborted, reason::IDEMPOTENCY_KEY_IN_FLIGHT, DOMAIN)
        .message("a request with this idempotency key is still running; retry later")
        .retry_after(Duration::from_secs(1))
        .into()
}

fn store_down(error: anyhow::Error) -> Status {
    tracing::error!(error = %error, "idempotency store unavailable");
    ProviderError::new(
        Code::Unavailable,
        reason::IDEMPOTENCY_STORE_UNAVAILABLE,
        DOMAIN,
    )
    .message("the idempotency store is unavailable; nothing was sent to Daviplata")
    .retry_after(Duration::from_secs(1))
    .into()
}

#[cfg(test)]
mod tests {
    use pasarela::recurring_payments::v1::CancelSubscriptionResponse;
    use tonic_types::StatusExt as _;

    use super::*;

    fn idempotency() -> Idempotency {
        Idempotency::new(
            Arc::new(MemoryStore::default()),
            Duration::from_secs(60),
            Duration::from_secs(30),
        )
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(200)
    }

    async fn run(idem: &Idempotency, fingerprint: &str, txid: &str) -> Result<Begin, Status> {
        idem.begin(
            "charge",
            "caller",
            "key-1",
            fingerprint,
            txid.to_owned(),
            soon(),
        )
        .await
    }

    #[tokio::test]
    async fn the_first_outcome_is_replayed_errors_included() {
        let idem = idempotency();
        let Begin::Run(ticket) = run(&idem, "f", "t1").await.unwrap() else {
            panic!("first call runs");
        };
        let failed: Result<CancelSubscriptionResponse, Status> =
            Err(
                ProviderError::new(Code::FailedPrecondition, "OTP_INVALID", "daviplata.com").into(),
            );
        idem.finish(ticket, Ending::of(&failed, Some("OTP_INVALID")))
            .await;
        let Begin::Replay(outcome) = run(&idem, "f", "t2").await.unwrap() else {
            panic!("repeat replays");
        };
        let replayed = outcome.replay::<CancelSubscriptionResponse>().unwrap_err();
        assert_eq!(replayed.code(), Code::FailedPrecondition);
        assert_eq!(
            replayed.get_error_details().error_info().unwrap().reason,
            "OTP_INVALID"
        );
    }

    #[tokio::test]
    async fn a_different_request_under_the_key_is_refused() {
        let idem = idempotency();
        let Begin::Run(_ticket) = run(&idem, "f", "t1").await.unwrap() else {
            panic!("first call runs");
        };
        let refused = run(&idem, "other", "t2").await.err().unwrap();
        assert_eq!(refused.code(), Code::FailedPrecondition);
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
    }

    #[tokio::test]
    async fn a_call_that_never_left_frees_the_key() {
        let idem = idempotency();
        let Begin::Run(ticket) = run(&idem, "f", "first-id").await.unwrap() else {
            panic!("first call runs");
        };
        idem.finish(ticket, Ending::NotSent).await;
        let Begin::Run(retry) = run(&idem, "f", "second-id").await.unwrap() else {
            panic!("the key is free again");
        };
        assert_eq!(retry.transaction_id(), "second-id");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over() {
        let idem = Idempotency::new(
            Arc::new(MemoryStore::default()),
            Duration::from_secs(60),
            Duration::ZERO,
        );
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
            .begin(
                "charge",
                "another caller",
                "key-1",
                "f",
                "t2".into(),
                soon(),
            )
            .await
            .unwrap();
        assert!(
            matches!(other, Begin::Run(_)),
            "another caller's key-1 is its own"
        );
    }

    #[test]
    fn fingerprints_ignore_nothing_but_the_key() {
        let a = CancelSubscriptionResponse::default();
        assert_eq!(fingerprint("cancel", &a), fingerprint("cancel", &a));
        assert_ne!(fingerprint("cancel", &a), fingerprint("charge", &a));
    }
}
