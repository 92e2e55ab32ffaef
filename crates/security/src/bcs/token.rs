//! Banco Caja Social's access token, as the deployment provides it: given
//! (`security.access_token`, a value or a file read again whenever it changes, so that a
//! rotated Secret needs no restart), or obtained from an OAuth2 client-credentials
//! endpoint and renewed before it expires (`security.token.url`). The
//! spec sends "a valid OAuth 2 access token" but names no operation that issues one, so the
//! endpoint, its client and how it authenticates are configuration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use pasarela_provider::token::{self, Token, TokenCache};
use pasarela_provider::{
    BaseUrl, Credential, Delivery, Operation, Outbound, ProviderError, metrics, reasons,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tonic::Code;

use super::errors::DOMAIN;

/// The client-credentials endpoint tokens are fetched from (`security.token`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// An OAuth2 client-credentials token endpoint (given at onboarding).
    pub url: String,
    /// The token endpoint's client; unset, `security.client_id`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its secret; unset, `security.client_secret`.
    #[serde(default)]
    pub client_secret: Option<Credential>,
    /// The scope asked for, if the endpoint wants one.
    #[serde(default)]
    pub scope: Option<String>,
    /// How the client authenticates to the endpoint: in the form (`body`) or by HTTP Basic
    /// (`basic`, RFC 6749 2.3.1).
    #[serde(default)]
    pub auth_style: AuthStyle,
    /// A token is renewed this long before it expires (at most a fifth of its lifetime).
    #[serde(default = "default_margin", with = "humantime_serde")]
    pub refresh_margin: Duration,
}

fn default_margin() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthStyle {
    #[default]
    Body,
    Basic,
}

/// The name token requests are counted under.
pub const TOKEN_OPERATION: &str = "token";

/// The token the bank's calls carry.
pub enum AccessToken {
    /// The environment asks for none.
    None,
    /// `security.access_token`: a value, or a file read again when it changes.
    Given(Credential),
    Renewed(Renewed),
}

/// The token one call is sent with.
#[derive(Clone)]
pub enum Current {
    None,
    Given(Arc<SecretString>),
    Renewed(Arc<Token>),
}

impl Current {
    pub fn value(&self) -> Option<&str> {
        match self {
            Current::None => None,
            Current::Given(value) => Some(value.expose_secret()),
            Current::Renewed(token) => Some(token.value.expose_secret()),
        }
    }
}

impl AccessToken {
    /// The token source `settings` (or a fixed `access_token`) describe; both at once is
    /// refused.
    pub fn new(
        given: Option<Credential>,
        settings: Option<&TokenSettings>,
        client_id: &str,
        client_secret: &Credential,
    ) -> anyhow::Result<Self> {
        let Some(settings) = settings else {
            return Ok(given.map_or(AccessToken::None, AccessToken::Given));
        };
        anyhow::ensure!(
            given.is_none(),
            "security.access_token and security.token both name the token: keep one"
        );
        Ok(AccessToken::Renewed(Renewed {
            endpoint: Arc::new(Endpoint {
                url: BaseUrl::parse(&settings.url, "security.token.url")?.join(""),
                client_id: settings
                    .client_id
                    .clone()
                    .unwrap_or_else(|| client_id.into()),
                client_secret: settings
                    .client_secret
                    .clone()
                    .unwrap_or_else(|| client_secret.clone()),
                scope: settings.scope.clone(),
                auth_style: settings.auth_style,
            }),
            margin: settings.refresh_margin,
            cache: TokenCache::new(DOMAIN),
        }))
    }

    /// The token to send now, waiting at most until `deadline` for one being fetched.
    pub async fn current(
        &self,
        outbound: &Arc<Outbound>,
        deadline: Instant,
    ) -> Result<Current, ProviderError> {
        match self {
            AccessToken::None => Ok(Current::None),
            AccessToken::Given(value) => Ok(Current::Given(value.current())),
            AccessToken::Renewed(renewed) => renewed.current(outbound, deadline).await,
        }
    }

