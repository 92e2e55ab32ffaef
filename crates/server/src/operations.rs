//! `pasarela.operations.v1.OperationsService`: operators list the idempotency keys whose
//! provider outcome is unknown and settle them, over the ledgers of the services this
//! process serves; and a task keeps the gauge of outstanding unknown outcomes current.

use std::time::{Duration, SystemTime};

use pasarela::operations::v1 as pb;
use pasarela::operations::v1::operations_service_server::{
    OperationsService, OperationsServiceServer,
};
use pasarela::operations::v1::propose_settlement_request::Settlement as PbProposal;
use pasarela::operations::v1::settle_unknown_outcome_request::Settlement as PbSettlement;
use pasarela::operations::v1::settlement_proposal::Settlement as PbProposed;
use pasarela_auth::{Principal, tenant_of_key};
use pasarela_idempotency::{
    Approval, KeyState, Ledger, Outstanding, SettleError, Settlement, Settling, StoreUnavailable,
    reason,
};
use pasarela_provider::ProviderError;
use tonic::{Code, Request, Response, Status};

use crate::config::OperationsSettings;

/// `ErrorInfo.domain` of this service's errors.
const DOMAIN: &str = "pasarela.operations";

/// `ErrorInfo.reason`s of a settlement that cannot be made.
pub mod reasons {
    pub const OUTCOME_NOT_FOUND: &str = "OUTCOME_NOT_FOUND";
    pub const OUTCOME_NOT_UNKNOWN: &str = "OUTCOME_NOT_UNKNOWN";
    pub const SECOND_APPROVER_REQUIRED: &str = "SECOND_APPROVER_REQUIRED";
    pub const PROPOSAL_NOT_FOUND: &str = "PROPOSAL_NOT_FOUND";
    pub const PROPOSAL_EXPIRED: &str = "PROPOSAL_EXPIRED";
    pub const PROVIDER_CONTRADICTS_SETTLEMENT: &str = "PROVIDER_CONTRADICTS_SETTLEMENT";
}

/// Longest note kept in an audit line.
const NOTE_MAX: usize = 200;

/// How often the gauge of unknown outcomes is recounted from the shared store.
pub const COUNT_EVERY: Duration = Duration::from_secs(15);

/// The service over the served services' ledgers.
#[derive(Clone)]
pub struct Operations {
    ledgers: Vec<Ledger>,
    settings: OperationsSettings,
}

impl Operations {
    pub fn new(ledgers: Vec<Ledger>, settings: OperationsSettings) -> Self {
        Self { ledgers, settings }
    }

    pub fn into_server(self) -> OperationsServiceServer<Self> {
        OperationsServiceServer::new(self)
    }

    /// Recounts every ledger's unknown outcomes now and then, for as long as the process
    /// runs; the gauge is the same on every replica of a shared store.
    pub fn spawn_counter(&self) -> tokio::task::JoinHandle<()> {
        let ledgers = self.ledgers.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(COUNT_EVERY);
            loop {
                every.tick().await;
                for ledger in &ledgers {
                    ledger.count().await;
                }
            }
        })
    }

    fn ledgers_of(&self, service: &str) -> Result<Vec<&Ledger>, Status> {
        let chosen: Vec<&Ledger> = self
            .ledgers
            .iter()
            .filter(|ledger| service.is_empty() || ledger.service == service)
            .collect();
        if chosen.is_empty() {
            return Err(bad_field("service", &self.served()));
        }
        Ok(chosen)
    }

    /// The one ledger of `service`.
    fn ledger(&self, service: &str) -> Result<&Ledger, Status> {
        match self.ledgers_of(service)?[..] {
            [ledger] => Ok(ledger),
            _ => Err(bad_field("service", &self.served())),
        }
    }

    fn served(&self) -> String {
        let names: Vec<&str> = self.ledgers.iter().map(|ledger| ledger.service).collect();
        format!("must be one of the served services with idempotency keys: {names:?}")
    }
}

