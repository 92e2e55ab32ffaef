//! The tower layer in front of every service: gate (exempt, closed), authenticate (bearer
//! JWT, else a listed client certificate), authorize (method scopes), rate limit, then hand
//! the call on with its [`Principal`] and audit it.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::Body as _;
use tonic::Code;
use tower::{Layer, Service};

use crate::audit::{AuditedBody, Call};
use crate::config::Config;
use crate::jwt::Verifier;
use crate::mtls::CertificatePrincipals;
use crate::policy::{Gate, MethodPath, Policy};
use crate::principal::Principal;
use crate::rate_limit::RateLimiter;
use crate::rejection::{Reason, Rejection};
use crate::secret_attempts::SecretAttempts;
use crate::shared_buckets::SharedBuckets;
use crate::slots::{Slot, Slots, peer_key};
use crate::tenancy::Tenancy;
use pasarela_provider::grpc::status_code;

/// Everything the layer decides with, shared by all connections (and so are the buckets
/// of the rate limiter).
struct Guard {
    policy: Policy,
    tenancy: Tenancy,
    verifier: Verifier,
    certificates: CertificatePrincipals,
    limiter: RateLimiter,
    /// Refusals of unidentified calls, per peer address.
    unidentified: RateLimiter,
    /// Calls under way, per principal.
    in_flight: Slots,
    /// Calls to exempt methods, per peer address: how fast, and how many at once.
    exempt: RateLimiter,
    exempt_streams: Slots,
}

/// The `group` of a refusal for too many unidentified calls from one peer.
pub const UNAUTHENTICATED_PER_PEER: &str = "unauthenticated-per-peer";

/// The `group` of a refusal for too many calls of one principal at once.
pub const CONCURRENT_CALLS: &str = "concurrent-calls";

/// The `group` of a refusal for too many exempt calls from one peer.
pub const EXEMPT_PER_PEER: &str = "exempt-per-peer";

/// The `group` of a refusal for too many exempt calls of one peer at once.
pub const EXEMPT_STREAMS_PER_PEER: &str = "exempt-streams-per-peer";

/// `tonic::transport::Server::builder().layer(auth_layer)`.
#[derive(Clone)]
pub struct AuthLayer {
    guard: Arc<Guard>,
    attempts: SecretAttempts,
}

impl AuthLayer {
    /// Validates `config` and loads what it names (the JWKS is read here, so a wrong URL
    /// fails start-up).
    pub async fn new(config: &Config) -> anyhow::Result<AuthLayer> {
        config.validate()?;
        let shared = shared_buckets(config).await?;
        Ok(AuthLayer {
            attempts: SecretAttempts::new(config, shared.clone())?,
            guard: Arc::new(Guard {
                policy: Policy::new(config),
                tenancy: Tenancy::new(&config.tenants, config.untenanted, &config.tenant_free),
                verifier: Verifier::new(config).await?,
                certificates: CertificatePrincipals::new(&config.mtls),
                limiter: RateLimiter::new(&config.rate_limits, shared),
                unidentified: RateLimiter::budget(
                    UNAUTHENTICATED_PER_PEER,
                    config.unauthenticated_per_peer.per_second,
                    config.unauthenticated_per_peer.burst,
                ),
                in_flight: Slots::new(config.max_concurrent_calls_per_principal),
                exempt: RateLimiter::budget(
                    EXEMPT_PER_PEER,
                    config.exempt_per_peer.per_second,
                    config.exempt_per_peer.burst,
                ),
                exempt_streams: Slots::new(config.max_exempt_streams_per_peer),
            }),
        })
    }

    /// The budgets of secrets' holders, for the handlers that check a secret; they share
    /// this layer's Redis.
    pub fn secret_attempts(&self) -> SecretAttempts {
        self.attempts.clone()
    }
}

