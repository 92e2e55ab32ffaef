//! Fault injection, call counting and the request journal for every emulated route: a
//! middleware wrapped around each provider's router, driven by rules set through the admin
//! listener. Rules are
//! matched in the order they were added and consumed under one lock, so a test that asks
//! for "the next two calls fail" gets exactly that.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::journal::{Entry, Journal};
use crate::serve::ConnectionKill;

/// Largest request body the middleware reads in to journal it: axum's own default limit,
/// which the emulators' JSON extractors would apply anyway.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// The emulated providers, as named in the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Bcs,
    Kiban,
    Daviplata,
}

/// Bodies the provider documents for a status, used when a `status` fault gives none.
type DocumentedBodies = &'static [(u16, &'static str)];

impl Provider {
    fn documented_bodies(self) -> DocumentedBodies {
        match self {
            Provider::Daviplata => crate::daviplata::errors::DOCUMENTED_FAULT_BODIES,
            Provider::Bcs | Provider::Kiban => &[],
        }
    }
}

/// What happens to a matched call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The call is handled normally after `ms` milliseconds.
    Latency { ms: u64 },
    /// The answer is `status` with `body`: a JSON string is sent as is, any other JSON
    /// value serialised. Without a body, the provider's documented body for that status,
    /// if it has one, else nothing. The emulator is not called, unless `after_handler`:
    /// then it acts first and its answer is replaced (a provider that moved the money and
    /// then failed to say so).
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        after_handler: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
    },
    /// The emulator handles the call (its state changes) and the answer keeps its status
    /// and headers, but its body is cut in half: not parseable.
    Malformed,
    /// The connection is closed with no answer, before the emulator sees the call or, with
    /// `after_handler`, after it acted (the lost-answer case).
    Drop {
        #[serde(default)]
        after_handler: bool,
    },
    /// No answer ever comes; the client has to give up. With `after_handler`, the emulator
    /// acts first.
    Hang {
        #[serde(default)]
        after_handler: bool,
    },
}

impl Fault {
    /// The fault's kind, as the admin API names it.
    fn kind(&self) -> &'static str {
        match self {
            Fault::Latency { .. } => "latency",
            Fault::Status { .. } => "status",
            Fault::Malformed => "malformed",
            Fault::Drop { .. } => "drop",
            Fault::Hang { .. } => "hang",
        }
    }
}

/// A rule as the admin API receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub provider: Provider,
    /// HTTP method to match (any when absent), case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Route pattern (`/security-management/v1/customer/{identSerialNum}/validate`) or
    /// concrete path to match (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub fault: Fault,
    /// How many calls the rule applies to; until cleared when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// A rule in force, as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: u64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Calls it still applies to (`null`: until cleared).
    pub remaining: Option<u32>,
}

/// Calls seen per provider and route (`"POST /v1/payments/subscriptions/payment"`).
pub type CallCounts = BTreeMap<Provider, BTreeMap<String, u64>>;

/// The shared rule book and counters.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<Book>>,
}

#[derive(Default)]
struct Book {
    next_id: u64,
    rules: Vec<Rule>,
    calls: CallCounts,
    journal: Journal,
}

/// The route of one call: its method and the router's pattern (or the raw path when no
/// route matched).
struct Route {
    method: String,
    pattern: String,
    path: String,
}

impl Route {
    fn of(request: &Request) -> Route {
        let path = request.uri().path().to_owned();
        let pattern = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| path.clone(), |matched| matched.as_str().to_owned());
        Route {
            method: request.method().as_str().to_owned(),
            pattern,
            path,
        }
    }

    fn key(&self) -> String {
        format!("{} {}", self.method, self.pattern)
    }
}

impl RuleSpec {
    fn matches(&self, provider: Provider, route: &Route) -> bool {
        self.provider == provider
            && self
                .method
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&route.method))
            && self
                .path
                .as_ref()
                .is_none_or(|p| *p == route.pattern || *p == route.path)
    }

    fn check(&self) -> Result<(), String> {
        if self.times == Some(0) {
            return Err("times must be at least 1 (omit it for until cleared)".into());
        }
        if let Fault::Status { status, .. } = self.fault
            && StatusCode::from_u16(status).is_err()
        {
            return Err(format!("{status} is not an HTTP status"));
        }
        Ok(())
    }
}

impl Faults {
    /// `router` with every call counted and subject to the rules for `provider`.
    pub fn wrap(&self, provider: Provider, router: Router) -> Router {
        router.layer(from_fn_with_state(
            Scope {
                faults: self.clone(),
                provider,
            },
            intercept,
        ))
    }

