//! The invoker context of a call, sent as `X-Invoker-*` headers (plus
//! `X-Security-CustLoginId` and `X-Ident-*`): deployment defaults, per-operation values,
//! the request's own overrides, generated values where the spec says the API generates
//! them, and every header checked against the spec's pattern and length table (printed
//! under "Create Transation Challenge V2 Questions", valid for every operation).

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use pasarela::common::v1::InvokerContext;
use pasarela_idempotency::{Store, StoreUnavailable};
use pasarela_provider::Violations;
use regex::Regex;

use crate::config::InvokerFields;

/// The bank stamps Colombian time (UTC-5, no daylight saving).
const BANK_OFFSET_SECONDS: i32 = -5 * 3600;

/// S18's `X-Invoker-Action`: "C --> Create (Aplicación de negocio)".
pub const ACTION_CREATE: &str = "C";
/// S18's `X-Invoker-Action`: "R -- > Read (Consulta)".
pub const ACTION_READ: &str = "R";

/// Longest value of `X-Invoker-RequestNumber` (and of a generated session key).
const REQUEST_NUMBER_MAX: usize = 30;

/// Each value is checked with the spec's own expression, typos included (`A-z` also
/// admits ``[\]^_` ``), and must in any case be printable ASCII to travel as a header.
struct Rule {
    header: &'static str,
    /// Field of `pasarela.common.v1.InvokerContext`, for `BadRequest`.
    field: &'static str,
    get: fn(&InvokerFields) -> &str,
    max: usize,
    pattern: &'static str,
    /// "SI" in the table: the header must be sent.
    required: bool,
}

const ALNUM: &str = r"^[a-zA-z,0-9]*$";
const ALNUM_SYMBOLS: &str = r"^[a-zA-z,0-9,\W]*$";
const IP: &str = r"^[a-zA-z,0-9,\W.\:]*$";
const MAC: &str = r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$";
const COUNTRY: &str = r"^[a-zA-z,\W]*$";
const ANY: &str = r"^[\s\S]*$";
const FREE_TEXT: &str = r"^[ñAa-zA-z,0-9_ ,\W]*$";

/// Declares the table once and derives from it the merge of two layers and the reading of
/// a request's `InvokerContext`, so that no field can be forgotten in one of the three.
macro_rules! invoker_rules {
    ($($field:ident => $header:literal, $max:expr, $pattern:expr, $required:expr;)*) => {
        static RULES: &[Rule] = &[$(Rule {
            header: $header,
            field: stringify!($field),
            get: |fields| fields.$field.as_str(),
            max: $max,
            pattern: $pattern,
            required: $required,
        },)*];

        /// Each field by name, for an operation's list of the fields it requires: a name
        /// that is no field does not compile.
        #[allow(non_upper_case_globals)]
        pub mod field {
            $(pub const $field: super::Field = super::Field(stringify!($field));)*
        }

        /// Lays `over` on `base`: a non-empty field of `over` wins.
        pub fn merge(base: &mut InvokerFields, over: &InvokerFields) {
            $(if !over.$field.is_empty() {
                base.$field.clone_from(&over.$field);
            })*
        }

        /// The layer a request contributes.
        pub fn from_context(context: &InvokerContext) -> InvokerFields {
            InvokerFields { $($field: context.$field.trim().to_owned(),)* }
        }
    };
}

invoker_rules! {
    channel => "X-Invoker-Channel", 20, ALNUM, false;
    sub_channel => "X-Invoker-subChannel", 4, ALNUM, false;
    branch_id => "X-Invoker-BranchId", 20, ALNUM, false;
    terminal_id => "X-Invoker-TerminalId", 20, ALNUM, false;
    atm_id => "X-Invoker-ATMId", 20, ALNUM, false;
    component => "X-Invoker-Component", 20, ALNUM, false;
    user_ip_address => "X-Invoker-UserIPAddress", 39, IP, true;
    server_ip_address => "X-Invoker-ServerIPAddress", 39, IP, true;
    user_mac_address => "X-Invoker-UserMACAddress", 17, MAC, true;
    server_mac_address => "X-Invoker-ServerMACAddress", 17, MAC, true;
    tx_id => "X-Invoker-TxId", 30, ALNUM, false;
    session_key => "X-Invoker-SessionKey", 30, ANY, false;
    source => "X-Invoker-Source", 20, ALNUM, false;
    country => "X-Invoker-Country", 3, COUNTRY, true;
    process_bpm_id => "X-Invoker-ProcessBpmId", 30, ALNUM, false;
    process_id => "X-Invoker-ProcessId", 20, ALNUM, true;
    network => "X-Invoker-Network", 4, ALNUM, false;
    user => "X-Invoker-User", 20, ALNUM, true;
    action => "X-Invoker-Action", 30, ALNUM, false;
    destination => "X-Invoker-Destination", 30, ALNUM, false;
    modifier_user => "X-Invoker-ModifierUser", 30, ALNUM, false;
    referenced_number => "X-Invoker-ReferencedNumber", 30, ALNUM, false;
    request_number => "X-Invoker-RequestNumber", 30, ALNUM_SYMBOLS, false;
    cust_id => "X-Invoker-CustId", 30, ALNUM, false;
    ally => "X-Invoker-Ally", 50, ALNUM_SYMBOLS, true;
    cust_login_id => "X-Security-CustLoginId", 30, ALNUM, false;
    device_fingerprint => "X-Ident-DeviceFingerPrint", 5500, FREE_TEXT, false;
    navig_habit => "X-Ident-NavigHabit", 600, FREE_TEXT, false;
}

