//! Why a call was refused, and how each reason travels: a gRPC code, a stable
//! `ErrorInfo.reason` and a message that never quotes a credential.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code::{PermissionDenied, ResourceExhausted, Unauthenticated};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// `ErrorInfo.domain` of every auth rejection.
pub const DOMAIN: &str = "pasarela";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    TokenMissing,
    TokenMalformed,
    TokenExpired,
    TokenNotYetValid,
    TokenInvalidSignature,
    TokenUnknownKey,
    TokenAlgorithmNotAllowed,
    TokenWrongIssuer,
    TokenWrongAudience,
    TokenClaimsInvalid,
    MethodNotConfigured,
    ScopeMissing,
    ReflectionClosed,
    RateLimited,
    NoTenant,
    MerchantNotInTenant,
    SubscriptionOfAnotherTenant,
    SubscriptionOwnerUnknown,
    EndUserMismatch,
    EndUserClaimMissing,
    BankIdentityNotCallers,
}

struct Entry {
    reason: Reason,
    code: Code,
    name: &'static str,
    message: &'static str,
}

const fn entry(reason: Reason, code: Code, name: &'static str, message: &'static str) -> Entry {
    Entry {
        reason,
        code,
        name,
        message,
    }
}

#[rustfmt::skip]
const TABLE: &[Entry] = &[
    entry(Reason::TokenMissing, Unauthenticated, "TOKEN_MISSING", "no bearer token (authorization: Bearer <jwt>)"),
    entry(Reason::TokenMalformed, Unauthenticated, "TOKEN_MALFORMED", "the bearer token is not a well-formed JWT"),
    entry(Reason::TokenExpired, Unauthenticated, "TOKEN_EXPIRED", "the bearer token has expired"),
    entry(Reason::TokenNotYetValid, Unauthenticated, "TOKEN_NOT_YET_VALID", "the bearer token is not valid yet (nbf)"),
    entry(Reason::TokenInvalidSignature, Unauthenticated, "TOKEN_INVALID_SIGNATURE", "the bearer token's signature does not verify"),
    entry(Reason::TokenUnknownKey, Unauthenticated, "TOKEN_UNKNOWN_KEY", "the bearer token is signed with a key the issuer does not publish"),
    entry(Reason::TokenAlgorithmNotAllowed, Unauthenticated, "TOKEN_ALGORITHM_NOT_ALLOWED", "the bearer token's algorithm is not accepted"),
    entry(Reason::TokenWrongIssuer, Unauthenticated, "TOKEN_WRONG_ISSUER", "the bearer token comes from another issuer"),
    entry(Reason::TokenWrongAudience, Unauthenticated, "TOKEN_WRONG_AUDIENCE", "the bearer token is meant for another audience"),
    entry(Reason::TokenClaimsInvalid, Unauthenticated, "TOKEN_CLAIMS_INVALID", "the bearer token lacks a required claim"),
    entry(Reason::MethodNotConfigured, PermissionDenied, "METHOD_NOT_CONFIGURED", "no policy allows this method"),
    entry(Reason::ScopeMissing, PermissionDenied, "SCOPE_MISSING", "the caller lacks a scope this method requires"),
    entry(Reason::ReflectionClosed, PermissionDenied, "REFLECTION_CLOSED", "server reflection is closed"),
    entry(Reason::RateLimited, ResourceExhausted, "RATE_LIMITED", "too many calls; retry after the given delay"),
    entry(Reason::NoTenant, PermissionDenied, "PRINCIPAL_IN_NO_TENANT", "the caller acts for no tenant"),
    entry(Reason::MerchantNotInTenant, PermissionDenied, "MERCHANT_NOT_IN_TENANT", "the merchant is not one of the caller's tenant"),
    entry(Reason::SubscriptionOfAnotherTenant, PermissionDenied, "SUBSCRIPTION_OF_ANOTHER_TENANT", "the subscription was activated by another tenant"),
    entry(Reason::SubscriptionOwnerUnknown, PermissionDenied, "SUBSCRIPTION_OWNER_UNKNOWN", "no tenant is recorded as having activated the subscription"),
    entry(Reason::EndUserMismatch, PermissionDenied, "END_USER_MISMATCH", "the customer is not the end user the caller's token names"),
    entry(Reason::EndUserClaimMissing, PermissionDenied, "END_USER_CLAIM_MISSING", "the caller's token lacks the claim its tenant binds end users with"),
    entry(Reason::BankIdentityNotCallers, PermissionDenied, "BANK_IDENTITY_NOT_CALLERS", "the caller may not set these fields of the bank identity"),
];

fn lookup(reason: Reason) -> &'static Entry {
    TABLE
        .iter()
        .find(|entry| entry.reason == reason)
        .unwrap_or(&TABLE[0])
}

impl Reason {
    /// The stable UPPER_SNAKE name sent as `ErrorInfo.reason` and written in the audit line.
    pub fn name(self) -> &'static str {
        lookup(self).name
    }

    pub fn code(self) -> Code {
        lookup(self).code
    }
}

/// A refusal with its context (required scopes, the limit group, when to retry).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: Reason,
    pub metadata: HashMap<String, String>,
    pub retry_after: Option<Duration>,
}

impl Rejection {
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            metadata: HashMap::new(),
            retry_after: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    pub fn into_status(self) -> Status {
        let entry = lookup(self.reason);
        let mut details = ErrorDetails::with_error_info(entry.name, DOMAIN, self.metadata);
        if let Some(delay) = self.retry_after {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(entry.code, entry.message, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Reason; 21] = [
        Reason::TokenMissing,
        Reason::TokenMalformed,
        Reason::TokenExpired,
        Reason::TokenNotYetValid,
        Reason::TokenInvalidSignature,
        Reason::TokenUnknownKey,
        Reason::TokenAlgorithmNotAllowed,
        Reason::TokenWrongIssuer,
        Reason::TokenWrongAudience,
        Reason::TokenClaimsInvalid,
        Reason::MethodNotConfigured,
        Reason::ScopeMissing,
        Reason::ReflectionClosed,
        Reason::RateLimited,
        Reason::NoTenant,
        Reason::MerchantNotInTenant,
        Reason::SubscriptionOfAnotherTenant,
        Reason::SubscriptionOwnerUnknown,
        Reason::EndUserMismatch,
        Reason::EndUserClaimMissing,
        Reason::BankIdentityNotCallers,
    ];

    #[test]
    fn every_reason_has_its_own_row() {
        for reason in ALL {
            assert_eq!(lookup(reason).reason, reason);
        }
        assert_eq!(TABLE.len(), ALL.len());
    }

    #[test]
    fn status_carries_error_info_and_retry_info() {
        let status = Rejection::new(Reason::RateLimited)
            .with("group", "default")
            .retry_after(Duration::from_millis(250))
            .into_status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "RATE_LIMITED");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(info.metadata["group"], "default");
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(250)));
    }
}
