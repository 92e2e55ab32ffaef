//! The seed data of the Banco Caja Social emulator: customers, the password policy, the risk
//! questions and the parameterised transactions, read from JSON (builtin or a user's file).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use secrecy::SecretString;
use serde::Deserialize;

/// The builtin fixtures, embedded so that the sandbox runs without any file.
const BUILTIN: &str = include_str!("../../fixtures/bcs.json");

/// Everything the emulator starts from. Secrets (passwords, PINs, CVVs, answers) are held as
/// `SecretString` and compared as given: the sandbox treats a value received "encrypted" as
/// the secret itself.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixtures {
    #[serde(default)]
    pub(crate) password_policy: PasswordPolicy,
    #[serde(default)]
    pub(crate) otc: OtcRules,
    #[serde(default)]
    pub(crate) pseudo_channels: Vec<PseudoChannel>,
    #[serde(default)]
    pub(crate) questions: Vec<Question>,
    #[serde(default)]
    pub(crate) transactions: Vec<Transaction>,
    pub(crate) customers: Vec<CustomerFixture>,
}

impl Fixtures {
    /// The customers documented in `docs/sandbox.md`.
    pub fn builtin() -> Fixtures {
        Self::parse(BUILTIN).expect("the builtin bcs fixtures are valid")
    }

    /// A user's own fixtures file, same format as `crates/sandbox/fixtures/bcs.json`.
    pub fn from_path(path: &Path) -> anyhow::Result<Fixtures> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading bcs fixtures {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("loading bcs fixtures {}", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Fixtures> {
        let fixtures: Fixtures = serde_json::from_str(text)?;
        fixtures.check()?;
        Ok(fixtures)
    }

    /// What serde cannot see: a usable code lifetime, unique customers, known questions,
    /// valid holds.
    fn check(&self) -> anyhow::Result<()> {
        ensure!(
            Instant::now()
                .checked_add(Duration::from_secs(self.otc.ttl_seconds))
                .is_some(),
            "otc.ttlSeconds is too long to compute an expiry from"
        );
        let mut seen = HashSet::new();
        for customer in &self.customers {
            let key = (&customer.gov_issue_ident_type, &customer.ident_serial_num);
            ensure!(
                seen.insert(key),
                "customer {}/{} appears twice",
                key.0,
                key.1
            );
            if let Some(password) = &customer.password {
                ensure!(
                    matches!(password.status.as_str(), "Active" | "Locked"),
                    "password of {}: status must be Active or Locked",
                    customer.ident_serial_num
                );
            }
            for hold in &customer.channel_holds {
                ensure!(
                    matches!(hold.r#type.as_str(), "C" | "P")
                        && matches!(hold.status.as_str(), "S" | "N"),
                    "hold of {}: type must be C or P and status S or N",
                    customer.ident_serial_num
                );
            }
        }
        let questions: HashSet<_> = self.questions.iter().map(|q| q.id.as_str()).collect();
        for transaction in &self.transactions {
            for question in &transaction.questions {
                if !questions.contains(question.as_str()) {
                    bail!(
                        "transaction {} asks unknown question {question}",
                        transaction.id
                    );
                }
            }
        }
        Ok(())
    }
}

/// The bank's password policy (its own validity gives codes 1024-1042).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// Longest run of repeated or consecutive characters allowed (1019 beyond it).
    pub max_run: usize,
    /// How many previous passwords may not be reused (1018).
    pub history: usize,
    /// Wrong current passwords in a row before the password locks.
    pub max_failed_attempts: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 16,
            max_run: 3,
            history: 4,
            max_failed_attempts: 3,
        }
    }
}

/// One-time codes: how many wrong tries burn a code.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OtcRules {
    pub max_attempts: u32,
    pub ttl_seconds: u64,
}

impl Default for OtcRules {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            ttl_seconds: 300,
        }
    }
}

/// A name that stands for channel/subchannel pairs in a lock request (`channelDesc`).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PseudoChannel {
    pub name: String,
    pub channels: Vec<ChannelPair>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ChannelPair {
    pub channel: String,
    pub sub_channel: String,
}

/// A risk question of the challenge engine (S17, S19).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Question {
    pub id: String,
    /// `M`: a code sent to the customer's phone/e-mail; `S`/`SM`: pick an option (`SM` with a
    /// secret too); anything else: open answer.
    pub r#type: String,
    pub value: String,
    #[serde(default)]
    pub length: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub options: Vec<QuestionOption>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct QuestionOption {
    pub id: String,
    pub value: String,
}

