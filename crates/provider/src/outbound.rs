//! Sends one provider call: circuit breaker, deadline, retries for safe operations,
//! failures classified into the gRPC error model with what they tell about delivery
//! (nothing sent, or sent and no answer read), and metrics.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{RequestBuilder, StatusCode};
use rustls::AlertDescription;
use tonic::Code;

use crate::breaker::{Breaker, BreakerSettings};
use crate::delivery::Delivery;
use crate::errors::{ProviderError, reasons};
use crate::http::{HttpSettings, ReloadingClient};
use crate::metrics::{self, CallLabels, OperationLabels, Outcome, ProviderLabels};
use crate::retry::{RetryPolicy, RetrySettings};

/// A provider operation as the outbound kit needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// Low-cardinality name for metrics and logs, e.g. `generate_otc`.
    pub name: &'static str,
    /// Reads and token requests: repeating them cannot do harm twice.
    pub safe_to_retry: bool,
}

/// A provider's answer, read whole: status, headers and body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

/// Statuses that say "try again later" rather than "no".
const RETRYABLE_STATUSES: [StatusCode; 3] = [
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// One provider's pooled client, breaker and retry budget.
#[derive(Debug)]
pub struct Outbound {
    domain: &'static str,
    client: ReloadingClient,
    breaker: Breaker,
    retry: RetryPolicy,
    ceiling: Duration,
    min_budget: Duration,
}

/// Settings of a provider's outbound path, from configuration.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSettings {
    pub http: HttpSettings,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
}

enum Attempt {
    Answered(RawResponse),
    Failed(reqwest::Error),
    /// An answer body over [`MAX_ANSWER_BYTES`]: read no further.
    Oversized(StatusCode),
}

/// The largest answer body read from a provider; their documented answers are a few KiB.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

impl Outbound {
    /// `domain` names the provider in errors and metrics (e.g. `bancocajasocial.com.co`).
    pub fn new(domain: &'static str, settings: &OutboundSettings) -> anyhow::Result<Self> {
        let outbound = Self {
            domain,
            client: ReloadingClient::new(&settings.http, domain)?,
            breaker: Breaker::new(settings.breaker.clone()),
            retry: RetryPolicy::new(settings.retry.clone()),
            ceiling: settings.http.timeout,
            min_budget: settings.http.min_budget,
        };
        // The circuit's series exists from start-up (closed): an alert tells "closed"
        // from "never reported".
        outbound.publish_breaker_state();
        Ok(outbound)
    }

    /// Names the operations this provider is called for: their series exist at zero from
    /// now on.
    pub fn expect_operations(&self, names: &[&'static str]) {
        metrics::born_at_zero(self.domain, names);
    }

    fn publish_breaker_state(&self) {
        metrics::global()
            .breaker_state
            .get_or_create(&ProviderLabels {
                provider: self.domain,
            })
            .set(self.breaker.state() as i64);
    }

    /// The pooled client (rebuilt in the background when its certificate files change).
    pub fn client(&self) -> reqwest::Client {
        self.client.current()
    }

    pub fn domain(&self) -> &'static str {
        self.domain
    }

    /// The longest a call may take when the caller gives no deadline.
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// Sends `request` within `budget`. Any HTTP answer is `Ok` (the caller maps its
    /// status and body and says what it tells about delivery); transport failures,
    /// timeouts, an open circuit and a budget too short to send in are `Err`, each with
    /// its [`Delivery`].
    pub async fn send(
        &self,
        operation: Operation,
        request: RequestBuilder,
        budget: Duration,
    ) -> Result<RawResponse, ProviderError> {
        let started = Instant::now();
        if budget < self.min_budget {
            self.count(
                operation,
                Outcome::NotSent,
                String::new(),
                started.elapsed(),
            );
            return Err(self.too_short(budget));
        }
        let result =
            match tokio::time::timeout(budget, self.send_with_retries(operation, request)).await {
                Ok(result) => result,
                Err(_) => {
                    // A caller's short deadline says nothing about the provider's health;
                    // only a provider slower than pasarela's own ceiling counts against it.
                    if budget >= self.ceiling {
                        self.breaker.record(false);
                    }
                    Err((Outcome::Timeout, self.timeout_error(operation)))
                }
            };
        self.observe(operation, &result, started.elapsed());
        result.map_err(|(_, error)| error)
    }

