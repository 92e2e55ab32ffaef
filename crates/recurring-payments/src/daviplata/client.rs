//! The Daviplata HTTP client: mutual TLS through the shared outbound kit, the OAuth2 token,
//! the client id header, one retry after a 401 with a fresh token for a call that changes
//! nothing, and answers turned into typed responses, checked against the request, or
//! mapped errors that say whether Daviplata may have acted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::FutureExt as _;
use pasarela_provider::outbound::{self, Outbound, RawResponse};
use pasarela_provider::token::{self, Token, TokenCache};
use pasarela_provider::{BaseUrl, Credential, Delivery, ProviderError, metrics, reasons};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use tonic::Code;
use tracing::Instrument as _;

use super::errors::{self, DOMAIN, Fault};
use super::operation::Operation;
use super::wire::{Answer, Unreadable};
use crate::config::{Config, Paths};

/// How the outbound kit sees a business call: never repeated by pasarela (a request sends
/// the holder an SMS, the others move state or money).
fn sent_as(op: Operation) -> outbound::Operation {
    outbound::Operation {
        name: op.name(),
        safe_to_retry: false,
    }
}

const TOKEN: outbound::Operation = outbound::Operation {
    name: "token",
    safe_to_retry: true,
};

/// Daviplata, built once at start: one pooled mTLS client and one token cache.
#[derive(Clone)]
pub struct Daviplata {
    inner: Arc<Inner>,
}

struct Inner {
    outbound: Outbound,
    base_url: BaseUrl,
    /// Where D0 is asked, built once: `token_base_url` (else `base_url`) and its path.
    token_url: reqwest::Url,
    paths: Paths,
    client_id: String,
    client_secret: Credential,
    client_id_header: HeaderName,
    /// Where business calls carry the secret too, when the gateway wants it there.
    client_secret_header: Option<HeaderName>,
    scope: String,
    refresh_margin: Duration,
    tokens: TokenCache,
}

#[derive(Serialize)]
struct TokenRequest<'a> {
    grant_type: &'static str,
    client_id: &'a str,
    client_secret: &'a str,
    scope: &'a str,
}

