//! The operator's side of idempotency: the keys whose provider outcome is unknown, listed
//! and settled — as succeeded (the response a service builds from the provider's approval,
//! replayed from then on) or as not done (the key freed, so that a retry runs afresh).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::askable::{Askable, Testimony, Witness};
use super::proposal::{self, Pending, Proposal, Stored};
use super::{Idempotency, Keep, Outcome, Record, State, StoreResult, StoreUnavailable, now_ms};
use pasarela_provider::metrics::{OperationLabels, ProviderLabels};

/// One key whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outstanding {
    pub operation: String,
    /// The caller's identity (`source:subject`).
    pub caller: String,
    /// The hash under which the key is stored (the key itself is never kept).
    pub key_hash: String,
    /// The transaction id (TxId, `transactionId`) every attempt under the key sent.
    pub transaction_id: String,
    pub first_attempt: SystemTime,
    /// When the outcome was found unknown; `None` for a claim whose owner died mid-call.
    pub unknown_since: Option<SystemTime>,
    /// A settlement proposed and awaiting a second operator.
    pub proposal: Option<Pending>,
}

/// What the provider is known to have done, as an operator learnt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Succeeded(Approval),
    NotDone,
}

/// What an operator read in the provider's records about a call that succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approval {
    /// The provider's approval or authorization number.
    pub approval_number: String,
    /// The subscription an activation created.
    pub subscription_id: String,
}

/// Longest approval number taken: Daviplata prints 16 digits, the bank 6.
const APPROVAL_DIGITS_MAX: usize = 20;

/// Longest subscription id taken: Daviplata prints a UUID (36 characters).
const SUBSCRIPTION_ID_MAX: usize = 64;

impl Approval {
    /// The approval number, when it has the providers' form: 1 to 20 digits. A settlement
    /// replays it to every retry, so a typo or a note in its place is refused.
    pub fn number(&self, operation: &str) -> Result<String, SettleError> {
        shaped(
            "approval_number",
            &self.approval_number,
            operation,
            |text| text.len() <= APPROVAL_DIGITS_MAX && text.bytes().all(|b| b.is_ascii_digit()),
            "is the provider's approval number: 1 to 20 digits",
        )
    }

    /// The subscription id, when it has the provider's form: letters, digits and `-`.
    pub fn subscription(&self, operation: &str) -> Result<String, SettleError> {
        shaped(
            "subscription_id",
            &self.subscription_id,
            operation,
            |text| {
                text.len() <= SUBSCRIPTION_ID_MAX
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            },
            "is the provider's subscription id: letters, digits and '-', at most 64",
        )
    }
}

fn shaped(
    field: &'static str,
    value: &str,
    operation: &str,
    fits: impl Fn(&str) -> bool,
    form: &str,
) -> Result<String, SettleError> {
    let description = match (value.is_empty(), fits(value)) {
        (true, _) => format!("is required to settle a {operation} as succeeded"),
        (false, false) => form.to_owned(),
        (false, true) => return Ok(value.to_owned()),
    };
    Err(SettleError::Invalid { field, description })
}

/// Builds the response a settled success replays for `operation` (the service's own
/// knowledge of its responses), or names the approval field that is missing.
pub type Settler =
    fn(operation: &str, transaction_id: &str, approval: &Approval) -> Result<Outcome, SettleError>;

/// One operator's settlement of one key, as asked.
#[derive(Debug, Clone, Copy)]
pub struct Settling<'a> {
    pub operation: &'a str,
    pub key_hash: &'a str,
    pub settlement: &'a Settlement,
    pub operator: &'a str,
    pub note: &'a str,
    /// Settles against the provider's word, which the audit line then says.
    pub overriding: bool,
}

/// An unknown outcome's record as read, with what the store held.
pub(crate) struct Found {
    pub(crate) key: String,
    pub(crate) existing: String,
    pub(crate) record: Record,
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no idempotency key {0} is recorded")]
    NotFound(String),
    #[error("the outcome under this key is not unknown (it is final or still running)")]
    NotUnknown,
    #[error("{field}: {description}")]
    Invalid {
        field: &'static str,
        description: String,
    },
    #[error("the idempotency store is unavailable")]
    Store(#[source] StoreUnavailable),
    #[error(
        "the key has no pending proposal of that id (none was made, another replaced it, or the key was settled)"
    )]
    NoProposal,
    #[error("the proposal lapsed before it was approved: propose again")]
    ProposalExpired,
    #[error("a settlement is approved by another operator than its proposer")]
    SameOperator,
    #[error(
        "the provider contradicts this settlement: {0}; settle it as the provider says, or override"
    )]
    Contradicted(String),
}

