//! The tower layer around every RPC: a request id (taken from `x-request-id` or made),
//! a tracing span carrying it, and the per-RPC metrics (calls by code, latency, in flight).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use pasarela_auth::CallContext;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message as _;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::message_clock::{MessageClock, Pace};

pub use pasarela_provider::grpc::REQUEST_ID;

/// How much earlier than tonic's own `grpc-timeout` timer this layer answers, so that an
/// expired call reads `DEADLINE_EXCEEDED` (tonic's timer answers `CANCELLED`).
const DEADLINE_LEAD: Duration = Duration::from_millis(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: Arc<str>,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: Arc<str>,
}

struct RpcMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    in_flight: Gauge,
}

static METRICS: LazyLock<RpcMetrics> = LazyLock::new(|| RpcMetrics {
    calls: Family::default(),
    latency: Family::new_with_constructor(|| {
        Histogram::new(pasarela_provider::metrics::LATENCY_BUCKETS)
    }),
    in_flight: Gauge::default(),
});

/// Adds the per-RPC families to the server's registry.
pub fn register(registry: &mut Registry) {
    registry.register(
        "pasarela_rpc_calls",
        "RPCs handled, by method and gRPC status code",
        METRICS.calls.clone(),
    );
    registry.register(
        "pasarela_rpc_duration_seconds",
        "RPC latency as seen by the server",
        METRICS.latency.clone(),
    );
    registry.register(
        "pasarela_rpc_in_flight",
        "RPCs being handled right now",
        METRICS.in_flight.clone(),
    );
}

/// Every service of the contracts: its full name (`pkg.Service`) and its descriptor.
fn services<'a>(
    descriptor_sets: &'a [&'a [u8]],
) -> impl Iterator<Item = (String, prost_types::ServiceDescriptorProto)> + 'a {
    descriptor_sets
        .iter()
        .filter_map(|bytes| prost_types::FileDescriptorSet::decode(*bytes).ok())
        .flat_map(|set| set.file)
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service
                .into_iter()
                .map(move |service| (format!("{package}.{}", service.name()), service))
        })
}

/// Method paths known from the contracts; anything else is labelled `unknown` so that a
/// caller cannot blow up the metric's cardinality with made-up paths.
pub fn known_methods(descriptor_sets: &[&[u8]]) -> HashSet<String> {
    services(descriptor_sets)
        .flat_map(|(name, service)| {
            service
                .method
                .into_iter()
                .map(move |method| format!("/{name}/{}", method.name()))
        })
        .collect()
}

/// Method paths whose client streams its messages (reflection's), from the contracts.
pub fn client_streaming_methods(descriptor_sets: &[&[u8]]) -> HashSet<String> {
    services(descriptor_sets)
        .flat_map(|(name, service)| {
            service
                .method
                .into_iter()
                .filter(|method| method.client_streaming())
                .map(move |method| format!("/{name}/{}", method.name()))
        })
        .collect()
}

/// Service names (`pkg.Service`) of the contracts.
pub fn known_services(descriptor_sets: &[&[u8]]) -> HashSet<String> {
    services(descriptor_sets).map(|(name, _)| name).collect()
}

/// The method label of a call to a path the contracts do not have.
const UNKNOWN_METHOD: &str = "unknown";

/// The method labels: the contracts' paths and [`UNKNOWN_METHOD`], shared so that a
/// call's labels clone a pointer.
#[derive(Clone)]
struct MethodNames {
    known: Arc<HashSet<Arc<str>>>,
    unknown: Arc<str>,
    /// Those whose client streams its messages: each message is timed, not the body.
    client_streaming: Arc<HashSet<String>>,
}

impl MethodNames {
    fn label(&self, path: &str) -> Arc<str> {
        self.known.get(path).unwrap_or(&self.unknown).clone()
    }

    fn pace(&self, path: &str) -> Pace {
        match self.client_streaming.contains(path) {
            true => Pace::EachMessage,
            false => Pace::WholeBody,
        }
    }
}

