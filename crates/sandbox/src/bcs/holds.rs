//! Channel holds: list a customer's holds with the `T`/`B` filter and pagination (S14), and
//! lock or unlock a channel for the customer or one product (S15). The bank's letters
//! travel as the English words the spec maps them to.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::codes;
use super::envelope::{BcsError, Op, Reply, ok};
use super::fixtures::{ChannelPair, Hold, PseudoChannel, Unblocking};
use super::input::{self, Query};
use super::state::{Customer, QueryCasing, RecordBase, State, now};
use super::wire::{BlockingInfoRequest, SetHoldRequest};

/// The spec caps a page at 20 records.
const MAX_PAGE: usize = 20;

/// `status` filter of S14: letter or English word -> only locked holds?
const FILTERS: &[(&str, bool)] = &[("T", false), ("All", false), ("B", true), ("Locked", true)];
/// Hold type: bank letter <-> English word.
const TYPES: &[(&str, &str)] = &[("C", "User"), ("P", "Product")];
/// Hold status / lock action: bank letter <-> English word.
const STATES: &[(&str, &str)] = &[("S", "Lock"), ("N", "Unlock")];

/// The bank letter for a letter or English word of `table`.
fn letter(table: &[(&'static str, &'static str)], given: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(letter, word)| {
            letter.eq_ignore_ascii_case(given) || word.eq_ignore_ascii_case(given)
        })
        .map(|(letter, _)| *letter)
}

fn word(table: &[(&'static str, &'static str)], letter: &str) -> &'static str {
    table
        .iter()
        .find(|(l, _)| *l == letter)
        .map_or("", |(_, word)| word)
}

/// S14's timestamps: "YYYY-MM-DD HH.MI.SS PM".
fn stamp() -> String {
    now().format("%Y-%m-%d %I.%M.%S %p").to_string()
}

fn parse_number(op: Op, query: &Query, name: &str, default: usize) -> Result<usize, BcsError> {
    query.get(name).map_or(Ok(default), |value| {
        value
            .parse()
            .map_err(|_| op.bad_request(format!("{name} debe ser numerico")))
    })
}

/// What S14's query asks for: whose holds, which ones, and which page.
struct Listing<'a> {
    ident_type: &'a str,
    locked_only: bool,
    /// How many matching records come before the page.
    skip: usize,
    per_page: usize,
}

impl<'a> Listing<'a> {
    fn read(op: Op, query: &'a Query, base: Option<RecordBase>) -> Result<Self, BcsError> {
        let ident_type = query
            .get("GovIssueIdentType")
            .ok_or_else(|| op.bad_request("GovIssueIdentType es obligatorio"))?;
        let locked_only = match query.get("status") {
            None => false,
            Some(given) => FILTERS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(given))
                .map(|(_, locked)| *locked)
                .ok_or_else(|| op.bad_request("status debe ser T (All) o B (Locked)"))?,
        };
        let default = match base {
            Some(RecordBase::Zero) => 0,
            Some(RecordBase::One) | None => 1,
        };
        let first = parse_number(op, query, "initialRecord", default)?;
        let skip = match base {
            Some(RecordBase::Zero) => first,
            Some(RecordBase::One) if first == 0 => {
                return Err(op.unreadable("initialRecord starts at 1"));
            }
            Some(RecordBase::One) | None => first.max(1) - 1,
        };
        let per_page = parse_number(op, query, "RecordsXPage", MAX_PAGE)?;
        if per_page == 0 || per_page > MAX_PAGE {
            return Err(op.bad_request("RecordsXPage debe estar entre 1 y 20"));
        }
        Ok(Listing {
            ident_type,
            locked_only,
            skip,
            per_page,
        })
    }
}

/// A bank that reads S14's query names one way only: any other name, another casing of
/// one included, is a request its gateway cannot read.
fn strict_names(op: Op, casing: QueryCasing, raw: Option<&str>) -> Result<(), BcsError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| op.bad_request("parametros de consulta invalidos"))?;
    let names = casing.names();
    match pairs
        .iter()
        .find(|(name, _)| !names.contains(&name.as_str()))
    {
        Some((name, _)) => Err(op.unreadable(format!(
            "unknown query parameter {name} (expected {})",
            names.join(", ")
        ))),
        None => Ok(()),
    }
}

/// S14: GET /security-management/v1/channelholds/{identSerialNum}.
pub(super) async fn list(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    Path(ident_num): Path<String>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let op = Op::ListChannelHolds;
    let readings = state.bank().readings;
    if let Some(casing) = readings.holds_query {
        strict_names(op, casing, raw.as_deref())?;
    }
    let query = input::admitted_query(&state, op, &headers, raw)?;
    let listing = Listing::read(op, &query, readings.holds_record_base)?;
    let bank = state.bank();
    let customer = bank
        .customer(listing.ident_type, &ident_num)
        .ok_or_else(|| op.reject(&codes::CUSTOMER_NOT_FOUND))?;
    if customer.data.faulty_backend {
        return Err(op.backend_failure());
    }
    let matching: Vec<&Hold> = customer
        .data
        .channel_holds
        .iter()
        .filter(|hold| !listing.locked_only || hold.status == "S")
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(listing.skip)
        .take(listing.per_page)
        .map(|hold| hold_json(hold))
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({
            "trnSrcInfo": {
                "resultsPagesGeneric": {
                    "totalRecords": format!("{:04}", matching.len()),
                    "recordsXPage": format!("{:02}", page.len()),
                },
                "blockingInfo": page,
            }
        }),
    ))
}