/// One service's idempotency records as an operator sees them.
#[derive(Clone)]
pub struct Ledger {
    /// The service's package name, e.g. `pasarela.security.v1`.
    pub service: &'static str,
    /// The operations recorded under keys (for the gauge's zeros).
    pub operations: &'static [&'static str],
    idempotency: Idempotency,
    settler: Settler,
    /// Asks the provider before a settlement is accepted, where it can be asked.
    witness: Option<Arc<dyn Witness>>,
}

impl Ledger {
    pub fn new(
        service: &'static str,
        operations: &'static [&'static str],
        idempotency: Idempotency,
        settler: Settler,
    ) -> Self {
        let ledger = Self {
            service,
            operations,
            idempotency,
            settler,
            witness: None,
        };
        // Each operation's gauge exists from start-up, at zero until the first count.
        ledger.publish(&[]);
        ledger
    }

    /// Asks `witness` about a key before any settlement of it is accepted: one its
    /// provider contradicts is refused unless the operator overrides it.
    pub fn with_witness(mut self, witness: Arc<dyn Witness>) -> Self {
        self.witness = Some(witness);
        self
    }

    /// What the provider says of `found` against `settlement`: `Err` when it contradicts
    /// it and nobody overrode that; else a note for the audit line.
    async fn hear(
        &self,
        found: Found,
        settlement: &Settlement,
        overridden: bool,
    ) -> Result<(Found, &'static str), SettleError> {
        let Some(witness) = &self.witness else {
            return Ok((found, "not asked"));
        };
        if found.record.context.is_none() {
            return Ok((found, "not asked"));
        }
        let asked = Askable { found };
        let testimony = witness.ask(&asked).await;
        let found = asked.found;
        match (testimony.contradicts(settlement), overridden) {
            (Some(why), false) => Err(SettleError::Contradicted(why)),
            (Some(_), true) => Ok((found, "contradicted, overridden")),
            (None, _) => Ok((
                found,
                match testimony {
                    Testimony::Inconclusive(_) => "inconclusive",
                    _ => "agrees",
                },
            )),
        }
    }

    /// Every key whose outcome is unknown, oldest first; keys that became final or expired
    /// leave the open set on the way.
    pub async fn outstanding(&self) -> StoreResult<Vec<Outstanding>> {
        let mut found: Vec<Outstanding> = self
            .unknown_records()
            .await?
            .into_iter()
            .map(|found| outstanding(&found.key, found.record))
            .collect();
        found.sort_by_key(|entry| entry.first_attempt);
        Ok(found)
    }

    pub(crate) fn idempotency(&self) -> &Idempotency {
        &self.idempotency
    }

    /// Every key whose outcome is unknown, as read; keys that became final or expired
    /// leave the open set on the way.
    pub(crate) async fn unknown_records(&self) -> StoreResult<Vec<Found>> {
        let store = &self.idempotency.store;
        let open = self.idempotency.open_set();
        let now = now_ms();
        let mut found = Vec::new();
        for key in store.members(&open).await? {
            let value = store.get(&key).await?;
            let record = value
                .as_deref()
                .and_then(|value| self.idempotency.decode(&key, value).ok());
            match (record, value) {
                (Some(record), Some(existing)) if record.is_unknown(now) => found.push(Found {
                    key,
                    existing,
                    record,
                }),
                (Some(record), _) if matches!(record.state, State::InFlight { .. }) => {}
                // Final, freed or expired: it leaves the set unless it changed meanwhile.
                (_, value) => {
                    store
                        .untrack_if(&open, &key, &key, value.as_deref())
                        .await?;
                }
            }
        }
        Ok(found)
    }

    /// Settles the unknown outcome of `operation` under `key_hash` on one operator's word
    /// (where one suffices); answers what it was. Each settlement is an audit line naming
    /// `operator` and their `note`.
    pub async fn settle(&self, settling: Settling<'_>) -> Result<Outstanding, SettleError> {
        let (found, provider) = self.load_heard(&settling).await?;
        let Settling {
            operation,
            key_hash,
            settlement,
            operator,
            note,
            ..
        } = settling;
        let entry = outstanding(&found.key, found.record.clone());
        self.apply(operation, found, settlement).await?;
        tracing::info!(
            target: "audit",
            operator,
            service = self.service,
            operation,
            key_hash,
            transaction_id = %entry.transaction_id,
            settlement = settlement_name(settlement),
            provider,
            note,
            "unknown outcome settled"
        );
        self.count().await;
        Ok(entry)
    }

    /// Proposes a settlement of the unknown outcome under `key_hash`, for another operator
    /// to approve within `ttl`; it replaces a pending one. An audit line names `operator`.
    pub async fn propose(
        &self,
        settling: Settling<'_>,
        ttl: Duration,
    ) -> Result<Outstanding, SettleError> {
        let (found, provider) = self.load_heard(&settling).await?;
        let Settling {
            operation,
            key_hash,
            settlement,
            operator,
            note,
            overriding,
        } = settling;
        let Found {
            key,
            existing,
            record,
        } = found;
        if let Settlement::Succeeded(approval) = settlement {
            // Checked now: an approver must not learn at approval that it cannot be made.
            (self.settler)(operation, &record.transaction_id, approval)?;
        }
        let expires = SystemTime::now()
            .checked_add(ttl)
            .unwrap_or(SystemTime::UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let proposed = Record {
            proposal: Some(Box::new(Proposal {
                id: proposal::new_id(),
                settlement: Stored::from(settlement),
                proposer: operator.to_owned(),
                note: note.to_owned(),
                expires_ms: u64::try_from(expires.as_millis()).unwrap_or(u64::MAX),
                overriding,
            })),
            ..record
        };
        let idempotency = &self.idempotency;
        let encoded = idempotency.encode(&key, &proposed);
        let stored = idempotency
            .store
            .replace(&key, &existing, &encoded, Keep::UntilSettled)
            .await
            .map_err(SettleError::Store)?;
        if !stored {
            return Err(SettleError::NotUnknown);
        }
        let entry = outstanding(&key, proposed);
        tracing::info!(
            target: "audit",
            operator,
            service = self.service,
            operation,
            key_hash,
            transaction_id = %entry.transaction_id,
            settlement = settlement_name(settlement),
            proposal = entry.proposal.as_ref().map_or("", |p| p.id.as_str()),
            provider,
            note,
            "settlement proposed"
        );
        Ok(entry)
    }

    /// Approves the pending proposal `proposal_id` of the key under `key_hash`: its
    /// settlement takes effect. The approver must not be its proposer; an audit line names
    /// both.
    pub async fn approve(
        &self,
        operation: &str,
        key_hash: &str,
        proposal_id: &str,
        operator: &str,
        note: &str,
    ) -> Result<Outstanding, SettleError> {
        let found = self.load_unknown(operation, key_hash).await?;
        let proposal = found
            .record
            .proposal
            .clone()
            .filter(|proposal| proposal.id == proposal_id)
            .ok_or(SettleError::NoProposal)?;
        if proposal.expires_ms <= now_ms() {
            return Err(SettleError::ProposalExpired);
        }
        if same_person(&proposal.proposer, operator) {
            return Err(SettleError::SameOperator);
        }
        let settlement = Settlement::from(&proposal.settlement);
        let (found, provider) = self.hear(found, &settlement, proposal.overriding).await?;
        let entry = outstanding(&found.key, found.record.clone());
        self.apply(operation, found, &settlement).await?;
        tracing::info!(
            target: "audit",
            operator,
            proposer = %proposal.proposer,
            service = self.service,
            operation,
            key_hash,
            transaction_id = %entry.transaction_id,
            settlement = settlement_name(&settlement),
            proposal = %proposal.id,
            provider,
            note,
            proposal_note = %proposal.note,
            "unknown outcome settled"
        );
        self.count().await;
        Ok(entry)
    }

    /// The unknown outcome `settling` names, and what its provider says of the settlement.
    async fn load_heard(
        &self,
        settling: &Settling<'_>,
    ) -> Result<(Found, &'static str), SettleError> {
        let found = self
            .load_unknown(settling.operation, settling.key_hash)
            .await?;
        self.hear(found, settling.settlement, settling.overriding)
            .await
    }

    /// The record under `key_hash` of `operation`, when its outcome is unknown.
    async fn load_unknown(&self, operation: &str, key_hash: &str) -> Result<Found, SettleError> {
        let idempotency = &self.idempotency;
        let key = format!("{}:{operation}:{key_hash}", idempotency.scope.keys);
        let existing = idempotency
            .store
            .get(&key)
            .await
            .map_err(SettleError::Store)?
            .ok_or_else(|| SettleError::NotFound(key_hash.to_owned()))?;
        let record = idempotency
            .decode(&key, &existing)
            .map_err(|_| SettleError::NotUnknown)?;
        if !record.is_unknown(now_ms()) {
            return Err(SettleError::NotUnknown);
        }
        Ok(Found {
            key,
            existing,
            record,
        })
    }

    /// Makes `settlement` the key's outcome, if the key still holds what was found.
    async fn apply(
        &self,
        operation: &str,
        found: Found,
        settlement: &Settlement,
    ) -> Result<(), SettleError> {
        match settlement {
            Settlement::Succeeded(approval) => {
                let outcome = (self.settler)(operation, &found.record.transaction_id, approval)?;
                self.record_done(found, outcome).await
            }
            Settlement::NotDone => self.free(found).await,
        }
    }

    /// Makes `outcome` the key's (replayed from now on), if the key still holds what was
    /// found; it leaves the open set.
    pub(crate) async fn record_done(
        &self,
        found: Found,
        outcome: Outcome,
    ) -> Result<(), SettleError> {
        let Found {
            key,
            existing,
            record,
        } = found;
        let idempotency = &self.idempotency;
        let done = Record {
            state: State::Done { outcome },
            proposal: None,
            ..record
        };
        let encoded = idempotency.encode(&key, &done);
        let store = &idempotency.store;
        let replaced = store
            .replace(&key, &existing, &encoded, Keep::For(idempotency.ttl))
            .await
            .map_err(SettleError::Store)?;
        if !replaced {
            return Err(SettleError::NotUnknown);
        }
        store
            .untrack(&idempotency.open_set(), &key)
            .await
            .map_err(SettleError::Store)
    }

    /// Frees the key (the provider did not act), if it still holds what was found: the
    /// caller's next retry runs afresh.
    async fn free(&self, found: Found) -> Result<(), SettleError> {
        let Found {
            key,
            existing,
            record,
        } = found;
        let store = &self.idempotency.store;
        let open = self.idempotency.open_set();
        store
            .untrack(&open, &key)
            .await
            .map_err(SettleError::Store)?;
        let removed = store
            .remove(&key, &existing)
            .await
            .map_err(SettleError::Store)?;
        if removed {
            return Ok(());
        }
        // A retry took the key meanwhile: it stays listed.
        store
            .track(&open, &key, &crate::owner_of(&record.caller))
            .await
            .map_err(SettleError::Store)?;
        Err(SettleError::NotUnknown)
    }

    /// Sets the gauge of unknown outcomes from the store; a store that cannot be read
    /// leaves the last count.
    pub async fn count(&self) {
        if let Ok(outstanding) = self.outstanding().await {
            self.publish(&outstanding);
        }
    }

    /// Sets the gauges from a listing just read.
    pub fn publish(&self, outstanding: &[Outstanding]) {
        let mut per_caller = std::collections::HashMap::<&str, i64>::new();
        for entry in outstanding {
            *per_caller.entry(entry.caller.as_str()).or_default() += 1;
        }
        self.idempotency
            .metrics()
            .caller_unknown_max
            .get_or_create(&ProviderLabels {
                provider: self.idempotency.scope.provider,
            })
            .set(per_caller.into_values().max().unwrap_or(0));
        let gauge = &self.idempotency.metrics().unknown;
        for operation in self.operations {
            let count = outstanding
                .iter()
                .filter(|entry| entry.operation == *operation)
                .count();
            gauge
                .get_or_create(&OperationLabels {
                    provider: self.idempotency.scope.provider,
                    operation,
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
}

/// Whether two operator identities (`source:subject`) may be one person: the same subject
/// whatever the source (a token and a certificate naming `alice` are one pair of eyes).
fn same_person(one: &str, other: &str) -> bool {
    let subject = |identity: &'_ str| {
        identity
            .split_once(':')
            .map_or(identity, |(_, s)| s)
            .to_owned()
    };
    subject(one) == subject(other)
}

fn settlement_name(settlement: &Settlement) -> &'static str {
    match settlement {
        Settlement::Succeeded(_) => "succeeded",
        Settlement::NotDone => "not_done",
    }
}

fn outstanding(key: &str, record: Record) -> Outstanding {
    let unknown_since = record.unknown_since_ms.map(time);
    Outstanding {
        proposal: record.proposal.as_deref().map(Pending::from),
        key_hash: key.rsplit(':').next().unwrap_or_default().to_owned(),
        operation: record.operation,
        caller: record.caller,
        transaction_id: record.transaction_id,
        first_attempt: time(record.first_attempt_ms),
        unknown_since,
    }
}

/// A stored time in milliseconds since the epoch (past any clock, the epoch itself).
pub(crate) fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use prost_types::Timestamp;

    use super::super::tests::SCOPE;
    use super::super::{Begin, Claim, Ending, IdempotencyMetrics, MemoryStore, OnUnknown, Seal};
    use super::*;

    /// An operator's settlement of `key_hash`, not overriding the provider.
    fn settling<'a>(
        operation: &'a str,
        key_hash: &'a str,
        settlement: &'a Settlement,
        operator: &'a str,
    ) -> Settling<'a> {
        Settling {
            operation,
            key_hash,
            settlement,
            operator,
            note: "INC-1",
            overriding: false,
        }
    }

    /// Succeeded charges replay a timestamp whose seconds are the approval's length.
    fn settler(operation: &str, _: &str, approval: &Approval) -> Result<Outcome, SettleError> {
        if operation != "charge" {
            return Err(SettleError::Invalid {
                field: "operation",
                description: "unknown".into(),
            });
        }
        let seconds = approval.approval_number.len() as i64;
        Ok(Outcome::of::<Timestamp>(&Ok(Timestamp {
            seconds,
            nanos: 0,
        })))
    }

    fn ledger() -> Ledger {
        let idempotency = Idempotency::new(
            Arc::new(MemoryStore::default()),
            Seal::random().unwrap(),
            SCOPE,
            Duration::from_secs(60),
            Duration::from_secs(30),
            OnUnknown::Hold,
            IdempotencyMetrics::default(),
        );
        Ledger::new("pasarela.test.v1", &["charge"], idempotency, settler)
    }

    fn claim(txid: &str) -> Claim<'static> {
        Claim {
            operation: "charge",
            caller: "jwt:billing",
            key: "order-7",
            fingerprint: String::from("f").into(),
            transaction_id: super::super::Proposed::Ready(txid.into()),
            deadline: Instant::now() + Duration::from_millis(100),
            context: None,
            former_caller: None,
        }
    }

    /// A charge under `order-7` whose outcome was lost.
    async fn lost(ledger: &Ledger) {
        let Ok(Begin::Run(ticket)) = ledger.idempotency.begin(claim("tx-1")).await else {
            panic!("first call runs");
        };
        ledger.idempotency.finish(ticket, Ending::Unknown).await;
    }

    /// A provider that approved every call under `999`.
    struct Approves;

    impl Witness for Approves {
        fn ask<'a>(&'a self, _: &'a Askable) -> futures::future::BoxFuture<'a, Testimony> {
            Box::pin(async { Testimony::Approved("999".into()) })
        }
    }

    #[tokio::test]
    async fn a_settlement_the_provider_contradicts_is_refused_unless_overridden() {
        let ledger = ledger().with_witness(Arc::new(Approves));
        let Ok(Begin::Run(ticket)) = ledger
            .idempotency
            .begin(Claim {
                context: Some("asked with this".into()),
                former_caller: None,
                ..claim("tx-1")
            })
            .await
        else {
            panic!("first call runs");
        };
        ledger.idempotency.finish(ticket, Ending::Unknown).await;
        let key = ledger.outstanding().await.unwrap()[0].key_hash.clone();
        let approved = |number: &str| {
            Settlement::Succeeded(Approval {
                approval_number: number.into(),
                ..Approval::default()
            })
        };
        for settlement in [Settlement::NotDone, approved("1234")] {
            let refused = ledger
                .settle(settling("charge", &key, &settlement, "ops"))
                .await;
            assert!(
                matches!(refused, Err(SettleError::Contradicted(_))),
                "{refused:?}"
            );
        }
        let overridden = Settling {
            overriding: true,
            ..settling("charge", &key, &Settlement::NotDone, "ops")
        };
        let proposed = ledger.propose(overridden, Duration::from_secs(60)).await;
        assert!(proposed.is_ok(), "an override is proposed: {proposed:?}");
        ledger
            .settle(settling("charge", &key, &approved("999"), "ops"))
            .await
            .expect("what the provider says is settled");
    }

    #[tokio::test]
    async fn a_proposal_takes_effect_only_when_another_operator_approves_it_in_time() {
        let ledger = ledger();
        lost(&ledger).await;
        let key = ledger.outstanding().await.unwrap()[0].key_hash.clone();
        let approval = Settlement::Succeeded(Approval {
            approval_number: "1234".into(),
            ..Approval::default()
        });
        let hour = Duration::from_secs(3_600);
        let first = ledger
            .propose(settling("charge", &key, &approval, "alice"), hour)
            .await
            .unwrap();
        let first_id = first.proposal.expect("pending").id;
        let listed = ledger.outstanding().await.unwrap();
        assert_eq!(listed.len(), 1, "a proposal settles nothing");
        let pending = listed[0]
            .proposal
            .clone()
            .expect("listed with its proposal");
        assert_eq!(
            (pending.proposer.as_str(), pending.settlement),
            ("alice", approval.clone())
        );

        let own = ledger.approve("charge", &key, &first_id, "alice", "").await;
        assert!(matches!(own, Err(SettleError::SameOperator)), "{own:?}");
        let second = ledger
            .propose(settling("charge", &key, &approval, "carol"), hour)
            .await
            .unwrap()
            .proposal
            .expect("pending")
            .id;
        let replaced = ledger.approve("charge", &key, &first_id, "bob", "").await;
        assert!(
            matches!(replaced, Err(SettleError::NoProposal)),
            "{replaced:?}"
        );
        ledger
            .approve("charge", &key, &second, "bob", "checked")
            .await
            .unwrap();
        assert!(ledger.outstanding().await.unwrap().is_empty());
        let Ok(Begin::Replay(outcome)) = ledger.idempotency.begin(claim("tx-2")).await else {
            panic!("the approved outcome is replayed");
        };
        assert_eq!(outcome.replay::<Timestamp>().unwrap().seconds, 4);
    }

    #[tokio::test]
    async fn a_retry_taking_the_key_over_drops_its_proposal() {
        let mut ledger = ledger();
        ledger.idempotency.on_unknown = OnUnknown::Retry;
        lost(&ledger).await;
        let key = ledger.outstanding().await.unwrap()[0].key_hash.clone();
        let proposed = ledger
            .propose(
                settling("charge", &key, &Settlement::NotDone, "jwt:alice"),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let id = proposed.proposal.expect("pending").id;
        let same = ledger.approve("charge", &key, &id, "mtls:alice", "").await;
        assert!(
            matches!(same, Err(SettleError::SameOperator)),
            "one subject, one pair of eyes"
        );
        let Ok(Begin::Run(ticket)) = ledger.idempotency.begin(claim("tx-1")).await else {
            panic!("the retry runs");
        };
        ledger.idempotency.finish(ticket, Ending::Unknown).await;
        let stale = ledger.approve("charge", &key, &id, "jwt:bob", "").await;
        assert!(matches!(stale, Err(SettleError::NoProposal)), "{stale:?}");
        assert_eq!(ledger.outstanding().await.unwrap()[0].proposal, None);
    }

    #[tokio::test]
    async fn a_lapsed_proposal_cannot_be_approved() {
        let ledger = ledger();
        lost(&ledger).await;
        let key = ledger.outstanding().await.unwrap()[0].key_hash.clone();
        let proposed = ledger
            .propose(
                settling("charge", &key, &Settlement::NotDone, "alice"),
                Duration::ZERO,
            )
            .await
            .unwrap();
        let id = proposed.proposal.expect("pending").id;
        let lapsed = ledger.approve("charge", &key, &id, "bob", "").await;
        assert!(
            matches!(lapsed, Err(SettleError::ProposalExpired)),
            "{lapsed:?}"
        );
        assert_eq!(
            ledger.outstanding().await.unwrap().len(),
            1,
            "still unknown"
        );
    }

    #[tokio::test]
    async fn an_unknown_outcome_is_listed_and_settled_as_succeeded() {
        let ledger = ledger();
        lost(&ledger).await;
        let listed = ledger.outstanding().await.unwrap();
        assert_eq!(listed.len(), 1);
        let entry = &listed[0];
        assert_eq!(
            (entry.operation.as_str(), entry.caller.as_str()),
            ("charge", "jwt:billing")
        );
        assert_eq!(entry.transaction_id, "tx-1");
        assert_eq!(entry.key_hash.len(), 64);
        assert!(entry.unknown_since.is_some());

        let approval = Approval {
            approval_number: "123456".into(),
            ..Approval::default()
        };
        let settled = ledger
            .settle(settling(
                "charge",
                &entry.key_hash,
                &Settlement::Succeeded(approval),
                "ops",
            ))
            .await
            .unwrap();
        assert_eq!(&settled, entry);
        assert!(ledger.outstanding().await.unwrap().is_empty());
        let Ok(Begin::Replay(outcome)) = ledger.idempotency.begin(claim("tx-2")).await else {
            panic!("the settled outcome is replayed");
        };
        assert_eq!(outcome.replay::<Timestamp>().unwrap().seconds, 6);
        let again = ledger
            .settle(settling(
                "charge",
                &entry.key_hash,
                &Settlement::NotDone,
                "ops",
            ))
            .await;
        assert!(matches!(again, Err(SettleError::NotUnknown)), "{again:?}");
    }

    #[tokio::test]
    async fn an_outcome_settled_as_not_done_frees_the_key() {
        let ledger = ledger();
        lost(&ledger).await;
        let hash = ledger.outstanding().await.unwrap()[0].key_hash.clone();
        ledger
            .settle(settling("charge", &hash, &Settlement::NotDone, "ops"))
            .await
            .unwrap();
        let Ok(Begin::Run(fresh)) = ledger.idempotency.begin(claim("tx-2")).await else {
            panic!("the key runs afresh");
        };
        assert_eq!(fresh.transaction_id(), "tx-2");
        assert!(!fresh.after_unknown());
    }

    #[tokio::test]
    async fn a_settlement_needs_a_recorded_unknown_key_and_a_valid_approval() {
        let ledger = ledger();
        let missing = ledger
            .settle(settling(
                "charge",
                &"0".repeat(64),
                &Settlement::NotDone,
                "ops",
            ))
            .await;
        assert!(matches!(missing, Err(SettleError::NotFound(_))));
        lost(&ledger).await;
        let hash = ledger.outstanding().await.unwrap()[0].key_hash.clone();
        let wrong = ledger
            .settle(settling(
                "refund",
                &hash,
                &Settlement::Succeeded(Approval::default()),
                "ops",
            ))
            .await;
        assert!(matches!(wrong, Err(SettleError::NotFound(_))), "{wrong:?}");
    }

    #[tokio::test]
    async fn the_gauge_counts_outstanding_unknown_outcomes() {
        let ledger = ledger();
        lost(&ledger).await;
        ledger.count().await;
        let labels = OperationLabels {
            provider: "provider.test",
            operation: "charge",
        };
        let gauge = &ledger.idempotency.metrics().unknown;
        assert_eq!(gauge.get_or_create(&labels).get(), 1);
        let hash = ledger.outstanding().await.unwrap()[0].key_hash.clone();
        ledger
            .settle(settling("charge", &hash, &Settlement::NotDone, "ops"))
            .await
            .unwrap();
        assert_eq!(gauge.get_or_create(&labels).get(), 0);
    }
}
