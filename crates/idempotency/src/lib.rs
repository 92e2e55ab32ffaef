//! Idempotency of money-moving calls (charges, activations, withdrawals): the request's
//! fingerprint and outcome kept under the caller's key (24 h by default), the first outcome
//! replayed, a different request under the same key refused, a concurrent duplicate made to
//! wait for the first. An unknown outcome is never re-sent blindly: a repeat either waits
//! for an operator to settle the key ([`OnUnknown::Hold`]) or runs again told that it
//! follows an unknown outcome ([`OnUnknown::Retry`]), so that it can ask the provider first.

#![forbid(unsafe_code)]

mod askable;
mod config;
mod ledger;
mod memory;
pub mod metrics;
mod migrations;
mod postgres;
mod proposal;
mod refusals;
mod seal;

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};

use pasarela_provider::metrics::{OperationLabels, ProviderLabels};
use pasarela_provider::{Delivery, Fate, ProviderError, Violations};

pub use metrics::IdempotencyMetrics;

pub use askable::{Askable, KeyState, Testimony, Witness};
pub use config::{IdempotencyConfig, StoreKind, open_store};
pub use ledger::{Approval, Ledger, Outstanding, SettleError, Settlement, Settler, Settling};
pub use memory::MemoryStore;
pub use migrations::{Migrated, latest as latest_schema, migrate};
pub use postgres::{PostgresConfig, PostgresStore};
pub use proposal::Pending;
pub use seal::{Fingerprint, Seal};

pub mod reason {
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const IDEMPOTENCY_KEY_IN_FLIGHT: &str = "IDEMPOTENCY_KEY_IN_FLIGHT";
    pub const IDEMPOTENCY_STORE_UNAVAILABLE: &str = "IDEMPOTENCY_STORE_UNAVAILABLE";
    /// A record the store holds but pasarela cannot read: never replayed, never overwritten.
    pub const IDEMPOTENCY_RECORD_UNREADABLE: &str = "IDEMPOTENCY_RECORD_UNREADABLE";
    /// A record whose seal does not match (forged, altered or moved in the store): never
    /// replayed, never overwritten; nothing is sent.
    pub const IDEMPOTENCY_RECORD_TAMPERED: &str = "IDEMPOTENCY_RECORD_TAMPERED";
    /// The transaction id proposed for a new key was handed out before (its sequence was
    /// set back): the store refused it, and nothing is sent.
    pub const TRANSACTION_ID_REUSED: &str = "TRANSACTION_ID_REUSED";
    /// The caller holds its maximum of keys whose calls run or whose outcomes are unknown:
    /// nothing is sent until some are settled.
    pub const OPEN_KEYS_EXHAUSTED: &str = "OPEN_KEYS_EXHAUSTED";
}

/// The most keys one caller may hold open (calls running, outcomes unknown) per service,
/// unless configured: an unknown outcome waits for an operator, and one caller must not fill
/// the ledger every other caller needs.
pub const DEFAULT_MAX_OPEN_PER_CALLER: usize = 1_000;

/// Who holds a key open, as the store keeps it: a hash of the caller's identity.
pub(crate) fn owner_of(caller: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"owner\0");
    hasher.update(caller.as_bytes());
    hex::encode(hasher.finalize())
}

/// The store could not be read or written: nothing is known about the key, and nothing
/// may be sent. (A record that was read but cannot be understood is another failure:
/// [`reason::IDEMPOTENCY_RECORD_UNREADABLE`].)
#[derive(Debug, thiserror::Error)]
#[error("the idempotency store failed ({operation})")]
pub struct StoreUnavailable {
    pub operation: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreUnavailable {
    pub fn new(
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            operation,
            source: source.into(),
        }
    }
}

/// What every store operation answers.
pub type StoreResult<T> = Result<T, StoreUnavailable>;

/// How long the memory store keeps a running or unknown record (the PostgreSQL ledger
/// keeps one until it is final or settled).
pub const OPEN_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long a store keeps a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// A final outcome, replayed for this long.
    For(Duration),
    /// A running or unknown record: forgetting it would let a retry run afresh, so it is
    /// kept until it is final or settled ([`OPEN_RETENTION`] in the bounded memory store).
    UntilSettled,
}