impl Daviplata {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let outbound = Outbound::new(DOMAIN, &config.outbound)?;
        outbound.expect_operations(&Operation::ALL.map(Operation::name));
        outbound.expect_operations(&[TOKEN.name]);
        drop(
            metrics::global()
                .token_refreshes
                .get_or_create(&metrics::ProviderLabels { provider: DOMAIN }),
        );
        let client_id_header = HeaderName::try_from(config.client_id_header.as_str())
            .with_context(|| format!("client_id_header {:?}", config.client_id_header))?;
        let client_secret_header = config
            .client_secret_header
            .as_deref()
            .map(|name| {
                HeaderName::try_from(name).with_context(|| format!("client_secret_header {name:?}"))
            })
            .transpose()?;
        let base_url = BaseUrl::parse(&config.base_url, "recurring_payments.base_url")?;
        let token_url = match &config.token_base_url {
            Some(token_base) => BaseUrl::parse(token_base, "recurring_payments.token_base_url")?,
            None => base_url.clone(),
        }
        .join(&config.paths.token);
        Ok(Self {
            inner: Arc::new(Inner {
                outbound,
                base_url,
                token_url,
                paths: config.paths.clone(),
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                client_id_header,
                client_secret_header,
                scope: config.scope.clone(),
                refresh_margin: config.token_refresh_margin,
                tokens: TokenCache::new(DOMAIN),
            }),
        })
    }

    /// The longest a provider call may take when the caller sets no deadline.
    pub fn ceiling(&self) -> Duration {
        self.inner.outbound.ceiling()
    }

    /// Sends `body` to `op` before `deadline` and reads the answer with `read`. A 401 drops
    /// the token; a call that changes nothing is then sent once more with a new one, a
    /// state change is not (Daviplata may have acted before refusing the token: it is held
    /// as an unknown outcome). `secrets` and pasarela's credentials are scrubbed from any
    /// provider text passed on in an error. The call runs in a `daviplata` span naming the
    /// operation and the body's `transactionId` (what Daviplata's support asks for), with
    /// a line when it fails.
    pub async fn call<T>(
        &self,
        sending: Sending<'_>,
        body: &impl Serialize,
        deadline: Instant,
        read: impl FnOnce(Answer) -> Result<T, Unreadable>,
    ) -> Result<T, ProviderError> {
        let op = sending.op;
        let span = tracing::info_span!(
            "daviplata",
            operation = op.name(),
            transaction_id = sending.transaction_id,
        );
        // The secret when the call began: a rotation during it must not let the one sent
        // (still valid at Daviplata) through the scrub below.
        let began_with = self.inner.client_secret.current();
        async {
            let body =
                serde_json::to_vec(body).map_err(|_| internal("request body not encodable"))?;
            let mut response = self.send_once(op, &body, deadline).await?;
            if response.0.status == StatusCode::UNAUTHORIZED {
                self.inner.tokens.invalidate(&response.1);
                if op.changes_state() {
                    // Renewed now, for the calls after this one; this one is not re-sent.
                    let renewed = self.token(deadline).await;
                    tracing::warn!(renewed = renewed.is_ok(), "daviplata refused the token of a state change: held, not re-sent");
                } else {
                    tracing::info!("daviplata refused the token; retrying once with a new one");
                    response = self.send_once(op, &body, deadline).await?;
                }
            }
            let token = response.1.value.expose_secret();
            interpret(&sending, response.0, read).map_err(|error| error.scrub(&[token]))
        }
        .instrument(span.clone())
        .await
        // Every failure, the token request's too, loses the call's secrets and pasarela's.
        .map_err(|error| {
            let now = self.inner.client_secret.current();
            error
                .scrub(sending.secrets)
                .scrub(&[began_with.expose_secret(), now.expose_secret()])
        })
        .inspect_err(|error| {
            span.in_scope(|| {
                tracing::info!(reason = %error.reason, code = ?error.code, delivery = error.delivery.as_str(), "daviplata call failed");
            });
        })
    }

    async fn send_once(
        &self,
        op: Operation,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(RawResponse, Arc<Token>), ProviderError> {
        // Without a token nothing of the business call was sent, whatever became of D0.
        let token = self
            .token(deadline)
            .await
            .map_err(|error| error.delivery(Delivery::NotSent))?;
        let inner = &self.inner;
        let mut request = inner
            .outbound
            .client()
            .post(inner.base_url.join(op.path(&inner.paths)))
            .header(&inner.client_id_header, &inner.client_id)
            .bearer_auth(token.value.expose_secret())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body.to_vec());
        if let Some(header) = &inner.client_secret_header {
            request = request.header(header, inner.client_secret.current().expose_secret());
        }
        let response = inner
            .outbound
            .send(sent_as(op), request, remaining(deadline))
            .await?;
        tracing::debug!(status = response.status.as_u16(), "daviplata answered");
        Ok((response, token))
    }

    /// A valid token, waiting at most until `deadline` for the one being fetched.
    async fn token(&self, deadline: Instant) -> Result<Arc<Token>, ProviderError> {
        let inner = Arc::clone(&self.inner);
        let wait = self.inner.tokens.get(move || fetch_token(inner).boxed());
        tokio::time::timeout(remaining(deadline), wait)
            .await
            .unwrap_or_else(|_| {
                Err(
                    ProviderError::new(Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT, DOMAIN)
                        .message("no Daviplata access token within the call's deadline"),
                )
            })
    }
}

/// D0: one token request; its own budget, as many calls may be waiting on it.
async fn fetch_token(inner: Arc<Inner>) -> Result<Token, ProviderError> {
    metrics::global()
        .token_refreshes
        .get_or_create(&metrics::ProviderLabels { provider: DOMAIN })
        .inc();
    let client_secret = inner.client_secret.current();
    let form = TokenRequest {
        grant_type: "client_credentials",
        client_id: &inner.client_id,
        client_secret: client_secret.expose_secret(),
        scope: &inner.scope,
    };
    let request = inner
        .outbound
        .client()
        .post(inner.token_url.clone())
        .header(ACCEPT, "application/json")
        .form(&form);
    let response = inner
        .outbound
        .send(TOKEN, request, inner.outbound.ceiling())
        .await?;
    if !response.status.is_success() {
        let error = errors::token_error(&Fault::parse(response.status.as_u16(), &response.body));
        tracing::warn!(status = response.status.as_u16(), reason = %error.reason, "daviplata refused the token request");
        return Err(error);
    }
    token::read_answer(&response.body, DOMAIN, inner.refresh_margin)
}

