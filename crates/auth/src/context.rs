//! One call's context, read once: the request id, the caller's deadline and who is
//! calling (what the auth layer decided). The server's RPC layer sets the context as a
//! request extension; the audit line and every handler read it from there, and only a
//! service run without that layer (a test, an embedding) reads headers. The header names
//! and the `grpc-timeout` grammar are the provider kit's (`grpc`, `deadline`).

use std::time::{Duration, Instant};

use pasarela_provider::deadline::{GRPC_TIMEOUT, deadline_after, parse_grpc_timeout};
pub use pasarela_provider::grpc::REQUEST_ID;

use crate::principal::Principal;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The caller's `x-request-id`, or the one the RPC layer made; empty when unknown.
    pub request_id: String,
    /// When the caller stops waiting (`grpc-timeout` from the call's arrival).
    pub deadline: Option<Instant>,
    /// Who is calling, as the auth layer identified it; none without that layer.
    pub principal: Option<Principal>,
}

impl CallContext {
    /// The context of a gRPC request: the RPC layer's, else read from its metadata.
    pub fn of<T>(request: &tonic::Request<T>) -> CallContext {
        let mut context = request
            .extensions()
            .get::<CallContext>()
            .cloned()
            .unwrap_or_else(|| {
                Self::read(|name| request.metadata().get(name).and_then(|v| v.to_str().ok()))
            });
        // The RPC layer sets its context before the auth layer has identified anybody.
        context.principal = request.extensions().get::<Principal>().cloned();
        context
    }

    /// The context of an HTTP request: its extension, else read from its headers.
    pub fn of_http<B>(request: &http::Request<B>) -> CallContext {
        request
            .extensions()
            .get::<CallContext>()
            .cloned()
            .unwrap_or_else(|| Self::from_headers(request.headers()))
    }

    /// Read from headers, the deadline counted from now.
    pub fn from_headers(headers: &http::HeaderMap) -> CallContext {
        Self::read(|name| headers.get(name).and_then(|v| v.to_str().ok()))
    }

    fn read<'a>(header: impl Fn(&str) -> Option<&'a str>) -> CallContext {
        CallContext {
            request_id: header(REQUEST_ID).unwrap_or_default().to_owned(),
            deadline: header(GRPC_TIMEOUT)
                .and_then(parse_grpc_timeout)
                .and_then(deadline_after),
            principal: None,
        }
    }

    /// How long is left before the caller's deadline, if it set one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_context_wins_over_headers() {
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert(REQUEST_ID, "from-header".parse().unwrap());
        request
            .metadata_mut()
            .insert(GRPC_TIMEOUT, "500m".parse().unwrap());
        let read = CallContext::of(&request);
        assert_eq!(read.request_id, "from-header");
        assert!(
            read.remaining()
                .is_some_and(|left| left <= Duration::from_millis(500))
        );
        let set = CallContext {
            request_id: "from-layer".into(),
            ..CallContext::default()
        };
        request.extensions_mut().insert(set.clone());
        assert_eq!(CallContext::of(&request), set);
    }
}