/// Every series of every known method, each gRPC code, exported from start-up at zero:
/// a `rate()` alert must tell "none" from "never" (Prometheus' own advice).
fn born_at_zero(methods: &MethodNames) {
    for method in methods.known.iter().chain([&methods.unknown]) {
        drop(METRICS.latency.get_or_create(&MethodLabels {
            method: method.clone(),
        }));
        for value in 0..=16 {
            let code = pasarela_provider::grpc::code_name(tonic::Code::from_i32(value));
            drop(METRICS.calls.get_or_create(&CallLabels {
                method: method.clone(),
                code,
            }));
        }
    }
}

#[derive(Clone)]
pub struct RpcLayer {
    methods: MethodNames,
    message_timeout: Duration,
}

impl RpcLayer {
    /// `known`: the method paths of the contracts ([`known_methods`]), `client_streaming`
    /// those of them whose client streams ([`client_streaming_methods`]);
    /// `message_timeout`: how long a request may take to arrive ([`MessageClock`]).
    pub fn new(
        known: HashSet<String>,
        client_streaming: HashSet<String>,
        message_timeout: Duration,
    ) -> Self {
        let methods = MethodNames {
            known: Arc::new(known.into_iter().map(Arc::from).collect()),
            unknown: Arc::from(UNKNOWN_METHOD),
            client_streaming: Arc::new(client_streaming),
        };
        born_at_zero(&methods);
        Self {
            methods,
            message_timeout,
        }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            methods: self.methods.clone(),
            message_timeout: self.message_timeout,
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    methods: MethodNames,
    message_timeout: Duration,
}

type Body = tonic::body::Body;

impl<S> Service<Request<Body>> for RpcService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (limit, pace) = (
            self.message_timeout,
            self.methods.pace(request.uri().path()),
        );
        let mut request = request.map(|body| Body::new(MessageClock::new(body, limit, pace)));
        let request_id = ensure_request_id(&mut request);
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(pasarela_provider::deadline::parse_grpc_timeout);
        // Read once here; the audit line and the handlers take it from the extension.
        request.extensions_mut().insert(CallContext {
            request_id: request_id.clone(),
            deadline: timeout.and_then(pasarela_provider::deadline::deadline_after),
            principal: None,
        });
        let path = request.uri().path();
        let method = self.methods.label(path);
        let deadline = timeout.map(|timeout| timeout.saturating_sub(DEADLINE_LEAD));
        let span = tracing::info_span!("rpc", method = %method, request_id = %request_id);
        crate::telemetry::continue_trace(&span, request.headers());
        // The clone is ready (tower's contract is poll_ready on the service we call).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                METRICS.in_flight.inc();
                let started = Instant::now();
                let call = caught(move || inner.call(request));
                let result = match deadline {
                    Some(deadline) => tokio::time::timeout(deadline, call)
                        .await
                        .unwrap_or_else(|_| Ok(deadline_exceeded())),
                    None => call.await,
                };
                METRICS.in_flight.dec();
                let code = match &result {
                    Ok(response) => grpc_code(response),
                    Err(_) => tonic::Code::Unknown,
                };
                METRICS
                    .latency
                    .get_or_create(&MethodLabels {
                        method: method.clone(),
                    })
                    .observe(started.elapsed().as_secs_f64());
                METRICS
                    .calls
                    .get_or_create(&CallLabels {
                        method,
                        code: pasarela_provider::grpc::code_name(code),
                    })
                    .inc();
                result.map(|response| {
                    let mut response = rewrite_transport_status(response, code);
                    if let Ok(value) = HeaderValue::from_str(&request_id) {
                        response.headers_mut().insert(REQUEST_ID, value);
                    }
                    response
                })
            }
            .instrument(span),
        )
    }
}

/// Statuses tonic's codec answers before a handler runs, re-coded by meaning: a request
/// that is not valid protobuf (invalid UTF-8 in a string) is the caller's bad input, and a
/// message over the size limit is a resource limit, not a range error.
const TRANSPORT_STATUS_REWRITES: [(tonic::Code, &str, tonic::Code); 2] = [
    (
        tonic::Code::Internal,
        "failed to decode Protobuf message",
        tonic::Code::InvalidArgument,
    ),
    (
        tonic::Code::OutOfRange,
        "Error, decoded message length too large",
        tonic::Code::ResourceExhausted,
    ),
];

