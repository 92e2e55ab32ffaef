//! Channel holds: S14 (list, paginated), S15 (lock or unlock a channel).

use super::*;

// ---- S14, S15: channel holds -------------------------------------------------------------------

/// The most records the bank returns in a page.
pub const MAX_PAGE_SIZE: i32 = 20;

const HOLD_FILTERS: &[(pb::HoldFilter, &str)] = &[
    (pb::HoldFilter::All, "All"),
    (pb::HoldFilter::Locked, "Locked"),
];
const HOLD_ACTIONS: &[(pb::HoldAction, &str)] = &[
    (pb::HoldAction::Lock, "Lock"),
    (pb::HoldAction::Unlock, "Unlock"),
];
const HOLD_TYPES: &[(pb::HoldType, &str)] = &[
    (pb::HoldType::User, "User"),
    (pb::HoldType::Product, "Product"),
];

/// Words (and the bank's letters) of a hold's `type` and `status`. The spec's example swaps
/// the two fields ("type": "Unlock", "status": "Product"), so each record is read by value.
const HOLD_TYPE_WORDS: &[(&str, pb::HoldType)] = &[
    ("User", pb::HoldType::User),
    ("C", pb::HoldType::User),
    ("Product", pb::HoldType::Product),
    ("P", pb::HoldType::Product),
];
const HOLD_STATUS_WORDS: &[(&str, pb::HoldStatus)] = &[
    ("Lock", pb::HoldStatus::Locked),
    ("S", pb::HoldStatus::Locked),
    ("Unlock", pb::HoldStatus::Unlocked),
    ("N", pb::HoldStatus::Unlocked),
];

/// `establishDt`: "2024-05-20 11.24.21 AM".
const ESTABLISH_DT_FORMATS: &[&str] = &[
    "%Y-%m-%d %I.%M.%S %p",
    "%Y-%m-%d %H.%M.%S",
    "%Y-%m-%d %H:%M:%S",
];

/// The page asked for: `(page_number, page_size)`, defaults 1 and 20.
pub(super) fn page(
    v: &mut Violations,
    page: Option<&pasarela::common::v1::PageRequest>,
) -> (i32, i32) {
    let (number, size) = page.map_or((0, 0), |page| (page.page_number, page.page_size));
    if !(0..=MAX_PAGE_SIZE).contains(&size) {
        v.add(
            "page.page_size",
            format!("must be 1 to {MAX_PAGE_SIZE} (0 takes {MAX_PAGE_SIZE})"),
        );
    }
    if number < 0 {
        v.add("page.page_number", "must not be negative");
    }
    let size = if size <= 0 {
        MAX_PAGE_SIZE
    } else {
        size.min(MAX_PAGE_SIZE)
    };
    (number.max(1), size)
}

/// The page a listing asked for, as chosen: its number and size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub number: i32,
    pub size: i32,
}

impl Page {
    /// The page `request` asks for, as [`list_channel_holds`] sends it (a request that
    /// reached the bank was checked then).
    fn of(request: &pb::ListChannelHoldsRequest) -> Page {
        let (number, size) = page(&mut Violations::new(), request.page.as_ref());
        Page { number, size }
    }
}

/// S14's query names (document type, filter, first record, page size) in `casing`.
fn holds_query_names(casing: HoldsQuery) -> [&'static str; 4] {
    match casing {
        HoldsQuery::Table => [
            "GovIssueIdentType",
            "status",
            "initialRecord",
            "RecordsXPage",
        ],
        HoldsQuery::Camel => [
            "govIssueIdentType",
            "status",
            "initialRecord",
            "recordsXPage",
        ],
    }
}

