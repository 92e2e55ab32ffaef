//! What a service's reconciler reads and writes: the unknown outcomes it can ask its
//! provider about (those whose claim kept a context), the lease that lets one replica ask
//! at a time, and the outcome the provider's answer proves.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::ledger::{Found, Ledger, SettleError, Settlement};
use super::{Outcome, State, StoreResult, now_ms};

/// Where one caller's key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Running,
    Unknown,
    Settled,
    Freed,
}

/// What a provider says, asked about a call whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Testimony {
    /// It executed the call, under this approval number.
    Approved(String),
    /// It has no such call (an answer the configuration says means so).
    NoSuchCall,
    /// It could not say (a refusal of another kind, a timeout): nothing is concluded.
    Inconclusive(String),
}

/// A service that can ask its provider about a call it kept a context for.
pub trait Witness: Send + Sync {
    fn ask<'a>(&'a self, asked: &'a Askable) -> BoxFuture<'a, Testimony>;
}

impl Testimony {
    /// How the provider's word contradicts `settlement`, if it does.
    pub(crate) fn contradicts(&self, settlement: &Settlement) -> Option<String> {
        match (self, settlement) {
            (Testimony::Approved(number), Settlement::Succeeded(approval))
                if *number != approval.approval_number =>
            {
                Some(format!("the provider approved it under {number}"))
            }
            (Testimony::Approved(number), Settlement::NotDone) => {
                Some(format!("the provider approved it under {number}"))
            }
            (Testimony::NoSuchCall, Settlement::Succeeded(_)) => {
                Some("the provider has no such call".to_owned())
            }
            _ => None,
        }
    }
}

/// An unknown outcome a service may ask about.
pub struct Askable {
    pub(crate) found: Found,
}

impl Askable {
    /// The hash under which the key is stored, as operators see it.
    pub fn key_hash(&self) -> &str {
        self.found.key.rsplit(':').next().unwrap_or_default()
    }

    /// Who made the call: its caller's key space (`Principal::key`).
    pub fn caller(&self) -> &str {
        &self.found.record.caller
    }

    /// The transaction id every attempt under the key sent.
    pub fn transaction_id(&self) -> &str {
        &self.found.record.transaction_id
    }

    /// What the service kept of the request ([`crate::Claim::context`]).
    pub fn context(&self) -> &str {
        self.found.record.context.as_deref().unwrap_or_default()
    }

    /// When the outcome was found unknown, if it was.
    pub fn unknown_since(&self) -> Option<SystemTime> {
        self.found.record.unknown_since_ms.map(super::ledger::time)
    }
}

impl Ledger {
    /// Where `caller`'s `key` of `operation` stands; a record that cannot be read counts as
    /// unknown (it is never replayed either).
    pub async fn key_state(
        &self,
        operation: &str,
        caller: &str,
        key: &str,
    ) -> StoreResult<KeyState> {
        let idempotency = self.idempotency();
        let stored = idempotency.store_key(operation, caller, key);
        let Some(value) = idempotency.store.get(&stored).await? else {
            return Ok(KeyState::Freed);
        };
        let Ok(record) = idempotency.decode(&stored, &value) else {
            return Ok(KeyState::Unknown);
        };
        Ok(match record.state {
            State::Done { .. } => KeyState::Settled,
            _ if record.is_unknown(now_ms()) => KeyState::Unknown,
            _ => KeyState::Running,
        })
    }

    /// The unknown outcomes of `operation` whose claims kept a context to ask with.
    pub async fn askable(&self, operation: &str) -> StoreResult<Vec<Askable>> {
        Ok(self
            .unknown_records()
            .await?
            .into_iter()
            .filter(|found| found.record.operation == operation && found.record.context.is_some())
            .map(|found| Askable { found })
            .collect())
    }

    /// Takes or renews this ledger's lease `name` for `holder` (see [`crate::Store::lease`]).
    pub async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let name = format!("{}:{name}", self.idempotency().scope.keys);
        self.idempotency().store.lease(&name, holder, ttl).await
    }

    /// Makes `outcome`, proven by the provider's own answer, the key's outcome, if the key
    /// still holds what was read; an audit line says so.
    pub async fn resolve(&self, asked: Askable, outcome: Outcome) -> Result<(), SettleError> {
        let (operation, transaction_id) = (
            asked.found.record.operation.clone(),
            asked.found.record.transaction_id.clone(),
        );
        let key_hash = asked.key_hash().to_owned();
        self.record_done(asked.found, outcome).await?;
        tracing::info!(
            target: "audit",
            operator = "reconciler",
            service = self.service,
            operation = %operation,
            key_hash = %key_hash,
            transaction_id = %transaction_id,
            settlement = "succeeded",
            "unknown outcome settled by the provider's answer"
        );
        self.count().await;
        Ok(())
    }
}
