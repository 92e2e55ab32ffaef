//! The emulator's mutable bank: customers with their users, cards and holds, the one-time
//! codes in flight, the SMS outbox, withdrawal OTPs and challenge sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use rand::Rng;
use secrecy::SecretString;

use super::fixtures::{Account, ContactInfo, CustomerFixture, Fixtures, Transaction};
use super::tokens::Tokens;
use crate::secrets::Accepted;

/// How long an issued access token lives unless a test says otherwise.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(900);

/// Colombia's offset (UTC-5, no daylight saving): the bank stamps its own local time.
const BOGOTA_OFFSET_SECONDS: i32 = -5 * 3600;

/// Shared handle to the bank; clones see the same state.
#[derive(Clone)]
pub struct State {
    bank: Arc<Mutex<Bank>>,
    client_id: Arc<str>,
    client_secret: Accepted,
    tokens: Tokens,
}

impl State {
    /// A bank seeded from `fixtures`, accepting only `client_id` / `client_secret`.
    pub fn new(fixtures: Fixtures, client_id: String, client_secret: Accepted) -> State {
        State {
            bank: Arc::new(Mutex::new(Bank::seed(fixtures))),
            client_id: client_id.into(),
            client_secret,
            tokens: Tokens::new(DEFAULT_TOKEN_TTL),
        }
    }

    /// How long the access tokens the sandbox issues live.
    pub fn with_token_ttl(mut self, ttl: Duration) -> State {
        self.tokens = Tokens::new(ttl);
        self
    }

    /// The access tokens the sandbox issued.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// How long a one-time code (OTC, withdrawal OTP, challenge code) lives; tests shorten it.
    pub fn with_otc_ttl(self, ttl: Duration) -> State {
        self.set_otc_ttl(ttl);
        self
    }

    pub fn set_otc_ttl(&self, ttl: Duration) {
        self.bank().otc_ttl = ttl;
    }

    /// Back to the fixtures: users, holds, codes and sessions as seeded.
    pub fn reset(&self) {
        let mut bank = self.bank();
        let (ttl, readings) = (bank.otc_ttl, bank.readings);
        *bank = Bank::seed(bank.fixtures.clone());
        bank.otc_ttl = ttl;
        bank.readings = readings;
    }

    pub(crate) fn accepts_client(&self, id: &str, secret: &str) -> bool {
        *self.client_id == *id && self.client_secret.accepts(secret)
    }

    /// The bank, locked for one short, await-free critical section.
    pub(crate) fn bank(&self) -> MutexGuard<'_, Bank> {
        self.bank
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A customer's identity: document type and number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CustomerKey {
    pub ident_type: String,
    pub ident_num: String,
}

/// A seeded customer and what has happened to their digital user since.
pub(crate) struct Customer {
    pub data: CustomerFixture,
    pub user: Option<User>,
}

impl Customer {
    pub fn key(&self) -> CustomerKey {
        CustomerKey {
            ident_type: self.data.gov_issue_ident_type.clone(),
            ident_num: self.data.ident_serial_num.clone(),
        }
    }

    /// A customer-level lock (`type C`, `status S`) on `channel`: "CLIENT BLOCKED FOR THIS CHANNEL".
    pub fn blocked_on(&self, channel: &str) -> bool {
        self.data
            .channel_holds
            .iter()
            .any(|hold| hold.r#type == "C" && hold.status == "S" && hold.channel == channel)
    }

    pub fn owns_account(&self, acct_id: &str) -> Option<&Account> {
        self.data
            .accounts
            .iter()
            .find(|account| account.acct_id == acct_id)
    }
}

/// A digital user: its password, whether it is locked, and the reuse history.
pub(crate) struct User {
    pub password: SecretString,
    pub locked: bool,
    pub history: Vec<SecretString>,
    pub failed_attempts: u32,
}

impl User {
    pub fn new(password: SecretString) -> User {
        User {
            password,
            locked: false,
            history: Vec::new(),
            failed_attempts: 0,
        }
    }

