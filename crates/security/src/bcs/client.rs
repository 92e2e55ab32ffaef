//! The Banco Caja Social client: the operations as data (method, path, retry safety, which
//! credential headers), one pooled HTTP client, and one path for every call — validate,
//! fill the invoker context, send, read the answer.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pasarela_auth::{CallContext, Principal};
use pasarela_idempotency::{IdempotencyMetrics, Store, reason};
use pasarela_provider::{
    Credential, Delivery, Operation, Outbound, ProviderError, RawResponse, Violations, deadline,
    reasons,
};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Code, Status};
use tracing::Instrument as _;

use super::envelope::{self, Marker, Reading};
use super::errors::{
    CodesOn5xx, DOMAIN, DecryptionFailure, MAX_TEXT, SERVICE_DOMAIN, bad_response,
};
use super::identity::Identities;
use super::invoker::{self, Field, ProcessIdRule, SequenceError, TxIds};
pub use super::routing::CredentialFamily;
use super::routing::Routes;
use super::token::{AccessToken, Current};
use super::wire::{self, Outgoing, Unreadable};
use crate::config::{Config, InvokerFields, Paths};

/// How an operation fills the generated invoker values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Every operation but S18: TxId `APII...`, ProcessId = TxId.
    Api,
    /// S18 at a banking correspondent: fixed channel values, TxId `APIF...`, ProcessId from
    /// the TxId's last 11 digits.
    Correspondent,
}

/// One provider operation, typed by the answer its success body is read into. Each row
/// sits beside its wire section (`bcs::wire`).
#[derive(Debug)]
pub struct Op<W> {
    /// Name in metrics, logs, `ErrorInfo.metadata.operation` and the per-operation
    /// settings: the RPC's method in snake case (`pasarela::methods::SECURITY_SERVICE`).
    pub name: &'static str,
    pub(crate) method: Method,
    pub(crate) path: Path,
    pub(crate) retry: Retry,
    /// The family the spec prints, or pasarela's guess where it prints none.
    pub(crate) credentials: CredentialFamily,
    pub(crate) channel: Channel,
    /// Invoker fields this operation's header list marks required beyond the table's.
    pub(crate) required: &'static [Field],
    /// What `responseType.value` a success must carry.
    pub(crate) marker: Marker,
    /// What a code named on a 5xx that no table row lists means.
    pub(crate) codes_on_5xx: CodesOn5xx,
    pub(crate) answer: PhantomData<fn() -> W>,
}

/// Where an operation is sent, relative to its base URL: the spec's path, unless
/// `security.paths.<setting>` gives another.
#[derive(Debug, Clone, Copy)]
pub struct Path {
    /// The operation whose path this is (the consulta is sent where the create is).
    pub setting: &'static str,
    pub spec: &'static str,
}

/// Whether pasarela repeats an operation after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A read: repeating it changes nothing.
    Safe,
    /// A write, or a check of a secret the bank counts attempts of.
    Never,
}

/// Placeholder of the customer's document number in configured paths.
const PATH_ID: &str = "{identSerialNum}";

/// The bank as pasarela sees it.
#[derive(Debug)]
pub struct Bcs {
    outbound: Arc<Outbound>,
    /// Where each operation is sent, and the headers of its credentials.
    routes: Routes,
    client_id: String,
    client_secret: Credential,
    /// The token every call carries.
    token: AccessToken,
    paths: Paths,
    /// The bank identity of the deployment and of each tenant, checked at start-up.
    identities: Identities,
    tx_id_prefix: String,
    withdrawal_tx_id_prefix: String,
    bank_code: String,
    tx_ids: TxIds,
    decryption_failure: DecryptionFailure,
}

/// A request checked and ready to send: its invoker values and what it carries.
pub struct Prepared<B> {
    fields: InvokerFields,
    outgoing: Outgoing<B>,
    /// How the ProcessId follows the TxId, unless the caller gave one.
    derived_process_id: Option<ProcessIdRule>,
    /// The TxId is a stand-in of the right shape, to be replaced by a reserved one
    /// ([`Prepared::with_tx_id`]) before anything is sent.
    tx_id_pending: bool,
}