/// Longest a watch of one key lasts, and how often it looks.
const WATCH_FOR: Duration = Duration::from_secs(10 * 60);
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// The stream of a key's states.
type KeyStates =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::WatchOutcomeResponse, Status>> + Send>>;

/// One watch: the key, the last state sent, and when it ends.
struct Watch {
    ledger: Ledger,
    operation: String,
    caller: String,
    key: String,
    last: Option<KeyState>,
    /// When the watch ends; past any clock, at once.
    until: Option<std::time::Instant>,
    ended: bool,
}

impl Watch {
    /// The next state to send: the first, then each change, until one is final.
    async fn next(mut self) -> Option<(Result<pb::WatchOutcomeResponse, Status>, Watch)> {
        loop {
            let lapsed = self
                .until
                .is_none_or(|until| std::time::Instant::now() >= until);
            if self.ended || lapsed {
                return None;
            }
            let state = match self
                .ledger
                .key_state(&self.operation, &self.caller, &self.key)
                .await
            {
                Ok(state) => state,
                Err(error) => {
                    self.ended = true;
                    return Some((Err(store_down(error)), self));
                }
            };
            if self.last != Some(state) {
                self.last = Some(state);
                self.ended = matches!(state, KeyState::Settled | KeyState::Freed);
                let answer = pb::WatchOutcomeResponse {
                    state: key_state(state) as i32,
                };
                return Some((Ok(answer), self));
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    }
}

fn key_state(state: KeyState) -> pb::KeyState {
    match state {
        KeyState::Running => pb::KeyState::Running,
        KeyState::Unknown => pb::KeyState::Unknown,
        KeyState::Settled => pb::KeyState::Settled,
        KeyState::Freed => pb::KeyState::Freed,
    }
}

#[tonic::async_trait]
impl OperationsService for Operations {
    type WatchOutcomeStream = KeyStates;

    async fn watch_outcome(
        &self,
        request: Request<pb::WatchOutcomeRequest>,
    ) -> Result<Response<Self::WatchOutcomeStream>, Status> {
        // The caller's own keys: its identity is half of each key.
        let caller = watching_caller(&request)?;
        let request = request.into_inner();
        let mut violations = pasarela_provider::Violations::new();
        violations.required("service", &request.service);
        if violations.required("operation", &request.operation)
            && !request
                .operation
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            violations.add("operation", "is an operation name");
        }
        pasarela_idempotency::check_key(&mut violations, &request.idempotency_key);
        violations.finish()?;
        let watch = Watch {
            ledger: self.ledger(&request.service)?.clone(),
            operation: request.operation,
            caller,
            key: request.idempotency_key,
            last: None,
            until: std::time::Instant::now().checked_add(WATCH_FOR),
            ended: false,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(
            watch,
            Watch::next,
        ))))
    }

    async fn list_unknown_outcomes(
        &self,
        request: Request<pb::ListUnknownOutcomesRequest>,
    ) -> Result<Response<pb::ListUnknownOutcomesResponse>, Status> {
        let request = request.into_inner();
        let query = Query::read(&request)?;
        let mut listed = Vec::new();
        for ledger in self.ledgers_of(&request.service)? {
            let outstanding = ledger.outstanding().await.map_err(store_down)?;
            ledger.publish(&outstanding);
            listed.extend(outstanding.into_iter().map(|entry| (ledger.service, entry)));
        }
        let (page, next) = query.page(listed, SystemTime::now());
        Ok(Response::new(pb::ListUnknownOutcomesResponse {
            outcomes: page
                .into_iter()
                .map(|(service, entry)| to_proto(service, entry))
                .collect(),
            next_page_token: next.map(|cursor| cursor.token()).unwrap_or_default(),
        }))
    }

    async fn settle_unknown_outcome(
        &self,
        request: Request<pb::SettleUnknownOutcomeRequest>,
    ) -> Result<Response<pb::SettleUnknownOutcomeResponse>, Status> {
        let operator = named_operator(&request)?;
        let request = request.into_inner();
        let settlement = checked(&request)?;
        let ledger = self.ledger(&request.service)?;
        if self.settings.approvals > 1 {
            return Err(ProviderError::new(
                Code::FailedPrecondition,
                reasons::SECOND_APPROVER_REQUIRED,
                DOMAIN,
            )
            .message(
                "a settlement takes two operators here: ProposeSettlement, then another \
                 operator's ApproveSettlement",
            )
            .into());
        }
        let settled = ledger
            .settle(settling(&request, &settlement, &operator))
            .await
            .map_err(settle_error)?;
        Ok(Response::new(pb::SettleUnknownOutcomeResponse {
            settled: Some(to_proto(ledger.service, settled)),
        }))
    }

    async fn propose_settlement(
        &self,
        request: Request<pb::ProposeSettlementRequest>,
    ) -> Result<Response<pb::ProposeSettlementResponse>, Status> {
        let operator = named_operator(&request)?;
        let request = as_settlement(request.into_inner());
        let settlement = checked(&request)?;
        let ledger = self.ledger(&request.service)?;
        let proposed = ledger
            .propose(
                settling(&request, &settlement, &operator),
                self.settings.proposal_ttl,
            )
            .await
            .map_err(settle_error)?;
        Ok(Response::new(pb::ProposeSettlementResponse {
            outcome: Some(to_proto(ledger.service, proposed)),
        }))
    }

    async fn approve_settlement(
        &self,
        request: Request<pb::ApproveSettlementRequest>,
    ) -> Result<Response<pb::ApproveSettlementResponse>, Status> {
        let operator = named_operator(&request)?;
        let request = request.into_inner();
        let mut violations = pasarela_provider::Violations::new();
        check_key(
            &mut violations,
            &request.service,
            &request.operation,
            &request.key_hash,
        );
        let hex_id = request.proposal_id.len() == 32 && is_lower_hex(&request.proposal_id);
        if !hex_id {
            violations.add("proposal_id", "is the proposal id listed");
        }
        violations.length("note", &request.note, 0, NOTE_MAX);
        violations.finish()?;
        let ledger = self.ledger(&request.service)?;
        let settled = ledger
            .approve(
                &request.operation,
                &request.key_hash,
                &request.proposal_id,
                &operator,
                &request.note,
            )
            .await
            .map_err(settle_error)?;
        Ok(Response::new(pb::ApproveSettlementResponse {
            settled: Some(to_proto(ledger.service, settled)),
        }))
    }
}