fn hold_json(hold: &Hold) -> Value {
    let unblocking = hold.unblocking_info.clone().unwrap_or(Unblocking {
        user: String::new(),
        branch_id: String::new(),
        establish_dt: String::new(),
    });
    json!({
        "channel": hold.channel,
        "subChannel": hold.sub_channel,
        "type": word(TYPES, &hold.r#type),
        "status": word(STATES, &hold.status),
        "acctId": hold.acct_id,
        "user": hold.user,
        "branchId": hold.branch_id,
        "establishDt": hold.establish_dt,
        "unblockingInfo": {
            "user": unblocking.user,
            "branchId": unblocking.branch_id,
            "establishDt": unblocking.establish_dt,
        }
    })
}

/// S15: POST /security-management/v1/channelholds.
pub(super) async fn set(Shared(state): Shared<State>, headers: HeaderMap, body: Bytes) -> Reply {
    let op = Op::SetChannelHold;
    let request: SetHoldRequest = input::admitted_body(&state, op, &headers, &body)?;
    let info = request.trn_src_info.blocking_info;
    if info.ident_serial_num.is_empty() || info.gov_issue_ident_type.is_empty() {
        return Err(op.bad_request("identSerialNum y govIssueIdentType son obligatorios"));
    }
    let action = letter(STATES, info.action.trim())
        .ok_or_else(|| op.bad_request("action debe ser Lock o Unlock"))?;
    let kind = letter(TYPES, info.r#type.trim())
        .ok_or_else(|| op.bad_request("type debe ser User o Product"))?;
    let mut bank = state.bank();
    let pairs = target_channels(op, &bank.fixtures.pseudo_channels, &info)?;
    let customer = bank
        .customer_mut(&info.gov_issue_ident_type, &info.ident_serial_num)
        .ok_or_else(|| op.reject(&codes::CUSTOMER_NOT_FOUND))?;
    if customer.data.faulty_backend {
        return Err(op.backend_failure());
    }
    let acct_id = if kind == "P" {
        if !owns_product(customer, &info.acct_id) {
            return Err(op.reject(&codes::ACCOUNT_NOT_FOUND));
        }
        info.acct_id.clone()
    } else {
        String::new()
    };
    for pair in pairs {
        let audit = (info.user.clone(), info.branch_id.clone());
        apply(customer, &pair, kind, &acct_id, action == "S", audit);
    }
    Ok(ok(StatusCode::OK, json!({})))
}

/// Either `channel` + `subChannel`, or a pseudo-channel name (`channelDesc`), never both.
fn target_channels(
    op: Op,
    pseudo_channels: &[PseudoChannel],
    info: &BlockingInfoRequest,
) -> Result<Vec<ChannelPair>, BcsError> {
    let desc = info.channel_desc.trim();
    let explicit = !info.channel.trim().is_empty() || !info.sub_channel.trim().is_empty();
    match (desc.is_empty(), explicit) {
        (false, true) => Err(op.bad_request("channelDesc excluye channel y subChannel")),
        (false, false) => pseudo_channels
            .iter()
            .find(|pseudo| pseudo.name.eq_ignore_ascii_case(desc))
            .map(|pseudo| pseudo.channels.clone())
            .ok_or_else(|| op.bad_request("channelDesc no es un pseudo canal conocido")),
        (true, _) if info.channel.trim().is_empty() || info.sub_channel.trim().is_empty() => {
            Err(op.bad_request("channel y subChannel son obligatorios sin channelDesc"))
        }
        (true, _) => Ok(vec![ChannelPair {
            channel: info.channel.trim().to_string(),
            sub_channel: info.sub_channel.trim().to_string(),
        }]),
    }
}

fn owns_product(customer: &Customer, acct_id: &str) -> bool {
    let data = &customer.data;
    !acct_id.is_empty()
        && (customer.owns_account(acct_id).is_some()
            || data
                .debit_cards
                .iter()
                .chain(&data.credit_cards)
                .any(|card| card.number == acct_id))
}

/// Locks or unlocks one channel; unlocking what is not locked changes nothing.
fn apply(
    customer: &mut Customer,
    pair: &ChannelPair,
    kind: &str,
    acct_id: &str,
    lock: bool,
    audit: (String, String),
) {
    let holds = &mut customer.data.channel_holds;
    let existing = holds.iter_mut().find(|hold| {
        hold.channel == pair.channel
            && hold.sub_channel == pair.sub_channel
            && hold.r#type == kind
            && hold.acct_id == acct_id
    });
    let (user, branch_id) = audit;
    match (existing, lock) {
        (Some(hold), true) => {
            hold.status = "S".into();
            hold.user = user;
            hold.branch_id = branch_id;
            hold.establish_dt = stamp();
            hold.unblocking_info = None;
        }
        (Some(hold), false) if hold.status == "S" => {
            hold.status = "N".into();
            hold.unblocking_info = Some(Unblocking {
                user,
                branch_id,
                establish_dt: stamp(),
            });
        }
        (None, true) => holds.push(Hold {
            channel: pair.channel.clone(),
            sub_channel: pair.sub_channel.clone(),
            r#type: kind.into(),
            status: "S".into(),
            acct_id: acct_id.into(),
            user,
            branch_id,
            establish_dt: stamp(),
            unblocking_info: None,
        }),
        _ => {}
    }
}