impl<W> Op<W> {
    /// The credential family the operation is sent with unless configured otherwise.
    pub fn credentials(&self) -> CredentialFamily {
        self.credentials
    }

    /// How the envelope of its answers is read.
    fn reading(&self) -> Reading {
        Reading {
            operation: self.name,
            marker: self.marker,
            codes_on_5xx: self.codes_on_5xx,
        }
    }
}

impl<B> Prepared<B> {
    /// S18's `X-Invoker-Action`: a create or a consulta of the same TxId.
    pub fn set_action(&mut self, action: &str) {
        action.clone_into(&mut self.fields.action);
    }

    /// The same request under the TxId its idempotency key recorded.
    pub fn with_tx_id(mut self, tx_id: String) -> Self {
        if let Some(rule) = self.derived_process_id {
            self.fields.process_id = invoker::process_id(rule, &tx_id);
        }
        self.fields.tx_id = tx_id;
        self.tx_id_pending = false;
        self
    }
}

/// Every operation by name, read from the contract, and S18's consulta: their metric series
/// exist from start-up, and their settings are checked against them.
pub fn operation_names() -> Vec<&'static str> {
    let mut names = pasarela::methods::SECURITY_SERVICE.to_vec();
    names.push(wire::WITHDRAWAL_QUERY.name);
    names
}

impl Bcs {
    /// `store` holds the TxId sequence (shared by every replica when it is Redis).
    pub fn new(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let identities = Identities::new(
            &config.invoker,
            &config.withdrawal_invoker,
            &config.caller_invoker_fields,
            &config.tenants,
        )?;
        let outbound = Arc::new(Outbound::new(DOMAIN, &config.outbound)?);
        let operations = operation_names();
        outbound.expect_operations(&operations);
        let routes = Routes::new(&config, &operations)?;
        let paths = config.paths.resolved(pasarela::methods::SECURITY_SERVICE)?;
        let token = AccessToken::new(
            config.access_token,
            config.token.as_ref(),
            &config.client_id,
            &config.client_secret,
        )?;
        outbound.expect_operations(token.operations());
        Ok(Self {
            outbound,
            routes,
            client_id: config.client_id,
            client_secret: config.client_secret,
            token,
            paths,
            identities,
            tx_id_prefix: config.tx_id_prefix,
            withdrawal_tx_id_prefix: config.withdrawal_tx_id_prefix,
            bank_code: config.bank_code,
            decryption_failure: config.decryption_failure,
            tx_ids: TxIds::new(store),
        })
    }

    /// When a call must be over: the caller's `grpc-timeout`, else the configured ceiling.
    pub fn deadline(&self, call: &CallContext) -> Instant {
        let budget = deadline::budget(call.remaining(), self.outbound.ceiling());
        // A budget past any clock leaves none: the call is refused as too short, not sent.
        let now = Instant::now();
        now.checked_add(budget).unwrap_or(now)
    }

    /// The longest a call may take when the caller gives no deadline.
    pub fn ceiling(&self) -> Duration {
        self.outbound.ceiling()
    }

    /// The invoker values `principal`'s calls of `op` carry before a request's own layer:
    /// its tenant's identity, else the deployment's.
    pub fn identity_of<W>(&self, op: &Op<W>, principal: Option<&Principal>) -> &InvokerFields {
        self.identities.of(principal).base(op.channel)
    }

    /// The deployment's invoker values of `op` before a request's own layer (the
    /// reconciler's consultas, which no caller makes).
    pub fn base_invoker<W>(&self, op: &Op<W>) -> InvokerFields {
        self.identities.deployment().base(op.channel).clone()
    }