static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    RULES
        .iter()
        .map(|rule| Regex::new(rule.pattern).expect("the spec's header patterns compile"))
        .collect()
});

/// How an operation derives `X-Invoker-ProcessId` from the TxId when the caller gives none.
#[derive(Debug, Clone, Copy)]
pub enum ProcessIdRule {
    /// "Codigo APII, generar para todos los llamados": the TxId itself (its last 20
    /// characters, the header's limit).
    TxId,
    /// S18: the TxId's last `digits` digits, right-aligned and zero-padded to `width`
    /// (`APIF4087320000000001` -> `020000000001`).
    LastDigits { digits: usize, width: usize },
}

/// How TxIds are made: `prefix` + Julian date (last digit of the year and day of the year)
/// + the bank's code + a 10-digit sequence, e.g. `APIF4087320000000001`.
///
/// The sequence is a counter in the idempotency store, taken in blocks: in memory it is
/// the process's own (one replica); in the PostgreSQL ledger every replica shares it, so two replicas
/// never send the same TxId (the bank deduplicates S18 by TxId: a collision would answer
/// one customer's withdrawal with another's). A counter the store does not hold yet starts
/// from the clock, so that a restarted process does not reuse recent numbers:
/// the sequence advances one per call, far slower than milliseconds pass.
pub struct TxIds {
    store: Arc<dyn Store>,
    /// Numbers reserved by this process and not used yet.
    block: Mutex<Range<u64>>,
    /// One past the highest number this process has reserved: an honest counter never
    /// hands out less to a reservation that starts later.
    floor: AtomicU64,
}

/// Why no TxId could be had.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    #[error(transparent)]
    Store(#[from] StoreUnavailable),
    #[error("the TxId counter went back below {floor} (to {first}): it was moved in the store")]
    Rewound { floor: u64, first: u64 },
}

/// The store's counter of TxId sequence numbers.
const SEQUENCE_KEY: &str = "pasarela:security:tx-id-sequence";

/// Numbers reserved at once: one store round trip per this many calls.
const BLOCK: u64 = 100;

const SEQUENCE_MODULUS: u64 = 10_000_000_000;

impl fmt::Debug for TxIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxIds").finish_non_exhaustive()
    }
}