    /// Installs a new password, remembering the old one for the history rule.
    pub fn replace_password(&mut self, password: SecretString, keep: usize) {
        let old = std::mem::replace(&mut self.password, password);
        self.history.insert(0, old);
        self.history.truncate(keep);
        self.locked = false;
        self.failed_attempts = 0;
    }
}

/// A code "sent by SMS": what the admin outbox shows for the customer.
#[derive(Clone)]
pub(crate) struct SentCode {
    pub code: SecretString,
    pub purpose: String,
    pub cell_phone: String,
    pub email_addr: String,
    pub sent_at: DateTime<FixedOffset>,
}

/// A one-time code waiting to be validated.
pub(crate) struct OneTimeCode {
    pub code: SecretString,
    pub expires: Instant,
    pub attempts: u32,
}

/// A withdrawal OTP issued by S12 and cashed (or reversed) by S18.
pub(crate) struct WithdrawalOtp {
    pub ident_serial_num: String,
    pub account: Account,
    pub amount_cents: u128,
    pub code: SecretString,
    pub expires: Instant,
    pub attempts: u32,
    pub stage: WithdrawalStage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WithdrawalStage {
    Pending,
    Paid,
    Reversed,
    /// Too many wrong codes were tried while it was pending.
    Burned,
}

/// A challenge in progress: which round it is on and how many tries that round has had.
pub(crate) struct Challenge {
    pub transaction: Transaction,
    pub round: usize,
    pub retry: u32,
    /// The code sent for a type `M` question of the current round, and when it expires.
    pub sent_code: Option<(SecretString, Instant)>,
}

pub(crate) struct Bank {
    pub fixtures: Fixtures,
    pub customers: Vec<Customer>,
    pub otc_ttl: Duration,
    pub otcs: HashMap<(CustomerKey, String), OneTimeCode>,
    pub outbox: HashMap<CustomerKey, SentCode>,
    pub withdrawal_otps: Vec<WithdrawalOtp>,
    /// S18 answers by `X-Invoker-TxId`: what a consulta (`Action: R`) answers, and what a
    /// repeated create gets when the bank deduplicates.
    pub withdrawals: HashMap<String, serde_json::Value>,
    pub challenges: HashMap<(CustomerKey, String), Challenge>,
    /// How this bank reads what the spec leaves open; kept across resets.
    pub readings: Readings,
    pub withdrawal_counts: WithdrawalCounts,
    /// Every withdrawal executed, in order: what a test checks pasarela's answers against.
    pub withdrawal_ledger: Vec<ExecutedWithdrawal>,
    sequence: u64,
}

/// The readings of S18 the spec leaves open, switchable on the admin listener so that tests
/// can run pasarela against a bank of either kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Readings {
    /// A create (`Action: C`) with a TxId already paid answers the first answer (true) or
    /// is executed again (false: the spec never promises deduplication).
    pub dedup_tx_ids: bool,
    /// How a consulta of an unknown TxId is refused.
    pub consulta_not_found: ConsultaNotFound,
    /// A gateway in front of the bank that drops `X-Invoker-Action`: every consulta
    /// reaches the bank as a create, and is executed as one.
    #[serde(default)]
    pub consulta_ignores_action: bool,
    /// S14's query names, matched exactly with every other name refused; unset, any
    /// casing of the four is accepted.
    #[serde(default)]
    pub holds_query: Option<QueryCasing>,
    /// The one path S1 answers at; unset, both.
    #[serde(default)]
    pub password_status_path: Option<PasswordStatusPath>,
    /// The one way S13 reads the status to set; unset, words and digits.
    #[serde(default)]
    pub password_status_values: Option<StatusValues>,
    /// What S14's `initialRecord` counts first: strictly 0 or strictly 1 (0 then refused as
    /// unreadable); unset, 1, with 0 taken as 1.
    #[serde(default)]
    pub holds_record_base: Option<RecordBase>,
    /// The one credential header family S8, S9 and S16 take (the spec prints none for
    /// them); unset, either family.
    #[serde(default)]
    pub unprinted_credentials: Option<CredentialFamily>,
    /// The one place S2 and S3 read the contact from (the other is an unknown property,
    /// refused); unset, either.
    #[serde(default)]
    pub otc_contact_info: Option<OtcContactInfo>,
    /// The one name S4 reads the code from (the other is an unknown property, refused);
    /// unset, either.
    #[serde(default)]
    pub otc_code_field: Option<OtcCodeField>,
    /// The one family of paths this host serves, the other answered as no resource (the
    /// spec prints a CloudHub host for the camelCase paths and `apis.{env}` for the rest);
    /// unset, both.
    #[serde(default)]
    pub serves: Option<PathFamily>,
}

/// The two families of the bank's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PathFamily {
    /// `/securityManagement/...`, `/retoManagement/...`, `/userManagement/...`: S2-S7.
    CamelCase,
    /// `/security-management/...` and the rest.
    KebabCase,
}