/// `ErrorInfo.metadata` of a held unknown outcome: key `state`, this value.
pub const AWAITING_RECONCILIATION: &str = "awaiting_reconciliation";

/// Name of the request field that carries the key, in every service's proto.
pub const KEY_FIELD: &str = "idempotency_key";

static KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[\\x21-\\x7E]{1,255}$").expect("the key pattern compiles"));

/// Records a violation unless `key` is 1 to 255 printable ASCII characters.
pub fn check_key(v: &mut Violations, key: &str) {
    if v.required(KEY_FIELD, key) {
        v.pattern(KEY_FIELD, key, &KEY, "1 to 255 printable ASCII characters");
    }
}

/// What a new key's claim writes besides its record, in the same step.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    /// The set of open keys it joins (its call is running).
    pub open_set: &'a str,
    /// Who holds it open (a hash of the caller).
    pub owner: &'a str,
    /// Most keys `owner` may hold open in the set: the claim is refused past it.
    pub max_open: usize,
    /// The transaction id its calls send: refused when any earlier claim had it.
    pub transaction_id: &'a str,
}

/// What became of a claim of a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The key was free: it holds the value, is in the open set and owns the transaction id.
    Claimed,
    /// The key holds this value: nothing was written.
    Held(String),
    /// An earlier claim had this transaction id: nothing was written.
    TransactionIdTaken,
    /// The owner holds its maximum of open keys: nothing was written.
    OwnerFull,
}

/// Where records live. Every operation is atomic; values are opaque strings compared
/// whole, so a store needs no knowledge of what a record means.
pub trait Store: Send + Sync {
    /// Stores `value` under `key`, joins the open set and takes the transaction id of
    /// `new`, all or nothing, if the key is free; otherwise answers what is there.
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        keep: Keep,
        new: NewKey<'a>,
    ) -> BoxFuture<'a, StoreResult<Inserted>>;

    /// What `key` holds now.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>>;

    /// Replaces `expected` by `value`; false when the key holds something else.
    fn replace<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
        value: &'a str,
        keep: Keep,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// Removes the key if it still holds `expected`.
    fn remove<'a>(&'a self, key: &'a str, expected: &'a str) -> BoxFuture<'a, StoreResult<bool>>;

    /// Reserves the next `count` numbers of the counter `key` for the caller alone (among
    /// everyone who shares this store) and returns the first; a counter the store does not
    /// hold yet starts after `seed`. Counters never expire.
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        count: u64,
        seed: u64,
    ) -> BoxFuture<'a, StoreResult<u64>>;

    /// Takes or renews the lease `name` for `holder` until `ttl` from now, when it is free,
    /// lapsed or `holder`'s already; answers whether `holder` holds it now.
    fn lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// Adds `member`, held open by `owner`, to the set `set` (sets never expire).
    fn track<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Removes `member` from the set `set`.
    fn untrack<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, StoreResult<()>>;

    /// Every member of the set `set`.
    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>>;

    /// Removes `member` from `set` if `key` still holds `expected` (`None`: holds nothing),
    /// in one step; says whether it did.
    fn untrack_if<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        key: &'a str,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// Binds `key` to `value` unless it is bound already, for good; answers the value
    /// `key` is bound to now (`value`, or the one bound first).
    fn bind<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, StoreResult<String>>;

    /// The value `key` is bound to, if any.
    fn bound<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>>;
}

/// Whose records these are: one service in front of one provider.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// Prefix of the store's keys, e.g. `pasarela:recurring-payments:idempotency`.
    pub keys: &'static str,
    /// `ErrorInfo.domain` of the idempotency errors, e.g. `pasarela.recurring_payments`.
    pub domain: &'static str,
    /// The provider's domain, for metrics.
    pub provider: &'static str,
    /// The provider's name, for messages.
    pub provider_name: &'static str,
}

/// What a repeat under a key whose outcome is unknown does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknown {
    /// Nothing is sent: the repeat answers `PROVIDER_OUTCOME_UNKNOWN` (metadata `state`
    /// [`AWAITING_RECONCILIATION`]) until an operator settles the key.
    #[default]
    Hold,
    /// The call runs again with the first attempt's transaction id and
    /// [`Attempt::after_unknown`] set: it asks the provider what became of the first
    /// attempt, or re-sends to a provider known to deduplicate.
    Retry,
}

