//! The security section of pasarela's configuration: where Banco Caja Social lives, the
//! credentials pasarela presents, operation paths, the deployment's invoker defaults, and
//! where withdrawal outcomes are kept.

use std::collections::BTreeMap;

pub use pasarela_idempotency::{IdempotencyConfig, StoreKind};
use pasarela_provider::Credential;
use pasarela_provider::Environment;
use pasarela_provider::outbound::OutboundSettings;
use serde::Deserialize;

pub use crate::bcs::client::CredentialFamily;
pub use crate::bcs::errors::DecryptionFailure;
pub use crate::bcs::identity::TenantSettings;
pub use crate::bcs::token::{AuthStyle, TokenSettings};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The bank's base URL, e.g. `https://apis.dev.bancocajasocial.co/api`.
    pub base_url: String,
    /// Another base URL for an operation, by its name, where the bank serves it on another
    /// host (the spec prints a CloudHub host beside `apis.{env}`: docs/spec-decisions.md);
    /// pasarela's credentials go there too.
    #[serde(default)]
    pub base_urls: BTreeMap<String, String>,
    /// MuleSoft client id (`X-Security-ClientID` / `client_id`).
    pub client_id: String,
    /// MuleSoft client secret (`X-Security-ClientSecret` / `client_secret`).
    pub client_secret: Credential,
    /// OAuth2 access token for `X-Security-Token` / `Authorization: Bearer`, where the
    /// environment requires one; from a file, read again when the file changes.
    #[serde(default)]
    pub access_token: Option<Credential>,
    /// Where the access token comes from when it is not fixed: an OAuth2
    /// client-credentials endpoint (renewed before it expires) or a file (read again when
    /// it changes). Exclusive with `access_token`.
    #[serde(default)]
    pub token: Option<TokenSettings>,
    /// Which of the bank's environments `base_url` is: production (the default) or a
    /// sandbox; `serve` refuses development switches in front of a production bank.
    #[serde(default)]
    pub environment: Environment,
    /// Transport (TLS, timeouts), retries and breaker.
    #[serde(default)]
    pub outbound: OutboundSettings,
    /// Operation paths under `base_url`; the bank mixes `securityManagement` and
    /// `security-management` across environments.
    #[serde(default)]
    pub paths: Paths,
    /// `X-Invoker-*` values of this deployment; a request's own invoker context wins.
    #[serde(default = "defaults::invoker")]
    pub invoker: InvokerFields,
    /// Values the spec fixes for OTP withdrawals at a banking correspondent (S18), laid
    /// over `invoker`.
    #[serde(default = "defaults::withdrawal_invoker")]
    pub withdrawal_invoker: InvokerFields,
    /// The invoker fields a caller may set per call (`InvokerContext` names): its end
    /// user's addresses, terminal and session. Every other field comes from the tenant or
    /// the deployment; `tx_id`, `process_id` and `action` are pasarela's on every call.
    #[serde(default = "defaults::caller_invoker_fields")]
    pub caller_invoker_fields: Vec<String>,
    /// The bank identity each tenant of `auth.tenants` acts as (docs/auth.md, "Tenants").
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSettings>,
    /// First letters of generated TxIds ("APII": calls through the API).
    #[serde(default = "defaults::tx_id_prefix")]
    pub tx_id_prefix: String,
    /// First letters of generated withdrawal TxIds ("APIF": banking correspondent).
    #[serde(default = "defaults::withdrawal_tx_id_prefix")]
    pub withdrawal_tx_id_prefix: String,
    /// The bank's code inside generated TxIds.
    #[serde(default = "defaults::bank_code")]
    pub bank_code: String,
    /// Where withdrawal outcomes and the TxId sequence live: `memory` (one replica) or
    /// `redis` (replicas > 1: shared outcomes, and TxIds unique across replicas).
    #[serde(default)]
    pub idempotency: IdempotencyConfig,
    /// What a retried withdrawal (S18) whose first outcome is unknown does.
    #[serde(default)]
    pub withdrawal_reconciliation: Reconciliation,
    /// How S14's query names are spelt: its table's mixed casing (the default) or
    /// camelCase throughout, as its answers (docs/spec-decisions.md).
    #[serde(default)]
    pub holds_query: HoldsQuery,
    /// Which record S14's `initialRecord` counts first: `zero` (the default) or `one`
    /// (line 1925 says "el primer registro" and prints no number). `zero` to a bank that
    /// counts from one repeats a record on later pages; `one` to a bank that counts from
    /// zero hides a customer's first hold, silently (docs/spec-decisions.md).
    #[serde(default)]
    pub holds_record_base: RecordBase,
    /// Who answers for the bank failing to decrypt a customer's secret (`500 00001 WEL`):
    /// `deployment` (the default: `INTERNAL` `ALLY_NOT_RECOGNISED`, as the ally pasarela
    /// sends names the bank's key) or `caller` (`FAILED_PRECONDITION` `DECRYPTION_FAILED`)
    /// (docs/spec-decisions.md).
    #[serde(default)]
    pub decryption_failure: DecryptionFailure,
    /// Where S2 and S3 put the contact: `top_level` (beside `otc`, the default) or
    /// `in_otc` (docs/spec-decisions.md).
    #[serde(default)]
    pub otc_contact_info: OtcContactInfo,
    /// The name of S4's code in `otc`: `otc_value` (`otcValue`, the default) or `value`
    /// (docs/spec-decisions.md).
    #[serde(default)]
    pub otc_code_field: OtcCodeField,
    /// The credential headers of an operation, by its name: `mule` (`X-Security-ClientID`,
    /// `X-Security-ClientSecret`, `X-Security-Token`), `mule_bearer` (the token in
    /// `Authorization: Bearer`) or `gateway` (`client_id`, `client_secret`,
    /// `Authorization: Bearer`). Unset, the family the spec prints, or for S8
    /// (`change_password`), S9 (`create_user`) and S16 (`get_authentication_level`), which
    /// print none, `mule` (docs/spec-decisions.md).
    #[serde(default)]
    pub credential_headers: BTreeMap<String, CredentialFamily>,
    /// How S13 writes the status it sets: its example's words (`Active`, the default) or
    /// the digits its prose pairs them with (`1`), as S1 answers (docs/spec-decisions.md).
    #[serde(default)]
    pub password_status_values: PasswordStatusValues,
}