impl TxIds {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            block: Mutex::new(0..0),
            floor: AtomicU64::new(0),
        }
    }

    pub async fn next(
        &self,
        prefix: &str,
        bank_code: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<String, SequenceError> {
        Ok(tx_id(prefix, bank_code, now, self.number().await?))
    }

    async fn number(&self) -> Result<u64, SequenceError> {
        if let Some(number) = self.reserved().next() {
            return Ok(number);
        }
        let seed = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        // Reservations that ended before this one started had lower numbers.
        let floor = self.floor.load(Ordering::SeqCst);
        let first = self.store.reserve(SEQUENCE_KEY, BLOCK, seed).await?;
        if first < floor {
            return Err(SequenceError::Rewound { floor, first });
        }
        self.floor.fetch_max(first + BLOCK, Ordering::SeqCst);
        let mut block = self.reserved();
        // Calls racing for a new block each get one; the loser's rest is left unused.
        if block.is_empty() {
            *block = first + 1..first + BLOCK;
        }
        Ok(first)
    }

    fn reserved(&self) -> MutexGuard<'_, Range<u64>> {
        // A range is replaced whole: a panic elsewhere cannot tear it.
        self.block.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The TxId of a call that moves no money: its ten digits from a CSPRNG, no store asked.
/// The spec asks a sequence only of a withdrawal's authorization number; an API call's
/// TxId names the call in the bank's records, and no money rides on two calls sharing one.
pub fn random_tx_id(prefix: &str, bank_code: &str, now: DateTime<FixedOffset>) -> String {
    tx_id(prefix, bank_code, now, rand::random::<u64>())
}

/// A withdrawal TxId of the right shape that is never sent: what a withdrawal is checked
/// with before its own is reserved.
pub fn placeholder_tx_id(prefix: &str, bank_code: &str, now: DateTime<FixedOffset>) -> String {
    tx_id(prefix, bank_code, now, 0)
}

/// A TxId from its parts; the sequence keeps its last ten digits.
fn tx_id(prefix: &str, bank_code: &str, now: DateTime<FixedOffset>, number: u64) -> String {
    format!(
        "{prefix}{}{:03}{bank_code}{:010}",
        now.year().rem_euclid(10),
        now.ordinal(),
        number % SEQUENCE_MODULUS
    )
}

/// The bank's current local time.
pub fn bank_now() -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(BANK_OFFSET_SECONDS).expect("a valid offset");
    Utc::now().with_timezone(&offset)
}

/// Derives the process id from a TxId.
pub fn process_id(rule: ProcessIdRule, tx_id: &str) -> String {
    match rule {
        ProcessIdRule::TxId => last_chars(tx_id, 20),
        ProcessIdRule::LastDigits { digits, width } => {
            let digits: String = last_chars(tx_id, digits);
            format!("{digits:0>width$}")
        }
    }
}

fn last_chars(text: &str, count: usize) -> String {
    let skip = text.chars().count().saturating_sub(count);
    text.chars().skip(skip).collect()
}

/// The request number of a call: the caller's, else pasarela's request id (cut to the
/// header's 30 characters), else a new id.
pub fn request_number(request_id: Option<&str>) -> String {
    let id = request_id
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    id.chars().take(REQUEST_NUMBER_MAX).collect()
}

/// Records every header of `fields` that breaks the table, as a violation of the
/// request's `invoker.<field>`. Values equal to `checked` (the deployment's defaults,
/// checked once at start-up by [`check_defaults`]) are not checked again.
pub fn check(fields: &InvokerFields, checked: &InvokerFields, violations: &mut Violations) {
    for (rule, pattern) in RULES.iter().zip(PATTERNS.iter()) {
        let value = (rule.get)(fields);
        if value.is_empty() {
            if rule.required {
                violations.add(
                    format!("invoker.{}", rule.field),
                    format!("{} is required", rule.header),
                );
            }
            continue;
        }
        if value == (rule.get)(checked) {
            continue;
        }
        if let Some(problem) = problem(rule, pattern, value) {
            violations.add(format!("invoker.{}", rule.field), problem);
        }
    }
}

/// Refuses deployment defaults (`setting`, e.g. `security.invoker`) that break the
/// table: a bad default is the configuration's fault, found at start-up, never a
/// caller's violation on every call.
pub fn check_defaults(fields: &InvokerFields, setting: &str) -> anyhow::Result<()> {
    let problems: Vec<String> = RULES
        .iter()
        .zip(PATTERNS.iter())
        .filter_map(|(rule, pattern)| {
            let value = (rule.get)(fields);
            let problem = (!value.is_empty())
                .then(|| problem(rule, pattern, value))
                .flatten()?;
            Some(format!("{setting}.{}: {problem}", rule.field))
        })
        .collect();
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}

/// What is wrong with a non-empty `value` of `rule`, if anything.
fn problem(rule: &Rule, pattern: &Regex, value: &str) -> Option<String> {
    let length = value.chars().count();
    if length > rule.max {
        Some(format!(
            "{} must be at most {} characters, got {length}",
            rule.header, rule.max
        ))
    } else if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        Some(format!("{} must be printable ASCII", rule.header))
    } else if !pattern.is_match(value) {
        Some(format!("{} must match {}", rule.header, rule.pattern))
    } else {
        None
    }
}

/// A field of `InvokerContext`, named only through [`field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field(&'static str);

/// Records a violation for each of `required` that is empty: headers one operation
/// requires although the table marks them optional.
pub fn require(fields: &InvokerFields, required: &[Field], violations: &mut Violations) {
    for rule in RULES
        .iter()
        .filter(|rule| required.contains(&Field(rule.field)))
    {
        if (rule.get)(fields).is_empty() {
            violations.add(
                format!("invoker.{}", rule.field),
                format!("{} is required by this operation", rule.header),
            );
        }
    }
}