async fn shared_buckets(config: &Config) -> anyhow::Result<Option<SharedBuckets>> {
    match &config.rate_limit_redis_url {
        Some(url) => Ok(Some(
            SharedBuckets::connect(
                url,
                config.rate_limit_redis_tls.as_ref(),
                config.rate_limit_redis_prefix.as_deref(),
            )
            .await?,
        )),
        None => Ok(None),
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            guard: self.guard.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    guard: Arc<Guard>,
}

/// The outcome of the checks: who is calling (none for exempt methods), or a refusal.
type Admission = Result<Option<Principal>, (Option<Principal>, Rejection)>;

/// What the checks read from a request, taken out of it so that no borrow of the request
/// (whose body need not be `Sync`) is held across an await.
struct Credentials {
    path: String,
    authorization: Option<http::HeaderValue>,
    peer: Option<String>,
    /// The peer's IP address, when the transport says.
    peer_ip: Option<String>,
}

impl Credentials {
    fn of<B>(request: &Request<B>) -> Self {
        Self {
            path: request.uri().path().to_owned(),
            authorization: request.headers().get(http::header::AUTHORIZATION).cloned(),
            peer: CertificatePrincipals::peer_identity(request),
            peer_ip: peer_ip(request),
        }
    }
}

impl Guard {
    async fn admit(&self, credentials: &Credentials) -> Admission {
        let path = MethodPath::parse(&credentials.path);
        match self.policy.gate(path.as_ref()) {
            Gate::Exempt => {
                return self
                    .admit_exempt(credentials.peer_ip.as_deref())
                    .await
                    .map(|()| None)
                    .map_err(|rejection| (None, rejection));
            }
            Gate::Refuse(reason) => return Err((None, Rejection::new(reason))),
            Gate::Authenticate => {}
        }
        // Failures count against the peer's address; past its budget a failure is told to
        // wait. A call that authenticates is never refused for its address: behind a NAT, an
        // ingress or a sidecar, others' bad tokens must not deny a good one.
        let peer = credentials.peer_ip.as_deref();
        let mut principal = self.authenticate(credentials).await.map_err(|rejection| {
            let Some(ip) = peer else {
                return (None, rejection);
            };
            let exhausted = self.unidentified.exhausted(ip);
            self.unidentified.spend(ip);
            let rejection = match exhausted {
                Some(wait) => Rejection::new(Reason::RateLimited)
                    .with("group", UNAUTHENTICATED_PER_PEER)
                    .retry_after(wait),
                None => rejection,
            };
            (None, rejection)
        })?;
        self.tenancy.resolve(&mut principal);
        let authorized = self
            .policy
            .authorize(path.as_ref(), &principal)
            .and_then(|()| self.tenancy.admit(&principal, path.as_ref()));
        let checks = match authorized {
            Ok(()) => self.rate_limit(&principal, path.as_ref()).await,
            Err(rejection) => Err(rejection),
        };
        match checks {
            Ok(()) => Ok(Some(principal)),
            Err(rejection) => Err((Some(principal), rejection)),
        }
    }

    /// An exempt call spends its peer's budget; one past it is told when to come back.
    async fn admit_exempt(&self, peer: Option<&str>) -> Result<(), Rejection> {
        let Some(ip) = peer else {
            return Ok(());
        };
        self.exempt.check_first(ip).await.map_err(|exceeded| {
            Rejection::new(Reason::RateLimited)
                .with("group", exceeded.group)
                .retry_after(exceeded.retry_after)
        })
    }

    /// The slot a call holds until its answer ends: one of its principal's calls, or one of
    /// its peer's exempt calls; `Err` names the group that is full.
    fn slot(
        &self,
        principal: Option<&Principal>,
        peer: Option<&str>,
    ) -> Result<Option<Slot>, &'static str> {
        match (principal, peer) {
            (Some(p), _) => self
                .in_flight
                .take(&p.key())
                .map(Some)
                .ok_or(CONCURRENT_CALLS),
            (None, Some(ip)) => self
                .exempt_streams
                .take(ip)
                .map(Some)
                .ok_or(EXEMPT_STREAMS_PER_PEER),
            (None, None) => Ok(None),
        }
    }

    /// A bearer token decides when one is sent (a bad token is never rescued by a
    /// certificate); otherwise a listed client certificate stands as the principal.
    async fn authenticate(&self, credentials: &Credentials) -> Result<Principal, Rejection> {
        if let Some(header) = &credentials.authorization {
            let token =
                bearer_token(header).ok_or_else(|| Rejection::new(Reason::TokenMalformed))?;
            return self.verifier.verify(token).await;
        }
        credentials
            .peer
            .as_deref()
            .and_then(|identity| self.certificates.principal(identity))
            .ok_or_else(|| Rejection::new(Reason::TokenMissing))
    }

    async fn rate_limit(
        &self,
        principal: &Principal,
        path: Option<&MethodPath<'_>>,
    ) -> Result<(), Rejection> {
        self.limiter
            .check(&principal.key(), path)
            .await
            .map_err(|exceeded| {
                Rejection::new(Reason::RateLimited)
                    .with("group", exceeded.group)
                    .retry_after(exceeded.retry_after)
            })
    }
}