/// S13's `custPswd.status`: the example (line 1819) sends `"Active"`; the field's prose
/// (line 1808) reads "[Active: 1, Locked: 3]".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordStatusValues {
    /// `Active`, `Locked`: the example, the only value the spec prints on the wire.
    #[default]
    Words,
    /// `1`, `3`.
    Digits,
}

/// S14's query names: its table (lines 1923-1926) prints `GovIssueIdentType`, `status`,
/// `initialRecord`, `RecordsXPage`; its answers are camelCase throughout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldsQuery {
    /// The table's names, as printed: the normative part of the spec.
    #[default]
    Table,
    /// `govIssueIdentType`, `status`, `initialRecord`, `recordsXPage`.
    Camel,
}

/// Where S2 and S3 put the contact to send the code to: the spec prints their body flat
/// (`govIssueIdent`, `otc:`, `otcIssue`, `contactInfo`), its indentation lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtcContactInfo {
    /// Beside `otc`.
    #[default]
    TopLevel,
    /// Inside `otc`, beside `otcIssue`.
    InOtc,
}

/// The name of S4's code inside `otc`: the spec prints no body for S4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtcCodeField {
    /// `otcValue`, spelled like its sibling `otcIssue` and S18's `otpValue`.
    #[default]
    OtcValue,
    /// `value`, the spec's wrapper for single values.
    Value,
}

/// How S2-S4's bodies are shaped where the spec does not print them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtcShape {
    pub contact_info: OtcContactInfo,
    pub code_field: OtcCodeField,
}

/// The number of the first record in S14's `initialRecord`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordBase {
    /// The first record is 0: never hides one, whatever the bank counts from.
    #[default]
    Zero,
    One,
}

