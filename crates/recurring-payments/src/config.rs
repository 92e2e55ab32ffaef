//! The recurring-payments section of pasarela's configuration: where Daviplata lives, the
//! credentials pasarela presents to it, and where idempotency records are kept.

use std::collections::BTreeMap;
use std::time::Duration;

pub use pasarela_idempotency::{IdempotencyConfig, StoreKind};
use pasarela_provider::Credential;
pub use pasarela_provider::Environment;
use pasarela_provider::outbound::OutboundSettings;
use serde::Deserialize;

pub use crate::tenancy::{Contract, TenantSettings, UnboundSubscriptions};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Daviplata's base URL, e.g. `https://apislab.daviplata.com`.
    pub base_url: String,
    /// The OAuth2 token's host when it is not `base_url`'s: the spec prints D0 under
    /// `apilab.daviplata.com` (line 64) and D1-D4 under `apislab.daviplata.com`. Unset, the
    /// token is asked of `base_url` too.
    #[serde(default)]
    pub token_base_url: Option<String>,
    /// OAuth2 client id (the API Market "consumer key"), also sent on every business call.
    pub client_id: String,
    /// OAuth2 client secret (the "consumer secret").
    pub client_secret: Credential,
    /// Transport (mutual TLS identity and CA, timeouts), retries and breaker.
    #[serde(default)]
    pub outbound: OutboundSettings,
    /// Where idempotency records live: `memory` (one replica) or `redis`.
    #[serde(default)]
    pub idempotency: IdempotencyConfig,
    /// After an unknown outcome, re-send the same `transactionId` on a retry under the same
    /// key. Off by default: the spec never says Daviplata deduplicates by it, and if it does
    /// not, a re-send charges twice. Turn it on only once Daviplata confirms deduplication
    /// (`pasarela probe` checks a lab); while off, the key waits for an operator.
    #[serde(default)]
    pub resend_unknown_outcomes: bool,
    /// Header carrying the client id on business calls: the spec says `client_id`; IBM API
    /// Connect lab clients use `x-ibm-client-id`.
    #[serde(default = "defaults::client_id_header")]
    pub client_id_header: String,
    /// Header carrying the client secret on business calls too (`client_secret`,
    /// `x-ibm-client-secret`); unset (the default), the secret travels only to the token
    /// endpoint, as D1-D4's header lists print: the error table's "when Client Id or Client
    /// Secret is not sent" leaves it open (docs/spec-decisions.md), and `pasarela probe`
    /// asks.
    #[serde(default)]
    pub client_secret_header: Option<String>,
    /// OAuth2 scope of the token.
    #[serde(default = "defaults::scope")]
    pub scope: String,
    /// `Consumer.paymentProviderId`: the id Daviplata gave pasarela's operator. Required:
    /// the spec's examples print `00000001`, a value that must never reach production by
    /// default.
    pub payment_provider_id: String,
    /// How D2 spells the document number: the example's `identificationNumber` (as D1, D3
    /// and D4) or its table's `identificationNum` (docs/spec-decisions.md).
    #[serde(default)]
    pub activation_document_field: DocumentField,
    /// How every `TransactionHeader` spells the merchant id: the examples' `commercelId`
    /// or the field tables' `commerceId` (docs/spec-decisions.md).
    #[serde(default)]
    pub commerce_id_field: CommerceField,
    /// `TransactionHeader.apiRulesVersion`.
    #[serde(default = "defaults::api_rules_version")]
    pub api_rules_version: String,
    /// Paths of the five operations under `base_url`.
    #[serde(default)]
    pub paths: Paths,
    /// Which Daviplata environment `base_url` is: `production` (the default) or `sandbox`
    /// (the lab), the only one `pasarela probe --move-money` charges.
    #[serde(default)]
    pub environment: Environment,
    /// Pass the OTP that only Daviplata's lab returns on to the caller (dev and tests).
    #[serde(default)]
    pub lab_otp_passthrough: bool,
    /// A token is renewed this long before Daviplata says it expires (at most a fifth of
    /// its lifetime), so that no call leaves with a token about to lapse.
    #[serde(default = "defaults::token_refresh_margin", with = "humantime_serde")]
    pub token_refresh_margin: Duration,
    /// What each tenant of `auth.tenants` may act on: its merchants (docs/auth.md,
    /// "Tenants").
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSettings>,
    /// A charge or cancel of a subscription no tenant is recorded as having activated:
    /// `refuse` (the default) or `adopt` (the merchant's tenant takes it).
    #[serde(default)]
    pub unbound_subscriptions: UnboundSubscriptions,
}