    /// The answer, or the error with how the call ended, decided where it is known.
    async fn send_with_retries(
        &self,
        operation: Operation,
        request: RequestBuilder,
    ) -> Result<RawResponse, (Outcome, ProviderError)> {
        let mut delays = operation
            .safe_to_retry
            .then(|| self.retry.delays())
            .into_iter()
            .flatten();
        loop {
            if let Err(wait) = self.breaker.admit() {
                return Err((Outcome::CircuitOpen, self.circuit_open(wait)));
            }
            let attempt = match request.try_clone() {
                Some(request) => attempt(request).await,
                None => {
                    let error = self.internal("request body cannot be replayed");
                    return Err((Outcome::Unavailable, error.delivery(Delivery::NotSent)));
                }
            };
            let success = matches!(&attempt, Attempt::Answered(r) if !RETRYABLE_STATUSES.contains(&r.status) && !r.status.is_server_error());
            self.breaker.record(success);
            self.retry.record(success);
            let retryable = match &attempt {
                Attempt::Answered(r) => RETRYABLE_STATUSES.contains(&r.status),
                Attempt::Failed(e) => {
                    (e.is_connect() || e.is_timeout() || e.is_request()) && tls_refusal(e).is_none()
                }
                Attempt::Oversized(_) => false,
            };
            if retryable
                && self.retry.may_retry()
                && let Some(delay) = delays.next()
            {
                metrics::global()
                    .retries
                    .get_or_create(&OperationLabels {
                        provider: self.domain,
                        operation: operation.name,
                    })
                    .inc();
                tokio::time::sleep(delay).await;
                continue;
            }
            return match attempt {
                Attempt::Answered(response) => Ok(response),
                Attempt::Failed(error) => Err(self.transport_error(operation, &error)),
                Attempt::Oversized(status) => {
                    Err((Outcome::Unavailable, self.oversized(operation, status)))
                }
            };
        }
    }

    fn transport_error(
        &self,
        operation: Operation,
        error: &reqwest::Error,
    ) -> (Outcome, ProviderError) {
        // A connect timeout is both a timeout and a connect error: the connection never
        // opened, so it is the latter. Any other timeout may come after the provider read it.
        if error.is_timeout() && !error.is_connect() {
            return (Outcome::Timeout, self.timeout_error(operation));
        }
        (Outcome::Unavailable, self.unreachable(operation, error))
    }

    /// A connection that failed before any answer, for a reason other than time.
    fn unreachable(&self, operation: Operation, error: &reqwest::Error) -> ProviderError {
        // Only a connection that never opened is proven not to have carried the request;
        // a failure on an open (maybe pooled) connection may come after the provider read it.
        let delivery = match error.is_connect() {
            true => Delivery::NotSent,
            false => Delivery::Unknown,
        };
        if let Some(alert) = tls_refusal(error) {
            // The provider's TLS layer refused pasarela's client certificate (or its
            // absence): only an operator can fix it. During the handshake nothing was sent;
            // an alert on an open connection proves nothing about the request on it.
            return ProviderError::new(Code::Internal, reasons::PROVIDER_AUTH_FAILED, self.domain)
                .message(format!(
                    "{} refused pasarela's TLS client certificate",
                    self.domain
                ))
                .meta("tls_alert", format!("{alert:?}"))
                .delivery(delivery);
        }
        if delivery == Delivery::NotSent || operation.safe_to_retry {
            return ProviderError::new(
                Code::Unavailable,
                reasons::PROVIDER_UNAVAILABLE,
                self.domain,
            )
            .message(format!("{} could not be reached", self.domain))
            .retry_after(Duration::from_secs(1))
            .delivery(delivery);
        }
        self.outcome_unknown(Code::Unavailable)
    }

    /// An answer too large to read: a state change may have happened behind it.
    fn oversized(&self, operation: Operation, status: StatusCode) -> ProviderError {
        let error = if operation.safe_to_retry {
            ProviderError::new(Code::Internal, reasons::PROVIDER_BAD_RESPONSE, self.domain)
        } else {
            self.outcome_unknown(Code::Unavailable)
        };
        error
            .message(format!(
                "{} answered more than {MAX_ANSWER_BYTES} bytes; the answer was not read",
                self.domain
            ))
            .meta("http_status", status.as_u16())
    }

