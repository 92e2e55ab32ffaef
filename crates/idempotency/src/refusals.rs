//! The idempotency coordinator's refusals: each a `Status` with its `ErrorInfo` reason,
//! built where the decision is made and carried to the caller as is.

use std::time::Duration;

use pasarela_provider::{ProviderError, reasons};
use tonic::{Code, Status};

use super::{AWAITING_RECONCILIATION, Idempotency, Record, StoreUnavailable, reason};

impl Idempotency {
    pub(crate) fn unusable_record(&self, reason: &'static str, what: &str) -> Status {
        ProviderError::new(Code::Internal, reason, self.scope.domain)
            .message(format!(
                "{what}; nothing was sent to {}",
                self.scope.provider_name
            ))
            .into()
    }

    /// The caller holds its maximum of open keys: nothing is sent until some are settled.
    pub(crate) fn too_many_open(&self, operation: &str) -> Status {
        tracing::warn!(
            operation,
            max = self.max_open_per_caller,
            "a caller holds its maximum of open idempotency keys: refused before sending"
        );
        self.metrics.count_refused_for_quota(self.scope.provider);
        ProviderError::new(
            Code::ResourceExhausted,
            reason::OPEN_KEYS_EXHAUSTED,
            self.scope.domain,
        )
        .message(
            "this caller has too many calls running or with unknown outcomes; nothing was sent: \
             retry once some are settled",
        )
        .retry_after(Duration::from_secs(60))
        .into()
    }

    pub(crate) fn key_reused(&self) -> Status {
        ProviderError::new(
            Code::FailedPrecondition,
            reason::IDEMPOTENCY_KEY_REUSED,
            self.scope.domain,
        )
        .message("this idempotency key was used for a different request; use a new key")
        .into()
    }

    pub(crate) fn in_flight_error(&self) -> Status {
        ProviderError::new(
            Code::Aborted,
            reason::IDEMPOTENCY_KEY_IN_FLIGHT,
            self.scope.domain,
        )
        .message("a request with this idempotency key is still running; retry later")
        .retry_after(Duration::from_secs(1))
        .into()
    }

    /// A repeat of a key whose outcome is unknown, held: nothing is sent.
    pub(crate) fn awaiting_reconciliation(&self, record: &Record) -> Status {
        ProviderError::new(
            Code::Unavailable,
            reasons::PROVIDER_OUTCOME_UNKNOWN,
            self.scope.domain,
        )
        .message(format!(
            "the outcome of an earlier attempt under this idempotency key is unknown ({} may \
             have acted); nothing was sent again: the key awaits reconciliation by an operator",
            self.scope.provider_name
        ))
        .meta("state", AWAITING_RECONCILIATION)
        .meta("transaction_id", &record.transaction_id)
        .into()
    }

    /// A new key's proposed transaction id was handed out before: nothing is sent under it.
    pub(crate) fn transaction_id_reused(&self, record: &Record) -> Status {
        tracing::error!(
            operation = %record.operation,
            transaction_id = %record.transaction_id,
            "a transaction id was proposed twice (its sequence went back): the store refused it"
        );
        ProviderError::new(
            Code::Internal,
            reason::TRANSACTION_ID_REUSED,
            self.scope.domain,
        )
        .message(format!(
            "the transaction id proposed for this call was used before; nothing was sent to {}",
            self.scope.provider_name
        ))
        .into()
    }

    /// A call refused because the store did not answer: nothing was sent.
    pub fn store_down(&self, error: StoreUnavailable) -> Status {
        tracing::error!(error = %error, "idempotency store unavailable");
        self.metrics.store_error(self.scope.provider);
        ProviderError::new(
            Code::Unavailable,
            reason::IDEMPOTENCY_STORE_UNAVAILABLE,
            self.scope.domain,
        )
        .message(format!(
            "the idempotency store is unavailable; nothing was sent to {}",
            self.scope.provider_name
        ))
        .retry_after(Duration::from_secs(1))
        .into()
    }
}