impl RecordBase {
    /// The `initialRecord` of the first record.
    pub fn first(self) -> i64 {
        match self {
            RecordBase::Zero => 0,
            RecordBase::One => 1,
        }
    }
}

/// How a withdrawal whose outcome is unknown is settled. The spec documents S18's
/// `X-Invoker-Action: R` ("Consulta") with the same TxId, but neither its answer for a TxId
/// the bank does not know nor that a repeated `Action: C` is deduplicated: pasarela never
/// re-sends a create whose outcome is unknown unless the bank said it has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reconciliation {
    pub mode: ReconciliationMode,
    /// Refusals of a consulta that mean "no withdrawal under this TxId": only then is the
    /// withdrawal sent. None by default (the spec names none for S18): any refusal leaves
    /// the key unknown, for an operator. The sandbox plays two readings of it
    /// (docs/sandbox.md, "S18 readings").
    pub not_found: Vec<ProviderCode>,
    /// How long after the first attempt (or its unknown outcome) a "not found" is believed:
    /// a bank may still be executing a create pasarela gave up on. Before that, a retry is
    /// told to come back later and nothing is created. Three times the call ceiling when
    /// unset.
    #[serde(with = "humantime_serde")]
    pub quiet_period: Option<std::time::Duration>,
    /// What a consulta carries. The spec prints no consulta body.
    pub consulta_body: ConsultaBody,
    /// How often unknown withdrawals are asked about without waiting for their callers
    /// (each key less and less often, one replica at a time); `0s` turns it off.
    #[serde(with = "humantime_serde")]
    pub every: std::time::Duration,
}

/// The body of S18 sent as a consulta.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsultaBody {
    /// The create's body without the customer's code: a consulta that reaches the bank as
    /// a create (a gateway that drops `Action: R`) is refused as incomplete, never paid,
    /// and the code is sent once.
    #[default]
    Identifying,
    /// The create's body as sent, the code included: for a bank whose consulta requires it.
    Create,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationMode {
    /// Ask the bank (`Action: R`, same TxId) and settle the key from its answer.
    #[default]
    Query,
    /// Ask nobody: the key waits for an operator.
    Hold,
}

/// One refusal as the bank writes it: HTTP status, `errorCode`, `errorType`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderCode {
    pub http: u16,
    pub code: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl Default for Reconciliation {
    fn default() -> Self {
        Self {
            mode: ReconciliationMode::Query,
            not_found: Vec::new(),
            quiet_period: None,
            consulta_body: ConsultaBody::Identifying,
            every: std::time::Duration::from_secs(60),
        }
    }
}

/// Operation paths that differ from the spec's, relative to their base URL, by operation
/// name (`security.paths.get_password_status`); each operation's own is in its row of the
/// client's table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Paths(BTreeMap<String, String>);

/// Keys `security.paths` had when they were a fixed list, and the operations each now names.
/// Still read, with a warning, so that a configuration written for them keeps its paths.
const FORMER_PATH_KEYS: &[(&str, &[&str])] = &[
    ("password_status", &["get_password_status"]),
    ("transaction_challenge", &["create_transaction_challenge"]),
    (
        "digital_enrollment",
        &["enroll_digital_user", "validate_digital_enrollment"],
    ),
    ("withdrawal_otp", &["request_withdrawal_otp"]),
    ("authentication_level", &["get_authentication_level"]),
    ("authentication_channel", &["authenticate_channel"]),
    ("question_challenge", &["create_question_challenge"]),
];

impl Paths {
    /// Sends `operation` to `path`.
    pub fn set(&mut self, operation: &str, path: impl Into<String>) {
        self.0.insert(operation.to_owned(), path.into());
    }

    /// The path configured for `operation`, if any.
    pub fn get(&self, operation: &str) -> Option<&str> {
        self.0.get(operation).map(String::as_str)
    }