/// Where S2 and S3's contact sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OtcContactInfo {
    TopLevel,
    InOtc,
}

/// The name of S4's code in `otc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OtcCodeField {
    OtcValue,
    Value,
}

/// The headers a request's client id, secret and token travel in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CredentialFamily {
    /// `X-Security-ClientID`, `X-Security-ClientSecret`, `X-Security-Token`.
    Mule,
    /// `X-Security-ClientID`, `X-Security-ClientSecret`, `Authorization: Bearer`.
    MuleBearer,
    /// `client_id`, `client_secret`, `Authorization: Bearer`.
    Gateway,
}

impl CredentialFamily {
    /// The client id, secret and token headers.
    pub fn headers(self) -> (&'static str, &'static str, &'static str) {
        match self {
            CredentialFamily::Mule => (
                "X-Security-ClientID",
                "X-Security-ClientSecret",
                "X-Security-Token",
            ),
            CredentialFamily::MuleBearer => (
                "X-Security-ClientID",
                "X-Security-ClientSecret",
                "Authorization",
            ),
            CredentialFamily::Gateway => ("client_id", "client_secret", "Authorization"),
        }
    }
}

/// The number of S14's first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecordBase {
    Zero,
    One,
}

impl Default for Readings {
    fn default() -> Self {
        Readings {
            dedup_tx_ids: true,
            consulta_not_found: ConsultaNotFound::NoFound,
            consulta_ignores_action: false,
            holds_query: None,
            password_status_path: None,
            password_status_values: None,
            holds_record_base: None,
            unprinted_credentials: None,
            otc_contact_info: None,
            otc_code_field: None,
            serves: None,
        }
    }
}

/// S14's query names as its table prints them (lines 1923-1926: `GovIssueIdentType`,
/// `status`, `initialRecord`, `RecordsXPage`), or camelCase throughout, as its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum QueryCasing {
    Table,
    Camel,
}

impl QueryCasing {
    /// The four parameter names, in this reading.
    pub fn names(self) -> [&'static str; 4] {
        match self {
            QueryCasing::Table => [
                "GovIssueIdentType",
                "status",
                "initialRecord",
                "RecordsXPage",
            ],
            QueryCasing::Camel => [
                "govIssueIdentType",
                "status",
                "initialRecord",
                "recordsXPage",
            ],
        }
    }
}

/// Where S1 lives under the bank's base URL (`…/api`): `/user/password/status`, as the
/// README's table has it, or `/security-management/v1/user/password/status`, as the spec
/// prints it (line 44, `/api/security-management/v1/…`) in the family of the other paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PasswordStatusPath {
    Readme,
    Spec,
}

impl PasswordStatusPath {
    pub const README: &str = "/user/password/status";
    pub const SPEC: &str = "/security-management/v1/user/password/status";