    /// Adds a rule after the existing ones; the rule as stored, or why it is refused.
    pub fn add(&self, spec: RuleSpec) -> Result<Rule, String> {
        spec.check()?;
        let mut book = self.lock();
        book.next_id += 1;
        let rule = Rule {
            id: book.next_id,
            remaining: spec.times,
            spec,
        };
        book.rules.push(rule.clone());
        Ok(rule)
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.lock().rules.clone()
    }

    /// Removes rule `id`; whether it was there.
    pub fn remove(&self, id: u64) -> bool {
        let mut book = self.lock();
        let before = book.rules.len();
        book.rules.retain(|rule| rule.id != id);
        book.rules.len() != before
    }

    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    pub fn calls(&self) -> CallCounts {
        self.lock().calls.clone()
    }

    /// The calls received by `provider` (every provider when `None`), oldest first.
    pub fn journal(&self, provider: Option<Provider>) -> Vec<Entry> {
        self.lock().journal.entries(provider)
    }

    pub fn clear_journal(&self) {
        self.lock().journal.clear();
    }

    /// Forgets every rule, every count and the journal.
    pub fn reset(&self) {
        let mut book = self.lock();
        book.rules.clear();
        book.calls.clear();
        book.journal.clear();
    }

    /// Counts and journals the call and takes one use of the first rule that matches it.
    fn on_call(&self, provider: Provider, route: &Route, entry: Option<Entry>) -> Option<Fault> {
        let mut book = self.lock();
        if let Some(entry) = entry {
            book.journal.record(entry);
        }
        *book
            .calls
            .entry(provider)
            .or_default()
            .entry(route.key())
            .or_default() += 1;
        let index = book
            .rules
            .iter()
            .position(|rule| rule.spec.matches(provider, route))?;
        let rule = &mut book.rules[index];
        let fault = rule.spec.fault.clone();
        if let Some(remaining) = rule.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                book.rules.remove(index);
            }
        }
        Some(fault)
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // A poisoned lock is still safe to use: every change is made whole under it, so a
        // panic cannot leave the book half-changed.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone)]
struct Scope {
    faults: Faults,
    provider: Provider,
}

async fn intercept(State(scope): State<Scope>, request: Request, next: Next) -> Response {
    let route = Route::of(&request);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let entry = journal_entry(scope.provider, &route, &parts, &body);
    let sent_id = transaction_id(&body);
    let request = Request::from_parts(parts, Body::from(body));
    match scope.faults.on_call(scope.provider, &route, Some(entry)) {
        None => next.run(request).await,
        Some(fault) => {
            // The fault's kind only: a body a test injects may carry anything.
            tracing::info!(provider = ?scope.provider, route = %route.key(), fault = fault.kind(), "injecting a fault");
            let answer = inject(fault, scope.provider, request, next).await;
            match sent_id {
                Some(id) => echoed(answer, &id).await,
                None => answer,
            }
        }
    }
}

