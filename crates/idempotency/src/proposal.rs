//! A settlement one operator proposes and another approves (four eyes): kept in the key's
//! sealed record, so that every replica sees it and nobody can forge one in the store,
//! until it is approved, replaced or lapses.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::ledger::{Approval, Settlement};

/// A proposal as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Proposal {
    pub id: String,
    pub settlement: Stored,
    /// The proposing operator's identity.
    pub proposer: String,
    pub note: String,
    pub expires_ms: u64,
    /// Proposed against the provider's word.
    #[serde(default)]
    pub overriding: bool,
}

/// A settlement as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Stored {
    Succeeded {
        approval_number: String,
        subscription_id: String,
    },
    NotDone,
}

impl From<&Settlement> for Stored {
    fn from(settlement: &Settlement) -> Self {
        match settlement {
            Settlement::Succeeded(approval) => Stored::Succeeded {
                approval_number: approval.approval_number.clone(),
                subscription_id: approval.subscription_id.clone(),
            },
            Settlement::NotDone => Stored::NotDone,
        }
    }
}

impl From<&Stored> for Settlement {
    fn from(stored: &Stored) -> Self {
        match stored {
            Stored::Succeeded {
                approval_number,
                subscription_id,
            } => Settlement::Succeeded(Approval {
                approval_number: approval_number.clone(),
                subscription_id: subscription_id.clone(),
            }),
            Stored::NotDone => Settlement::NotDone,
        }
    }
}

/// A pending proposal, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    pub proposer: String,
    pub expires: SystemTime,
    pub settlement: Settlement,
    pub note: String,
    /// Proposed against the provider's answer.
    pub overriding: bool,
}

impl From<&Proposal> for Pending {
    fn from(proposal: &Proposal) -> Self {
        Pending {
            id: proposal.id.clone(),
            proposer: proposal.proposer.clone(),
            expires: super::ledger::time(proposal.expires_ms),
            settlement: Settlement::from(&proposal.settlement),
            note: proposal.note.clone(),
            overriding: proposal.overriding,
        }
    }
}

/// A new proposal's id: 128 random bits, in hex.
pub(crate) fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