    fn timeout_error(&self, operation: Operation) -> ProviderError {
        if operation.safe_to_retry {
            ProviderError::new(
                Code::DeadlineExceeded,
                reasons::PROVIDER_TIMEOUT,
                self.domain,
            )
            .message(format!("{} did not answer in time", self.domain))
        } else {
            self.outcome_unknown(Code::DeadlineExceeded)
        }
    }

    fn outcome_unknown(&self, code: Code) -> ProviderError {
        ProviderError::outcome_unknown(code, self.domain).message(format!(
            "the request reached {} but its answer was lost: the operation may have been executed",
            self.domain
        ))
    }

    fn circuit_open(&self, wait: Duration) -> ProviderError {
        ProviderError::new(Code::Unavailable, reasons::CIRCUIT_OPEN, self.domain)
            .message(format!(
                "{} is failing; calls are suspended for a moment",
                self.domain
            ))
            .retry_after(wait)
            .delivery(Delivery::NotSent)
    }

    /// A budget too short for the provider to answer in: refused before anything is sent,
    /// rather than sent and given up on at once (an unknown outcome for nothing).
    fn too_short(&self, budget: Duration) -> ProviderError {
        ProviderError::new(
            Code::DeadlineExceeded,
            reasons::DEADLINE_TOO_SHORT,
            self.domain,
        )
        .message(format!(
            "the call's deadline left {} ms for {}, less than the configured minimum of {} ms; \
             nothing was sent",
            budget.as_millis(),
            self.domain,
            self.min_budget.as_millis()
        ))
        .delivery(Delivery::NotSent)
    }

    fn internal(&self, why: &str) -> ProviderError {
        ProviderError::new(Code::Internal, reasons::PROVIDER_BAD_RESPONSE, self.domain).message(why)
    }

    fn observe(
        &self,
        operation: Operation,
        result: &Result<RawResponse, (Outcome, ProviderError)>,
        elapsed: Duration,
    ) {
        let (outcome, status) = match result {
            Ok(r) if r.status.is_success() => (Outcome::Ok, r.status.as_u16().to_string()),
            Ok(r) => (Outcome::HttpError, r.status.as_u16().to_string()),
            Err((outcome, _)) => (*outcome, String::new()),
        };
        self.count(operation, outcome, status, elapsed);
    }

    /// Counts one call by its outcome and status, with its latency and the circuit's state.
    fn count(&self, operation: Operation, outcome: Outcome, status: String, elapsed: Duration) {
        let m = metrics::global();
        m.calls
            .get_or_create(&CallLabels {
                provider: self.domain,
                operation: operation.name,
                outcome: outcome.label(),
                status,
            })
            .inc();
        m.latency
            .get_or_create(&OperationLabels {
                provider: self.domain,
                operation: operation.name,
            })
            .observe(elapsed.as_secs_f64());
        self.publish_breaker_state();
    }
}

/// TLS alerts by which a server refuses the client's certificate.
const CERTIFICATE_REFUSALS: [AlertDescription; 6] = [
    AlertDescription::CertificateRequired,
    AlertDescription::BadCertificate,
    AlertDescription::UnsupportedCertificate,
    AlertDescription::CertificateUnknown,
    AlertDescription::UnknownCA,
    AlertDescription::AccessDenied,
];

/// The certificate-refusal alert the server sent, found anywhere in `error`'s chain (rustls
/// errors travel inside `io::Error`s, whose `source` skips them).
fn tls_refusal(error: &reqwest::Error) -> Option<AlertDescription> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        let rustls = inner
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| error.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::AlertReceived(alert)) = rustls
            && CERTIFICATE_REFUSALS.contains(alert)
        {
            return Some(*alert);
        }
        current = error.source();
    }
    None
}

async fn attempt(request: RequestBuilder) -> Attempt {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Attempt::Failed(error),
    };
    let status = response.status();
    let headers = response.headers().clone();
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Attempt::Oversized(status);
    }
    let mut body = bytes::BytesMut::new();
    let mut response = response;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                return Attempt::Oversized(status);
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => return Attempt::Failed(error),
        }
    }
    Attempt::Answered(RawResponse {
        status,
        headers,
        body: body.freeze(),
    })
}