/// What is known about one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    /// The provider transaction id every attempt under this key sends.
    transaction_id: String,
    /// Operation and caller, for an operator listing unknown outcomes.
    #[serde(default)]
    operation: String,
    #[serde(default)]
    caller: String,
    #[serde(default)]
    first_attempt_ms: u64,
    /// When the outcome was first found unknown; kept across retries, so that "unknown
    /// since" and the quiet period before a "not found" is trusted never move forward.
    #[serde(default)]
    unknown_since_ms: Option<u64>,
    state: State,
    /// A settlement proposed by one operator, awaiting another's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proposal: Option<Box<proposal::Proposal>>,
    /// The service's [`Claim::context`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    /// A call is under way; past `lease_until_ms` (its owner died) it counts as unknown.
    InFlight {
        lease_until_ms: u64,
    },
    /// The provider may or may not have acted.
    Unknown {},
    Done {
        outcome: Outcome,
    },
}

impl Record {
    /// The record marked unknown, since the first time it was.
    fn unknown(self) -> Record {
        Record {
            unknown_since_ms: self.unknown_since_ms.or(Some(now_ms())),
            state: State::Unknown {},
            ..self
        }
    }

    /// A claim whose owner died is unknown since its lease ran out at the earliest: the
    /// dead attempt may have sent anything up to then, and a quiet period before a "not
    /// found" is believed counts from there. A proposed settlement is dropped: it was made about the record as it was, and the
    /// retry taking the key over may send again (an approval of it then would act on stale
    /// evidence).
    fn taken_over(self) -> Record {
        let record = Record {
            proposal: None,
            ..self
        };
        match record.state {
            State::InFlight { lease_until_ms } => Record {
                unknown_since_ms: Some(record.unknown_since_ms.unwrap_or(0).max(lease_until_ms)),
                ..record
            },
            _ => record,
        }
    }

    /// Unknown, or a claim whose owner died before it ended.
    fn is_unknown(&self, now_ms: u64) -> bool {
        match self.state {
            State::Unknown { .. } => true,
            State::InFlight { lease_until_ms } => lease_until_ms <= now_ms,
            State::Done { .. } => false,
        }
    }
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
    record: Box<Record>,
    after_unknown: bool,
}

impl Ticket {
    pub fn transaction_id(&self) -> &str {
        &self.record.transaction_id
    }

    /// Whether an earlier attempt under this key ended with an unknown outcome.
    pub fn after_unknown(&self) -> bool {
        self.after_unknown
    }
}

/// What the call of a claimed key is told.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The provider transaction id of every attempt under the key.
    pub transaction_id: String,
    /// An earlier attempt's outcome is unknown: the provider may already have acted.
    pub after_unknown: bool,
    /// When an earlier attempt started or its outcome became unknown, whichever is later:
    /// a provider may still be working on it for a while after that.
    pub unknown_since: Option<SystemTime>,
}

/// What became of a call, for the record.
pub enum Ending {
    /// Success or a definite refusal: replayed for every repeat.
    Final(Outcome),
    /// The provider may have acted: the key waits for reconciliation.
    Unknown,
    /// The provider certainly did not act ([`Delivery::NotSent`] or
    /// [`Delivery::Declined`]): the key is freed so that a repeat runs afresh.
    NotSent,
}

impl Ending {
    /// What `result` leaves of its key, from the [`Delivery`] of its failure (`None` for a
    /// success) and nothing else.
    pub fn of<T: prost::Message>(result: &Result<T, Status>, failure: Option<Delivery>) -> Self {
        match failure.map(Delivery::fate) {
            None | Some(Fate::Recorded) => Ending::Final(Outcome::of(result)),
            Some(Fate::Freed) => Ending::NotSent,
            Some(Fate::Held) => Ending::Unknown,
        }
    }
}

/// Where a first attempt's transaction id comes from.
pub enum Proposed<'a> {
    /// An id that costs nothing to make (a UUID).
    Ready(String),
    /// An id reserved from a shared sequence: asked for only when the key is new, so that
    /// a replay, a held key or a duplicate waiting for the first call burns none.
    Reserve(&'a (dyn Fn() -> BoxFuture<'a, Result<String, Status>> + Send + Sync)),
}