/// A transaction the risk engine knows ("parametrizada").
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Transaction {
    pub id: String,
    pub desc: String,
    pub auth_level: String,
    /// Question ids asked in order, one per round.
    #[serde(default)]
    pub questions: Vec<String>,
    /// Tries per round; one more wrong answer ends the challenge.
    #[serde(default = "three")]
    pub max_retries: u32,
}

fn three() -> u32 {
    3
}

fn yes() -> bool {
    true
}

fn natural() -> String {
    "N".into()
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CustomerFixture {
    pub gov_issue_ident_type: String,
    pub ident_serial_num: String,
    /// What this customer is for (documentation only).
    #[serde(default)]
    pub purpose: String,
    /// `N` (natural person) or `J` (company), matched against S1's `nameAddrType`.
    #[serde(default = "natural")]
    pub name_addr_type: String,
    /// The user alias queried by `SPName`.
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub contact_info: ContactInfo,
    /// "Vinculable": may register and recover a digital user.
    #[serde(default = "yes")]
    pub linkable: bool,
    #[serde(default)]
    pub digital_enrollment: bool,
    #[serde(default)]
    pub password: Option<PasswordFixture>,
    #[serde(default)]
    pub debit_cards: Vec<Card>,
    #[serde(default)]
    pub credit_cards: Vec<Card>,
    #[serde(default)]
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub channel_holds: Vec<Hold>,
    /// Expected answers by question id.
    #[serde(default)]
    pub answers: BTreeMap<String, AnswerFixture>,
    /// The channel-holds backend fails for this customer (the documented `ER500` answer).
    #[serde(default)]
    pub faulty_backend: bool,
}

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ContactInfo {
    #[serde(default)]
    pub cell_phone: String,
    #[serde(default)]
    pub email_addr: String,
}

impl ContactInfo {
    /// Neither a phone nor an e-mail address to send a code to.
    pub fn is_empty(&self) -> bool {
        self.cell_phone.is_empty() && self.email_addr.is_empty()
    }
}

/// A request's own `contactInfo`: where S2 and S3 send the code instead of the customer's.
impl From<super::wire::ContactInfo> for ContactInfo {
    fn from(given: super::wire::ContactInfo) -> Self {
        ContactInfo {
            cell_phone: given.cell_phone,
            email_addr: given.email_addr,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PasswordFixture {
    pub value: SecretString,
    /// `Active` or `Locked`.
    pub status: String,
    #[serde(default)]
    pub history: Vec<SecretString>,
}

/// A debit card (secret: its PIN) or a credit card (secret: its CVV).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Card {
    pub number: String,
    pub secret: SecretString,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Account {
    pub acct_id: String,
    pub acct_type: String,
}

/// A channel hold in the bank's own letters: type `C` (customer) / `P` (product), status
/// `S` (locked) / `N` (unlocked).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Hold {
    pub channel: String,
    pub sub_channel: String,
    pub r#type: String,
    pub status: String,
    #[serde(default)]
    pub acct_id: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub branch_id: String,
    pub establish_dt: String,
    #[serde(default)]
    pub unblocking_info: Option<Unblocking>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Unblocking {
    pub user: String,
    pub branch_id: String,
    pub establish_dt: String,
}

/// An expected answer: the option picked (`id`) and/or the typed value.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AnswerFixture {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub value: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_set_is_valid() {
        let fixtures = Fixtures::builtin();
        assert!(fixtures.customers.len() >= 10);
        assert!(!fixtures.transactions.is_empty());
    }

    #[test]
    fn inconsistent_files_are_refused() {
        let customer = r#"{ "govIssueIdentType": "CC", "identSerialNum": "1" }"#;
        let refused = [
            format!(r#"{{ "customers": [ {customer}, {customer} ] }}"#),
            r#"{ "customers": [], "transactions": [ { "id": "1", "desc": "x", "authLevel": "1", "questions": ["q"] } ] }"#.into(),
            r#"{ "customers": [ { "govIssueIdentType": "CC", "identSerialNum": "1", "channelHolds": [ { "channel": "007", "subChannel": "00", "type": "X", "status": "S", "establishDt": "" } ] } ] }"#.into(),
            r#"{ "customers": [ { "govIssueIdentType": "CC", "identSerialNum": "1", "password": { "value": "x", "status": "active" } } ] }"#.into(),
            r#"{ "customers": [ { "govIssueIdentType": "CC", "identSerialNum": "1", "pin": "1234" } ] }"#.into(),
            r#"{ "otc": { "maxAttempts": 3, "ttlSeconds": 18446744073709551615 }, "customers": [] }"#.into(),
        ];
        for text in refused {
            assert!(Fixtures::parse(&text).is_err(), "{text}");
        }
        assert!(Fixtures::parse(&format!(r#"{{ "customers": [ {customer} ] }}"#)).is_ok());
    }
}