    /// Runs one operation: [`Bcs::prepare`], then [`Bcs::send`], and `read`s the answer
    /// into the proto response (an answer that does not fit is `PROVIDER_BAD_RESPONSE`).
    pub async fn run<B, W, P>(
        &self,
        op: &Op<W>,
        call: &CallContext,
        context: Option<&pasarela::common::v1::InvokerContext>,
        build: impl FnOnce(&InvokerFields, &mut Violations) -> Outgoing<B>,
        read: impl FnOnce(W) -> Result<P, Unreadable>,
    ) -> Result<P, Status>
    where
        B: Serialize,
        W: DeserializeOwned,
    {
        self.run_admitted(op, call, context, build, async { Ok(()) }, read)
            .await
    }

    /// Like [`Bcs::run`], with `admit` awaited between a valid request and its sending:
    /// a refusal there sends nothing.
    pub async fn run_admitted<B, W, P>(
        &self,
        op: &Op<W>,
        call: &CallContext,
        context: Option<&pasarela::common::v1::InvokerContext>,
        build: impl FnOnce(&InvokerFields, &mut Violations) -> Outgoing<B>,
        admit: impl Future<Output = Result<(), Status>>,
        read: impl FnOnce(W) -> Result<P, Unreadable>,
    ) -> Result<P, Status>
    where
        B: Serialize,
        W: DeserializeOwned,
    {
        let prepared = self.prepare(op, call, context, build)?;
        admit.await?;
        let answer = self.send(op, &prepared, self.deadline(call)).await?;
        Ok(readable(op, read(answer))?)
    }

    /// `build` translates and checks the request's fields, the invoker context is resolved
    /// and checked; only a request without any violation is prepared.
    pub fn prepare<B, W>(
        &self,
        op: &Op<W>,
        call: &CallContext,
        context: Option<&pasarela::common::v1::InvokerContext>,
        build: impl FnOnce(&InvokerFields, &mut Violations) -> Outgoing<B>,
    ) -> Result<Prepared<B>, Status> {
        let principal = call.principal.as_ref();
        let identity = self.identities.of(principal);
        let layer = identity.caller_layer(op.channel, context, principal)?;
        let base = identity.base(op.channel);
        let mut violations = Violations::new();
        let (fields, derived_process_id, tx_id_pending) = self.resolve(op, call, base, &layer);
        invoker::check(&fields, base, &mut violations);
        invoker::require(&fields, op.required, &mut violations);
        let outgoing = build(&fields, &mut violations);
        if let Some(segment) = &outgoing.path_id {
            check_segment(segment, &mut violations);
        }
        violations.finish()?;
        Ok(Prepared {
            fields,
            outgoing,
            derived_process_id,
            tx_id_pending,
        })
    }

    /// Sends a prepared request and reads the bank's answer, by `deadline`.
    pub async fn send<B, W>(
        &self,
        op: &Op<W>,
        prepared: &Prepared<B>,
        deadline: Instant,
    ) -> Result<W, ProviderError>
    where
        B: Serialize,
        W: DeserializeOwned,
    {
        if prepared.tx_id_pending {
            return Err(ProviderError::new(
                Code::Internal,
                reasons::PROVIDER_BAD_RESPONSE,
                SERVICE_DOMAIN,
            )
            .message("a withdrawal without a reserved TxId is never sent")
            .delivery(Delivery::NotSent));
        }
        let fields = &prepared.fields;
        let span = tracing::info_span!(
            "bcs",
            operation = op.name,
            request_number = %fields.request_number,
            tx_id = %fields.tx_id,
        );
        async {
            // One value per call, sent and scrubbed alike, however the file rotates meanwhile.
            let secret = self.client_secret.current();
            let mut token = self.token.current(&self.outbound, deadline).await?;
            let mut raw = self
                .send_once(op, prepared, (&token, &secret), deadline)
                .await?;
            // A refused token is forgotten, so that the next call renews it; a call that is
            // safe to repeat is sent once more under the new one. S18 and the checks of a
            // customer's secret never are: the bank may have acted, or counted the attempt.
            if raw.status == reqwest::StatusCode::UNAUTHORIZED
                && self.token.refused(&token)
                && op.retry == Retry::Safe
            {
                let renewed = self.token.current(&self.outbound, deadline).await?;
                if renewed.value() != token.value() {
                    tracing::info!("the bank refused its token: sent again under a new one");
                    raw = self
                        .send_once(op, prepared, (&renewed, &secret), deadline)
                        .await?;
                    token = renewed;
                }
            }
            tracing::debug!(status = raw.status.as_u16(), "bank answered");
            envelope::read::<W>(op.reading(), &raw).map_err(|error| {
                let error = self.decryption_failure.blame(error);
                self.scrubbed(error, &prepared.outgoing, (token.value(), &secret))
            })
        }
        .instrument(span.clone())
        .await
        .inspect_err(|error| {
            span.in_scope(
                || tracing::info!(reason = %error.reason, code = ?error.code, "bank call failed"),
            );
        })
    }