/// S14's query, its names spelt as `casing` says, and the page it asks for (the response
/// is shaped by it).
pub fn list_channel_holds(
    request: &pb::ListChannelHoldsRequest,
    (casing, base): (HoldsQuery, RecordBase),
    v: &mut Violations,
) -> (Outgoing<NoBody>, Page) {
    let ident = gov_issue_ident(v, "customer", request.customer.as_ref());
    let (number, size) = page(v, request.page.as_ref());
    // Both are bounded by `page` (the size at 20): no overflow.
    let first = i64::from(number - 1) * i64::from(size) + base.first();
    let [document, filter, initial, per_page] = holds_query_names(casing);
    let query = Outgoing::query(
        Some(ident.ident_serial_num),
        vec![
            (document, ident.gov_issue_ident_type),
            (
                filter,
                fields::choice(v, "filter", request.filter, HOLD_FILTERS, "ALL or LOCKED").into(),
            ),
            (initial, first.to_string()),
            (per_page, size.to_string()),
        ],
    );
    (query, Page { number, size })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HoldsAnswer {
    trn_src_info: HoldsInfo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HoldsInfo {
    results_pages_generic: ResultsPages,
    blocking_info: Vec<HoldRecord>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResultsPages {
    total_records: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HoldRecord {
    channel: Text,
    sub_channel: Text,
    r#type: Text,
    status: Text,
    acct_id: Text,
    user: Text,
    branch_id: Text,
    establish_dt: Text,
    unblocking_info: Option<Unblocking>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Unblocking {
    user: Text,
    branch_id: Text,
    establish_dt: Text,
}

fn word<T: Copy>(table: &[(&str, T)], value: &str) -> Option<T> {
    table
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(value))
        .map(|(_, item)| *item)
}

impl HoldRecord {
    /// One hold, read leniently: a type or status no table names is UNSPECIFIED and a date
    /// in a format not seen is left out, so that one odd record never costs the caller the
    /// whole page (the records beside it are the answer they asked for).
    fn read(self, offset: FixedOffset) -> pb::ChannelHold {
        let (a, b) = (self.r#type.0.as_str(), self.status.0.as_str());
        let kind = word(HOLD_TYPE_WORDS, a).or_else(|| word(HOLD_TYPE_WORDS, b));
        let status = word(HOLD_STATUS_WORDS, b).or_else(|| word(HOLD_STATUS_WORDS, a));
        let release = match self.unblocking_info {
            Some(info) if !(info.user.0.is_empty() && info.establish_dt.0.is_empty()) => {
                Some(pb::HoldRelease {
                    user: info.user.into_string(),
                    branch_id: info.branch_id.into_string(),
                    release_time: lenient_time(&info.establish_dt.0, offset),
                })
            }
            _ => None,
        };
        pb::ChannelHold {
            channel: self.channel.into_string(),
            sub_channel: self.sub_channel.into_string(),
            r#type: kind.unwrap_or(pb::HoldType::Unspecified).into(),
            status: status.unwrap_or(pb::HoldStatus::Unspecified).into(),
            account_id: self.acct_id.into_string(),
            user: self.user.into_string(),
            branch_id: self.branch_id.into_string(),
            hold_time: lenient_time(&self.establish_dt.0, offset),
            release,
        }
    }
}

/// `establishDt` in bank time, or nothing when its format is not one seen.
fn lenient_time(text: &str, offset: FixedOffset) -> Option<prost_types::Timestamp> {
    bank_time(text, ESTABLISH_DT_FORMATS, offset).ok().flatten()
}

impl HoldsAnswer {
    /// The proto response for the page `(number, size)` that was asked for.
    pub fn into_response(self, page: Page) -> Result<pb::ListChannelHoldsResponse, Unreadable> {
        let Page { number, size } = page;
        let offset = bank_offset();
        let info = self.trn_src_info;
        let holds: Vec<pb::ChannelHold> = info
            .blocking_info
            .into_iter()
            .map(|record| record.read(offset))
            .collect();
        // The spec's own example says `totalRecords "0000"` beside two records: a total
        // below what this page holds cannot be right, so the records on hand set a floor.
        let on_hand = (number - 1)
            .saturating_mul(size)
            .saturating_add(i32::try_from(holds.len()).unwrap_or(i32::MAX));
        let total = info
            .results_pages_generic
            .total_records
            .number()?
            .max(on_hand);
        let total_pages = if total == 0 {
            0
        } else {
            (total + size - 1) / size
        };
        Ok(pb::ListChannelHoldsResponse {
            holds,
            page: Some(PageInfo {
                page_number: number,
                page_size: size,
                total_items: total,
                total_pages,
                has_next_page: i64::from(number) * i64::from(size) < i64::from(total),
            }),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetHoldRequest {
    trn_src_info: SetHoldInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetHoldInfo {
    blocking_info: BlockingInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockingInfo {
    ident_serial_num: String,
    gov_issue_ident_type: String,
    channel: String,
    sub_channel: String,
    acct_id: String,
    channel_desc: String,
    action: &'static str,
    r#type: &'static str,
    user: String,
    branch_id: String,
}

/// Defaults of the auditing user and branch: the call's invoker values.
pub struct Audit<'a> {
    pub user: &'a str,
    pub branch_id: &'a str,
}

pub fn set_channel_hold(
    request: &pb::SetChannelHoldRequest,
    audit: Audit<'_>,
    v: &mut Violations,
) -> Outgoing<SetHoldRequest> {
    let ident = gov_issue_ident(v, "customer", request.customer.as_ref());
    let kind = fields::choice(v, "type", request.r#type, HOLD_TYPES, "USER or PRODUCT");
    let channel = fields::alphanumeric(v, "channel", &request.channel, 0, 20);
    let sub_channel = fields::alphanumeric(v, "sub_channel", &request.sub_channel, 0, 4);
    let pseudo = fields::text(v, "pseudo_channel", &request.pseudo_channel, 0, 50);
    // Either channel and sub-channel, or a pseudo channel: "si se envia pseudoCanal este
    // campo al igual que el SubCanal deben ir vacios".
    match (
        channel.is_empty(),
        sub_channel.is_empty(),
        pseudo.is_empty(),
    ) {
        (false, false, true) | (true, true, false) => {}
        (_, _, false) => v.add(
            "pseudo_channel",
            "must be empty when channel or sub_channel is given",
        ),
        _ => v.add(
            "channel",
            "channel and sub_channel, or pseudo_channel, are required",
        ),
    }
    let account = fields::alphanumeric(v, "account_id", &request.account_id, 0, 30);
    if kind == "Product" && account.is_empty() {
        v.add("account_id", "is required for a PRODUCT hold");
    }
    let user = fields::alphanumeric(v, "user", &request.user, 0, 20);
    let branch = fields::alphanumeric(v, "branch_id", &request.branch_id, 0, 20);
    Outgoing::body(SetHoldRequest {
        trn_src_info: SetHoldInfo {
            blocking_info: BlockingInfo {
                ident_serial_num: ident.ident_serial_num,
                gov_issue_ident_type: ident.gov_issue_ident_type,
                channel,
                sub_channel,
                acct_id: account,
                channel_desc: pseudo,
                action: fields::choice(v, "action", request.action, HOLD_ACTIONS, "LOCK or UNLOCK"),
                r#type: kind,
                user: if user.is_empty() {
                    audit.user.to_owned()
                } else {
                    user
                },
                branch_id: if branch.is_empty() {
                    audit.branch_id.to_owned()
                } else {
                    branch
                },
            },
        },
    })
}

// ---- the operations ----------------------------------------------------------------------

pub const LIST_CHANNEL_HOLDS: Op<HoldsAnswer> = Op {
    name: "list_channel_holds",
    method: Method::GET,
    path: Path {
        setting: "list_channel_holds",
        spec: "/security-management/v1/channelholds/{identSerialNum}",
    },
    retry: Retry::Safe,
    credentials: CredentialFamily::Gateway,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Required,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::ListChannelHoldsRequest {
    type Body = NoBody;
    type Answer = HoldsAnswer;
    type Response = pb::ListChannelHoldsResponse;
    const OP: &'static Op<HoldsAnswer> = &LIST_CHANNEL_HOLDS;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        false
    }

    fn build(
        &self,
        _: &InvokerFields,
        readings: &Readings,
        v: &mut Violations,
    ) -> Outgoing<NoBody> {
        list_channel_holds(self, readings.holds_query, v).0
    }

    /// The page asked for shapes the response (its number and size).
    fn read(&self, answer: HoldsAnswer) -> Result<pb::ListChannelHoldsResponse, Unreadable> {
        answer.into_response(Page::of(self))
    }
}

pub const SET_CHANNEL_HOLD: Op<Empty> = Op {
    name: "set_channel_hold",
    method: Method::POST,
    path: Path {
        setting: "set_channel_hold",
        spec: "/security-management/v1/channelholds",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Gateway,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::SetChannelHoldRequest {
    type Body = SetHoldRequest;
    type Answer = Empty;
    type Response = pb::SetChannelHoldResponse;
    const OP: &'static Op<Empty> = &SET_CHANNEL_HOLD;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        false
    }

    fn build(
        &self,
        fields: &InvokerFields,
        _: &Readings,
        v: &mut Violations,
    ) -> Outgoing<SetHoldRequest> {
        let audit = Audit {
            user: &fields.user,
            branch_id: &fields.branch_id,
        };
        set_channel_hold(self, audit, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::SetChannelHoldResponse, Unreadable> {
        answer.try_into()
    }
}