fn rewrite_transport_status(
    response: Response<tonic::body::Body>,
    code: tonic::Code,
) -> Response<tonic::body::Body> {
    // Decoding a status (its message and details) is left to the few codes rewritten.
    if !TRANSPORT_STATUS_REWRITES
        .iter()
        .any(|(from, _, _)| *from == code)
    {
        return response;
    }
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    let rewrite = TRANSPORT_STATUS_REWRITES
        .iter()
        .find(|(code, prefix, _)| status.code() == *code && status.message().starts_with(prefix));
    match rewrite {
        Some((_, _, code)) => tonic::Status::new(*code, status.message()).into_http(),
        None => response,
    }
}

/// The call `start` begins, a panic in it (when called or while it runs) answered
/// `INTERNAL` with one error line, so that no input ends a connection other callers share.
async fn caught<F, E>(start: impl FnOnce() -> F) -> Result<Response<tonic::body::Body>, E>
where
    F: std::future::Future<Output = Result<Response<tonic::body::Body>, E>>,
{
    use futures::FutureExt as _;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let outcome = match catch_unwind(AssertUnwindSafe(start)) {
        Ok(call) => AssertUnwindSafe(call).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    outcome.unwrap_or_else(|_| {
        tracing::error!("a call panicked: answered INTERNAL");
        Ok(tonic::Status::internal("pasarela failed to handle the call").into_http())
    })
}

fn deadline_exceeded() -> Response<tonic::body::Body> {
    tonic::Status::deadline_exceeded("the call's deadline expired before pasarela could answer")
        .into_http()
}

/// The caller's request id when it sent a sane one, else a new one; written back into
/// the request so handlers and the auth layer see the same id.
fn ensure_request_id<B>(request: &mut Request<B>) -> String {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    id
}

/// The gRPC status of a unary answer: errors travel trailers-only (in the headers); an
/// answer without `grpc-status` in its headers carries a message and ends OK.
fn grpc_code<B>(response: &Response<B>) -> tonic::Code {
    pasarela_provider::grpc::status_code(response.headers()).unwrap_or(tonic::Code::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_call_is_answered_internal() {
        let answer = |response: Result<Response<tonic::body::Body>, ()>| {
            grpc_code(&response.expect("answered, not an error"))
        };
        let when_called =
            caught(|| -> std::future::Ready<Result<_, ()>> { panic!("in the call itself") });
        assert_eq!(answer(when_called.await), tonic::Code::Internal);
        let while_running = caught(|| async {
            if true {
                panic!("while the call runs");
            }
            Ok::<_, ()>(deadline_exceeded())
        });
        assert_eq!(answer(while_running.await), tonic::Code::Internal);
        let fine = caught(|| async { Ok::<_, ()>(deadline_exceeded()) });
        assert_eq!(answer(fine.await), tonic::Code::DeadlineExceeded);
    }

    #[test]
    fn only_reflection_streams_from_its_client() {
        let streaming = client_streaming_methods(crate::app::CONTRACTS);
        assert!(
            streaming.contains("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            "{streaming:?}"
        );
        assert!(
            streaming.iter().all(|path| path.contains("Reflection")),
            "{streaming:?}"
        );
    }

    #[test]
    fn known_methods_come_from_the_contracts() {
        let known = known_methods(&[pasarela::FILE_DESCRIPTOR_SET]);
        assert!(
            known.iter().any(|m| m.starts_with("/pasarela.")),
            "{known:?}"
        );
    }

    #[test]
    fn codes_use_canonical_names() {
        let answered = Response::new(());
        assert_eq!(grpc_code(&answered), tonic::Code::Ok);
        let refused = Response::builder()
            .header("grpc-status", "3")
            .body(())
            .unwrap();
        assert_eq!(grpc_code(&refused), tonic::Code::InvalidArgument);
    }

    #[test]
    fn request_id_is_kept_or_made() {
        let mut given = Request::builder()
            .header(REQUEST_ID, "abc-123")
            .body(())
            .unwrap();
        assert_eq!(ensure_request_id(&mut given), "abc-123");
        let mut hostile = Request::builder()
            .header(REQUEST_ID, "a b\tc")
            .body(())
            .unwrap();
        let made = ensure_request_id(&mut hostile);
        assert_eq!(made.len(), 32);
        assert_eq!(hostile.headers()[REQUEST_ID], made.as_str());
    }
}