    /// Whether every operation keeps the spec's path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The paths by operation name: a former key read as the operations it now names, any
    /// other key refused, and an operation given a path twice (its own key and a former
    /// one) refused rather than one of them silently ignored.
    pub fn resolved(&self, operations: &[&str]) -> anyhow::Result<Self> {
        let mut resolved = BTreeMap::new();
        for (key, path) in &self.0 {
            if operations.contains(&key.as_str()) {
                resolved.insert(key.clone(), path.clone());
                continue;
            }
            let Some((_, now)) = FORMER_PATH_KEYS.iter().find(|(former, _)| former == key) else {
                anyhow::bail!(
                    "security.paths.{key}: no such operation (one of {})",
                    operations.join(", ")
                );
            };
            if let Some(own) = now
                .iter()
                .find(|operation| self.0.contains_key(**operation))
            {
                anyhow::bail!(
                    "security.paths.{key} and security.paths.{own} both give {own}'s path: \
                     keep {own} only"
                );
            }
            tracing::warn!(
                setting = %format!("security.paths.{key}"),
                now = %now.join(", "),
                "a former key of security.paths: name the operation instead"
            );
            for operation in now.iter() {
                resolved.insert((*operation).to_owned(), path.clone());
            }
        }
        Ok(Self(resolved))
    }
}

/// The `X-Invoker-*` (and `X-Security-CustLoginId`, `X-Ident-*`) values one layer
/// contributes; an empty field leaves the value of the layer below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvokerFields {
    pub channel: String,
    pub sub_channel: String,
    pub branch_id: String,
    pub terminal_id: String,
    pub atm_id: String,
    pub component: String,
    pub user_ip_address: String,
    pub server_ip_address: String,
    pub user_mac_address: String,
    pub server_mac_address: String,
    pub tx_id: String,
    pub session_key: String,
    pub source: String,
    pub country: String,
    pub process_bpm_id: String,
    pub process_id: String,
    pub network: String,
    pub user: String,
    pub action: String,
    pub destination: String,
    pub modifier_user: String,
    pub referenced_number: String,
    pub request_number: String,
    pub cust_id: String,
    pub ally: String,
    pub cust_login_id: String,
    pub device_fingerprint: String,
    pub navig_habit: String,
}

impl Config {
    /// What keeps this identity from a production bank: a value still at the placeholder
    /// pasarela ships (an ally code, sub-channel or IP address no bank assigned), for the
    /// deployment and each tenant whose calls would carry it, and a branch that breaks the
    /// rule of channel 7 (lines 1893, 2034: "Canal 7 subcanales 1 y 2 Enviar [1102]
    /// subcanales 3 y 4 Enviar [1114]"). Each names the key to set.
    pub fn identity_problems(&self) -> Vec<String> {
        let shipped = defaults::invoker();
        let mut problems = Vec::new();
        let identities = std::iter::once(("security.invoker".to_owned(), self.invoker.clone()))
            .chain(self.tenants.iter().map(|(name, tenant)| {
                let mut fields = self.invoker.clone();
                crate::bcs::invoker::merge(&mut fields, &tenant.invoker);
                (format!("security.tenants.{name}.invoker"), fields)
            }));
        for (key, fields) in identities {
            let placeholders = [
                ("ally", &fields.ally, &shipped.ally),
                ("sub_channel", &fields.sub_channel, &shipped.sub_channel),
                (
                    "user_ip_address",
                    &fields.user_ip_address,
                    &shipped.user_ip_address,
                ),
                (
                    "server_ip_address",
                    &fields.server_ip_address,
                    &shipped.server_ip_address,
                ),
            ];
            for (field, value, placeholder) in placeholders {
                if value == placeholder {
                    problems.push(format!(
                        "{key}.{field} is pasarela's placeholder {value:?}: set the value the bank assigned"
                    ));
                }
            }
            if let Some(problem) = channel_seven_branch(&fields) {
                problems.push(format!("{key}: {problem}"));
            }
        }
        problems
    }
}

/// The branch channel 7 requires of its sub-channel, when it is broken.
fn channel_seven_branch(fields: &InvokerFields) -> Option<String> {
    let number = |text: &str| text.trim().parse::<u32>().ok();
    if number(&fields.channel) != Some(7) {
        return None;
    }
    let branch = match number(&fields.sub_channel) {
        Some(1 | 2) => "1102",
        Some(3 | 4) => "1114",
        _ => {
            return Some(format!(
                "channel 7 takes sub-channels 1 to 4, not {:?} (sub_channel)",
                fields.sub_channel
            ));
        }
    };
    (fields.branch_id.trim() != branch).then(|| {
        format!(
            "channel 7, sub-channel {} sends branch {branch}, not {:?} (branch_id)",
            fields.sub_channel, fields.branch_id
        )
    })
}