/// The operator as a person (`source:subject`, whatever application or tenant it acts
/// through): a settlement names who made it, and four eyes need two persons, so one
/// operator's two applications are one pair of eyes.
fn named_operator<T>(request: &Request<T>) -> Result<String, Status> {
    identified(request).map(Principal::person)
}

/// The caller's key space, for the keys it may watch: its own.
fn watching_caller<T>(request: &Request<T>) -> Result<String, Status> {
    identified(request).map(Principal::key)
}

/// The caller, refused when the call has none (a method exempted from authentication).
fn identified<T>(request: &Request<T>) -> Result<&Principal, Status> {
    match request.extensions().get::<Principal>() {
        Some(principal) => Ok(principal),
        None => Err(ProviderError::new(
            Code::PermissionDenied,
            reasons::SECOND_APPROVER_REQUIRED,
            DOMAIN,
        )
        .message("this call needs an authenticated caller")
        .into()),
    }
}

/// An operator's settlement, as the ledger takes it.
fn settling<'a>(
    request: &'a pb::SettleUnknownOutcomeRequest,
    settlement: &'a Settlement,
    operator: &'a str,
) -> Settling<'a> {
    Settling {
        operation: &request.operation,
        key_hash: &request.key_hash,
        settlement,
        operator,
        note: &request.note,
        overriding: request.override_provider,
    }
}

