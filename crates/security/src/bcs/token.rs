//! Banco Caja Social's access token, as the deployment provides it: fixed
//! (`security.access_token`), read from a file and read again whenever the file changes
//! (`security.token.file`, a rotated Secret needing no restart), or obtained from an OAuth2
//! client-credentials endpoint and renewed before it expires (`security.token.url`). The
//! spec sends "a valid OAuth 2 access token" but names no operation that issues one, so the
//! endpoint, its client and how it authenticates are configuration.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt as _;
use pasarela_provider::token::{self, Token, TokenCache};
use pasarela_provider::{BaseUrl, Delivery, Operation, Outbound, ProviderError, metrics, reasons};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tonic::Code;

use super::errors::DOMAIN;

/// Where the token comes from when it is not fixed (`security.token`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// An OAuth2 client-credentials token endpoint (given at onboarding).
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the token, read again whenever it changes.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The token endpoint's client; unset, `security.client_id`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its secret; unset, `security.client_secret`.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
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
    /// `security.access_token`, for the process's life.
    Fixed(SecretString),
    File(FileToken),
    Renewed(Renewed),
}

/// The token one call is sent with.
#[derive(Clone)]
pub enum Current {
    None,
    Read(SecretString),
    Renewed(Arc<Token>),
}

impl Current {
    pub fn value(&self) -> Option<&str> {
        match self {
            Current::None => None,
            Current::Read(value) => Some(value.expose_secret()),
            Current::Renewed(token) => Some(token.value.expose_secret()),
        }
    }
}

impl AccessToken {
    /// The token source `settings` (or a fixed `access_token`) describe; both at once is
    /// refused.
    pub fn new(
        fixed: Option<SecretString>,
        settings: Option<&TokenSettings>,
        client_id: &str,
        client_secret: &SecretString,
    ) -> anyhow::Result<Self> {
        let Some(settings) = settings else {
            return Ok(fixed.map_or(AccessToken::None, AccessToken::Fixed));
        };
        anyhow::ensure!(
            fixed.is_none(),
            "security.access_token and security.token both name the token: keep one"
        );
        match (&settings.url, &settings.file) {
            (Some(url), None) => Ok(AccessToken::Renewed(Renewed {
                endpoint: Arc::new(Endpoint {
                    url: BaseUrl::parse(url, "security.token.url")?.join(""),
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
            })),
            (None, Some(file)) => Ok(AccessToken::File(FileToken {
                path: file.clone(),
                last: Mutex::default(),
            })),
            _ => anyhow::bail!("security.token needs exactly one of `url` or `file`"),
        }
    }

    /// The token to send now, waiting at most until `deadline` for one being fetched.
    pub async fn current(
        &self,
        outbound: &Arc<Outbound>,
        deadline: Instant,
    ) -> Result<Current, ProviderError> {
        match self {
            AccessToken::None => Ok(Current::None),
            AccessToken::Fixed(value) => Ok(Current::Read(value.clone())),
            AccessToken::File(file) => file.current().await.map(Current::Read),
            AccessToken::Renewed(renewed) => renewed.current(outbound, deadline).await,
        }
    }

    /// The bank refused `current` (401): it is forgotten, so that the next call reads or
    /// fetches another. Says whether another may differ (a fixed token never does).
    pub fn refused(&self, current: &Current) -> bool {
        match (self, current) {
            (AccessToken::File(file), _) => {
                file.forget();
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
            AccessToken::Fixed(_) => "AccessToken::Fixed",
            AccessToken::File(_) => "AccessToken::File",
            AccessToken::Renewed(_) => "AccessToken::Renewed",
        })
    }
}

/// A token kept in a file (a mounted Secret), read again when the file changes.
pub struct FileToken {
    path: PathBuf,
    last: Mutex<Option<FileRead>>,
}

/// The last read of a token file.
struct FileRead {
    /// The file's modification time and length when it was read.
    stamp: (SystemTime, u64),
    value: SecretString,
    /// When the file was last looked at: calls within [`LOOK_EVERY`] take the token read.
    looked_at: Instant,
}

/// How often a call looks whether the token file changed; a token the bank refuses makes
/// the next call look at once.
const LOOK_EVERY: Duration = Duration::from_secs(1);

impl FileToken {
    async fn current(&self) -> Result<SecretString, ProviderError> {
        if let Some(read) = self.last().as_ref()
            && read.looked_at.elapsed() < LOOK_EVERY
        {
            return Ok(read.value.clone());
        }
        let unreadable = |why: &str| {
            tracing::error!(path = %self.path.display(), "{why}");
            ProviderError::new(Code::Unavailable, reasons::PROVIDER_AUTH_FAILED, DOMAIN)
                .message("Banco Caja Social's access token could not be read")
                .delivery(Delivery::NotSent)
        };
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|_| unreadable("the token file cannot be read"))?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if let Some(read) = self.last().as_mut()
            && read.stamp == stamp
        {
            read.looked_at = Instant::now();
            return Ok(read.value.clone());
        }
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|_| unreadable("the token file cannot be read"))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(unreadable("the token file is empty"));
        }
        let value = SecretString::from(value.to_owned());
        *self.last() = Some(FileRead {
            stamp,
            value: value.clone(),
            looked_at: Instant::now(),
        });
        tracing::info!(path = %self.path.display(), "access token read");
        Ok(value)
    }

    fn forget(&self) {
        *self.last() = None;
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<FileRead>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
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
    client_secret: SecretString,
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
        let form = TokenForm {
            grant_type: "client_credentials",
            client_id: in_body.then_some(self.client_id.as_str()),
            client_secret: in_body.then_some(self.client_secret.expose_secret()),
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
                request.basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
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