/// Operation paths, relative to `base_url`; Daviplata's environments differ.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Paths {
    pub token: String,
    pub request: String,
    pub activate: String,
    pub cancel: String,
    /// D4; `payment`, the key's former name, is still read.
    #[serde(alias = "payment")]
    pub charge: String,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            token: "/oauth2Provider/type1/v1/token".into(),
            request: "/v1/payments/subscriptions/request".into(),
            activate: "/v1/payments/subscriptions/activate".into(),
            cancel: "/v1/payments/subscriptions/cancel".into(),
            charge: "/v1/payments/subscriptions/payment".into(),
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub fn client_id_header() -> String {
        "client_id".into()
    }

    pub fn scope() -> String {
        "pg_recurrente".into()
    }

    pub fn api_rules_version() -> String {
        "1.0".into()
    }

    pub fn token_refresh_margin() -> Duration {
        Duration::from_secs(60)
    }
}

/// The key of the document number in D2's `TransactionDetail`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum DocumentField {
    /// Line 223 (the example), and every other operation.
    #[default]
    #[serde(rename = "identificationNumber")]
    IdentificationNumber,
    /// Line 248 (D2's field table).
    #[serde(rename = "identificationNum")]
    IdentificationNum,
}

impl DocumentField {
    pub fn key(self) -> &'static str {
        match self {
            DocumentField::IdentificationNumber => "identificationNumber",
            DocumentField::IdentificationNum => "identificationNum",
        }
    }
}

/// The key of the merchant id in `TransactionHeader`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum CommerceField {
    /// Lines 134, 217, 279, 331, 427, 522: every example, request and answer.
    #[default]
    #[serde(rename = "commercelId")]
    CommercelId,
    /// Lines 153, 244, 351, 481: the field tables.
    #[serde(rename = "commerceId")]
    CommerceId,
}

impl CommerceField {
    pub fn key(self) -> &'static str {
        match self {
            CommerceField::CommercelId => "commercelId",
            CommerceField::CommerceId => "commerceId",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charges_path_is_read_under_its_former_key_and_refused_under_both() {
        let paths = |given: serde_json::Value| serde_json::from_value::<Paths>(given);
        let former = paths(serde_json::json!({ "payment": "/old" })).unwrap();
        assert_eq!(former.charge, "/old");
        let own = paths(serde_json::json!({ "charge": "/own" })).unwrap();
        assert_eq!(own.charge, "/own");
        let both = paths(serde_json::json!({ "payment": "/old", "charge": "/own" }));
        assert!(both.is_err(), "two paths for one operation");
    }

    #[test]
    fn the_payment_provider_id_has_no_default() {
        let without = serde_json::json!({
            "base_url": "https://daviplata.example",
            "client_id": "id",
            "client_secret": "secret",
        });
        let error = serde_json::from_value::<Config>(without.clone())
            .expect_err("refused")
            .to_string();
        assert!(error.contains("payment_provider_id"), "{error}");
        let mut with = without;
        with["payment_provider_id"] = "operator-7".into();
        let config: Config = serde_json::from_value(with).expect("accepted");
        assert_eq!(config.payment_provider_id, "operator-7");
    }
}