    /// The bank refused `current` (401): it is forgotten, so that the next call reads or
    /// fetches another. Says whether another may differ (a value written in the
    /// configuration never does).
    pub fn refused(&self, current: &Current) -> bool {
        match (self, current) {
            (AccessToken::Given(given), _) if given.file().is_some() => {
                given.look_again();
                true
            }
            (AccessToken::Renewed(renewed), Current::Renewed(token)) => {
                renewed.cache.invalidate(token);
                true
            }
            _ => false,
        }
    }

    /// The token requests to count from start-up, when tokens are fetched.
    pub fn operations(&self) -> &'static [&'static str] {
        match self {
            AccessToken::Renewed(_) => &[TOKEN_OPERATION],
            _ => &[],
        }
    }
}

impl std::fmt::Debug for AccessToken {
    /// Names the kind of source, never a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessToken::None => "AccessToken::None",
            AccessToken::Given(_) => "AccessToken::Given",
            AccessToken::Renewed(_) => "AccessToken::Renewed",
        })
    }
}

/// Tokens fetched from the client-credentials endpoint, one flight at a time.
pub struct Renewed {
    endpoint: Arc<Endpoint>,
    margin: Duration,
    cache: TokenCache,
}

/// The token endpoint and the client pasarela is to it.
struct Endpoint {
    url: reqwest::Url,
    client_id: String,
    client_secret: Credential,
    scope: Option<String>,
    auth_style: AuthStyle,
}

#[derive(Serialize)]
struct TokenForm<'a> {
    grant_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

impl Renewed {
    async fn current(
        &self,
        outbound: &Arc<Outbound>,
        deadline: Instant,
    ) -> Result<Current, ProviderError> {
        let (outbound, endpoint) = (Arc::clone(outbound), Arc::clone(&self.endpoint));
        let margin = self.margin;
        let wait = self
            .cache
            .get(move || fetch(outbound, endpoint, margin).boxed());
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, wait).await {
            Ok(token) => token.map(Current::Renewed),
            Err(_) => {
                Err(
                    ProviderError::new(Code::DeadlineExceeded, reasons::PROVIDER_TIMEOUT, DOMAIN)
                        .message("no Banco Caja Social access token within the call's deadline")
                        .delivery(Delivery::NotSent),
                )
            }
        }
    }
}

impl Endpoint {
    fn request(&self, outbound: &Outbound) -> reqwest::RequestBuilder {
        let in_body = self.auth_style == AuthStyle::Body;
        let client_secret = self.client_secret.current();
        let form = TokenForm {
            grant_type: "client_credentials",
            client_id: in_body.then_some(self.client_id.as_str()),
            client_secret: in_body.then_some(client_secret.expose_secret()),
            scope: self.scope.as_deref(),
        };
        let request = outbound
            .client()
            .post(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form);
        match self.auth_style {
            AuthStyle::Body => request,
            AuthStyle::Basic => {
                request.basic_auth(&self.client_id, Some(client_secret.expose_secret()))
            }
        }
    }
}

/// One token request, on the provider's ceiling (many calls may be waiting on it).
async fn fetch(
    outbound: Arc<Outbound>,
    endpoint: Arc<Endpoint>,
    margin: Duration,
) -> Result<Token, ProviderError> {
    metrics::global()
        .token_refreshes
        .get_or_create(&metrics::ProviderLabels { provider: DOMAIN })
        .inc();
    let operation = Operation {
        name: TOKEN_OPERATION,
        safe_to_retry: true,
    };
    let request = endpoint.request(&outbound);
    let answer = outbound
        .send(operation, request, outbound.ceiling())
        .await?;
    if !answer.status.is_success() {
        tracing::warn!(
            status = answer.status.as_u16(),
            "the bank refused the token request"
        );
        return Err(
            ProviderError::new(Code::Unavailable, reasons::PROVIDER_AUTH_FAILED, DOMAIN)
                .message("Banco Caja Social refused pasarela's token request")
                .delivery(Delivery::NotSent),
        );
    }
    token::read_answer(&answer.body, DOMAIN, margin)
}