impl Proposed<'_> {
    async fn make(&self) -> Result<String, Status> {
        match self {
            Proposed::Ready(id) => Ok(id.clone()),
            Proposed::Reserve(reserve) => reserve().await,
        }
    }
}

/// One call under an idempotency key.
pub struct Claim<'a> {
    pub operation: &'static str,
    /// The caller's identity: each caller has its own key space.
    pub caller: &'a str,
    pub key: &'a str,
    /// [`fingerprint`] of the request without its key.
    pub fingerprint: Fingerprint,
    /// The provider transaction id of a first attempt; a key whose outcome is unknown
    /// keeps the one of its first attempt.
    pub transaction_id: Proposed<'a>,
    /// How long a duplicate may wait for the first call.
    pub deadline: Instant,
    /// The caller's key space before tenants and applications were part of it
    /// (`source:subject`): a key held there, by a call made before an upgrade, is this
    /// key, so that its retry replays it instead of moving money again.
    pub former_caller: Option<&'a str>,
    /// What the service keeps of the request to ask the provider about it later, should
    /// its outcome be unknown (never a secret): kept in the sealed record.
    pub context: Option<String>,
}

/// The idempotency coordinator over a [`Store`].
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn Store>,
    /// Seals records to their keys and keys the fingerprints.
    seal: Seal,
    scope: Scope,
    ttl: Duration,
    /// How long an in-flight claim is trusted before a repeat may take it over.
    lease: Duration,
    on_unknown: OnUnknown,
    /// Pause between two looks at a key another call holds.
    poll: Duration,
    metrics: IdempotencyMetrics,
    /// Most keys one caller may hold open.
    max_open_per_caller: usize,
}

impl Idempotency {
    pub fn new(
        store: Arc<dyn Store>,
        seal: Seal,
        scope: Scope,
        ttl: Duration,
        lease: Duration,
        on_unknown: OnUnknown,
        metrics: IdempotencyMetrics,
    ) -> Self {
        // Every series an alert reads exists from the start, at zero.
        let labels = ProviderLabels {
            provider: scope.provider,
        };
        drop(metrics.store_errors.get_or_create(&labels));
        drop(metrics.quota_refusals.get_or_create(&labels));
        drop(metrics.caller_unknown_max.get_or_create(&labels));
        metrics
            .caller_open_limit
            .get_or_create(&labels)
            .set(i64::try_from(DEFAULT_MAX_OPEN_PER_CALLER).unwrap_or(i64::MAX));
        Self {
            store,
            seal,
            scope,
            ttl,
            lease,
            on_unknown,
            poll: Duration::from_millis(25),
            metrics,
            max_open_per_caller: DEFAULT_MAX_OPEN_PER_CALLER,
        }
    }

    /// Bounds the keys one caller may hold open (`idempotency.max_open_per_caller`).
    pub fn with_max_open_per_caller(mut self, max: usize) -> Self {
        self.max_open_per_caller = max;
        self.metrics
            .caller_open_limit
            .get_or_create(&ProviderLabels {
                provider: self.scope.provider,
            })
            .set(i64::try_from(max).unwrap_or(i64::MAX));
        self
    }

    /// The metrics this coordinator counts into.
    pub fn metrics(&self) -> &IdempotencyMetrics {
        &self.metrics
    }