/// A proposal's fields, read as the settlement it proposes.
fn as_settlement(request: pb::ProposeSettlementRequest) -> pb::SettleUnknownOutcomeRequest {
    pb::SettleUnknownOutcomeRequest {
        service: request.service,
        operation: request.operation,
        key_hash: request.key_hash,
        settlement: request.settlement.map(|settlement| match settlement {
            PbProposal::Succeeded(succeeded) => PbSettlement::Succeeded(succeeded),
            PbProposal::NotDone(not_done) => PbSettlement::NotDone(not_done),
        }),
        note: request.note,
        override_provider: request.override_provider,
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The fields naming one key: a service, an operation name, a key hash as listed.
fn check_key(
    violations: &mut pasarela_provider::Violations,
    service: &str,
    operation: &str,
    key_hash: &str,
) {
    violations.required("service", service);
    if violations.required("operation", operation)
        && !operation
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        violations.add("operation", "is an operation name as listed");
    }
    if !(key_hash.len() == 64 && is_lower_hex(key_hash)) {
        violations.add("key_hash", "is the 64 hex digits listed");
    }
}

/// Keys listed when the caller names no page size, and the most a page holds.
const PAGE_SIZE: usize = 100;
const PAGE_SIZE_MAX: usize = 1_000;

/// A listing's filters and where its page starts, checked before the store is read.
#[derive(Debug)]
struct Query {
    operation: String,
    tenant: String,
    min_age: Duration,
    page_size: usize,
    after: Option<Cursor>,
}

/// A key's place in the listing's order (oldest first attempt, then service and hash),
/// handed out as the next page's token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    first_attempt_nanos: u128,
    service: String,
    key_hash: String,
}

/// The version and separator of a page token: the service names hold dots.
const TOKEN_VERSION: &str = "p1";
const TOKEN_SEPARATOR: char = '~';

impl Cursor {
    fn of(service: &str, entry: &Outstanding) -> Self {
        let since_epoch = entry
            .first_attempt
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            first_attempt_nanos: since_epoch.as_nanos(),
            service: service.to_owned(),
            key_hash: entry.key_hash.clone(),
        }
    }

    fn token(&self) -> String {
        let s = TOKEN_SEPARATOR;
        format!(
            "{TOKEN_VERSION}{s}{}{s}{}{s}{}",
            self.first_attempt_nanos, self.service, self.key_hash
        )
    }

    fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split(TOKEN_SEPARATOR);
        let (Some(TOKEN_VERSION), Some(nanos), Some(service), Some(key_hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Some(Self {
            first_attempt_nanos: nanos.parse().ok()?,
            service: service.to_owned(),
            key_hash: key_hash.to_owned(),
        })
    }
}