/// The caller's address as its per-peer bounds know it ([`peer_key`]), from the
/// connection tonic accepted (plain or TLS).
fn peer_ip<B>(request: &Request<B>) -> Option<String> {
    let extensions = request.extensions();
    let tcp = extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .or_else(|| {
            extensions
                    .get::<tonic::transport::server::TlsConnectInfo<
                        tonic::transport::server::TcpConnectInfo,
                    >>()
                    .map(|tls| tls.get_ref())
        })?;
    tcp.remote_addr().map(|addr| peer_key(addr.ip()))
}

/// The token of `authorization: Bearer <token>` (the scheme is case-insensitive).
fn bearer_token(header: &http::HeaderValue) -> Option<&str> {
    let (scheme, token) = header.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone is ready (tower's contract is poll_ready on the service we call).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let credentials = Credentials::of(&request);
            let call = Call::start(&request, credentials.peer.clone());
            let principal = match guard.admit(&credentials).await {
                Ok(principal) => principal,
                Err((principal, rejection)) => {
                    let reason = rejection.reason;
                    call.finish(principal.as_ref(), reason.code(), Some(reason));
                    return Ok(rejection.into_status().into_http());
                }
            };
            // Calls under way are bounded; a call's count ends with its answer, so that a
            // stream counts while it is open.
            let slot = match guard.slot(principal.as_ref(), credentials.peer_ip.as_deref()) {
                Ok(slot) => slot,
                Err(group) => {
                    let reason = Reason::RateLimited;
                    call.finish(principal.as_ref(), reason.code(), Some(reason));
                    let rejection = Rejection::new(reason)
                        .with("group", group)
                        .retry_after(std::time::Duration::from_secs(1));
                    return Ok(rejection.into_status().into_http());
                }
            };
            // Handlers need the caller, not its credential.
            request.headers_mut().remove(http::header::AUTHORIZATION);
            if let Some(principal) = &principal {
                request.extensions_mut().insert(principal.clone());
            }
            let response = inner.call(request).await?;
            Ok(audited(response, call, principal, slot))
        })
    }
}

/// The response with its audit line written now (the status is already in the headers)
/// or when the body reaches its trailers.
fn audited<B>(
    response: Response<B>,
    call: Call,
    principal: Option<Principal>,
    slot: Option<Slot>,
) -> Response<tonic::body::Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = response.into_parts();
    let body = tonic::body::Body::new(body);
    let known = status_code(&parts.headers).or(body.is_end_stream().then_some(Code::Ok));
    let body = match (known, principal) {
        (Some(code), principal) => {
            call.finish(principal.as_ref(), code, None);
            body
        }
        (None, principal) => tonic::body::Body::new(AuditedBody::new(body, call, principal)),
    };
    let body = match slot {
        Some(slot) => tonic::body::Body::new(Holding { body, _slot: slot }),
        None => body,
    };
    Response::from_parts(parts, body)
}

/// An answer's body holding its call's [`Slot`] until the answer is sent or dropped.
struct Holding {
    body: tonic::body::Body,
    _slot: Slot,
}

impl http_body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_parsed_strictly() {
        let value = |s: &str| http::HeaderValue::from_str(s).unwrap();
        assert_eq!(bearer_token(&value("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&value("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&value("Basic abc")), None);
        assert_eq!(bearer_token(&value("Bearer ")), None);
        assert_eq!(bearer_token(&value("abc")), None);
    }
}