    /// Runs `call` at most once per key and request: a repeat replays the first outcome;
    /// after an unknown outcome a repeat is held or retried as [`OnUnknown`] says.
    pub async fn once<R, F, Fut>(&self, claim: Claim<'_>, call: F) -> Result<R, Status>
    where
        R: prost::Message + Default,
        F: FnOnce(Attempt) -> Fut,
        Fut: Future<Output = Result<R, ProviderError>>,
    {
        let operation = claim.operation;
        let mut ticket = match self.begin(claim).await? {
            Begin::Replay(outcome) => {
                tracing::info!(operation, "idempotent replay");
                return outcome.replay();
            }
            Begin::Run(ticket) => ticket,
        };
        let attempt = Attempt {
            transaction_id: ticket.transaction_id().to_owned(),
            after_unknown: ticket.after_unknown,
            unknown_since: ticket.after_unknown.then(|| {
                let record = &ticket.record;
                let since = record.unknown_since_ms.unwrap_or(record.first_attempt_ms);
                UNIX_EPOCH + Duration::from_millis(since.max(record.first_attempt_ms))
            }),
        };
        let after_unknown = ticket.after_unknown;
        let result = call(attempt).await.map_err(|error| {
            // A refusal of a repeat does not settle the attempt before it (a provider
            // refuses a repeat of what it executed): the outcome stays unknown, and the
            // caller is told so, never a refusal it would retry under a new key.
            let error = match error.delivery {
                Delivery::Refused if after_unknown => error.delivery(Delivery::Unknown),
                _ => error,
            };
            error.presented_as_unknown_outcome()
        });
        let delivery = result.as_ref().err().map(|error| error.delivery);
        // Only an attempt that may have acted again moves "unknown since" on: a failed
        // consulta or a call that never left keeps the quiet period of the one that did.
        if delivery.is_none_or(Delivery::may_have_acted) {
            ticket.record.unknown_since_ms = None;
        }
        let result = result.map_err(Status::from);
        let ending = Ending::of(&result, delivery);
        self.finish(ticket, ending).await;
        result
    }

    /// Claims the caller's key for a request, proposing a transaction id for the
    /// provider; waits (until the claim's deadline) while another call holds the key.
    pub async fn begin(&self, mut claim: Claim<'_>) -> Result<Begin, Status> {
        if let Some(former) = claim.former_caller.filter(|former| *former != claim.caller) {
            let held = self.store_key(claim.operation, former, claim.key);
            let there = self
                .store
                .get(&held)
                .await
                .map_err(|e| self.store_down(e))?;
            if there.is_some() {
                tracing::info!(
                    operation = claim.operation,
                    "a key held from before the upgrade"
                );
                claim.caller = former;
            }
        }
        let key = self.store_key(claim.operation, claim.caller, claim.key);
        loop {
            // A reserved id is only made for a key that is new: look first.
            let seen = match &claim.transaction_id {
                Proposed::Ready(_) => None,
                Proposed::Reserve(_) => self
                    .store
                    .get(&key)
                    .await
                    .map_err(|error| self.store_down(error))?,
            };
            let existing = match seen {
                Some(existing) => existing,
                None => match self.claim_new(&key, &claim).await? {
                    Err(existing) => existing,
                    Ok(ticket) => return Ok(Begin::Run(ticket)),
                },
            };
            let record = self.decode(&key, &existing)?;
            if !claim.fingerprint.matches(&record.fingerprint) {
                return Err(self.key_reused());
            }
            match &record.state {
                State::Done { outcome } => {
                    self.metrics
                        .replays
                        .get_or_create(&OperationLabels {
                            provider: self.scope.provider,
                            operation: claim.operation,
                        })
                        .inc();
                    return Ok(Begin::Replay(outcome.clone()));
                }
                State::InFlight { lease_until_ms } if *lease_until_ms > now_ms() => {
                    let next_look = Instant::now().checked_add(self.poll);
                    if next_look.is_none_or(|next| next >= claim.deadline) {
                        return Err(self.in_flight_error());
                    }
                    tokio::time::sleep(self.poll).await;
                }
                State::InFlight { .. } | State::Unknown { .. } => {
                    let print = &claim.fingerprint.current;
                    if let Some(ticket) = self.after_unknown(&key, &existing, record, print).await?
                    {
                        return Ok(Begin::Run(ticket));
                    }
                }
            }
        }
    }

    /// Claims `key` for a first attempt if it is free (`Ok`), else answers what it holds
    /// (`Err`). A claimed key is listed among the open keys in the same step, before
    /// anything is sent, so that an operator sees it if this process dies mid-call.
    async fn claim_new(
        &self,
        key: &str,
        claim: &Claim<'_>,
    ) -> Result<Result<Ticket, String>, Status> {
        let record = Record {
            fingerprint: claim.fingerprint.current.clone(),
            transaction_id: claim.transaction_id.make().await?,
            operation: claim.operation.to_owned(),
            caller: claim.caller.to_owned(),
            first_attempt_ms: now_ms(),
            unknown_since_ms: None,
            state: self.in_flight(),
            proposal: None,
            context: claim.context.clone(),
        };
        let claimed = self.encode(key, &record);
        let new = NewKey {
            open_set: &self.open_set(),
            owner: &owner_of(claim.caller),
            max_open: self.max_open_per_caller,
            transaction_id: &record.transaction_id,
        };
        let inserted = self
            .store
            .insert_new(key, &claimed, Keep::UntilSettled, new)
            .await
            .map_err(|error| self.store_down(error))?;
        match inserted {
            Inserted::Claimed => {}
            Inserted::Held(existing) => return Ok(Err(existing)),
            Inserted::TransactionIdTaken => return Err(self.transaction_id_reused(&record)),
            Inserted::OwnerFull => return Err(self.too_many_open(claim.operation)),
        }
        Ok(Ok(Ticket {
            key: key.to_owned(),
            claimed,
            record: Box::new(record),
            after_unknown: false,
        }))
    }

    /// A key whose outcome is unknown (or whose owner died): held for an operator, or
    /// re-claimed with its transaction id. `None` when another call changed it first.
    /// The record written again carries `fingerprint`, the request's under the record key
    /// that seals now: a retry after a later rotation still matches it.
    async fn after_unknown(
        &self,
        key: &str,
        existing: &str,
        record: Record,
        fingerprint: &str,
    ) -> Result<Option<Ticket>, Status> {
        let record = Record {
            fingerprint: fingerprint.to_owned(),
            ..record.taken_over()
        };
        let next = match self.on_unknown {
            OnUnknown::Hold if matches!(record.state, State::Unknown { .. }) => {
                return Err(self.awaiting_reconciliation(&record));
            }
            OnUnknown::Hold => record.unknown(),
            OnUnknown::Retry => Record {
                state: self.in_flight(),
                ..record
            },
        };
        let encoded = self.encode(key, &next);
        let won = self
            .store
            .replace(key, existing, &encoded, Keep::UntilSettled)
            .await
            .map_err(|error| self.store_down(error))?;
        if !won {
            return Ok(None);
        }
        // A key whose claim was lost from the open set is listed again.
        let _ = self
            .store
            .track(&self.open_set(), key, &owner_of(&next.caller))
            .await;
        if self.on_unknown == OnUnknown::Hold {
            tracing::warn!(
                operation = %next.operation,
                transaction_id = %next.transaction_id,
                "an idempotency claim outlived its lease: its outcome is unknown"
            );
            return Err(self.awaiting_reconciliation(&next));
        }
        tracing::info!(
            operation = %next.operation,
            "retrying an idempotency key whose outcome was unknown"
        );
        Ok(Some(Ticket {
            key: key.to_owned(),
            claimed: encoded,
            record: Box::new(next),
            after_unknown: true,
        }))
    }

    /// Records what became of the call of `ticket`. A final or not-sent key leaves the
    /// open set (before a freed key can be claimed anew); an unknown one stays in it.
    pub async fn finish(&self, ticket: Ticket, ending: Ending) {
        let open = self.open_set();
        let owner = owner_of(&ticket.record.caller);
        // A retry after an unknown outcome that never left does not make it known.
        let ending = match ending {
            Ending::NotSent if ticket.after_unknown => Ending::Unknown,
            other => other,
        };
        let (stored, record) = match ending {
            Ending::NotSent => {
                let _ = self.store.untrack(&open, &ticket.key).await;
                let removed = self.store.remove(&ticket.key, &ticket.claimed).await;
                if !matches!(removed, Ok(true)) {
                    let _ = self.store.track(&open, &ticket.key, &owner).await;
                }
                (removed, None)
            }
            Ending::Final(outcome) => {
                let record = Record {
                    state: State::Done { outcome },
                    ..(*ticket.record).clone()
                };
                (
                    self.settle_ticket(&ticket, &record, Keep::For(self.ttl))
                        .await,
                    Some(record),
                )
            }
            Ending::Unknown => {
                let record = ticket.record.clone().unknown();
                let stored = self
                    .settle_ticket(&ticket, &record, Keep::UntilSettled)
                    .await;
                let _ = self.store.track(&open, &ticket.key, &owner).await;
                (stored, Some(record))
            }
        };
        let record = record.as_ref();
        match (stored, record.map(|r| &r.state)) {
            (Ok(true), Some(State::Unknown { .. })) => tracing::warn!(
                operation = %ticket.record.operation,
                transaction_id = %ticket.record.transaction_id,
                "provider outcome unknown: the key awaits reconciliation"
            ),
            (Ok(true), Some(_)) => {
                let _ = self.store.untrack(&open, &ticket.key).await;
            }
            (Ok(true), None) => {}
            (Ok(false), _) => tracing::error!(
                operation = %ticket.record.operation,
                transaction_id = %ticket.record.transaction_id,
                outcome = record.map_or("not sent", outcome_kind),
                "an idempotency claim was taken over before its call ended: this outcome is \
                 not recorded; reconcile the transaction with the provider"
            ),
            (Err(error), _) => tracing::error!(
                error = %error,
                operation = %ticket.record.operation,
                transaction_id = %ticket.record.transaction_id,
                outcome = record.map_or("not sent", outcome_kind),
                "idempotency outcome not stored"
            ),
        }
    }

    async fn settle_ticket(
        &self,
        ticket: &Ticket,
        record: &Record,
        keep: Keep,
    ) -> StoreResult<bool> {
        self.store
            .replace(
                &ticket.key,
                &ticket.claimed,
                &self.encode(&ticket.key, record),
                keep,
            )
            .await
    }

    fn in_flight(&self) -> State {
        State::InFlight {
            lease_until_ms: now_ms()
                .saturating_add(self.lease.as_millis().try_into().unwrap_or(u64::MAX)),
        }
    }

    /// The set of keys that have not reached a final outcome yet.
    fn open_set(&self) -> String {
        format!("{}:open", self.scope.keys)
    }

    /// The record under `key`, sealed there by a holder of the record key.
    fn decode(&self, key: &str, value: &str) -> Result<Record, Status> {
        let opened = self.seal.open(key, value).map_err(|_| {
            tracing::error!(
                scope = self.scope.keys,
                "an idempotency record failed its integrity check (forged, altered or moved \
                 in the store, or sealed under another record key): it is not replayed"
            );
            self.unusable_record(
                reason::IDEMPOTENCY_RECORD_TAMPERED,
                "the record of this idempotency key failed its integrity check",
            )
        })?;
        serde_json::from_str::<Record>(opened).map_err(|_| {
            tracing::error!(
                scope = self.scope.keys,
                "an idempotency record is unreadable"
            );
            self.unusable_record(
                reason::IDEMPOTENCY_RECORD_UNREADABLE,
                "the record of this idempotency key cannot be read",
            )
        })
    }

    /// `record` as stored under `key`: sealed to it.
    fn encode(&self, key: &str, record: &Record) -> String {
        let json = serde_json::to_string(record).expect("records are plain data");
        self.seal.seal(key, &json)
    }

    /// [`Seal::fingerprint`] under this service's record key.
    pub fn fingerprint(
        &self,
        operation: &str,
        request_without_key: &impl prost::Message,
    ) -> Fingerprint {
        self.seal.fingerprint(operation, request_without_key)
    }

    /// Each caller has its own key space (two callers' "order-1" are different keys);
    /// keys are hashed, as callers' keys and identities can hold any printable character.
    fn store_key(&self, operation: &str, owner: &str, key: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(owner.as_bytes());
        hasher.update([0]);
        hasher.update(key.as_bytes());
        let digest = hex::encode(hasher.finalize());
        format!("{}:{operation}:{digest}", self.scope.keys)
    }
}

/// Runs a state-changing call on its own task: a caller hanging up must not abandon a
/// call between the provider's answer and the idempotency record.
pub async fn detached<T, Fut>(future: Fut) -> Result<T, Status>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, Status>> + Send + 'static,
{
    tokio::spawn(future)
        .await
        .map_err(|_| Status::internal("the call's task failed"))?
}

/// What a record's outcome is, for a log line (never its content).
fn outcome_kind(record: &Record) -> &'static str {
    match &record.state {
        State::Done {
            outcome: Outcome::Response { .. },
        } => "success",
        State::Done {
            outcome: Outcome::Error { .. },
        } => "refusal",
        State::Unknown {} => "unknown",
        State::InFlight { .. } => "running",
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