/// The fields `fields` sets, by their names in `InvokerContext`.
pub fn set_fields(fields: &InvokerFields) -> impl Iterator<Item = &'static str> + '_ {
    RULES
        .iter()
        .filter(move |rule| !(rule.get)(fields).is_empty())
        .map(|rule| rule.field)
}

/// The field of `InvokerContext` called `name`, if there is one.
pub fn field(name: &str) -> Option<&'static str> {
    RULES
        .iter()
        .map(|rule| rule.field)
        .find(|field| *field == name)
}

/// The headers of `fields`, empty ones left out.
pub fn headers(fields: &InvokerFields) -> impl Iterator<Item = (&'static str, &str)> {
    RULES
        .iter()
        .map(move |rule| (rule.header, (rule.get)(fields)))
        .filter(|(_, value)| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use pasarela_idempotency::MemoryStore;

    use super::*;

    fn at(date: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(date).unwrap()
    }

    #[test]
    fn tx_ids_follow_the_withdrawal_rule() {
        let id = tx_id("APIF", "32", at("2024-03-27T10:00:00-05:00"), 1);
        assert_eq!(id, "APIF4087320000000001");
        assert_eq!(
            tx_id("APII", "32", at("2030-01-01T00:00:00-05:00"), 2),
            "APII0001320000000002"
        );
        assert_eq!(
            process_id(
                ProcessIdRule::LastDigits {
                    digits: 11,
                    width: 12
                },
                &id
            ),
            "020000000001"
        );
        assert_eq!(process_id(ProcessIdRule::TxId, &id), id);
    }

    #[test]
    fn the_sequence_wraps_at_ten_digits() {
        let now = at("2024-01-01T00:00:00-05:00");
        assert!(tx_id("APII", "32", now, SEQUENCE_MODULUS - 1).ends_with("9999999999"));
        assert!(tx_id("APII", "32", now, SEQUENCE_MODULUS).ends_with("0000000000"));
    }

    /// Two replicas sharing one store (the PostgreSQL ledger in production) never make the
    /// same TxId.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_sharing_a_store_never_repeat_a_tx_id() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let replicas = [
            Arc::new(TxIds::new(Arc::clone(&store))),
            Arc::new(TxIds::new(store)),
        ];
        let now = at("2024-03-27T10:00:00-05:00");
        let calls: Vec<_> = (0..500)
            .map(|i| {
                let ids = Arc::clone(&replicas[i % 2]);
                tokio::spawn(async move { ids.next("APIF", "32", now).await.unwrap() })
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for call in calls {
            let id = call.await.unwrap();
            assert_eq!(id.len(), 20, "{id}");
            assert!(seen.insert(id.clone()), "{id} made twice");
        }
    }

    #[test]
    fn layers_merge_and_every_bad_header_is_reported() {
        let mut fields = InvokerFields {
            channel: "007".into(),
            user: "PASARELA".into(),
            ..InvokerFields::default()
        };
        merge(
            &mut fields,
            &from_context(&InvokerContext {
                channel: "0-7".into(),
                user_mac_address: "11-16-17-81-41-T7".into(),
                country: "COLO".into(),
                ..InvokerContext::default()
            }),
        );
        assert_eq!(fields.user, "PASARELA");
        let mut violations = Violations::new();
        check(&fields, &InvokerFields::default(), &mut violations);
        let status = violations.finish().unwrap_err();
        for field in [
            "invoker.channel",
            "invoker.user_mac_address",
            "invoker.country",
            "invoker.ally",
            "invoker.process_id",
        ] {
            assert!(
                status.message().contains(field),
                "{field}: {}",
                status.message()
            );
        }
    }

    #[test]
    fn operations_may_require_optional_headers() {
        let fields = InvokerFields {
            source: "18".into(),
            ..InvokerFields::default()
        };
        let mut violations = Violations::new();
        require(
            &fields,
            &[field::source, field::terminal_id],
            &mut violations,
        );
        let message = violations.finish().unwrap_err().message().to_owned();
        assert!(message.contains("invoker.terminal_id"), "{message}");
        assert!(!message.contains("invoker.source"), "{message}");
    }

    #[test]
    fn request_numbers_fit_the_header() {
        assert_eq!(request_number(Some("abc")), "abc");
        assert_eq!(request_number(Some(&"x".repeat(32))).len(), 30);
        assert_eq!(request_number(None).len(), 30);
    }
}