    pub fn path(self) -> &'static str {
        match self {
            PasswordStatusPath::Readme => Self::README,
            PasswordStatusPath::Spec => Self::SPEC,
        }
    }
}

/// S13's `custPswd.status`: `Active`/`Locked` as its example (line 1819), or `1`/`3` as
/// its prose numbers them (line 1808).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusValues {
    Words,
    Digits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConsultaNotFound {
    /// The spec's generic query refusal: `404 NO FOUND BDA`.
    NoFound,
    /// A business code of the withdrawal family: `404 05626 RGN` "NO EXISTE LA TRANSACCION".
    Rgn,
}

/// One withdrawal the bank executed: its TxId, approval, and the request's audit number
/// (`trnRqUID`), by which a test tells whose it was.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ExecutedWithdrawal {
    pub tx_id: String,
    pub approval_id: String,
    pub audit_number: String,
}

/// What S18 saw: creates, consultas, and the withdrawals actually paid or reversed.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct WithdrawalCounts {
    pub creates: u64,
    pub queries: u64,
    pub executed: u64,
}

impl Bank {
    fn seed(fixtures: Fixtures) -> Bank {
        let customers = fixtures
            .customers
            .iter()
            .map(|data| Customer {
                user: data.password.as_ref().map(|password| User {
                    password: password.value.clone(),
                    locked: password.status == "Locked",
                    history: password.history.clone(),
                    failed_attempts: 0,
                }),
                data: data.clone(),
            })
            .collect();
        Bank {
            otc_ttl: Duration::from_secs(fixtures.otc.ttl_seconds),
            fixtures,
            customers,
            otcs: HashMap::new(),
            outbox: HashMap::new(),
            withdrawal_otps: Vec::new(),
            withdrawals: HashMap::new(),
            challenges: HashMap::new(),
            readings: Readings::default(),
            withdrawal_counts: WithdrawalCounts::default(),
            withdrawal_ledger: Vec::new(),
            sequence: 0,
        }
    }

    pub fn customer(&self, ident_type: &str, ident_num: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| {
            c.data.gov_issue_ident_type.eq_ignore_ascii_case(ident_type)
                && c.data.ident_serial_num == ident_num
        })
    }

    pub fn customer_mut(&mut self, ident_type: &str, ident_num: &str) -> Option<&mut Customer> {
        self.customers.iter_mut().find(|c| {
            c.data.gov_issue_ident_type.eq_ignore_ascii_case(ident_type)
                && c.data.ident_serial_num == ident_num
        })
    }

    /// For the operations that send only the number (S18).
    pub fn customer_by_number(&self, ident_num: &str) -> Option<&Customer> {
        self.customers
            .iter()
            .find(|c| c.data.ident_serial_num == ident_num)
    }

    pub fn customer_by_alias(&self, alias: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| {
            c.data
                .alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(alias))
        })
    }

    /// Generates a six-digit code, "sends" it to `contact` and returns it.
    pub fn send_code(
        &mut self,
        customer: &CustomerKey,
        purpose: &str,
        contact: ContactInfo,
    ) -> SecretString {
        let code: SecretString = format!("{:06}", rand::rng().random_range(0..1_000_000)).into();
        self.outbox.insert(
            customer.clone(),
            SentCode {
                code: code.clone(),
                purpose: purpose.into(),
                cell_phone: contact.cell_phone,
                email_addr: contact.email_addr,
                sent_at: now(),
            },
        );
        code
    }

    /// S18 approval numbers: sequential, so that no two withdrawals share one.
    pub fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    pub fn expiry(&self) -> Instant {
        crate::later(self.otc_ttl)
    }
}

/// The bank's local time.
pub(crate) fn now() -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(BOGOTA_OFFSET_SECONDS).expect("valid offset");
    Utc::now().with_timezone(&offset)
}
