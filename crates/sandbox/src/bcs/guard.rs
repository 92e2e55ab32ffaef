//! The gate every operation passes first: MuleSoft client-id enforcement (401 when the
//! client credentials or the token are missing or wrong), the headers an operation marks as
//! required, and the `X-Invoker-*` pattern table printed under "Create Transation Challenge
//! V2 Questions", which applies to every operation that sends those headers (400).

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::http::HeaderMap;
use chrono::{NaiveDate, NaiveDateTime};
use regex::Regex;

use super::envelope::{BcsError, Op, unknown_resource};
use super::state::{CredentialFamily, PathFamily, State};

/// The spec names each credential differently across operations; either spelling is accepted.
const CLIENT_ID: &[&str] = &["X-Security-ClientID", "client_id"];
const CLIENT_SECRET: &[&str] = &["X-Security-ClientSecret", "client_secret"];
const TOKEN: &[&str] = &["X-Security-Token", "Authorization"];

/// How a header's value is checked.
enum Check {
    /// The spec's regular expression, typos (`A-z`) included, as the gateway would meet it.
    Pattern(&'static str),
    /// A date `YYYY-MM-DD` (S18 "AAAA-MM-DD"; S19's "YY-MM-DD" with a four-digit year).
    Date,
    /// A local date and time like the table's example `2019-10-01T23:57:59.700`.
    DateTime,
}

impl Check {
    /// `regex` is this rule's compiled pattern, for `Pattern` rules.
    fn accepts(&self, regex: Option<&Regex>, value: &str) -> bool {
        match self {
            Check::Pattern(_) => regex.is_some_and(|regex| regex.is_match(value)),
            Check::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
            Check::DateTime => NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").is_ok(),
        }
    }
}

/// The table's patterns, named by what they admit.
const ALPHANUMERIC: Check = Check::Pattern(r"^[a-zA-z,0-9]*$");
const ALPHANUMERIC_SYMBOLS: Check = Check::Pattern(r"^[a-zA-z,0-9,\W]*$");
const LETTERS_SYMBOLS: Check = Check::Pattern(r"^[a-zA-z,\W]*$");
const FREE_TEXT: Check = Check::Pattern(r"^[ñAa-zA-z,0-9_ ,\W]*$");
const IP_ADDRESS: Check = Check::Pattern(r"^[a-zA-z,0-9,\W.\:]*$");
const MAC_ADDRESS: Check = Check::Pattern(r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$");
const NOT_EMPTY: Check = Check::Pattern(r"^[\s\S]+$");

/// One row of the header table: name, maximum length in characters, check.
const HEADER_RULES: &[(&str, usize, Check)] = &[
    ("X-Ident-TransactionDate", 30, Check::DateTime),
    ("X-Ident-DeviceFingerPrint", 5500, FREE_TEXT),
    ("X-Ident-NavigHabit", 600, FREE_TEXT),
    ("X-Security-CustLoginId", 30, ALPHANUMERIC),
    ("Authorization", usize::MAX, ALPHANUMERIC_SYMBOLS),
    ("X-Invoker-Channel", 20, ALPHANUMERIC),
    ("X-Invoker-ATMId", 20, ALPHANUMERIC),
    ("X-Invoker-BranchId", 20, ALPHANUMERIC),
    ("X-Invoker-TerminalId", 20, ALPHANUMERIC),
    ("X-Invoker-Component", 20, ALPHANUMERIC),
    ("X-Invoker-UserIPAddress", 39, IP_ADDRESS),
    ("X-Invoker-ServerIPAddress", 39, IP_ADDRESS),
    ("X-Invoker-UserMACAddress", 17, MAC_ADDRESS),
    ("X-Invoker-ServerMACAddress", 17, MAC_ADDRESS),
    ("X-Invoker-ProcessDate", 10, Check::Date),
    ("X-Invoker-TxId", 30, ALPHANUMERIC),
    ("X-Invoker-SessionKey", 30, NOT_EMPTY),
    ("X-Invoker-Source", 20, ALPHANUMERIC),
    ("X-Invoker-Country", 3, LETTERS_SYMBOLS),
    ("X-Invoker-ProcessBpmId", 30, ALPHANUMERIC),
    ("X-Invoker-ProcessId", 20, ALPHANUMERIC),
    ("X-Invoker-Network", 4, ALPHANUMERIC),
    ("X-Invoker-subChannel", 4, ALPHANUMERIC),
    ("X-Invoker-User", 20, ALPHANUMERIC),
    ("X-Invoker-Action", 30, ALPHANUMERIC),
    ("X-Invoker-Destination", 30, ALPHANUMERIC),
    ("X-Invoker-ModifierUser", 30, ALPHANUMERIC),
    ("X-Invoker-ReferencedNumber", 30, ALPHANUMERIC),
    ("X-Invoker-RequestNumber", 30, ALPHANUMERIC_SYMBOLS),
    ("X-Invoker-CustId", 30, ALPHANUMERIC),
];

/// `HEADER_RULES` with each pattern compiled once (`None` for date and time checks).
static COMPILED: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
    HEADER_RULES
        .iter()
        .map(|(_, _, check)| match check {
            Check::Pattern(pattern) => Some(Regex::new(pattern).expect("header patterns compile")),
            Check::Date | Check::DateTime => None,
        })
        .collect()
});