/// The call as received, for the journal.
fn journal_entry(
    provider: Provider,
    route: &Route,
    parts: &http::request::Parts,
    body: &[u8],
) -> Entry {
    Entry {
        seq: 0,
        provider,
        method: route.method.clone(),
        route: route.pattern.clone(),
        path: route.path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

async fn inject(fault: Fault, provider: Provider, request: Request, next: Next) -> Response {
    match fault {
        Fault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(request).await
        }
        Fault::Status {
            status,
            after_handler,
            body,
            content_type,
        } => {
            if after_handler {
                next.run(request).await;
            }
            forced(provider, status, body, content_type)
        }
        Fault::Malformed => truncated(next.run(request).await).await,
        Fault::Drop { after_handler } => {
            let kill = request.extensions().get::<ConnectionKill>().cloned();
            if after_handler {
                next.run(request).await;
            }
            if let Some(kill) = kill {
                kill.close();
            }
            // The connection task drops this future when it closes the socket.
            std::future::pending().await
        }
        Fault::Hang { after_handler } => {
            if after_handler {
                next.run(request).await;
            }
            std::future::pending().await
        }
    }
}

/// The answer of a `status` fault.
fn forced(
    provider: Provider,
    status: u16,
    body: Option<serde_json::Value>,
    content_type: Option<String>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (text, default_type) = match body {
        Some(serde_json::Value::String(text)) => (text, "text/plain; charset=utf-8"),
        Some(value) => (value.to_string(), "application/json"),
        None => match provider
            .documented_bodies()
            .iter()
            .find(|(documented, _)| *documented == status.as_u16())
        {
            Some((_, text)) => ((*text).to_owned(), "application/json"),
            None => (String::new(), "text/plain; charset=utf-8"),
        },
    };
    let content_type = content_type
        .and_then(|value| HeaderValue::from_str(&value).ok())
        .unwrap_or(HeaderValue::from_static(default_type));
    (status, [(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// What an injected body writes where the request's `TransactionHeader.transactionId` goes:
/// a documented success example answers the transaction it was sent, whichever that is.
pub const SENT_TRANSACTION_ID: &str = "{{sent.transactionId}}";

/// The `TransactionHeader.transactionId` of a Daviplata request body, if it has one.
fn transaction_id(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json.get("TransactionHeader")?
        .get("transactionId")?
        .as_str()
        .map(str::to_owned)
}

/// `response` with every [`SENT_TRANSACTION_ID`] in its body replaced by `id`.
async fn echoed(response: Response, id: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains(SENT_TRANSACTION_ID) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let replaced = text.replace(SENT_TRANSACTION_ID, id);
    Response::from_parts(parts, Body::from(replaced))
}

/// `response` with the first half of its body only (at least one byte short of it).
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = if bytes.is_empty() {
        bytes::Bytes::from_static(b"{")
    } else {
        bytes.slice(..bytes.len() / 2)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, pattern: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            pattern: pattern.into(),
            path: path.into(),
        }
    }

    fn rule(provider: Provider, path: Option<&str>, times: Option<u32>) -> RuleSpec {
        RuleSpec {
            provider,
            method: Some("post".into()),
            path: path.map(str::to_owned),
            fault: Fault::Malformed,
            times,
        }
    }

    #[test]
    fn a_counted_rule_applies_exactly_that_many_times() {
        let faults = Faults::default();
        faults
            .add(rule(Provider::Daviplata, Some("/x"), Some(2)))
            .unwrap();
        let call = route("POST", "/x", "/x");
        let applied: Vec<bool> = (0..4)
            .map(|_| faults.on_call(Provider::Daviplata, &call, None).is_some())
            .collect();
        assert_eq!(applied, [true, true, false, false]);
        assert!(faults.rules().is_empty());
        assert_eq!(faults.calls()[&Provider::Daviplata]["POST /x"], 4);
    }

    #[test]
    fn rules_match_provider_method_and_pattern_or_path() {
        let pattern = rule(Provider::Bcs, Some("/c/{id}/validate"), None);
        let concrete = rule(Provider::Bcs, Some("/c/7/validate"), None);
        let cases = [
            (&pattern, Provider::Bcs, "POST", "/c/7/validate", true),
            (&pattern, Provider::Kiban, "POST", "/c/7/validate", false),
            (&pattern, Provider::Bcs, "GET", "/c/7/validate", false),
            (&concrete, Provider::Bcs, "POST", "/c/7/validate", true),
            (&concrete, Provider::Bcs, "POST", "/c/8/validate", false),
        ];
        for (spec, provider, method, path, expected) in cases {
            let call = route(method, "/c/{id}/validate", path);
            assert_eq!(
                spec.matches(provider, &call),
                expected,
                "{:?} {provider:?} {method} {path}",
                spec.path
            );
        }
    }

    #[test]
    fn the_first_matching_rule_wins_and_unlimited_rules_stay() {
        let faults = Faults::default();
        let first = faults.add(rule(Provider::Kiban, None, None)).unwrap();
        faults
            .add(RuleSpec {
                fault: Fault::Latency { ms: 1 },
                ..rule(Provider::Kiban, None, None)
            })
            .unwrap();
        let call = route("POST", "/p", "/p");
        for _ in 0..3 {
            assert_eq!(
                faults.on_call(Provider::Kiban, &call, None),
                Some(Fault::Malformed)
            );
        }
        assert!(faults.remove(first.id));
        assert_eq!(
            faults.on_call(Provider::Kiban, &call, None),
            Some(Fault::Latency { ms: 1 })
        );
    }

    #[test]
    fn nonsense_rules_are_refused() {
        let faults = Faults::default();
        assert!(faults.add(rule(Provider::Bcs, None, Some(0))).is_err());
        let bad_status = RuleSpec {
            fault: Fault::Status {
                after_handler: false,
                status: 1000,
                body: None,
                content_type: None,
            },
            ..rule(Provider::Bcs, None, None)
        };
        assert!(faults.add(bad_status).is_err());
    }
}