    /// One sending of a prepared request under a token and client secret, by `deadline`.
    async fn send_once<B: Serialize, W>(
        &self,
        op: &Op<W>,
        prepared: &Prepared<B>,
        (token, secret): (&Current, &SecretString),
        deadline: Instant,
    ) -> Result<RawResponse, ProviderError> {
        let request = self.request(
            op,
            &prepared.fields,
            &prepared.outgoing,
            (token.value(), secret),
        );
        let operation = Operation {
            name: op.name,
            safe_to_retry: op.retry == Retry::Safe,
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        self.outbound.send(operation, request, budget).await
    }

    /// `error` without any value pasarela sent in its body or query, nor its credentials:
    /// a bank that echoes an OTP, a password or an answer in its text must not pass it on
    /// to a caller, a log or an idempotency record. Which of the values the bank deems
    /// secret pasarela cannot tell, so every one of [`MIN_SCRUBBED`] characters or more goes,
    /// and the secret fields' whatever their length; only then is the text cut to its bound
    /// (a secret cut in two would no longer be found).
    fn scrubbed<B: Serialize>(
        &self,
        error: ProviderError,
        outgoing: &Outgoing<B>,
        (token, client_secret): (Option<&str>, &SecretString),
    ) -> ProviderError {
        let mut sent = Vec::new();
        if let Some(body) = outgoing
            .body
            .as_ref()
            .and_then(|b| serde_json::to_value(b).ok())
        {
            sent_values(None, &body, &mut sent);
        }
        let query = outgoing.query.iter().map(|(name, value)| (*name, value));
        sent.extend(query.map(|(name, value)| (is_secret_field(name), value.clone())));
        sent.extend(outgoing.path_id.iter().map(|id| (false, id.clone())));
        sent.retain(|(secret, value)| *secret || value.chars().count() >= MIN_SCRUBBED);
        let mut secrets: Vec<&str> = sent.iter().map(|(_, value)| value.as_str()).collect();
        secrets.push(client_secret.expose_secret());
        secrets.extend(token);
        bounded(error.scrub(&secrets))
    }

    /// The invoker values of one call, generated ones filled in, how its ProcessId follows
    /// its TxId when the caller gave none, and whether its TxId is still to be reserved.
    /// Nothing here asks the store: an API call's TxId comes from a CSPRNG, and a
    /// withdrawal's is checked in its shape now and reserved from the shared sequence only
    /// when its idempotency key is claimed ([`Bcs::reserve_withdrawal_tx_id`]).
    fn resolve<W>(
        &self,
        op: &Op<W>,
        call: &CallContext,
        base: &InvokerFields,
        layer: &InvokerFields,
    ) -> (InvokerFields, Option<ProcessIdRule>, bool) {
        let mut fields = base.clone();
        invoker::merge(&mut fields, layer);
        let rule = match op.channel {
            Channel::Api => ProcessIdRule::TxId,
            Channel::Correspondent => ProcessIdRule::LastDigits {
                digits: 11,
                width: 12,
            },
        };
        let pending = fields.tx_id.is_empty() && op.channel == Channel::Correspondent;
        if fields.tx_id.is_empty() {
            let now = invoker::bank_now();
            fields.tx_id = match op.channel {
                Channel::Api => invoker::random_tx_id(&self.tx_id_prefix, &self.bank_code, now),
                Channel::Correspondent => {
                    invoker::placeholder_tx_id(&self.withdrawal_tx_id_prefix, &self.bank_code, now)
                }
            };
        }
        let derived = fields.process_id.is_empty().then_some(rule);
        if let Some(rule) = derived {
            fields.process_id = invoker::process_id(rule, &fields.tx_id);
        }
        if fields.request_number.is_empty() {
            let request_id = Some(call.request_id.as_str()).filter(|id| !id.is_empty());
            fields.request_number = invoker::request_number(request_id);
        }
        if fields.session_key.is_empty() {
            fields.session_key.clone_from(&fields.request_number);
        }
        (fields, derived, pending)
    }

    /// A withdrawal's TxId from the sequence every replica shares (the spec's ten
    /// sequential digits of its authorization number).
    pub async fn reserve_withdrawal_tx_id(&self) -> Result<String, SequenceError> {
        let now = invoker::bank_now();
        self.tx_ids
            .next(&self.withdrawal_tx_id_prefix, &self.bank_code, now)
            .await
    }

    fn request<B: Serialize, W>(
        &self,
        op: &Op<W>,
        fields: &InvokerFields,
        outgoing: &Outgoing<B>,
        (token, client_secret): (Option<&str>, &SecretString),
    ) -> reqwest::RequestBuilder {
        let credentials = self.routes.family(op.name, op.credentials).headers();
        let mut path = self
            .paths
            .get(op.path.setting)
            .unwrap_or(op.path.spec)
            .to_owned();
        if let Some(id) = &outgoing.path_id {
            path = path.replace(PATH_ID, &encode_segment(id));
        }
        let now = invoker::bank_now();
        let mut request = self
            .outbound
            .client()
            .request(op.method.clone(), self.routes.base_url(op.name).join(&path))
            .header("Accept", "application/json")
            .header("X-Invoker-ProcessDate", now.format("%Y-%m-%d").to_string())
            .header(
                "X-Ident-TransactionDate",
                now.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
            )
            .header(credentials.id, &self.client_id)
            .header(credentials.secret, client_secret.expose_secret());
        if let Some(token) = token {
            let value = if credentials.bearer {
                format!("Bearer {token}")
            } else {
                token.to_owned()
            };
            request = request.header(credentials.token, value);
        }
        for (name, value) in invoker::headers(fields) {
            request = request.header(name, value);
        }
        if !outgoing.query.is_empty() {
            request = request.query(&outgoing.query);
        }
        if let Some(body) = &outgoing.body {
            request = request.json(body);
        }
        request
    }
}

/// Shortest value sent that is scrubbed from the bank's text: shorter ones (a document type,
/// a flag) would blank out ordinary words.
const MIN_SCRUBBED: usize = 4;

/// The wire's fields that carry a customer's secret (an OTP, a password, a card's PIN or
/// CVV, a challenge answer), by their JSON key or query name.
const SECRET_FIELDS: &[&str] = &["otpValue", "otcValue", "cryptPswd", "password", "secretId"];

/// Whether a field of this name carries a secret. A challenge answer's `value` does too,
/// but the key is everyone's: answers shorter than [`MIN_SCRUBBED`] are not scrubbed.
fn is_secret_field(name: &str) -> bool {
    SECRET_FIELDS.contains(&name)
}

/// Every string and number in `value`, as text, each marked when its field is a secret.
fn sent_values(key: Option<&str>, value: &serde_json::Value, into: &mut Vec<(bool, String)>) {
    let secret = key.is_some_and(is_secret_field);
    match value {
        serde_json::Value::String(text) => into.push((secret, text.clone())),
        serde_json::Value::Number(number) => into.push((secret, number.to_string())),
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| sent_values(key, item, into));
        }
        serde_json::Value::Object(map) => {
            map.iter()
                .for_each(|(key, item)| sent_values(Some(key), item, into));
        }
        serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

/// `error` with the bank's text cut to [`MAX_TEXT`] characters.
fn bounded(mut error: ProviderError) -> ProviderError {
    if let Some((_, text)) = error.details.localized.as_mut()
        && text.chars().count() > MAX_TEXT
    {
        *text = text.chars().take(MAX_TEXT).collect();
    }
    error
}

/// The request field that becomes the path segment (S10, S11, S14: the customer's document).
const SEGMENT_FIELD: &str = "customer.number";

/// A value that becomes a path segment is letters, digits and `-` only: a `.` or `..`
/// (even percent-encoded: URLs resolve `%2e` as a dot) would move the call to another path
/// of the bank, with the card's secret in its query.
fn check_segment(segment: &str, violations: &mut Violations) {
    if !segment.is_empty() && !super::fields::is_plain_identifier(segment) {
        violations.add(
            SEGMENT_FIELD,
            "must be letters, digits and '-' only: it is a path segment of the bank's URL",
        );
    }
}

/// A path segment percent-encoded: document numbers are checked for length, not charset.
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Turns a wire answer that does not fit the proto response into `PROVIDER_BAD_RESPONSE`.
pub fn readable<P, W>(op: &Op<W>, converted: Result<P, Unreadable>) -> Result<P, ProviderError> {
    converted.map_err(|what| bad_response(op.name, 200, what))
}

/// The withdrawal TxId sequence lives in the idempotency store: without it no TxId can be
/// made, and nothing is sent; a failure of the store counts in `metrics`.
pub fn sequence_unavailable(error: SequenceError, metrics: &IdempotencyMetrics) -> Status {
    let error = match error {
        SequenceError::Store(error) => error,
        rewound @ SequenceError::Rewound { .. } => {
            tracing::error!(error = %rewound, "TxId sequence moved backwards: refusing to repeat a TxId");
            return ProviderError::new(
                Code::Internal,
                super::errors::reason::TX_ID_SEQUENCE_REWOUND,
                SERVICE_DOMAIN,
            )
            .message("the TxId sequence in the idempotency store went backwards; nothing was sent to Banco Caja Social")
            .into();
        }
    };
    tracing::error!(error = %error, "TxId sequence unavailable");
    metrics.store_error(DOMAIN);
    ProviderError::new(
        Code::Unavailable,
        reason::IDEMPOTENCY_STORE_UNAVAILABLE,
        SERVICE_DOMAIN,
    )
    .message("no TxId could be reserved (the idempotency store is unavailable); nothing was sent to Banco Caja Social")
    .retry_after(Duration::from_secs(1))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pasarela_idempotency::MemoryStore;
    use pasarela_provider::outbound::OutboundSettings;

    /// The rows of the client's table as written beside their wire sections:
    /// `(name, path setting)` of every `Op` in `src/bcs/wire`.
    fn rows() -> Vec<(String, String)> {
        let wire = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bcs/wire");
        let quoted = |line: &str, field: &str| {
            let rest = line.trim().strip_prefix(field)?.strip_prefix(": \"")?;
            Some(rest.split('"').next()?.to_owned())
        };
        let mut rows = Vec::new();
        for file in std::fs::read_dir(wire).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let mut name = None;
            for line in text.lines() {
                if line.starts_with("pub const ") && line.contains(": Op<") {
                    name = None;
                }
                name = quoted(line, "name").or(name);
                if let (Some(name), Some(setting)) = (&name, quoted(line, "setting")) {
                    rows.push((name.clone(), setting));
                }
            }
        }
        rows
    }