/// A header's value, or `None` when absent or only spaces: S18 tells callers to "send
/// spaces" for headers they do not fill, which the pattern table would otherwise reject.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<Cow<'a, str>> {
    let value = String::from_utf8_lossy(headers.get(name)?.as_bytes());
    (!value.trim().is_empty()).then_some(value)
}

fn first_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<Cow<'a, str>> {
    names.iter().find_map(|name| header(headers, name))
}

/// Lets the request through, or answers the operation's 401 or 400 row.
pub(crate) fn admit(state: &State, op: Op, headers: &HeaderMap) -> Result<(), BcsError> {
    if !served_here(state, op) {
        return Err(unknown_resource());
    }
    if !credentials_accepted(state, family_of(state, op), headers) {
        return Err(op.unauthorized());
    }
    if let Some(missing) = op
        .profile()
        .required_headers
        .iter()
        .find(|name| header(headers, name).is_none())
    {
        return Err(op.bad_request(format!("falta el header {missing}")));
    }
    for ((name, max, check), regex) in HEADER_RULES.iter().zip(COMPILED.iter()) {
        let Some(value) = header(headers, name) else {
            continue;
        };
        let fits = value.chars().count() <= *max && check.accepts(regex.as_ref(), &value);
        if !fits {
            return Err(op.bad_request(format!("el header {name} no cumple el formato")));
        }
    }
    Ok(())
}

/// Whether this host serves `op`'s family of paths.
fn served_here(state: &State, op: Op) -> bool {
    let camel = matches!(
        op,
        Op::GenerateOtcV1
            | Op::GenerateOtcV3
            | Op::ValidateOtc
            | Op::ChallengeV1
            | Op::DigitalEnroll
            | Op::DigitalEnrollmentCheck
    );
    let family = if camel {
        PathFamily::CamelCase
    } else {
        PathFamily::KebabCase
    };
    state
        .bank()
        .readings
        .serves
        .is_none_or(|served| served == family)
}

/// The one family `op` takes its credentials in, where the bank plays one for the
/// operations whose spec prints none (S8, S9, S16); `None`, either spelling of each.
fn family_of(state: &State, op: Op) -> Option<CredentialFamily> {
    let unprinted = matches!(
        op,
        Op::ChangePassword | Op::CreateUser | Op::AuthenticationLevel
    );
    unprinted
        .then(|| state.bank().readings.unprinted_credentials)
        .flatten()
}

/// Client id and secret must be the sandbox's; a token must be present, and live if the
/// sandbox issued it (`tokens`): any other non-empty bearer is taken as a fixed token. In
/// a strict `family`, each travels in that family's header only (a bearer in
/// `Authorization`, a bare token in `X-Security-Token`).
fn credentials_accepted(
    state: &State,
    family: Option<CredentialFamily>,
    headers: &HeaderMap,
) -> bool {
    let (id, secret, token) = match family {
        Some(family) => {
            let (id, secret, token) = family.headers();
            (
                header(headers, id),
                header(headers, secret),
                header(headers, token),
            )
        }
        None => (
            first_header(headers, CLIENT_ID),
            first_header(headers, CLIENT_SECRET),
            first_header(headers, TOKEN),
        ),
    };
    let bearer_only = family.is_some_and(|family| family != CredentialFamily::Mule);
    let token_present = token.is_some_and(|token| {
        let token = token.trim();
        let bearer = match token.strip_prefix("Bearer ") {
            Some(bearer) => bearer,
            None if bearer_only => return false,
            None => token,
        };
        let bearer = bearer.trim();
        !bearer.is_empty() && state.tokens().accepts(bearer)
    });
    match (id, secret) {
        (Some(id), Some(secret)) => token_present && state.accepts_client(&id, &secret),
        _ => false,
    }
}