mod defaults {
    use super::InvokerFields;

    /// The spec's defaults: channel "007" (Internet), country "CO", network "32" (Banco
    /// Caja Social), and all-zero MAC addresses when they cannot be known.
    pub fn invoker() -> InvokerFields {
        InvokerFields {
            channel: "007".into(),
            sub_channel: "00".into(),
            branch_id: "1102".into(),
            country: "CO".into(),
            network: "32".into(),
            user: "PASARELA".into(),
            ally: "PASARELA".into(),
            user_ip_address: "0.0.0.0".into(),
            server_ip_address: "0.0.0.0".into(),
            user_mac_address: "00-00-00-00-00-00".into(),
            server_mac_address: "00-00-00-00-00-00".into(),
            ..InvokerFields::default()
        }
    }

    /// S18's fixed values ("Valor fijo") for the banking-correspondent channel.
    pub fn withdrawal_invoker() -> InvokerFields {
        InvokerFields {
            channel: "13".into(),
            sub_channel: "07".into(),
            branch_id: "1108".into(),
            source: "18".into(),
            country: "CO".into(),
            user: "NEWCBSER".into(),
            modifier_user: "NEWCBSER".into(),
            action: crate::bcs::invoker::ACTION_CREATE.into(),
            ..InvokerFields::default()
        }
    }

    /// What varies with each call's end user and device, and nothing that names who the
    /// bank is dealing with (channel, branch, ally, user).
    pub fn caller_invoker_fields() -> Vec<String> {
        [
            "user_ip_address",
            "user_mac_address",
            "terminal_id",
            "atm_id",
            "session_key",
            "request_number",
            "source",
            "cust_id",
            "cust_login_id",
            "device_fingerprint",
            "navig_habit",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    pub fn tx_id_prefix() -> String {
        "APII".into()
    }

    pub fn withdrawal_tx_id_prefix() -> String {
        "APIF".into()
    }

    pub fn bank_code() -> String {
        "32".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        serde_json::from_value(serde_json::json!({
            "base_url": "https://bank.example",
            "client_id": "id",
            "client_secret": "secret",
        }))
        .expect("a configuration")
    }

    #[test]
    fn placeholders_and_a_broken_channel_seven_rule_are_named() {
        let shipped = config().identity_problems();
        for key in [
            "security.invoker.ally",
            "security.invoker.sub_channel",
            "security.invoker.user_ip_address",
            "security.invoker.server_ip_address",
        ] {
            assert!(
                shipped.iter().any(|p| p.starts_with(key)),
                "{key}: {shipped:?}"
            );
        }
        let mut assigned = config();
        assigned.invoker.ally = "ALIADO-7".into();
        assigned.invoker.sub_channel = "3".into();
        assigned.invoker.branch_id = "1114".into();
        assigned.invoker.user_ip_address = "10.0.0.1".into();
        assigned.invoker.server_ip_address = "10.0.0.2".into();
        assert!(assigned.identity_problems().is_empty());
        assigned.invoker.branch_id = "1102".into();
        let broken = assigned.identity_problems();
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].contains("branch 1114"), "{broken:?}");
        // A tenant's own identity is checked as its calls carry it.
        assigned.invoker.branch_id = "1114".into();
        assigned.tenants.insert(
            "acme".into(),
            TenantSettings {
                invoker: InvokerFields {
                    ally: defaults::invoker().ally,
                    ..InvokerFields::default()
                },
                caller_invoker_fields: None,
            },
        );
        let tenant = assigned.identity_problems();
        assert!(
            tenant
                .iter()
                .any(|p| p.starts_with("security.tenants.acme.invoker.ally")),
            "{tenant:?}"
        );
    }
}
