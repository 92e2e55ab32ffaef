//! The four Daviplata operations: one enum that owns each one's name (the one vocabulary of
//! metrics, spans, the ledger and fingerprints), path, whether it changes state, and the
//! response an operator's settlement replays; and the trait by which each proto request is
//! a value the handler runs the same way (its impls sit beside their wire sections).

use pasarela::recurring_payments::v1 as pb;
use pasarela_idempotency::{Approval, Outcome, SettleError};
use serde::Serialize;
use tonic::Status;

use super::wire::{Answer, Defaults, Envelope, Reference, Unreadable};
use crate::config::Paths;
use crate::tenancy::Act;
use crate::validate::Parties;

/// One of Daviplata's business operations (D1-D4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// D1: an OTP sent to the wallet's holder.
    Request,
    /// D2: the subscription, with the holder's OTP.
    Activate,
    /// D3.
    Cancel,
    /// D4: money moves.
    Charge,
}

impl Operation {
    pub const ALL: [Self; 4] = [Self::Request, Self::Activate, Self::Cancel, Self::Charge];

    /// The names of those that change state: the ledger's operations.
    pub const CHANGING_STATE: [&'static str; 3] = [
        Self::Activate.name(),
        Self::Cancel.name(),
        Self::Charge.name(),
    ];

    /// The name in metrics, spans, `ErrorInfo` and the idempotency records. Part of every
    /// record's key: a name changed would lose the records written under the old one.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Activate => "activate",
            Self::Cancel => "cancel",
            Self::Charge => "charge",
        }
    }

    /// The operation an operator names, if it is one.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|operation| operation.name() == name)
    }

    /// Activate, cancel and charge change state: each runs once per idempotency key, and a
    /// lost answer is an unknown outcome. None is repeated by pasarela: a request sends the
    /// holder an SMS.
    pub const fn changes_state(self) -> bool {
        !matches!(self, Self::Request)
    }

    pub fn path(self, paths: &Paths) -> &str {
        match self {
            Self::Request => &paths.request,
            Self::Activate => &paths.activate,
            Self::Cancel => &paths.cancel,
            Self::Charge => &paths.charge,
        }
    }

    /// The response an operator's settlement replays: what Daviplata would have answered,
    /// with the approval or subscription the operator read in Daviplata's records.
    pub fn settled(
        self,
        transaction_id: &str,
        approval: &Approval,
    ) -> Result<Outcome, SettleError> {
        let result = Some(pb::ResultStatus {
            status: 0,
            message: "reconciled by an operator".into(),
            transaction_id: transaction_id.to_owned(),
            transaction_time: None,
        });
        let operation = self.name();
        match self {
            Self::Request => Err(SettleError::NotFound(operation.to_owned())),
            Self::Activate => Ok(Outcome::of(&Ok(pb::ActivateSubscriptionResponse {
                result,
                subscription: Some(pb::Subscription {
                    subscription_id: approval.subscription(operation)?,
                    ..pb::Subscription::default()
                }),
            }))),
            Self::Cancel => Ok(Outcome::of(&Ok(pb::CancelSubscriptionResponse { result }))),
            Self::Charge => Ok(Outcome::of(&Ok(pb::ChargeSubscriptionResponse {
                result,
                approval_number: approval.number(operation)?,
                subscription: None,
            }))),
        }
    }
}

/// How Daviplata's answers are read, as configured.
#[derive(Debug, Clone, Copy)]
pub struct Readings {
    /// D1's OTP passed on to the caller (a lab's only).
    pub pass_otp: bool,
}

/// A proto request as one Daviplata operation: parsed into what its body is built from,
/// checked against the caller's tenant, keyed when it changes state, sent and read.
pub trait Call: prost::Message + Clone + Send + Sync + 'static {
    const OPERATION: Operation;
    /// What the tenant's checks see the request do.
    const ACT: Act;
    /// What the parse step proved: the parts the body is built from, each present.
    type Valid<'a>: Send + Sync
    where
        Self: 'a;
    /// The body's `TransactionDetail`.
    type Detail: Serialize + Send + Sync;
    type Response: prost::Message + Default + Send + 'static;

    /// Every field checked, all violations at once (`crate::validate`).
    fn parse(&self) -> Result<Self::Valid<'_>, Status>;

    /// What every request carries, checked: merchant, wallet, the caller's transaction.
    fn parties<'v>(valid: &'v Self::Valid<'_>) -> &'v Parties<'v>;

    /// The idempotency key, on the operations that change state.
    fn key(&self) -> Option<&str>;

    /// The request as its fingerprint sees it: a repeat under another key is the same call.
    fn without_key(&self) -> Self;

    /// Values of the request removed from any provider text passed on.
    fn secrets(&self) -> Vec<&str>;

    fn body(
        valid: &Self::Valid<'_>,
        defaults: &Defaults,
        reference: &Reference,
    ) -> Envelope<Self::Detail>;

    fn read(answer: Answer, readings: Readings) -> Result<Self::Response, Unreadable>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed<Q: Call + Default>() -> bool {
        Q::default().key().is_some()
    }

    #[test]
    fn an_operation_is_keyed_and_in_the_ledger_exactly_when_it_changes_state() {
        let keyed = [
            (
                Operation::Request,
                keyed::<pb::RequestSubscriptionRequest>(),
            ),
            (
                Operation::Activate,
                keyed::<pb::ActivateSubscriptionRequest>(),
            ),
            (Operation::Cancel, keyed::<pb::CancelSubscriptionRequest>()),
            (Operation::Charge, keyed::<pb::ChargeSubscriptionRequest>()),
        ];
        for (operation, keyed) in keyed {
            assert_eq!(keyed, operation.changes_state(), "{operation:?}");
            assert_eq!(
                Operation::CHANGING_STATE.contains(&operation.name()),
                operation.changes_state(),
                "{operation:?}"
            );
            assert_eq!(Operation::named(operation.name()), Some(operation));
        }
    }
}