impl Query {
    fn read(request: &pb::ListUnknownOutcomesRequest) -> Result<Self, Status> {
        let mut violations = pasarela_provider::Violations::new();
        if !request
            .operation
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            violations.add("operation", "is an operation name as listed");
        }
        let min_age = match &request.min_age {
            None => Some(Duration::ZERO),
            Some(age) => Duration::try_from(*age).ok(),
        };
        if min_age.is_none() {
            violations.add("min_age", "is a duration of zero or more");
        }
        let page_size = match usize::try_from(request.page_size) {
            Ok(0) => Some(PAGE_SIZE),
            Ok(size) => Some(size.min(PAGE_SIZE_MAX)),
            Err(_) => None,
        };
        if page_size.is_none() {
            violations.add("page_size", "is zero (the default) or more");
        }
        let after = match request.page_token.as_str() {
            "" => None,
            token => {
                let cursor = Cursor::parse(token);
                if cursor.is_none() {
                    violations.add("page_token", "is a next_page_token this service handed out");
                }
                cursor
            }
        };
        violations.finish()?;
        Ok(Self {
            operation: request.operation.clone(),
            tenant: request.tenant.trim().to_owned(),
            min_age: min_age.unwrap_or_default(),
            page_size: page_size.unwrap_or(PAGE_SIZE),
            after,
        })
    }

    /// The page of `listed` this query asks for, oldest first, and where the next page
    /// starts when there is one.
    fn page(
        &self,
        listed: Vec<(&'static str, Outstanding)>,
        now: SystemTime,
    ) -> (Vec<(&'static str, Outstanding)>, Option<Cursor>) {
        let mut chosen: Vec<(Cursor, (&'static str, Outstanding))> = listed
            .into_iter()
            .filter(|(_, entry)| self.operation.is_empty() || entry.operation == self.operation)
            .filter(|(_, entry)| {
                self.tenant.is_empty()
                    || tenant_of_key(&entry.caller).is_some_and(|tenant| tenant == self.tenant)
            })
            .filter(|(_, entry)| {
                now.duration_since(entry.first_attempt)
                    .is_ok_and(|age| age >= self.min_age)
            })
            .map(|(service, entry)| (Cursor::of(service, &entry), (service, entry)))
            .filter(|(cursor, _)| self.after.as_ref().is_none_or(|after| cursor > after))
            .collect();
        chosen.sort_by(|(a, _), (b, _)| a.cmp(b));
        let more = chosen.len() > self.page_size;
        chosen.truncate(self.page_size);
        let next = more
            .then(|| chosen.last().map(|(cursor, _)| cursor.clone()))
            .flatten();
        (chosen.into_iter().map(|(_, listed)| listed).collect(), next)
    }
}

/// The request's fields checked before the store is read.
fn checked(request: &pb::SettleUnknownOutcomeRequest) -> Result<Settlement, Status> {
    let mut violations = pasarela_provider::Violations::new();
    check_key(
        &mut violations,
        &request.service,
        &request.operation,
        &request.key_hash,
    );
    violations.length("note", &request.note, 0, NOTE_MAX);
    let settlement = match &request.settlement {
        Some(PbSettlement::Succeeded(succeeded)) => Some(Settlement::Succeeded(Approval {
            approval_number: succeeded.approval_number.trim().to_owned(),
            subscription_id: succeeded.subscription_id.trim().to_owned(),
        })),
        Some(PbSettlement::NotDone(_)) => Some(Settlement::NotDone),
        None => {
            violations.add("settlement", "is required: succeeded or not_done");
            None
        }
    };
    violations.finish()?;
    Ok(settlement.expect("a settlement without violations is set"))
}

fn to_proto(service: &str, entry: Outstanding) -> pb::UnknownOutcome {
    pb::UnknownOutcome {
        proposal: entry.proposal.map(|pending| pb::SettlementProposal {
            proposal_id: pending.id,
            proposer: pending.proposer,
            expire_time: Some(timestamp(pending.expires)),
            settlement: Some(match pending.settlement {
                Settlement::Succeeded(approval) => PbProposed::Succeeded(pb::Succeeded {
                    approval_number: approval.approval_number,
                    subscription_id: approval.subscription_id,
                }),
                Settlement::NotDone => PbProposed::NotDone(pb::NotDone {}),
            }),
            note: pending.note,
            override_provider: pending.overriding,
        }),
        service: service.to_owned(),
        operation: entry.operation,
        tenant: tenant_of_key(&entry.caller).unwrap_or_default(),
        caller: entry.caller,
        key_hash: entry.key_hash,
        provider_transaction_id: entry.transaction_id,
        first_attempt_time: Some(timestamp(entry.first_attempt)),
        unknown_since: entry.unknown_since.map(timestamp),
    }
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

fn bad_field(field: &str, why: &str) -> Status {
    pasarela_provider::errors::bad_request(vec![(field.to_owned(), why.to_owned())])
}

fn settle_error(error: SettleError) -> Status {
    match error {
        SettleError::NotFound(_) => {
            ProviderError::new(Code::NotFound, reasons::OUTCOME_NOT_FOUND, DOMAIN)
                .message(error.to_string())
                .into()
        }
        SettleError::NotUnknown => ProviderError::new(
            Code::FailedPrecondition,
            reasons::OUTCOME_NOT_UNKNOWN,
            DOMAIN,
        )
        .message(error.to_string())
        .into(),
        SettleError::Invalid { field, description } => {
            bad_field(&format!("succeeded.{field}"), &description)
        }
        SettleError::Store(error) => store_down(error),
        SettleError::SameOperator => ProviderError::new(
            Code::PermissionDenied,
            reasons::SECOND_APPROVER_REQUIRED,
            DOMAIN,
        )
        .message(error.to_string())
        .into(),
        SettleError::NoProposal => ProviderError::new(
            Code::FailedPrecondition,
            reasons::PROPOSAL_NOT_FOUND,
            DOMAIN,
        )
        .message(error.to_string())
        .into(),
        SettleError::ProposalExpired => {
            ProviderError::new(Code::FailedPrecondition, reasons::PROPOSAL_EXPIRED, DOMAIN)
                .message(error.to_string())
                .into()
        }
        SettleError::Contradicted(_) => ProviderError::new(
            Code::FailedPrecondition,
            reasons::PROVIDER_CONTRADICTS_SETTLEMENT,
            DOMAIN,
        )
        .message(error.to_string())
        .into(),
    }
}

fn store_down(error: StoreUnavailable) -> Status {
    tracing::error!(error = %error, "idempotency store unavailable to an operator");
    ProviderError::new(
        Code::Unavailable,
        reason::IDEMPOTENCY_STORE_UNAVAILABLE,
        DOMAIN,
    )
    .message("the idempotency store is unavailable")
    .retry_after(Duration::from_secs(1))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key_hash: &str, operation: &str, age_secs: u64, now: SystemTime) -> Outstanding {
        Outstanding {
            operation: operation.to_owned(),
            caller: "jwt:e2e".to_owned(),
            key_hash: key_hash.to_owned(),
            transaction_id: String::new(),
            first_attempt: now - Duration::from_secs(age_secs),
            unknown_since: None,
            proposal: None,
        }
    }

    fn query(request: pb::ListUnknownOutcomesRequest) -> Query {
        Query::read(&request).expect("a valid query")
    }

    #[test]
    fn pages_walk_every_key_once_oldest_first() {
        let now = SystemTime::now();
        let listed = || {
            (0..7u64)
                .map(|i| {
                    (
                        "pasarela.security.v1",
                        entry(&format!("{i:064}"), "charge", 100 - i, now),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let request = pb::ListUnknownOutcomesRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            };
            let (page, next) = query(request).page(listed(), now);
            seen.extend(page.into_iter().map(|(_, entry)| entry.key_hash));
            match next {
                Some(cursor) => token = cursor.token(),
                None => break,
            }
        }
        let expected: Vec<String> = (0..7u64).map(|i| format!("{i:064}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn filters_by_operation_and_age() {
        let now = SystemTime::now();
        let listed = vec![
            (
                "pasarela.security.v1",
                entry(&"a".repeat(64), "withdraw_with_otp", 600, now),
            ),
            (
                "pasarela.recurring_payments.v1",
                entry(&"b".repeat(64), "charge", 600, now),
            ),
            (
                "pasarela.recurring_payments.v1",
                entry(&"c".repeat(64), "charge", 5, now),
            ),
        ];
        let request = pb::ListUnknownOutcomesRequest {
            operation: "charge".into(),
            min_age: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
            ..Default::default()
        };
        let (page, next) = query(request).page(listed, now);
        let hashes: Vec<&str> = page.iter().map(|(_, e)| e.key_hash.as_str()).collect();
        assert_eq!(hashes, ["b".repeat(64)]);
        assert!(next.is_none());
    }

    #[test]
    fn a_token_not_handed_out_or_a_negative_size_is_refused() {
        for request in [
            pb::ListUnknownOutcomesRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            pb::ListUnknownOutcomesRequest {
                page_size: -1,
                ..Default::default()
            },
            pb::ListUnknownOutcomesRequest {
                min_age: Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ] {
            let refused = Query::read(&request).expect_err("refused");
            assert_eq!(refused.code(), Code::InvalidArgument);
        }
    }
}
