//! Whether a provider may have acted on a call: one typed fact, set where it is known (the
//! outbound client for what never left or never came back, each provider's wire layer for
//! what an answer says), and the only thing an idempotency key's fate is decided from.

/// What a failed call tells about whether the provider acted on it.
///
/// For a state-changing call, anything not proven [`Delivery::NotSent`] or refused
/// ([`Delivery::Declined`], [`Delivery::Refused`]) is [`Delivery::Unknown`]: that is the
/// default of every [`crate::ProviderError`], so a failure nobody classified is held, never
/// re-sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Nothing that could act left pasarela: refused locally, the circuit open, a connection
    /// that never opened, too little time left to send, no access token, or only a read (a
    /// consulta) was sent. A retry is a first attempt.
    NotSent,
    /// The provider answered that it did not act, for a reason that may pass (its gateway
    /// refused pasarela's credentials, a path or a method): a retry may be sent afresh.
    Declined,
    /// The provider answered that it did not act, and the same request would be refused
    /// again (a wrong OTP, no such account): the refusal is the key's final outcome.
    Refused,
    /// The request may have reached the provider and no answer says what it did.
    #[default]
    Unknown,
}

/// What becomes of an idempotency key after its call ended in a failure with this fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The key is freed: a repeat runs afresh.
    Freed,
    /// The failure is recorded and replayed for every repeat.
    Recorded,
    /// The key is held as an unknown outcome, listed for reconciliation.
    Held,
}

impl Delivery {
    /// The key's fate after a failure with this fact.
    pub fn fate(self) -> Fate {
        match self {
            Delivery::NotSent | Delivery::Declined => Fate::Freed,
            Delivery::Refused => Fate::Recorded,
            Delivery::Unknown => Fate::Held,
        }
    }

    /// Whether the provider may have acted: the time an outcome became unknown moves on.
    pub fn may_have_acted(self) -> bool {
        self == Delivery::Unknown
    }

    /// The more cautious of two readings of one answer: unknown over a recorded refusal
    /// (which at least sends nothing again) over a decline (which frees the key) over not
    /// sent.
    pub fn most_cautious(self, other: Delivery) -> Delivery {
        let caution = |delivery: Delivery| match delivery {
            Delivery::NotSent => 0,
            Delivery::Declined => 1,
            Delivery::Refused => 2,
            Delivery::Unknown => 3,
        };
        if caution(other) > caution(self) {
            other
        } else {
            self
        }
    }

    /// Lower case, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::NotSent => "not_sent",
            Delivery::Declined => "declined",
            Delivery::Refused => "refused",
            Delivery::Unknown => "unknown",
        }
    }

    /// A fact as a configuration or mapping file writes it.
    pub fn parse(text: &str) -> Option<Delivery> {
        [
            Delivery::NotSent,
            Delivery::Declined,
            Delivery::Refused,
            Delivery::Unknown,
        ]
        .into_iter()
        .find(|delivery| delivery.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_has_one_fate_and_one_name() {
        let facts = [
            (Delivery::NotSent, Fate::Freed),
            (Delivery::Declined, Fate::Freed),
            (Delivery::Refused, Fate::Recorded),
            (Delivery::Unknown, Fate::Held),
        ];
        for (fact, fate) in facts {
            assert_eq!(fact.fate(), fate, "{fact:?}");
            assert_eq!(Delivery::parse(fact.as_str()), Some(fact));
        }
        assert_eq!(
            Delivery::default(),
            Delivery::Unknown,
            "unclassified is held"
        );
        assert_eq!(Delivery::parse("sent"), None);
        let ordered = [
            Delivery::NotSent,
            Delivery::Declined,
            Delivery::Refused,
            Delivery::Unknown,
        ];
        for (i, less) in ordered.iter().enumerate() {
            for more in &ordered[i..] {
                assert_eq!(less.most_cautious(*more), *more);
                assert_eq!(more.most_cautious(*less), *more);
            }
        }
    }
}