fn internal(why: &str) -> ProviderError {
    ProviderError::new(Code::Internal, reasons::PROVIDER_BAD_RESPONSE, DOMAIN).message(why)
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// One business call: what it is, and what of its body its answer must match.
#[derive(Clone, Copy)]
pub struct Sending<'a> {
    pub op: Operation,
    /// The body's `transactionId`, which a success of a state change must echo.
    pub transaction_id: Option<&'a str>,
    /// The wallet's `productNumber`: a subscription a success of a state change shows must
    /// be this wallet's.
    pub wallet: Option<&'a str>,
    /// Values removed from any provider text passed on.
    pub secrets: &'a [&'a str],
}

/// A business answer: success read by `read`, a decline in a success envelope, or an error.
fn interpret<T>(
    sent: &Sending<'_>,
    response: RawResponse,
    read: impl FnOnce(Answer) -> Result<T, Unreadable>,
) -> Result<T, ProviderError> {
    let http = response.status.as_u16();
    if !response.status.is_success() {
        return Err(errors::business_error(
            &Fault::parse(http, &response.body),
            sent.secrets,
        ));
    }
    let answer: Answer = serde_json::from_slice(&response.body)
        .map_err(|_| unreadable(http, Unreadable("not JSON")))?;
    // Only a status that says 0 is a success: a missing, non-numeric or unlisted one
    // leaves the outcome unknown, never OK.
    let result = answer
        .result
        .as_ref()
        .ok_or_else(|| unreadable(http, Unreadable("no resultStatus")))?;
    match result.status_code() {
        Some(0) => {}
        Some(status) => {
            let fault = Fault::declined(http, status, &result.message);
            return Err(errors::business_error(&fault, sent.secrets));
        }
        None => {
            return Err(unreadable(
                http,
                Unreadable("no numeric resultStatus.status"),
            ));
        }
    }
    if sent.op.changes_state() {
        let wallet = answer
            .subscription
            .as_ref()
            .and_then(|subscription| subscription.product.as_ref())
            .map(|product| product.product_number.as_str());
        bound_to(sent, &result.transaction_id, wallet)?;
    }
    read(answer).map_err(|why| unreadable(http, why))
}

/// A success of a state change must be the answer to this request: an echoed
/// `transactionId` other than the one sent, or a subscription of another wallet, is someone
/// else's approval (a gateway that mixed answers up), so what became of this request is
/// unknown. What the answer does not echo is not checked.
fn bound_to(sent: &Sending<'_>, echoed: &str, wallet: Option<&str>) -> Result<(), ProviderError> {
    let differs = |expected: Option<&str>, echoed: Option<&str>| match (expected, echoed) {
        (Some(expected), Some(echoed)) => !echoed.trim().is_empty() && echoed.trim() != expected,
        _ => false,
    };
    let other_transaction = differs(sent.transaction_id, Some(echoed));
    let other_wallet = differs(sent.wallet, wallet);
    if !other_transaction && !other_wallet {
        return Ok(());
    }
    tracing::error!(
        operation = sent.op.name(),
        transaction_id = sent.transaction_id,
        echoed_transaction_id = echoed,
        other_wallet,
        "daviplata answered a success for another request: held as an unknown outcome"
    );
    metrics::answer_mismatch(DOMAIN, sent.op.name());
    let what = match other_transaction {
        true => "another transaction",
        false => "another wallet",
    };
    Err(
        ProviderError::new(Code::Unavailable, reasons::PROVIDER_ANSWER_MISMATCH, DOMAIN)
            .message(format!(
                "Daviplata's success answer names {what} than the one sent"
            ))
            .meta("transaction_id", sent.transaction_id.unwrap_or_default())
            .delivery(Delivery::Unknown),
    )
}

/// A success status whose body cannot be read: for a state change Daviplata did act, but
/// what it answered (an approval number) is lost, so the outcome is unknown.
fn unreadable(http: u16, why: Unreadable) -> ProviderError {
    ProviderError::new(Code::Internal, reasons::PROVIDER_BAD_RESPONSE, DOMAIN)
        .message(format!("Daviplata's answer could not be read: {}", why.0))
        .meta("http_status", http)
        .delivery(Delivery::Unknown)
}