    #[test]
    fn every_rpc_has_one_row_named_for_it_and_every_row_a_known_name() {
        let rows = rows();
        let known = operation_names();
        for (name, setting) in &rows {
            assert!(known.contains(&name.as_str()), "{name}: not an RPC");
            assert!(
                pasarela::methods::SECURITY_SERVICE.contains(&setting.as_str()),
                "{name}: its path's setting {setting} is not an RPC"
            );
        }
        for rpc in pasarela::methods::SECURITY_SERVICE {
            let own = rows.iter().filter(|(name, _)| name == rpc).count();
            assert_eq!(own, 1, "{rpc}: {own} rows");
        }
        assert_eq!(
            wire::WITHDRAWAL_QUERY.path.setting,
            wire::WITHDRAW_WITH_OTP.name,
            "the consulta is sent where the create is"
        );
    }

    #[test]
    fn a_former_path_key_still_sends_its_operations_and_an_unknown_or_doubled_one_is_refused() {
        let config = |paths: serde_json::Value| -> Config {
            serde_json::from_value(serde_json::json!({
                "base_url": "http://127.0.0.1:1/",
                "client_id": "id",
                "client_secret": "secret",
                "paths": paths,
            }))
            .unwrap()
        };
        let store = || Arc::new(MemoryStore::default()) as Arc<dyn Store>;
        let former = serde_json::json!({
            "digital_enrollment": "/old",
            "get_password_status": "/own",
        });
        let bcs = Bcs::new(config(former), store()).unwrap();
        assert_eq!(bcs.paths.get("enroll_digital_user"), Some("/old"));
        assert_eq!(bcs.paths.get("validate_digital_enrollment"), Some("/old"));
        assert_eq!(bcs.paths.get("get_password_status"), Some("/own"));
        let doubled = serde_json::json!({
            "digital_enrollment": "/old",
            "validate_digital_enrollment": "/own",
        });
        let refused = Bcs::new(config(doubled), store()).expect_err("two paths for one");
        assert!(
            format!("{refused:#}").contains("keep validate_digital_enrollment only"),
            "{refused:#}"
        );
        let refused = Bcs::new(
            config(serde_json::json!({ "withdrawal_query": "/x" })),
            store(),
        )
        .expect_err("the consulta has no path of its own");
        assert!(
            format!("{refused:#}").contains("security.paths.withdrawal_query"),
            "{refused:#}"
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("1007641"), "1007641");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn a_bad_invoker_default_is_refused_at_start_up() {
        let config = |invoker: serde_json::Value| -> Config {
            serde_json::from_value(serde_json::json!({
                "base_url": "http://127.0.0.1:1/",
                "client_id": "id",
                "client_secret": "secret",
                "invoker": invoker,
            }))
            .unwrap()
        };
        let store = || Arc::new(MemoryStore::default()) as Arc<dyn Store>;
        let refused = Bcs::new(config(serde_json::json!({ "channel": "0-7" })), store())
            .expect_err("a channel the header table refuses");
        assert!(
            format!("{refused:#}").contains("security.invoker.channel"),
            "{refused:#}"
        );
        assert!(Bcs::new(config(serde_json::json!({ "channel": "007" })), store()).is_ok());
    }

    #[test]
    fn default_settings_build_a_client() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "base_url": "http://127.0.0.1:1/",
            "client_id": "id",
            "client_secret": "secret",
        }))
        .unwrap();
        assert_eq!(
            config.outbound.http.timeout,
            OutboundSettings::default().http.timeout
        );
        let bcs = Bcs::new(config, Arc::new(MemoryStore::default())).unwrap();
        let base = bcs.routes.base_url(wire::PASSWORD_STATUS.name);
        assert_eq!(base.join("/x").as_str(), "http://127.0.0.1:1/x");
        let withdrawal = bcs.base_invoker(&wire::WITHDRAW_WITH_OTP);
        assert_eq!(
            (withdrawal.channel.as_str(), withdrawal.branch_id.as_str()),
            ("13", "1108")
        );
        assert_eq!(bcs.base_invoker(&wire::CHANGE_PASSWORD).channel, "007");
    }
}
